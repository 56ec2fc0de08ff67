import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { WasmboxError } from "../core/errors.js";
import { ownedTempSibling, ownerAlive, ownerTag, sweepOrphans, TEMP_SIBLING_PATTERN } from "./host-temp.js";
import { reportPreparation, type PreparationStep } from "./preparation-progress.js";

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

/** What a cache artefact is, for the progress a caller sees while it is made. */
export interface BuildInfo {
  subject: string;
}

/**
 * Returns the snapshot's path, calling `make(tempPath)` first when it is missing. The temporary file
 * is renamed into place, so a concurrent creator in another process never sees half a file; a lock
 * in the cache makes concurrent cold starts on one machine share one build.
 */
export function ensureSnapshot(path: string, make: (tempPath: string) => Promise<void>, info: BuildInfo = { subject: "Python" }): Promise<string> {
  if (existsSync(path)) return Promise.resolve(path);
  const existing = inFlight.get(path);
  if (existing) return existing;
  const task = (async () => {
    mkdirSync(dirname(path), { recursive: true });
    sweepCacheOnce(dirname(path));
    try {
      await buildUnderLock(path, { step: "snapshot", subject: info.subject }, async () => {
        const temp = ownedTempSibling(path, randomBytes(4).toString("hex"));
        try {
          await make(temp);
          renameSync(temp, path);
        } finally {
          rmSync(temp, { force: true });
        }
        pruneOlder(path);
      });
    } catch (cause) {
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

/** How often a process waiting for another's build looks again. */
const LOCK_POLL_MS = 200;
/** After this long waiting for a live owner (stopped, hung), build anyway: the rename keeps it correct. */
const LOCK_WAIT_LIMIT_MS = 10 * 60 * 1000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Makes `path` with `build` unless it exists, holding `<path>.lock` (created exclusively, holding
 * the owner's pid and start time) meanwhile. A process that finds the lock held by a live process
 * waits for the artefact instead of making its own; a lock whose owner died is removed. The lock
 * only saves duplicate work: two builders that race past it (a stale lock removed by two waiters at
 * once) still each write a temporary file and rename it into place, so nobody sees half a file.
 */
async function buildUnderLock(path: string, what: { step: PreparationStep; subject: string }, build: () => Promise<void>): Promise<void> {
  const lock = `${path}.lock`;
  const startedMs = Date.now();
  let waitingFor: number | null = null;
  const elapsedMs = () => Date.now() - startedMs;
  for (;;) {
    if (existsSync(path)) {
      if (waitingFor !== null) reportPreparation({ phase: "finished", ...what, path, elapsedMs: elapsedMs() });
      return;
    }
    let owned = false;
    try {
      writeFileSync(lock, ownerTag(), { flag: "wx" });
      owned = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    if (!owned) {
      const owner = readLockOwner(lock);
      if (owner !== null && !ownerAlive(owner)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (elapsedMs() < LOCK_WAIT_LIMIT_MS) {
        if (waitingFor === null && owner !== null) {
          waitingFor = Number(owner.split(".")[0]);
          reportPreparation({ phase: "waiting", ...what, path, elapsedMs: 0, ownerPid: waitingFor });
        }
        await sleep(LOCK_POLL_MS);
        continue;
      }
    }
    try {
      if (existsSync(path)) return;
      const buildStartedMs = Date.now();
      reportPreparation({ phase: "started", ...what, path, elapsedMs: 0 });
      try {
        await build();
      } catch (error) {
        reportPreparation({ phase: "failed", ...what, path, elapsedMs: Date.now() - buildStartedMs, error: String((error as Error)?.message ?? error) });
        throw error;
      }
      reportPreparation({ phase: "finished", ...what, path, elapsedMs: Date.now() - buildStartedMs });
      return;
    } finally {
      if (owned && readLockOwner(lock) === ownerTag()) rmSync(lock, { force: true });
    }
  }
}

/** The owner tag in a lock file, or null while it is being written or when it is gone. */
function readLockOwner(lock: string): string | null {
  try {
    return readFileSync(lock, "utf8").trim() || null;
  } catch {
    return null;
  }
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
export function ensureCompileCache(path: string, make: (tempDir: string) => Promise<void>, info: BuildInfo = { subject: "Python" }): Promise<string | null> {
  if (existsSync(path)) return Promise.resolve(path);
  const existing = cachesInFlight.get(path);
  if (existing) return existing;
  const task = (async () => {
    try {
      sweepCacheOnce(dirname(path));
      await buildUnderLock(path, { step: "compile-cache", subject: info.subject }, async () => {
        const temp = ownedTempSibling(path, randomBytes(4).toString("hex"));
        try {
          mkdirSync(temp, { recursive: true });
          await make(temp);
          renameSync(temp, path);
        } finally {
          rmSync(temp, { recursive: true, force: true });
        }
      });
      return path;
    } catch {
      return existsSync(path) ? path : null; // another process may have made it meanwhile
    } finally {
      cachesInFlight.delete(path);
    }
  })();
  cachesInFlight.set(path, task);
  return task;
}
