import { canMeasureMemory } from "./process-memory.js";
import { buildLaunch, describeLayers, probeBubblewrap, requireLayer, type LaunchPaths, type OsSandboxMode } from "./executor-launch.js";
import { ExecutorProcess } from "./executor-process.js";
import { cacheDir, denoBinary, distDir, executorEntryPath, pyodideDir, pyodideVersion } from "./runtime-paths.js";
import { ensureSnapshot, snapshotPath } from "./snapshot-cache.js";
import { readdirSync } from "node:fs";
import { join } from "node:path";

export interface ExecutorFactoryOptions {
  /** Run executors inside bubblewrap: "auto" (default) when it works here, "require", or "off". */
  osSandbox?: OsSandboxMode;
  /** V8 heap cap of each executor isolate in bytes. Default 256 MiB. */
  heapLimitBytes?: number;
  /** Start-up timeout for one executor in milliseconds. Default 60000. */
  startTimeoutMs?: number;
}

let layersSaid = false;

/** Knows how to start executors: the Deno binary, the assets, the snapshot, the OS wrapper. */
export class ExecutorFactory {
  private constructor(
    private readonly paths: LaunchPaths,
    private readonly pyodide: string,
    private readonly snapshot: string,
    readonly bwrap: string | null,
    readonly layers: string,
    private readonly heapLimitBytes: number,
    private readonly startTimeoutMs: number,
  ) {}

  static async create(options: ExecutorFactoryOptions = {}): Promise<ExecutorFactory> {
    const pyodide = pyodideDir();
    const entry = executorEntryPath();
    // Everything that runs inside the executor shapes the snapshot, so all of it keys the cache.
    const workerFiles = ["executor", join("runtimes", "python")].flatMap((dir) => {
      const path = join(distDir(), dir);
      return readdirSync(path).filter((f) => f.endsWith(".js")).sort().map((f) => join(path, f));
    });
    const snapshot = snapshotPath(cacheDir(), pyodideVersion(pyodide), workerFiles);
    const base = { deno: denoBinary(), entry, readable: [distDir(), pyodide] };
    const mode = options.osSandbox ?? "auto";
    const probe = mode === "off" ? { path: null, reason: "turned off by the caller" } : probeBubblewrap(base);
    requireLayer(mode, probe.path, probe.reason);
    const layers = describeLayers(probe.path, probe.reason, canMeasureMemory);
    if (!probe.path && mode === "auto" && !layersSaid) {
      layersSaid = true;
      process.stderr.write(layers + "\n");
    }
    const heapLimitBytes = options.heapLimitBytes ?? 256 * 1024 * 1024;
    await ensureSnapshot(snapshot, (temp) =>
      ExecutorProcess.makeSnapshot(
        buildLaunch(base, { bwrap: probe.path, heapLimitBytes: 1024 * 1024 * 1024, mode: "make-snapshot", extra: [pyodide, temp], writable: temp }),
      ),
    );
    const paths = { ...base, readable: [...base.readable, snapshot] };
    return new ExecutorFactory(paths, pyodide, snapshot, probe.path, layers, heapLimitBytes, options.startTimeoutMs ?? 60_000);
  }

  /** Starts one executor and resolves when it is ready for a run. */
  start(signal?: AbortSignal): Promise<ExecutorProcess> {
    const launch = buildLaunch(this.paths, {
      bwrap: this.bwrap,
      heapLimitBytes: this.heapLimitBytes,
      mode: "serve",
      extra: [this.pyodide, this.snapshot],
    });
    return ExecutorProcess.start(launch, { startTimeoutMs: this.startTimeoutMs, signal });
  }
}
