import { availableParallelism } from "node:os";
import { WasmboxError } from "../core/errors.js";
import type { Language } from "../core/request.js";
import { normalizeRunRequest, ValidRun, type RunRequest } from "../protocol/run-request.js";
import type { RunResult } from "../core/result.js";
import { ExecutorFactory, type ExecutorFactoryOptions } from "../host/executor-factory.js";
import { ExecutorPool } from "../host/executor-pool.js";
import { outputListener, refuseUnmeasurableCpuLimit, validateTools, type RunOptions } from "./run-options.js";
import { Session, type SessionHost, type SessionOptions } from "./session.js";
import { checkBlobRuntime, inflateSessionState, readSessionBlobHeader } from "./session-blob.js";
import { resolveEnvironment, type PackageEnvironment } from "../packages/environment.js";
import { wheelhouseDir } from "../packages/wheelhouse.js";

export interface SandboxOptions extends ExecutorFactoryOptions {
  /**
   * Resolve before the runtimes are prepared (on a machine's first start, the memory snapshot:
   * seconds), which then happens in the background; runs wait for it, and a preparation that fails
   * fails those runs. For servers that must answer their protocol's handshake first (the MCP
   * server, so a client is connected to receive progress). Default false: `create` waits, and
   * rejects if the runtime cannot be prepared.
   */
  prepareInBackground?: boolean;
  /**
   * Executors kept loaded ahead of demand for each of `languages`. Default 2 (0 for the one-shot
   * `run()`). Other languages keep at most one warm executor, from their first use on.
   */
  poolSize?: number;
  /** Languages prepared (e.g. the Python snapshot made) and kept warm from the start. Default ["python"]. */
  languages?: Language[];
  /** Runs executing at once; more wait in a queue. Default: the number of CPU cores, at least 2. */
  maxConcurrency?: number;
  /** Sessions open at once; each holds one executor process. Default 16. */
  maxSessions?: number;
  /**
   * What separates one run from the next (README, "Isolation modes"):
   * - "process" (default): every run gets an executor process of its own, discarded after it.
   *   Safe for mutually distrusting callers.
   * - "isolate": an executor process serves many runs, each in a Web Worker (a V8 isolate, a wasm
   *   instance, its own shared buffers) that no other run touched; the executor's trusted main
   *   isolate ends it after the run, and the host discards the process if anything the run
   *   started outlives it. Runs share the process (and its compiled wasm code), not a realm.
   * - "interpreter": an executor serves many runs; after each, the worker itself restores the
   *   interpreter's warm state (memory, files, timers). Fastest, but there is NO boundary between
   *   runs: they share a JS realm, and guest JavaScript (which any guest can run) can change it
   *   for every later run and read what later runs send. For code you trust. Languages whose
   *   runtime cannot reset (all but Python today) keep "process".
   */
  isolation?: Isolation;
  /**
   * Python packages (from the wheelhouse, `wasmbox packages add`) every run and session of this
   * sandbox gets, imported ahead in the executors' snapshot. A run's own `packages` add to them.
   */
  packages?: string[];
  /** The wheelhouse directory. Default: WASMBOX_WHEELHOUSE, else "wheelhouse" in the cache dir. */
  wheelhouse?: string;
}

/** Pools kept for package environments besides the sandbox's own: the least recently used is closed past it. */
const MAX_ENVIRONMENT_POOLS = 4;

export const ISOLATIONS = ["process", "isolate", "interpreter"] as const;
export type Isolation = (typeof ISOLATIONS)[number];

export function isIsolation(value: unknown): value is Isolation {
  return (ISOLATIONS as readonly unknown[]).includes(value);
}

export type { RunOptions } from "./run-options.js";

export interface SandboxStats {
  /** Runs executing now. */
  running: number;
  /** Runs waiting for a free slot. */
  queued: number;
  maxConcurrency: number;
  poolSize: number;
  /** Executors loaded and idle, over all languages. */
  warm: number;
  /** Executors starting. */
  starting: number;
  /** Sessions open (each holds an executor). */
  sessions: number;
  isolation: Isolation;
  /** Executor processes started since the sandbox was created. */
  executorsStarted: number;
}

function cancelledResult(): RunResult {
  return {
    status: "cancelled",
    exitCode: null,
    stdout: "",
    stderr: "",
    value: null,
    valueLossless: null,
    valueRepr: null,
    error: { type: "Cancelled", message: "run was cancelled before it started", traceback: "" },
    files: [],
    results: [],
    durationMs: 0,
    cpuTimeMs: null,
  };
}

