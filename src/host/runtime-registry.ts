import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import type { Language } from "../core/request.js";
import { cacheDir, distDir, pyodideDir, pyodideVersion } from "./runtime-paths.js";
import { compileCachePath, ensureCompileCache, ensureSnapshot, snapshotPath } from "./snapshot-cache.js";
import { ensureBundle, environmentsDir, resolveEnvironment, type PackageEnvironment } from "../packages/environment.js";
import { WasmboxError } from "../core/errors.js";

/** What an executor for one runtime needs: paths it may read and the worker's own arguments. */
export interface PreparedRuntime {
  readable: string[];
  args: string[];
  /** A compile cache (DENO_DIR) each executor starts from a copy of, when one could be made. */
  denoDirSeed?: string;
  /** Names of `readable` paths inside bubblewrap (under /wasmbox/), where their base name would tell too much. */
  sandboxNames?: Record<string, string>;
}

/** What a runtime may ask of the host while it prepares (e.g. make a snapshot). */
export interface PrepareContext {
  /**
   * Where executors run: a compile cache holds code keyed by the paths the executor saw, which
   * differ inside bubblewrap (/wasmbox/…) and outside, so each kind gets its own.
   */
  launchKind: "bwrap" | "host";
  /** The built executor and runtime files: derived artefacts should be keyed by them. */
  executorFiles(runtime: string): string[];
  /**
   * Runs an executor in make-snapshot mode for `runtime`, with `args` (the last one the file to
   * write) and read access to `readable`. No guest code runs in it.
   */
  makeSnapshot(runtime: string, args: string[], readable: string[]): Promise<void>;
  /**
   * Starts one executor for `runtime` in serve mode with `dir` as its DENO_DIR, waits until it is
   * ready and stops it: Deno's module analysis and V8's code cache for everything it loaded stay
   * in `dir`. It runs the runtime's trusted warm-up only, never guest code.
   */
  primeCompileCache(runtime: string, args: string[], readable: string[], dir: string, sandboxNames?: Record<string, string>): Promise<void>;
  /** Python: the package set executors start with (null: the base environment, tzdata only). */
  environment?: PackageEnvironment | null;
}

/** One language adapter as the host sees it. The worker side lives in src/runtimes/<runtime>/. */
export interface RuntimeDefinition {
  language: Language;
  /** The worker folder under src/runtimes/. */
  runtime: string;
  /** npm packages that provide it, and how to add them when missing. */
  packages: string[];
  install: string;
  /** Installed version, or null when its packages are not installed. */
  version(): string | null;
  /** Locates assets and makes derived artefacts; called once per process and language. */
  prepare(context: PrepareContext): Promise<PreparedRuntime>;
  /**
   * Its worker can restore its warm state after a run (WorkerRun.reset), so an executor may serve
   * many runs in "interpreter" isolation. Runtimes without it always get a process per run.
   */
  resettable?: boolean;
}

const python: RuntimeDefinition = {
  language: "python",
  runtime: "python",
  packages: ["pyodide@314.0.7"],
  install: "included",
  resettable: true,
  version() {
    try {
      return `CPython 3.14 (Pyodide ${pyodideVersion()})`;
    } catch {
      return null;
    }
  },
  async prepare(context) {
    const dir = pyodideDir();
    const cache = cacheDir();
    const base = resolveEnvironment("", []);
    const environment = context.environment ?? base;
    // Everything that runs inside the executor shapes the snapshot, so all of it keys the cache.
    // A seeded snapshot is another artefact: the seed's digest keys it too.
    const snapshotSeedHex = snapshotSeed();
    const baseSnapshot = snapshotPath(cache, pyodideVersion(dir), context.executorFiles("python"), snapshotSeedHex ? `${base.id}:seed:${snapshotSeedHex}` : base.id);
    const prepared = await prepareEnvironment(context, dir, base, () => baseSnapshot);
    // Every environment's executors run the same code: they share the base's compile cache.
    const seed = await ensureCompileCache(compileCachePath(baseSnapshot, context.launchKind), (temp) =>
      context.primeCompileCache("python", prepared.args, prepared.args, temp, prepared.sandboxNames),
    );
    const ready = environment === base ? prepared : await prepareEnvironment(context, dir, environment, (bundle) => environmentSnapshotPath(cache, environment, bundle, baseSnapshot));
    return { ...ready, denoDirSeed: seed ?? undefined };
  },
};

