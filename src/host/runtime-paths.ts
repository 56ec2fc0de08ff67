import { existsSync, realpathSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { WasmboxError } from "../core/errors.js";

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

/** Per-user cache for derived artefacts (the memory snapshot), keyed by version in file names. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WASMBOX_CACHE_DIR) return env.WASMBOX_CACHE_DIR;
  if (process.platform === "darwin") return join(homedir(), "Library", "Caches", "wasmbox");
  if (process.platform === "win32") return join(env.LOCALAPPDATA ?? join(homedir(), "AppData", "Local"), "wasmbox", "cache");
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "wasmbox");
}
