import { createHash } from "node:crypto";
import { createReadStream, existsSync, statSync } from "node:fs";
import { basename } from "node:path";
import { WasmboxError } from "../core/errors.js";
import type { Language } from "../core/request.js";
import { buildLaunch, describeLayers, probeBubblewrap, requireLayer, type LaunchPaths, type OsSandboxMode } from "./executor-launch.js";
import { ExecutorProcess } from "./executor-process.js";
import { sweepExecutorDirsOnce } from "./host-temp.js";
import { canMeasureMemory } from "./process-memory.js";
import { denoBinary, distDir, executorEntryPath } from "./runtime-paths.js";
import { executorFiles, runtimeFor, type PreparedRuntime } from "./runtime-registry.js";
import type { PackageEnvironment } from "../packages/environment.js";

/** What saved sessions depend on, per snapshot file (see stateIdentity). */
const snapshotIdentities = new Map<string, Promise<{ runtime: string; baseSha256: string }>>();

/** SHA-256 of a file, read as a stream (a snapshot is ~30 MB). */
function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("end", () => resolve(hash.digest("hex")))
      .on("error", reject);
  });
}

export interface ExecutorFactoryOptions {
  /** Run executors inside bubblewrap: "auto" (default) when it works here, "require", or "off". */
  osSandbox?: OsSandboxMode;
  /** V8 heap cap of each executor isolate in bytes. Default 256 MiB. */
  heapLimitBytes?: number;
  /** Start-up timeout for one executor in milliseconds. Default 60000. */
  startTimeoutMs?: number;
  /**
   * Let V8 recompile hot wasm functions with its optimizing compiler (TurboFan). Off by default:
   * most sandboxed runs are short, and on few cores the background compilation costs more than it
   * saves (bench/: CPU geomean vs native 3.8× off, 5.0× on; print(1) 13 vs 21 ms). Turn it on for
   * long CPU-bound runs, where optimized code is up to ~2.5× faster.
   */
  wasmTierUp?: boolean;
  /** Extra V8 flags for executors, for measuring; the defaults are tuned. */
  v8Flags?: string[];
}

/** The snapshot maker runs trusted code only, but loads the whole interpreter: give it room. */
const SNAPSHOT_HEAP_LIMIT_BYTES = 1024 * 1024 * 1024;

let layersSaid = false;

/** Knows how to start executors: the Deno binary, each runtime's assets, the OS wrapper. */
export class ExecutorFactory {
  /** By language, and for Python by package environment ("python" is the base one). */
  private readonly prepared = new Map<string, Promise<PreparedRuntime>>();

  private constructor(
    private readonly base: LaunchPaths,
    readonly bwrap: string | null,
    readonly layers: string,
    private readonly heapLimitBytes: number,
    private readonly startTimeoutMs: number,
    private readonly v8Flags: string[],
  ) {}

  static create(options: ExecutorFactoryOptions = {}): ExecutorFactory {
    // What hosts that died (SIGKILL, a crash) left in the temp dir: only theirs, never a live host's.
    sweepExecutorDirsOnce();
    const base: LaunchPaths = { deno: denoBinary(), entry: executorEntryPath(), readable: [distDir()] };
    const mode = options.osSandbox ?? "auto";
    const probe = mode === "off" ? { path: null, reason: "turned off by the caller" } : probeBubblewrap(base);
    requireLayer(mode, probe.path, probe.reason);
    const layers = describeLayers(probe.path, probe.reason, canMeasureMemory);
    if (!probe.path && mode === "auto" && !layersSaid) {
      layersSaid = true;
      process.stderr.write(layers + "\n");
    }
    const v8Flags = [...(options.wasmTierUp ? [] : ["--liftoff-only"]), ...(options.v8Flags ?? [])];
    return new ExecutorFactory(base, probe.path, layers, options.heapLimitBytes ?? 256 * 1024 * 1024, options.startTimeoutMs ?? 60_000, v8Flags);
  }