/**
 * WASMBOX_SNAPSHOT_SEED, as a digest, or null. Unset, each machine's snapshot draws real entropy (its
 * Python hash secret is its own) and reads the clock, so no two machines make the same snapshot and
 * a saved session restores only where its snapshot's bytes are (docs/sessions.md). Set to the same
 * secret on several machines, the snapshot maker draws its entropy from it and runs on a fixed
 * clock: every machine of the same wasmbox version makes a byte-identical snapshot, and sessions
 * saved on one restore on the others. The seed is then what keeps the hash secret private.
 */
export function snapshotSeed(env: NodeJS.ProcessEnv = process.env): string | null {
  const seed = env.WASMBOX_SNAPSHOT_SEED;
  if (!seed) return null;
  return createHash("sha256").update("wasmbox-snapshot-seed\0").update(seed).digest("hex");
}

/** An environment's snapshot: named by its bundle and by the base snapshot's key (Pyodide, our code). */
function environmentSnapshotPath(cache: string, environment: PackageEnvironment, bundle: string, baseSnapshot: string): string {
  const code = baseSnapshot.replace(/^.*python-/, "").replace(/\.snapshot$/, "");
  const variant = bundle.replace(/^.*\//, "").replace(/\.bundle$/, "");
  return join(environmentsDir(cache), `${variant}-${code}.snapshot`);
}

/** Modules found loading a WebAssembly library while imported for the snapshot, remembered per environment. */
function nativeAtImportFile(cache: string, environment: PackageEnvironment): string {
  return join(environmentsDir(cache), `${environment.id}.native-at-import`);
}

/**
 * Makes an environment's bundle and snapshot when missing. A module the snapshot maker finds
 * loading a WebAssembly library while imported (NATIVE_AT_IMPORT) is moved to the imports each
 * executor does when it starts, and the snapshot made again (remembered, so once per machine). A
 * package that fails to import is a PACKAGE_INVALID error naming it.
 */
async function prepareEnvironment(
  context: PrepareContext,
  dir: string,
  environment: PackageEnvironment,
  snapshotFor: (bundle: string) => string,
): Promise<Omit<PreparedRuntime, "denoDirSeed">> {
  const cache = cacheDir();
  const remembered = nativeAtImportFile(cache, environment);
  let native = existsSync(remembered) ? readFileSync(remembered, "utf8").split(",").filter(Boolean) : [];
  for (let attempt = 0; ; attempt++) {
    const bundle = ensureBundle(cache, environment, native);
    const snapshot = snapshotFor(bundle);
    try {
      const subject = environment.requested.length === 0 ? "Python" : `Python with ${environment.requested.join(", ")}`;
      const seed = snapshotSeed();
      const seedArgs = seed ? [`--snapshot-seed=${seed}`] : [];
      await ensureSnapshot(snapshot, (temp) => context.makeSnapshot("python", [...seedArgs, dir, bundle, temp], [dir, bundle]), { subject });
      if (native.length > 0 && !existsSync(remembered)) writeFileSync(remembered, native.join(","));
      // Inside bubblewrap these are /wasmbox/python.snapshot and /wasmbox/packages.bundle: cache names (versions, hashes) stay on the host.
      const sandboxNames = { [snapshot]: "python.snapshot", [bundle]: "packages.bundle", [dir]: "pyodide" };
      return { readable: [dir, bundle, snapshot], args: [dir, bundle, snapshot], sandboxNames };
    } catch (error) {
      const message = String((error as Error)?.message ?? error);
      const found = /NATIVE_AT_IMPORT (\S+)/.exec(message);
      if (found && attempt < 3) {
        native = [...new Set([...native, ...found[1]!.split(",")])];
        rmSync(bundle, { force: true }); // its import plan was wrong; the next one replaces it
        continue;
      }
      const failed = /PACKAGE_IMPORT_FAILED (\S+) \(([^)]*)\): (.*)/s.exec(message);
      if (failed) {
        throw new WasmboxError("PACKAGE_INVALID", `importing ${failed[1]} failed ${failed[2]}: ${failed[3]!.trim()}`, { cause: error });
      }
      throw error;
    }
  }
}

const require = createRequire(import.meta.url);

/**
 * The installed directory of an npm package, or null. Looks for `<node_modules>/<name>/package.json`
 * along Node's lookup paths, since some packages (e.g. @yowasp/clang) do not export package.json.
 */
export function packageDir(name: string): string | null {
  for (const dir of require.resolve.paths(name) ?? []) {
    const candidate = join(dir, name);
    if (existsSync(join(candidate, "package.json"))) return realpathSync(candidate);
  }
  return null;
}

