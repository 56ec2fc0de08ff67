import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { WasmboxError } from "../core/errors.js";
import { ownedTempSibling, sweepOrphans, TEMP_SIBLING_PATTERN } from "./host-temp.js";

/**
 * The memory snapshot is derived from Pyodide and from our own worker code, so its file name carries
 * both: a new Pyodide or a changed runner never loads a stale snapshot.
 */
export function snapshotPath(cache: string, pyodideVersion: string, workerFiles: string[], variant = ""): string {
  const hash = createHash("sha256").update(variant);
  for (const file of workerFiles) hash.update(readFileSync(file));
  return join(cache, `python-${pyodideVersion}-${hash.digest("hex").slice(0, 16)}.snapshot`);
}

const inFlight = new Map<string, Promise<string>>();

const sweptCaches = new Set<string>();

/** Removes half-written snapshots and compile caches of hosts that died while making them. */
function sweepCacheOnce(dir: string): void {
  if (sweptCaches.has(dir)) return;
  sweptCaches.add(dir);
  sweepOrphans(dir, TEMP_SIBLING_PATTERN);
}

/** Snapshots of the same kind kept besides the newest, for other wasmbox versions on this machine. */
const KEEP_OLDER_SNAPSHOTS = 2;
/** A snapshot used this recently may belong to a running host: never pruned. */
const PRUNE_UNUSED_FOR_MS = 24 * 60 * 60 * 1000;

/**
 * Removes snapshots of the same prefix ("python-") beyond the newest few that have not been used
 * for a day: each is ~30 MB. A host whose snapshot went missing anyway prepares it again.
 */
function pruneOlder(path: string): void {
  const dir = dirname(path);
  const prefix = basename(path).split("-")[0] + "-";
  try {
    const others = readdirSync(dir)
      .filter((f) => f.startsWith(prefix) && f.endsWith(".snapshot") && join(dir, f) !== path)
      .map((f) => {
        const stat = statSync(join(dir, f));
        return { file: join(dir, f), usedMs: Math.max(stat.mtimeMs, stat.atimeMs) };
      })
      .sort((a, b) => b.usedMs - a.usedMs);
    const now = Date.now();
    for (const { file, usedMs } of others.slice(KEEP_OLDER_SNAPSHOTS)) {
      if (now - usedMs > PRUNE_UNUSED_FOR_MS) {
        rmSync(file, { force: true });
        for (const kind of COMPILE_CACHE_KINDS) rmSync(compileCachePath(file, kind), { recursive: true, force: true });
      }
    }
  } catch {
    // pruning is best effort: another process may be pruning too
  }
}

/**
 * Returns the snapshot's path, calling `make(tempPath)` first when it is missing. The temporary file
 * is renamed into place, so a concurrent creator in another process never sees half a file.
 */
export function ensureSnapshot(path: string, make: (tempPath: string) => Promise<void>): Promise<string> {
  if (existsSync(path)) return Promise.resolve(path);
  const existing = inFlight.get(path);
  if (existing) return existing;
  const task = (async () => {
    mkdirSync(dirname(path), { recursive: true });
    sweepCacheOnce(dirname(path));
    const temp = ownedTempSibling(path, randomBytes(4).toString("hex"));
    try {
      await make(temp);
      renameSync(temp, path);
      pruneOlder(path);
    } catch (cause) {
      rmSync(temp, { force: true });
      throw cause instanceof WasmboxError
        ? cause
        : new WasmboxError("SNAPSHOT_FAILED", `cannot make the Python snapshot: ${cause}`, { cause });
    } finally {
      inFlight.delete(path);
    }
    return path;
  })();
  inFlight.set(path, task);
  return task;
}

const COMPILE_CACHE_KINDS = ["bwrap", "host"] as const;

/**
 * The compile cache made for executors that load `snapshot` and run inside bubblewrap ("bwrap") or
 * not ("host"): a DENO_DIR next to it.
 */
export function compileCachePath(snapshot: string, kind: (typeof COMPILE_CACHE_KINDS)[number]): string {
  return `${snapshot}.${kind}.deno-dir`;
}

const cachesInFlight = new Map<string, Promise<string | null>>();

/**
 * Returns the compile cache's path, calling `make(tempDir)` first when it is missing; null when it
 * cannot be made (executors then start without it, only slower). Renamed into place when complete.
 */
export function ensureCompileCache(path: string, make: (tempDir: string) => Promise<void>): Promise<string | null> {
  if (existsSync(path)) return Promise.resolve(path);
  const existing = cachesInFlight.get(path);
  if (existing) return existing;
  const task = (async () => {
    const temp = ownedTempSibling(path, randomBytes(4).toString("hex"));
    try {
      sweepCacheOnce(dirname(path));
      mkdirSync(temp, { recursive: true });
      await make(temp);
      renameSync(temp, path);
      return path;
    } catch {
      rmSync(temp, { recursive: true, force: true });
      return existsSync(path) ? path : null; // another process may have made it meanwhile
    } finally {
      cachesInFlight.delete(path);
    }
  })();
  cachesInFlight.set(path, task);
  return task;
}