  /**
   * Locates a language's assets and makes its derived artefacts (the Python snapshot; for a package
   * environment its bundle and snapshot), once per process.
   */
  prepare(language: Language, environment: PackageEnvironment | null = null): Promise<PreparedRuntime> {
    const key = environment && language === "python" ? `${language}@${environment.id}` : language;
    let task = this.prepared.get(key);
    if (!task) {
      const definition = runtimeFor(language);
      if (!definition || definition.version() === null) {
        const how = definition ? `; add it with: ${definition.install}` : "";
        return Promise.reject(new WasmboxError("UNSUPPORTED_LANGUAGE", `language ${JSON.stringify(language)} is not installed${how}`));
      }
      task = definition.prepare({
        environment,
        launchKind: this.bwrap ? "bwrap" : "host",
        executorFiles,
        makeSnapshot: (runtime, args, readable) =>
          ExecutorProcess.makeSnapshot(
            buildLaunch(
              { ...this.base, readable: [...this.base.readable, ...readable] },
              { bwrap: this.bwrap, heapLimitBytes: SNAPSHOT_HEAP_LIMIT_BYTES, mode: "make-snapshot", extra: [runtime, ...args], writable: args.at(-1), v8Flags: this.v8Flags },
            ),
          ),
        primeCompileCache: async (runtime, args, readable, dir, sandboxNames) => {
          const launch = buildLaunch(
            { ...this.base, readable: [...this.base.readable, ...readable], sandboxNames },
            { bwrap: this.bwrap, heapLimitBytes: this.heapLimitBytes, mode: "serve", extra: [runtime, ...args], v8Flags: this.v8Flags, keepDenoDir: dir },
          );
          const executor = await ExecutorProcess.start(launch, { startTimeoutMs: this.startTimeoutMs });
          await executor.shutdown();
        },
      });
      task.catch(() => this.prepared.delete(key)); // a failed preparation may be retried
      this.prepared.set(key, task);
    }
    return task;
  }

  /**
   * What a saved session's state depends on: the runtime (the snapshot's name: Pyodide's version,
   * a hash of the executor's code, the package environment) and the bytes of the snapshot's
   * memory, from which saved state is a difference. Null for languages whose sessions cannot be saved.
   */
  async stateIdentity(language: Language, environment: PackageEnvironment | null = null): Promise<{ runtime: string; baseSha256: string } | null> {
    if (language !== "python") return null;
    const snapshot = (await this.prepare(language, environment)).args.at(-1)!;
    // Hashed once per process and file (~30 MB): a snapshot made again at the same path is another file.
    const stat = statSync(snapshot);
    const key = `${snapshot}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    let task = snapshotIdentities.get(key);
    if (!task) {
      task = hashFile(snapshot).then((baseSha256) => ({ runtime: basename(snapshot), baseSha256 }));
      task.catch(() => snapshotIdentities.delete(key));
      snapshotIdentities.set(key, task);
    }
    return task;
  }

  /** Whether executors of `language` can restore their warm state between runs ("interpreter" isolation). */
  resettable(language: Language): boolean {
    return runtimeFor(language)?.resettable === true;
  }

  /** Executors started so far (each is a process), for stats. */
  startedCount = 0;

  /**
   * Starts one executor for `language` and resolves when it is ready for a run. `keepPristine`:
   * it keeps its warm state, so runs may be followed by a reset to it (resettable languages only).
   * `isolate`: runs with `reuse` each get a fresh worker inside the process (any language).
   * `warmUp: false` skips the runtime's warm-up (~30 ms) for an executor a run is waiting for.
   */
  async start(
    language: Language,
    options: { signal?: AbortSignal; keepPristine?: boolean; isolate?: boolean; warmUp?: boolean; environment?: PackageEnvironment | null } = {},
  ): Promise<ExecutorProcess> {
    const environment = options.environment ?? null;
    let runtime = await this.prepare(language, environment);
    if (runtime.readable.some((path) => !existsSync(path))) {
      // Another process pruned or replaced an artefact (e.g. an old snapshot): prepare it again.
      this.prepared.delete(environment && language === "python" ? `${language}@${environment.id}` : language);
      runtime = await this.prepare(language, environment);
    }
    const definition = runtimeFor(language)!;
    const launch = buildLaunch(
      { ...this.base, readable: [...this.base.readable, ...runtime.readable], sandboxNames: runtime.sandboxNames },
      {
        bwrap: this.bwrap,
        heapLimitBytes: this.heapLimitBytes,
        mode: "serve",
        extra: [definition.runtime, ...runtime.args],
        v8Flags: this.v8Flags,
        denoDirSeed: runtime.denoDirSeed,
      },
    );
    this.startedCount++;
    return ExecutorProcess.start(launch, {
      startTimeoutMs: this.startTimeoutMs,
      signal: options.signal,
      keepPristine: options.keepPristine === true && this.resettable(language),
      isolate: options.isolate === true,
      warmUp: options.warmUp,
    });
  }
}