/**
 * The facade: runs untrusted code, each run in a fresh interpreter inside its own zero-permission
 * executor process. Create with `await Sandbox.create()`, dispose with `close()` or `await using`.
 */
export class Sandbox {
  private closed = false;
  private active = 0;
  private readonly queue: (() => void)[] = [];
  private idle: (() => void) | null = null;
  private readonly sessions = new Set<Session>();
  /** Sessions whose executor is being acquired: they count against maxSessions. */
  private sessionsStarting = 0;
  /** By language; Python pools of other package environments by "python@<id>" (Map order: least recently used first). */
  private readonly pools = new Map<string, ExecutorPool>();

  private constructor(
    private readonly factory: ExecutorFactory,
    private readonly poolSize: number,
    private readonly maxConcurrency: number,
    private readonly maxSessions: number,
    private readonly isolation: Isolation,
    languages: readonly Language[],
    private readonly wheelhouse: string,
    /** The packages every Python run gets, and their environment (null: none named). */
    private readonly packageNames: readonly string[],
    private readonly environment: PackageEnvironment | null,
  ) {
    for (const language of languages) this.pools.set(language, this.newPool(language, poolSize, language === "python" ? environment : null));
  }

  private newPool(language: Language, size: number, environment: PackageEnvironment | null): ExecutorPool {
    return new ExecutorPool(this.factory, language, size, { reuse: this.isolation === "process" ? undefined : this.isolation, environment });
  }

  /**
   * The package environment of a Python run or session naming `packages` (the sandbox's own plus
   * these). Throws PACKAGE_NOT_FOUND, naming the command that adds a missing one, before any executor starts.
   */
  private environmentFor(language: Language, packages: readonly string[] | undefined): PackageEnvironment | null {
    if (language !== "python" || !packages || packages.length === 0) return language === "python" ? this.environment : null;
    const environment = resolveEnvironment(this.wheelhouse, [...this.packageNames, ...packages]);
    return environment.id === this.environment?.id ? this.environment : environment;
  }

  /** The pool of a language (and package environment), made on its first use. */
  private pool(language: Language, environment: PackageEnvironment | null = language === "python" ? this.environment : null): ExecutorPool {
    const own = environment === (language === "python" ? this.environment : null);
    const key = own ? language : `${language}@${environment!.id}`;
    let pool = this.pools.get(key);
    if (pool) {
      // Most recently used last.
      this.pools.delete(key);
      this.pools.set(key, pool);
      return pool;
    }
    pool = this.newPool(language, Math.min(1, this.poolSize), environment);
    this.pools.set(key, pool);
    const others = [...this.pools.keys()].filter((k) => k.includes("@"));
    if (others.length > MAX_ENVIRONMENT_POOLS) {
      // Lent executors finish their runs; the pool only stops keeping idle ones.
      this.pools.get(others[0]!)!.close();
      this.pools.delete(others[0]!);
    }
    return pool;
  }