/**
 * How a user adds a package next to this wasmbox: `npm install -g` when wasmbox itself is a global
 * install (<prefix>/lib/node_modules/wasmbox, whose dependencies resolve from the sibling global
 * packages), else `npm install` in the project that has it. The Python package (its host lives in
 * wasmbox/_assets) carries a fixed set of runtimes: nothing can be added to it with npm.
 */
function installHint(packages: string[]): string {
  const packageRoot = dirname(distDir().replace(/\/$/, ""));
  if (basename(packageRoot) === "_assets" && basename(dirname(packageRoot)) === "wasmbox") {
    return `not in the Python package; the npm package runs it (npm install ${packages.join(" ")} next to wasmbox)`;
  }
  const modules = dirname(packageRoot);
  const global = basename(modules) === "node_modules" && basename(dirname(modules)) === "lib" && !existsSync(join(dirname(dirname(modules)), "package.json"));
  return `${global ? "npm install -g" : "npm install"} ${packages.join(" ")}`;
}

function packageVersion(name: string): string | null {
  const dir = packageDir(name);
  if (!dir) return null;
  return (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }).version;
}

function required(name: string): string {
  const dir = packageDir(name);
  if (!dir) throw new Error(`npm package ${name} is not installed`);
  return dir;
}

/**
 * A runtime that needs only its npm packages read by the executor. The worker gets the package
 * directories as its arguments, in the order of `packages`, after `leading` arguments.
 */
function packaged(
  language: Language,
  runtime: string,
  packages: string[],
  optIn: boolean,
  describe: (versions: string[]) => string,
  leading: string[] = [],
): RuntimeDefinition {
  const names = packages.map((p) => p.slice(0, p.lastIndexOf("@")));
  return {
    language,
    runtime,
    packages,
    get install() {
      return optIn ? installHint(packages) : "included";
    },
    version() {
      const versions = names.map(packageVersion);
      return versions.every((v): v is string => v !== null) ? describe(versions) : null;
    },
    async prepare() {
      const dirs = names.map(required);
      return { readable: dirs, args: [...leading, ...dirs] };
    },
  };
}

const javascript = packaged(
  "javascript",
  "javascript",
  ["quickjs-emscripten-core@0.32.0", "@jitl/quickjs-wasmfile-release-sync@0.32.0", "@jitl/quickjs-ffi-types@0.32.0"],
  false,
  ([core]) => `QuickJS (quickjs-emscripten ${core})`,
);
const ruby = packaged("ruby", "ruby", ["@ruby/3.4-wasm-wasi@2.10.1"], true, ([v]) => `Ruby 3.4 (ruby.wasm ${v})`);
const clang = (language: "c" | "cpp") =>
  packaged(language, "clang", ["@yowasp/clang@22.0.0-git20542-10"], true, ([v]) => `Clang ${v!.split(".")[0]} → WASI (@yowasp/clang ${v})`, [language]);
const sqlite = packaged("sqlite", "sqlite", ["sql.js@1.16.0"], true, ([v]) => `SQLite (sql.js ${v})`);
const php = packaged("php", "php", ["@php-wasm/node-8-4@3.1.54"], true, ([v]) => `PHP 8.4 (@php-wasm/node-8-4 ${v})`);
const lua = packaged("lua", "lua", ["wasmoon@1.16.0"], true, ([v]) => `Lua 5.4 (wasmoon ${v})`);
const wasi: RuntimeDefinition = {
  language: "wasi",
  runtime: "wasi",
  packages: [],
  install: "included",
  version: () => "WASI preview1 (built in)",
  prepare: async () => ({ readable: [], args: [] }),
};

/** Every runtime wasmbox knows, installed or not. */
export const RUNTIMES: readonly RuntimeDefinition[] = [python, javascript, ruby, clang("c"), clang("cpp"), sqlite, php, lua, wasi];

export function runtimeFor(language: Language): RuntimeDefinition | undefined {
  return RUNTIMES.find((r) => r.language === language);
}

/** The built code an executor of `runtime` can load (what derived artefacts are keyed by). */
export function executorFiles(runtime: string): string[] {
  return ["core", "executor", "runtimes", join("runtimes", runtime)].flatMap((dir) => {
    const path = join(distDir(), dir);
    // The Python put into the interpreter before the snapshot (runner.py, …) shapes it as much as the JavaScript.
    return readdirSync(path).filter((f) => f.endsWith(".js") || f.endsWith(".py")).sort().map((f) => join(path, f));
  });
}
