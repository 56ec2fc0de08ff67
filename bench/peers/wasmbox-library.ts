/** wasmbox through its TypeScript API, in the bench process: `Sandbox.create()` then `run()`. */
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { REPO_DIR } from "../lib/context.js";
import { readFileSync } from "node:fs";
import { denoDescendants, waitForIdleExecutors } from "../lib/proc.js";

/** The built library (dist/), the same code `npm run build` ships. Loaded lazily. */
export async function loadWasmbox(): Promise<typeof import("../../dist/index.js")> {
  return (await import(pathToFileURL(join(REPO_DIR, "dist", "index.js")).href)) as typeof import("../../dist/index.js");
}

type SandboxInstance = Awaited<ReturnType<Awaited<ReturnType<typeof loadWasmbox>>["Sandbox"]["create"]>>;

export interface LibraryRun {
  wallMs: number;
  /** The result's own durationMs: from the request reaching an executor to the result. */
  durationMs: number;
  stdout: string;
}

export class WasmboxLibrary {
  private constructor(
    readonly sandbox: SandboxInstance,
    readonly poolSize: number,
  ) {}

  static async create(poolSize = 2, options: Record<string, unknown> = {}): Promise<WasmboxLibrary> {
    const { Sandbox } = await loadWasmbox();
    return new WasmboxLibrary(await Sandbox.create({ poolSize, ...options }), poolSize);
  }

  /**
   * Waits until the pool holds `poolSize` started executors that are idle. Executors are children
   * of this process; they are found through /proc, since the Sandbox has no public "ready" signal.
   */
  async warm(timeoutMs = 60_000): Promise<boolean> {
    return waitForIdleExecutors(process.pid, this.poolSize, timeoutMs);
  }

  async run(code: string, timeoutMs = 60_000): Promise<LibraryRun> {
    const started = performance.now();
    const result = await this.sandbox.run({ code, timeoutMs });
    const wallMs = performance.now() - started;
    if (result.status !== "ok") {
      throw new Error(`wasmbox run ${result.status}: ${result.error ? `${result.error.type}: ${result.error.message}` : result.stderr.slice(-300)}`);
    }
    return { wallMs, durationMs: result.durationMs, stdout: result.stdout };
  }

  async close(): Promise<void> {
    await this.sandbox.close();
  }
}

/**
 * Whether this build passes `v8Flags` to its executors: starts a pool of one with the flags and
 * reads the executor's command line from /proc. (A build without the option ignores it silently.)
 */
export async function executorsTakeV8Flags(flags: string[]): Promise<boolean> {
  const lib = await WasmboxLibrary.create(1, { v8Flags: flags });
  try {
    await lib.warm();
    return denoDescendants(process.pid).some((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        return flags.every((flag) => argv.some((arg) => arg.startsWith("--v8-flags=") && arg.slice("--v8-flags=".length).split(",").includes(flag)));
      } catch {
        return false;
      }
    });
  } finally {
    await lib.close();
  }
}