  /** Resolves the runtime, makes the Python snapshot on first use (a few seconds, cached per user), starts the pool. */
  static async create(options: SandboxOptions = {}): Promise<Sandbox> {
    const factory = ExecutorFactory.create(options);
    const languages: Language[] = [...new Set<Language>(options.languages ?? ["python"])];
    const preparing = Promise.all(languages.map((language) => factory.prepare(language)));
    if (options.prepareInBackground) preparing.catch(() => {}); // a failed preparation is retried by the runs that need it
    else await preparing;
    const poolSize = options.poolSize ?? 2;
    if (!Number.isInteger(poolSize) || poolSize < 0) throw new RangeError("poolSize must be an integer >= 0");
    const maxConcurrency = options.maxConcurrency ?? Math.max(2, availableParallelism());
    if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1) throw new RangeError("maxConcurrency must be an integer >= 1");
    const maxSessions = options.maxSessions ?? 16;
    const isolation = options.isolation ?? "process";
    if (!isIsolation(isolation)) throw new RangeError('isolation must be "process", "isolate" or "interpreter"');
    const wheelhouse = wheelhouseDir({ wheelhouse: options.wheelhouse });
    const packages = [...(options.packages ?? [])];
    const environment = packages.length > 0 ? resolveEnvironment(wheelhouse, packages) : null;
    // The environment's snapshot is made now (once per machine), not by the first run.
    if (environment && languages.includes("python")) {
      const preparingEnvironment = preparing.then(() => factory.prepare("python", environment));
      if (options.prepareInBackground) preparingEnvironment.catch(() => {});
      else await preparingEnvironment;
    }
    return new Sandbox(factory, poolSize, maxConcurrency, maxSessions, isolation, languages, wheelhouse, packages, environment);
  }

  /** The Python packages every run gets (those named at create, with their versions; not their dependencies). */
  get packages(): { name: string; version: string }[] {
    const environment = this.environment;
    if (!environment) return [];
    return environment.packages.filter((p) => environment.requested.includes(p.name)).map((p) => ({ name: p.name, version: p.version }));
  }

  /** Which security layers are active, in one sentence. */
  get layers(): string {
    return this.factory.layers;
  }

  /** Whether executors run inside bubblewrap. */
  get osSandboxed(): boolean {
    return this.factory.bwrap !== null;
  }

  /**
   * Runs one program in a fresh interpreter. Resolves with a RunResult for every guest outcome
   * (errors, timeouts, limits, cancellation); rejects only for a bad request (INVALID_REQUEST,
   * INVALID_PATH, UNSUPPORTED_LANGUAGE) or a host failure (e.g. SANDBOX_CLOSED). A `ValidRun`
   * (validateRunRequest(), at an edge) is taken as it is, without a second check.
   */
  async run(request: RunRequest | ValidRun, options: RunOptions = {}): Promise<RunResult> {
    if (this.closed) throw new WasmboxError("SANDBOX_CLOSED", "the sandbox is closed");
    const run = request instanceof ValidRun ? request.run : normalizeRunRequest(request);
    refuseUnmeasurableCpuLimit(run);
    const tools = validateTools(options.tools);
    const { signal } = options;
    if (signal?.aborted) return cancelledResult();
    if (!(await this.slot(signal))) return cancelledResult();
    try {
      let executor;
      const environment = this.environmentFor(run.language, run.packages);
      const pool = this.pool(run.language, environment);
      try {
        // UNSUPPORTED_LANGUAGE (or a package that fails to import) before queueing for an executor
        await this.factory.prepare(run.language, environment);
        executor = await pool.acquire(signal, { lend: true });
      } catch (error) {
        if (error instanceof WasmboxError && error.code === "ABORTED") return cancelledResult();
        throw error;
      }
      try {
        return await executor.run(run, { signal, onOutput: outputListener(options), tools, reuse: pool.reusing });
      } finally {
        pool.release(executor);
      }
    } finally {
      this.release();
    }
  }

  /**
   * Opens a notebook-style session on an executor of its own. Rejects with TOO_MANY_SESSIONS past
   * `maxSessions`, SANDBOX_CLOSED after close().
   */
  async session(options: SessionOptions = {}): Promise<Session> {
    if (this.closed) throw new WasmboxError("SANDBOX_CLOSED", "the sandbox is closed");
    validateTools(options.tools);
    if (options.restore !== undefined) return this.restoreSession(options.restore, options);
    const language = options.language ?? "python";
    const environment = this.environmentFor(language, options.packages);
    const [session] = await this.openSessions(1, language, environment, options, null);
    return session!;
  }

  /**
   * Opens `count` sessions on executors of their own, each given `state` (saved by a session of the
   * same language and environment) when not null. Rejects with TOO_MANY_SESSIONS past
   * `maxSessions`, SANDBOX_CLOSED after close(); opens all or none.
   */
  private async openSessions(count: number, language: Language, environment: PackageEnvironment | null, options: SessionOptions, state: Uint8Array | null): Promise<Session[]> {
    if (this.closed) throw new WasmboxError("SANDBOX_CLOSED", "the sandbox is closed");
    // Sessions still starting hold their slot: otherwise a burst of opens passes the check
    // together and each starts an executor process (3000 opens, 3000 processes).
    if (this.sessions.size + this.sessionsStarting + count > this.maxSessions) {
      throw new WasmboxError("TOO_MANY_SESSIONS", `${this.sessions.size} of ${this.maxSessions} sessions are open; ${count === 1 ? "close one first" : `${count} more do not fit`}`);
    }
    this.sessionsStarting += count;
    try {
      await this.factory.prepare(language, environment);
      const pool = this.pool(language, environment);
      // Each executor gets its own copy, made before any of them is sent (a send may take the buffer).
      const states = state ? Array.from({ length: count }, (_, i) => (i === 0 ? state : state.slice())) : [];
      const started = await Promise.allSettled(
        Array.from({ length: count }, async (_, i) => {
          const executor = await pool.acquire(options.signal);
          try {
            if (state) await executor.restoreState(states[i]!);
            return executor;
          } catch (error) {
            executor.kill();
            throw error;
          }
        }),
      );
      const executors = started.flatMap((outcome) => (outcome.status === "fulfilled" ? [outcome.value] : []));
      const failed = started.find((outcome) => outcome.status === "rejected");
      if (failed || this.closed) {
        for (const executor of executors) executor.kill();
        throw failed ? (failed as PromiseRejectedResult).reason : new WasmboxError("SANDBOX_CLOSED", "the sandbox is closed");
      }
      // An id given (a server restoring one of its own) names one session only.
      const sessions = executors.map((executor) => new Session(executor, { ...options, language, id: count === 1 ? options.id : undefined }, (s) => this.sessions.delete(s), environment, this.sessionHost));
      for (const session of sessions) this.sessions.add(session);
      return sessions;
    } finally {
      this.sessionsStarting -= count;
    }
  }

  /** What a session asks of its sandbox to save and fork itself. */
  private readonly sessionHost: SessionHost = {
    identity: (language, environment) => this.factory.stateIdentity(language, environment),
    fork: (state, count, language, environment, options) => this.openSessions(count, language, environment, options, state),
  };

  /** Opens a session from a saved one (`session.save()`): checks the blob, then restores it in a fresh executor. */
  private async restoreSession(blob: Uint8Array, options: SessionOptions): Promise<Session> {
    const { header, payload } = readSessionBlobHeader(blob, options.maxStateBytes);
    const saved = header.session;
    if (options.language !== undefined && options.language !== saved.language) {
      throw new WasmboxError("INVALID_REQUEST", `the saved session runs ${saved.language}, not ${options.language}`);
    }
    if (options.packages !== undefined && [...options.packages].sort().join(",") !== [...saved.packages].sort().join(",")) {
      throw new WasmboxError("INVALID_REQUEST", `the saved session was opened with packages [${saved.packages.join(", ")}]; leave packages out to restore it with them`);
    }
    const missing = saved.tools.filter((name) => !(options.tools && Object.hasOwn(options.tools, name)) && !options.toolNames?.includes(name));
    if (missing.length > 0) {
      throw new WasmboxError("INVALID_REQUEST", `the saved session was opened with the host functions ${missing.join(", ")}: pass them in tools to restore it (host functions are bound again by name)`);
    }
    const environment = this.environmentFor(saved.language, saved.packages);
    const identity = await this.factory.stateIdentity(saved.language, environment);
    if (!identity) throw new WasmboxError("NOT_IMPLEMENTED", `${saved.language} sessions cannot be saved or restored (Python only)`);
    checkBlobRuntime(header, identity);
    const state = await inflateSessionState(header, payload);
    const [session] = await this.openSessions(1, saved.language, environment, { ...options, language: saved.language }, state);
    return session!;
  }

  /** Sessions currently open. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** A snapshot of the sandbox's load, for metrics: runs executing and waiting, executors, sessions. */
  get stats(): SandboxStats {
    let warm = 0;
    let starting = 0;
    for (const pool of this.pools.values()) {
      warm += pool.warmCount;
      starting += pool.startingCount;
    }
    return {
      running: this.active,
      queued: this.queue.length,
      maxConcurrency: this.maxConcurrency,
      poolSize: this.poolSize,
      warm,
      starting,
      sessions: this.sessions.size,
      isolation: this.isolation,
      executorsStarted: this.factory.startedCount,
    };
  }

  private slot(signal?: AbortSignal): Promise<boolean> {
    if (this.active < this.maxConcurrency) {
      this.active++;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        this.active++;
        resolve(true);
      };
      const onAbort = () => {
        const index = this.queue.indexOf(grant);
        if (index >= 0) this.queue.splice(index, 1);
        resolve(false);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(grant);
    });
  }

  private release(): void {
    this.active--;
    const next = this.queue.shift();
    if (next) next();
    else if (this.active === 0) this.idle?.();
  }

  /** Waits for runs in flight, then stops every executor. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.active > 0 || this.queue.length > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    } finally {
      await Promise.all([...this.sessions].map((s) => s.close("the sandbox closed")));
      for (const pool of this.pools.values()) pool.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Runs one program in a fresh sandbox and closes it: the simplest call, and the slowest. */
export async function run(request: RunRequest, options: RunOptions & SandboxOptions = {}): Promise<RunResult> {
  const sandbox = await Sandbox.create({ ...options, poolSize: 0, languages: [request.language ?? "python"] });
  try {
    return await sandbox.run(request, options);
  } finally {
    await sandbox.close();
  }
}
