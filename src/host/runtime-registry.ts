import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Language } from "../core/request.js";
import { cacheDir, distDir, pyodideDir, pyodideVersion } from "./runtime-paths.js";
import { ensureSnapshot, snapshotPath } from "./snapshot-cache.js";

/** What an executor for one runtime needs: paths it may read and the worker's own arguments. */
export interface PreparedRuntime {
  readable: string[];
  args: string[];
}

/** What a runtime may ask of the host while it prepares (e.g. make a snapshot). */
export interface PrepareContext {
  /** The built executor and runtime files: derived artefacts should be keyed by them. */
  executorFiles(runtime: string): string[];
  /**
   * Runs an executor in make-snapshot mode for `runtime`, with `args` (the last one the file to
   * write) and read access to `readable`. No guest code runs in it.
   */
  makeSnapshot(runtime: string, args: string[], readable: string[]): Promise<void>;
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
}

const python: RuntimeDefinition = {
  language: "python",
  runtime: "python",
  packages: ["pyodide@314.0.7"],
  install: "included",
  version() {
    try {
      return `CPython 3.14 (Pyodide ${pyodideVersion()})`;
    } catch {
      return null;
    }
  },
  async prepare(context) {
    const dir = pyodideDir();
    // Everything that runs inside the executor shapes the snapshot, so all of it keys the cache.
    const snapshot = snapshotPath(cacheDir(), pyodideVersion(dir), context.executorFiles("python"));
    await ensureSnapshot(snapshot, (temp) => context.makeSnapshot("python", [dir, temp], [dir]));
    return { readable: [dir, snapshot], args: [dir, snapshot] };
  },
};

/** Every runtime wasmbox knows, installed or not. */
export const RUNTIMES: readonly RuntimeDefinition[] = [python];

export function runtimeFor(language: Language): RuntimeDefinition | undefined {
  return RUNTIMES.find((r) => r.language === language);
}

/** The built executor entry and the runtime's worker files (what derived artefacts are keyed by). */
export function executorFiles(runtime: string): string[] {
  return ["executor", "runtimes", join("runtimes", runtime)].flatMap((dir) => {
    const path = join(distDir(), dir);
    return readdirSync(path).filter((f) => f.endsWith(".js")).sort().map((f) => join(path, f));
  });
}
