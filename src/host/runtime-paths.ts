import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { WasmboxError } from "../core/errors.js";
import { makeOwnedTempDir } from "./host-temp.js";

const require = createRequire(import.meta.url);

/**
 * The built dist/ directory: the executor runs its JavaScript from there and may read nothing else
 * of the package. When the host runs from TypeScript sources (tests under tsx), that is the
 * sibling dist/ that `npm run build` made.
 */
export function distDir(): string {
  const here = fileURLToPath(new URL("../", import.meta.url));
  if (basename(here) === "src") {
    const built = join(here, "..", "dist");
    if (!existsSync(join(built, "executor", "main.js"))) {
      throw new WasmboxError("EXECUTOR_START_FAILED", `running from sources needs a build first: npm run build (no ${built})`);
    }
    return realpathSync(built) + "/";
  }
  return here;
}

/** Where the executor's code lives: dist/executor/main.js. */
export function executorEntryPath(): string {
  return join(distDir(), "executor", "main.js");
}

/** The installed pyodide package directory, overridable with WASMBOX_PYODIDE_DIR. */
export function pyodideDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WASMBOX_PYODIDE_DIR) return realpathSync(env.WASMBOX_PYODIDE_DIR);
  try {
    return realpathSync(dirname(require.resolve("pyodide/package.json")));
  } catch (cause) {
    throw new WasmboxError("EXECUTOR_START_FAILED", "the pyodide package is not installed (npm install pyodide@314.0.7)", { cause });
  }
}

export function pyodideVersion(dir = pyodideDir()): string {
  return (require(join(dir, "package.json")) as { version: string }).version;
}

function platformPackage(): string | null {
  const arch = process.arch === "x64" ? "x64" : process.arch === "arm64" ? "arm64" : null;
  if (!arch) return null;
  if (process.platform === "linux") return `@deno/linux-${arch}-glibc`;
  if (process.platform === "darwin") return `@deno/darwin-${arch}`;
  if (process.platform === "win32") return `@deno/win32-${arch}`;
  return null;
}

/**
 * The Deno binary executors run on: WASMBOX_DENO, else the running Deno when the host itself runs
 * on Deno, else the binary shipped by the `deno` npm package (its platform package, since npm may
 * skip the install script that would copy it), else `deno` on PATH.
 */
export function denoBinary(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WASMBOX_DENO) {
    if (!existsSync(env.WASMBOX_DENO)) {
      throw new WasmboxError("DENO_NOT_FOUND", `WASMBOX_DENO points at ${env.WASMBOX_DENO}, which does not exist`);
    }
    return realpathSync(env.WASMBOX_DENO);
  }
  const denoGlobal = (globalThis as { Deno?: { execPath(): string } }).Deno;
  if (denoGlobal) return realpathSync(denoGlobal.execPath());
  const exe = process.platform === "win32" ? "deno.exe" : "deno";
  const candidates: string[] = [];
  const pkg = platformPackage();
  if (pkg) {
    try {
      const denoPkgDir = dirname(require.resolve("deno/package.json"));
      candidates.push(join(dirname(createRequire(join(denoPkgDir, "package.json")).resolve(`${pkg}/package.json`)), exe));
    } catch {
      // platform package not installed; try the others
    }
  }
  try {
    candidates.push(join(dirname(require.resolve("deno/package.json")), exe));
  } catch {
    // deno package not installed
  }
  for (const dir of (env.PATH ?? "").split(process.platform === "win32" ? ";" : ":")) {
    if (dir) candidates.push(join(dir, exe));
  }
  for (const candidate of candidates) if (existsSync(candidate)) return realpathSync(candidate);
  throw new WasmboxError(
    "DENO_NOT_FOUND",
    "no Deno binary found: install the `deno` npm package, or set WASMBOX_DENO to a deno executable",
  );
}

/** Where the per-user cache would be: WASMBOX_CACHE_DIR, else the platform's user cache directory. */
export function preferredCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WASMBOX_CACHE_DIR) return env.WASMBOX_CACHE_DIR;
  if (process.platform === "darwin") return join(homedir(), "Library", "Caches", "wasmbox");
  if (process.platform === "win32") return join(env.LOCALAPPDATA ?? join(homedir(), "AppData", "Local"), "wasmbox", "cache");
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "wasmbox");
}

/** The cache directory each preferred one resolved to in this process (probed once each). */
const resolvedCaches = new Map<string, string>();

/**
 * Per-user cache for derived artefacts (the memory snapshots, package environments, the default
 * wheelhouse), keyed by version in file names. When the preferred directory cannot be written (a
 * read-only HOME, a service user whose HOME does not exist, a full disk) wasmbox uses a private
 * directory under the OS temp dir instead and says so once on stderr, naming WASMBOX_CACHE_DIR;
 * only when that fails too is it an error (CACHE_UNWRITABLE), never a raw errno.
 */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const preferred = preferredCacheDir(env);
  let dir = resolvedCaches.get(preferred);
  if (dir === undefined) {
    const problem = unwritable(preferred);
    dir = problem === null ? preferred : fallbackCacheDir(preferred, problem);
    resolvedCaches.set(preferred, dir);
  }
  return dir;
}

/** Why `dir` cannot hold the cache (made if missing, a file written and removed), or null when it can. */
function unwritable(dir: string): string | null {
  try {
    mkdirSync(dir, { recursive: true });
    // A probe, not access(W_OK): root passes access checks on a read-only file system.
    const probe = join(dir, `.probe-${process.pid}-${randomBytes(4).toString("hex")}`);
    writeFileSync(probe, "");
    rmSync(probe, { force: true });
    return null;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "EACCES" || code === "EPERM" ? "permission denied"
      : code === "EROFS" ? "read-only file system"
      : code === "ENOTDIR" ? "a path component is not a directory"
      : code === "ENOSPC" ? "no space left on the device"
      : code ?? String(error);
  }
}

/**
 * A private cache under the OS temp dir: `wasmbox-cache-<uid>` (kept between runs until the temp
 * dir is cleaned) when it is ours alone (a directory, not a link, owned by this user, mode 0700:
 * another user could otherwise plant a snapshot there), else a fresh directory for this process.
 */
function fallbackCacheDir(preferred: string, problem: string): string {
  const uid = typeof process.getuid === "function" ? process.getuid() : null;
  const shared = join(tmpdir(), `wasmbox-cache-${uid ?? "user"}`);
  let dir: string | null = null;
  try {
    mkdirSync(shared, { mode: 0o700 });
  } catch {
    // it exists already (checked below), or the temp dir is not writable either
  }
  try {
    const stat = lstatSync(shared);
    const ours = stat.isDirectory() && (uid === null || stat.uid === uid) && (stat.mode & 0o077) === 0;
    if (ours && unwritable(shared) === null) dir = shared;
  } catch {
    // not there: the temp dir is not writable either, or it vanished
  }
  if (dir === null) {
    try {
      dir = makeOwnedTempDir("wasmbox-cache-");
    } catch (cause) {
      throw new WasmboxError(
        "CACHE_UNWRITABLE",
        `cannot write the cache directory ${preferred} (${problem}) nor a temporary one in ${tmpdir()}: set WASMBOX_CACHE_DIR to a writable directory`,
        { cause },
      );
    }
  }
  process.stderr.write(
    `wasmbox: cannot write the cache directory ${preferred} (${problem}); using ${dir} instead. ` +
      `Set WASMBOX_CACHE_DIR to a writable directory to keep the cache there.\n`,
  );
  return dir;
}
