import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, constants as fsConstants, createWriteStream, openSync, type WriteStream } from "node:fs";
import { PassThrough } from "node:stream";
import { WasmboxError } from "../core/errors.js";
import { DEFAULT_MEMORY_LIMIT_BYTES, INTERRUPT_GRACE_MS } from "../core/limits.js";
import type { NormalizedRun } from "../core/request.js";
import type { RunResult, RunStatus } from "../core/result.js";
import type { ExecutorFrame, ExecutorOutcome, RunMessage } from "../executor/protocol.js";
import { ChannelFault, ExecutorChannel, IDLE_MAX_BLOB_BYTES, IDLE_MAX_HEADER_BYTES } from "./executor-channel.js";
import { answerHostCall, type HostFunction } from "./host-calls.js";
import { assembleResult, judgeOutcome, validateOutcome, type RunRecord } from "./run-outcome.js";
import type { ExecutorLaunch } from "./executor-launch.js";
import { removeOwnedTempDir } from "./host-temp.js";
import { ExecutorMeter } from "./executor-meter.js";

/** How often the watchdog reads an executor's resident memory while it runs guest code. */
const MEMORY_POLL_MS = 20;
/**
 * How often the watchdog reads a run's CPU time when the run has a CPU-time limit (cpuTimeMs): a
 * read of /proc/<pid>/stat per process of the executor (a few microseconds each). The kernel counts
 * in 10 ms ticks, so a run is stopped at most ~30 ms of CPU past its limit (then comes the soft
 * interrupt's grace, as for the wall clock).
 */
const CPU_POLL_MS = 20;
/** How often it measures a private storage that is a host directory (a walk, dearer than a statfs). */
const STORAGE_DIR_POLL_MS = 100;
/**
 * How often a paused executor (a session between calls, a reused executor between runs) is checked:
 * still stopped, and within its memory and storage.
 */
const IDLE_POLL_MS = 500;
/**
 * CPU time a paused executor may still show, in clock ticks (10 ms): a stopped process uses none,
 * so more means it runs again (continued by someone else) and it is killed.
 */
const IDLE_CPU_BUDGET_TICKS = 20;
/** Resident memory an executor may use beyond its idle baseline and the guest's limit (JS glue, buffers). */
const MEMORY_SLACK_BYTES = 64 * 1024 * 1024;
const STDERR_KEEP_BYTES = 16 * 1024;
/**
 * How long an executor may take to receive a run and hand it to its runtime before the guest's
 * clock starts: a base, plus time for the input at a rate any working pipe beats by far. Past it
 * the run ends as a crash that says so, never as the guest's timeout.
 */
const DELIVERY_BASE_MS = 5_000;
const DELIVERY_MIN_BYTES_PER_MS = 10 * 1024; // 10 MB/s
/** How long a reused executor may take to restore its warm state after a run. */
const RESET_TIMEOUT_MS = 5_000;
/**
 * Resident memory a reused executor may keep beyond its idle baseline after a reset; past it the
 * executor is discarded (JS heap a run left behind, grown wasm memory that was zeroed).
 */
const REUSE_RESIDENT_SLACK_BYTES = 48 * 1024 * 1024;
/**
 * A reused executor is retired after this many runs, so what a long life leaves outside the
 * restored state (JS heap fragmentation, V8's compiled-code caches) stays bounded.
 */
const MAX_RUNS_PER_EXECUTOR = 500;
/** Isolate mode: how long a run's ended worker (and any it started) may take to be gone. */
const ENDED_WORKER_GRACE_MS = 500;
/** Isolate mode: what loading the next run's worker may add to Deno's private caches (see withinReuseBudget). */
const ISOLATE_STORAGE_ALLOWANCE_BYTES = 2 * 1024 * 1024;
/** A reused executor is also retired once it has lived this long. */
const MAX_EXECUTOR_AGE_MS = 10 * 60_000;

export interface ExecutorStartOptions {
  /** Keep the runtime's warm state so runs with `reuse` are followed by a reset to it ("interpreter"). */
  keepPristine?: boolean;
  /** Runs with `reuse` each get a fresh worker that no run has touched ("isolate"). */
  isolate?: boolean;
  /** Run the runtime's warm-up before `ready`. */
  warmUp?: boolean;
}

export type OutputListener = (fd: 1 | 2, chunk: Uint8Array) => void;

export type { HostFunction } from "./host-calls.js";

export interface ExecutorRunOptions {
  signal?: AbortSignal;
  onOutput?: OutputListener;
  /** Host functions the guest may call during this run. */
  tools?: Readonly<Record<string, HostFunction>>;
  /** Keep the executor and its interpreter state after the run (a session). */
  keepAlive?: boolean;
  /**
   * After a clean end (ok or error), have the executor restore its warm state instead of being
   * killed; see whenReusable(). Needs an executor started with `keepPristine`.
   */
  reuse?: boolean;
}

export type FileEntry = { path: string; size: number };

type EndReason = "timeout" | "memory_limit" | "output_limit" | "cancelled" | "crash";

interface ActiveRun extends RunRecord {
  outputBytes: number;
  reason: EndReason | null;
  timers: NodeJS.Timeout[];
  resolve: (result: RunResult) => void;
  onOutput?: OutputListener;
  tools: Readonly<Record<string, HostFunction>>;
  keepAlive: boolean;
  reuse: boolean;
  /** A guest blocks on each host call, so an honest run has at most one in flight. */
  callInFlight: boolean;
  /** The executor said it has the whole run (the guest's clock runs from then). */
  started?: boolean;
  /** The executor's CPU time when the run started (`started`), in ms: the run's CPU is counted from it. */
  cpuAtStartMs: number | null;
  /**
   * Isolate mode: the next run's worker, loading beside this run (trusted code, no guest's), and
   * its CPU time at the start and as last read: left out of the run's CPU.
   */
  spare: { thread: { pid: number; tid: number }; atStartMs: number; lastMs: number } | null;
  /** Ends the run as a crash if the executor does not take it in time. */
  delivery?: NodeJS.Timeout;
  removeAbort?: () => void;
}

/** How long a session's file operation may take before its executor is killed. */
const FILE_OP_DEADLINE_MS = 30_000;
/** Saving or restoring a session's state: this long, plus a millisecond per STATE_OP_BYTES_PER_MS bytes involved. */
const STATE_OP_BASE_MS = 10_000;
const STATE_OP_BYTES_PER_MS = 20_000; // 20 MB/s


type FilesRequest =
  | { op: "read"; path: string }
  | { op: "write"; path: string; data: Uint8Array }
  | { op: "list" }
  | { op: "save" }
  | { op: "restore"; data: Uint8Array };

/** The error of a refused save or restore: the executor's reason ("STATE <words>"), or that it exited. */
function stateError(code: "SESSION_NOT_SAVEABLE" | "INVALID_SESSION_BLOB", what: string, reason: string | undefined, exitReason: string | null): WasmboxError {
  if (reason?.startsWith("STATE ")) return new WasmboxError(code, `${what}: ${reason.slice(6)}`);
  if (reason === "EXECUTOR_EXITED") return new WasmboxError(code === "SESSION_NOT_SAVEABLE" ? "SESSION_DEAD" : code, `${what}: ${exitReason ?? "its executor exited"}`);
  return new WasmboxError(code, `${what}: ${reason ?? "no reason given"}`);
}

type FsReply = { ok: boolean; entries?: FileEntry[]; data?: Uint8Array; error?: string };

/**
 * One executor process. It is started and becomes ready (Pyodide loaded). A one-shot run is its
 * only run: it is killed after it, so a run always gets an interpreter that never saw another.
 * A session's executor (`keepAlive`) takes runs one after another and keeps its state. A reused
 * executor (`reuse`, "interpreter" isolation) restores its warm state after each clean run and
 * reports ready again.
 */
export class ExecutorProcess {
  readonly pid: number;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly key: Buffer;
  private readonly cleanupDir: string | null;
  private readonly channelPath: string;
  private readonly channelDir: string;
  /** Frames to the executor: queued here until its end of the channel (a FIFO) is open. */
  private readonly input = new PassThrough();
  private channelStream: WriteStream | null = null;
  /** Memory, storage, threads and CPU of the executor, read from outside it; the signals that stop it. */
  private readonly meter: ExecutorMeter;
  /** SIGSTOPped between calls or runs: no guest code runs until resume(). */
  private paused: { timer: NodeJS.Timeout; cpuTicks: number | null; limitBytes: number } | null = null;
  /** Why the host killed this executor, when it did so for a reason (a limit between calls, …). */
  private killReason: string | null = null;
  /** The memory limit of the last run, which also bounds the executor between runs. */
  private lastMemoryLimitBytes = 0;
  /** Frames from the executor. Limits between runs are small; a run raises them to what its result may carry. */
  private readonly channel: ExecutorChannel;
  private stderrTail = "";
  private active: ActiveRun | null = null;
  private nextRid = 0;
  private readonly fsWaiters = new Map<number, (reply: FsReply) => void>();
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readyWaiter: { resolve: () => void; reject: (error: Error) => void } | null = null;
  private snapshotWaiter: { resolve: () => void; reject: (error: Error) => void } | null = null;
  /** Set between a reused run's result and the executor's next `ready` (true) or its end (false). */
  private resetting: Promise<boolean> | null = null;
  /** Runs this executor has taken. */
  private runsServed = 0;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;

  /** Isolation "isolate": each reused run gets a fresh worker inside this process. */
  private readonly isolate: boolean;
  /** When the process started (performance.now()), for retiring long-lived reused executors. */
  private readonly startedAt = performance.now();

  private constructor(launch: ExecutorLaunch, init: ExecutorStartOptions) {
    this.isolate = init.isolate === true;
    this.key = randomBytes(32);
    this.channel = new ExecutorChannel(this.key);
    this.cleanupDir = launch.cleanupDir;
    this.channelPath = launch.channel;
    this.channelDir = launch.channelDir;

    // detached: the executor leads its own process group, so a kill reaches everything it started.
    // The cwd is neutral (the executor's own empty temp dir, or /tmp inside bwrap's view) so
    // Deno.cwd() tells the guest nothing about the host. Extra fds carry files bwrap copies in.
    try {
      this.child = spawn(launch.command, launch.args, {
        cwd: launch.cleanupDir ?? "/",
        env: launch.env,
        // stdin is never written: frames come through the channel (ExecutorLaunch.channel). Held
        // open for as long as this host lives, its end tells the executor the host is gone, also
        // while it still waits for the channel's writer (a host killed during the start).
        stdio: ["pipe", "pipe", "pipe", ...launch.passFds],
        detached: true,
      }) as ChildProcessWithoutNullStreams;
    } finally {
      for (const fd of launch.passFds) closeSync(fd);
    }
    this.pid = this.child.pid ?? -1;
    this.meter = new ExecutorMeter(this.pid, launch.storage);
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        this.onExit();
        resolve();
      });
    });
    this.child.once("error", (error) => {
      this.readyWaiter?.reject(new WasmboxError("EXECUTOR_START_FAILED", `cannot start executor: ${error.message}`, { cause: error }));
    });
    this.child.stdout.on("data", (chunk: Buffer) => this.onStdout(chunk));
    this.child.stderr.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-STDERR_KEEP_BYTES);
    });
    this.child.stdin.on("error", () => {});
    this.openChannel();
    this.send({ t: "init", key: this.key.toString("hex"), keepPristine: init.keepPristine === true, isolate: this.isolate, warmUp: init.warmUp !== false });
  }

  /** Spawns an executor and waits until its runtime is loaded and it can take a run. */
  static async start(
    launch: ExecutorLaunch,
    options: ExecutorStartOptions & { startTimeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<ExecutorProcess> {
    const executor = new ExecutorProcess(launch, options);
    await executor.waitFor("ready", options.startTimeoutMs ?? 60_000, options.signal);
    executor.meter.calibrate();
    return executor;
  }

  /** Spawns an executor in snapshot mode and waits until it has written the snapshot. */
  static async makeSnapshot(launch: ExecutorLaunch, timeoutMs = 120_000): Promise<void> {
    const executor = new ExecutorProcess(launch, {});
    try {
      await executor.waitFor("snapshot", timeoutMs);
    } finally {
      executor.kill();
      await executor.exited;
    }
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  private waitFor(what: "ready" | "snapshot", timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new WasmboxError("EXECUTOR_START_FAILED", `executor not ${what} after ${timeoutMs} ms`)), timeoutMs);
      const onAbort = () => fail(new WasmboxError("ABORTED", "aborted while starting an executor"));
      signal?.addEventListener("abort", onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const fail = (error: Error) => {
        done();
        this.kill();
        reject(error);
      };
      const waiter = { resolve: () => (done(), resolve()), reject: fail };
      if (what === "ready") this.readyWaiter = waiter;
      else this.snapshotWaiter = waiter;
    });
  }

  /**
   * Stops every process of the executor (SIGSTOP) while it holds state between calls or runs, so
   * no guest code (a timer, a nested Worker) runs while nobody is watching the clock. Checked every
   * IDLE_POLL_MS: still stopped, within the last run's memory limit and the storage budget; killed
   * otherwise, with the reason kept for the next caller.
   */
  private pause(): void {
    if (!this.alive || this.paused) return;
    this.meter.signalAll("SIGSTOP");
    const limitBytes = this.meter.baselineBytes + this.lastMemoryLimitBytes + MEMORY_SLACK_BYTES;
    const timer = setInterval(() => this.checkPaused(), IDLE_POLL_MS);
    timer.unref();
    this.paused = { timer, cpuTicks: null, limitBytes };
    // What ran between the result and the stop is judged right after the caller has its result
    // (not before: the check reads /proc, and a stopped process changes nothing meanwhile).
    setImmediate(() => this.checkPaused());
  }

  private checkPaused(): void {
    const paused = this.paused;
    if (!paused || !this.alive) return;
    const over = this.meter.overLimit(paused.limitBytes, true);
    if (over) return this.killFor(`between calls ${over} (limit ${this.lastMemoryLimitBytes} bytes)`);
    if (!this.meter.measurable) return;
    // Threads finish stopping asynchronously: measure CPU from the first check that sees them stopped.
    const running = this.meter.runningPids();
    if (running.length > 0 && paused.cpuTicks === null) return this.meter.signalAll("SIGSTOP");
    const ticks = this.meter.cpuTicks();
    if (ticks === null) return;
    if (paused.cpuTicks === null) paused.cpuTicks = ticks;
    else if (ticks - paused.cpuTicks > IDLE_CPU_BUDGET_TICKS || running.length > 0) {
      this.killFor("it kept running while it should have been stopped between calls");
    }
  }

  /** Lets a paused executor run again (before a run or a file operation). */
  private resume(): void {
    const paused = this.paused;
    if (!paused) return;
    this.paused = null;
    clearInterval(paused.timer);
    this.meter.signalAll("SIGCONT");
  }

  /** Kills the executor and remembers why, for whoever asks next (a session's next call). */
  private killFor(reason: string): void {
    this.killReason ??= reason;
    this.kill();
  }

  /** Why the executor is gone: the reason the host killed it, or how it exited; null while alive. */
  get exitReason(): string | null {
    if (this.killReason) return this.killReason;
    if (!this.exitInfo) return null;
    return `its executor exited (${this.exitInfo.signal ?? `code ${this.exitInfo.code}`})`;
  }

  /**
   * After a run with `reuse`: resolves true once the executor has restored its warm state and can
   * take another run; false if it was (or is now) discarded instead: the run did not end ok or
   * error, the executor could not restore its state, it keeps too much memory, or it has served
   * MAX_RUNS_PER_EXECUTOR runs.
   */
  whenReusable(): Promise<boolean> {
    const resetting = this.resetting ?? Promise.resolve(false);
    this.resetting = null;
    return resetting;
  }

  /**
   * Isolate mode, after a run: the run's worker must be gone before another run may use this
   * process. The main isolate terminates it, but Deno cannot stop a worker that spins in
   * JavaScript (denoland/deno#35657: terminate() returns and the thread runs on), and a nested
   * worker the guest started is not ended with its parent. So the host counts the process's worker
   * threads, which the guest cannot hide: one (the next run's) is expected. A leftover that has not
   * ended within the grace means the executor is discarded.
   */
  private async endedWorkersGone(): Promise<boolean> {
    if (!this.meter.measurable) return true;
    const deadline = performance.now() + ENDED_WORKER_GRACE_MS;
    for (;;) {
      const count = this.meter.workerThreads();
      if (count === null || count <= 1) return this.alive;
      if (performance.now() > deadline || !this.alive) {
        this.killFor(`a run left ${count - 1} worker thread(s) running after its end`);
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /**
   * Isolation "isolate": resident memory that is not the running guest's. The next run's worker
   * loads while a run executes (a V8 isolate, the runtime's JavaScript and wasm memory), and the
   * worker before it may still be giving its memory back (V8 disposes an ended isolate lazily). A
   * ready executor holds the process and one loaded worker, so its baseline bounds each of the two,
   * whatever the language (a C compiler's worker is several times Python's). A run's memory limit
   * is checked against the baseline plus this.
   */
  private isolateOverheadBytes(): number {
    return 2 * this.meter.baselineBytes;
  }

  private withinReuseBudget(): boolean {
    const resident = this.meter.measurable ? this.meter.residentBytes() : null;
    const tooOld = this.runsServed >= MAX_RUNS_PER_EXECUTOR || performance.now() - this.startedAt > MAX_EXECUTOR_AGE_MS;
    // An isolate-mode executor frees each ended worker's isolate lazily: its slack is two workers.
    const slackBytes = this.isolate ? this.isolateOverheadBytes() : REUSE_RESIDENT_SLACK_BYTES;
    if (tooOld || (resident !== null && resident > this.meter.baselineBytes + slackBytes)) {
      this.kill();
      return false;
    }
    // Deno's own storage (its module and code caches; the Web Cache API is refused outright) is
    // outside what the worker restores: a run that wrote there would leave it for the next run, so
    // its executor is not reused. In isolate mode the next run's worker writes there itself while
    // it loads (for every runtime but Python, whose executors start from a primed cache; measured
    // ≤0.5 MiB, once per process), so a small allowance is tolerated: entries a guest could add
    // within it are never readable by a later guest (no read permission) and change nothing it
    // runs, and the allowance keeps a guest from filling the budget a later run's loads need.
    if (this.meter.storageGrowthBytes() > (this.isolate ? ISOLATE_STORAGE_ALLOWANCE_BYTES : 0)) {
      this.kill();
      return false;
    }
    return this.alive;
  }

  /**
   * A reused executor that goes back to a pool to wait: stopped until its next run (see pause()).
   * One handed straight to a waiting run is not stopped: its next run starts in the same tick.
   */
  park(): void {
    if (this.runsServed > 0 && !this.active) this.pause();
  }

  /** Whether a run is in progress. */
  get busy(): boolean {
    return this.active !== null;
  }

  /** Runs one program. Resolves with a result for every outcome; never rejects for guest behaviour. */
  run(run: NormalizedRun, options: ExecutorRunOptions = {}): Promise<RunResult> {
    if (this.active) return Promise.reject(new TypeError("an executor runs one program at a time"));
    return new Promise<RunResult>((resolve) => {
      const active: ActiveRun = {
        run,
        startedAt: performance.now(),
        chunks: [],
        outputBytes: 0,
        reason: null,
        crashMessage: null,
        interrupted: false,
        timers: [],
        resolve,
        onOutput: options.onOutput,
        tools: options.tools ?? {},
        keepAlive: options.keepAlive === true,
        reuse: options.reuse === true,
        callInFlight: false,
        cpuAtStartMs: null,
        spare: null,
        cpuTimeMs: null,
        timeLimit: null,
      };
      this.runsServed++;
      this.active = active;
      this.lastMemoryLimitBytes = run.memoryLimitBytes;
      this.resume();
      // A result carries at most the output caps in files as blobs; its header holds the value (at
      // most maxOutputBytes as JSON), the repr, the error and the traceback.
      this.channel.setLimits({
        maxHeaderBytes: Math.max(IDLE_MAX_HEADER_BYTES, 2 * run.maxOutputBytes + 8 * 1024 * 1024),
        maxBlobBytes: Math.max(IDLE_MAX_BLOB_BYTES, run.maxOutputFilesTotalBytes + run.maxOutputBytes + 1024 * 1024),
      });
      if (!this.alive) return this.end("crash", "executor exited before the run started");

      const { signal } = options;
      if (signal) {
        if (signal.aborted) return this.end("cancelled");
        const onAbort = () => this.end("cancelled");
        signal.addEventListener("abort", onAbort, { once: true });
        active.removeAbort = () => signal.removeEventListener("abort", onAbort);
      }
      // The guest's clock starts when the executor says it has the whole run (`started`): sending
      // a large input, or an executor that is stuck, is not the guest's time. Until then a delivery
      // deadline applies, and missing it is a crash that says so.
      const deliveryMs = DELIVERY_BASE_MS + Math.ceil(run.inputBytes / DELIVERY_MIN_BYTES_PER_MS);
      active.delivery = setTimeout(
        () => this.end("crash", `the executor did not take the run within ${deliveryMs} ms (stuck or overloaded); no guest code ran`),
        deliveryMs,
      );
      active.timers.push(active.delivery);
      if (this.meter.watchable) {
        // The executor holds the run's input (stdin, files) besides the guest's own memory.
        const spareBytes = this.isolate && options.reuse === true ? this.isolateOverheadBytes() : 0;
        const limitBytes = this.meter.baselineBytes + run.memoryLimitBytes + MEMORY_SLACK_BYTES + 2 * run.inputBytes + spareBytes;
        // A statfs is cheap enough for every poll; a directory walk is done every few.
        const storageEvery = this.meter.storage?.kind === "dir" ? Math.ceil(STORAGE_DIR_POLL_MS / MEMORY_POLL_MS) : 1;
        let tick = 0;
        const poll = setInterval(() => {
          const over = this.meter.overLimit(limitBytes, ++tick % storageEvery === 0);
          if (over) this.end("memory_limit", undefined, over);
        }, MEMORY_POLL_MS);
        active.timers.push(poll as unknown as NodeJS.Timeout);
      }
      const message: RunMessage = {
        t: "run",
        code: run.code,
        filename: run.filename,
        files: [...run.files],
        stdin: run.stdin,
        argv: run.argv,
        env: run.env,
        memoryLimitBytes: run.memoryLimitBytes,
        maxOutputBytes: run.maxOutputBytes,
        maxOutputFileBytes: run.maxOutputFileBytes,
        maxOutputFilesTotalBytes: run.maxOutputFilesTotalBytes,
        keepState: active.keepAlive,
        tools: Object.keys(active.tools),
        reset: active.reuse,
      };
      this.send(message);
    });
  }

  /**
   * The session's interpreter state as bytes (guest-controlled: treat them as untrusted). Rejects
   * with SESSION_NOT_SAVEABLE naming what cannot be saved.
   */
  async saveState(): Promise<Uint8Array> {
    const reply = await this.files({ op: "save" });
    if (reply.ok && reply.data) return reply.data;
    throw stateError("SESSION_NOT_SAVEABLE", "cannot save the session", reply.error, this.exitReason);
  }

  /**
   * Puts saved state into this fresh executor, then stops it until its first call, as a session
   * between calls. Rejects with INVALID_SESSION_BLOB when the executor refuses the state.
   */
  async restoreState(state: Uint8Array): Promise<void> {
    const reply = await this.files({ op: "restore", data: state });
    if (!reply.ok) {
      this.kill();
      throw stateError("INVALID_SESSION_BLOB", "cannot restore the saved session", reply.error, this.exitReason);
    }
    // Between calls the watchdog holds a restored session to at least what it restored (its memory
    // pages and files, with room for the state's copy the executor may still hold).
    this.lastMemoryLimitBytes = Math.max(this.lastMemoryLimitBytes, DEFAULT_MEMORY_LIMIT_BYTES, 2 * state.length);
    if (!this.active) this.pause();
  }

  /**
   * How long a session operation may take before the executor is killed: file operations a fixed
   * time; saving or restoring a state time for the bytes involved (what the executor holds, or is
   * sent), at a rate far below what a loaded machine does (~200 MB/s measured for a save).
   */
  private fileOpDeadlineMs(request: FilesRequest): number {
    if (request.op === "save") return STATE_OP_BASE_MS + Math.ceil((this.meter.residentBytes() ?? 4 * 1024 ** 3) / STATE_OP_BYTES_PER_MS);
    if (request.op === "restore") return STATE_OP_BASE_MS + Math.ceil((2 * request.data.length) / STATE_OP_BYTES_PER_MS);
    return FILE_OP_DEADLINE_MS;
  }

  /** Reads, writes or lists files of an idle (session) executor without running code. */
  async files(request: FilesRequest): Promise<FsReply> {
    if (!this.alive) throw new WasmboxError("EXECUTOR_START_FAILED", "the executor has exited");
    const rid = this.nextRid++;
    const reply = new Promise<FsReply>((resolve) => this.fsWaiters.set(rid, resolve));
    const wasPaused = this.paused !== null;
    this.resume();
    this.send({ t: "fs", rid, ...request });
    // The worker answers these, and guest code shares its realm: one that never answers (a patched
    // handler spinning) is killed at a deadline rather than left running unwatched.
    const deadlineMs = this.fileOpDeadlineMs(request);
    const deadline = setTimeout(() => this.killFor(`it did not answer a session ${request.op} within ${deadlineMs} ms`), deadlineMs);
    try {
      return await reply;
    } finally {
      clearTimeout(deadline);
      if (wasPaused && !this.active) this.pause();
    }
  }

  /**
   * Opens the host's end of the frame channel and streams the queued frames into it. Opening a FIFO
   * for writing waits (on a libuv or Deno worker thread) until the executor opens its end; if the
   * executor exits first, onExit() opens the reading end itself so that wait ends (closeChannel).
   * A plain file stream, because neither runtime's sockets take a FIFO descriptor everywhere (Deno's
   * node:net has no `fd` option).
   */
  private openChannel(): void {
    this.channelStream = createWriteStream(this.channelPath);
    // A broken pipe (executor gone) must never crash the host.
    this.channelStream.on("error", () => {});
    this.input.pipe(this.channelStream);
  }

  /** Ends the host's side of the channel, unblocking an open that still waits for a reader. */
  private closeChannel(): void {
    const stream = this.channelStream;
    if (!stream) return;
    this.channelStream = null;
    if (stream.pending) {
      try {
        closeSync(openSync(this.channelPath, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK));
      } catch {
        // gone already
      }
    }
    stream.destroy();
    this.input.destroy();
  }

  /** Writes one frame to the executor; bytes in the message go as blobs, without a copy. */
  private send(message: object): void {
    if (!this.alive || this.input.writableEnded) return;
    for (const part of this.channel.encode(message)) this.input.write(part);
  }

  /** Closes the frame channel (the executor exits on its own) and waits; kills it after `timeoutMs`. */
  async shutdown(timeoutMs = 5_000): Promise<void> {
    this.resume();
    this.input.end();
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Kills the executor's whole process group. Idempotent. */
  kill(): void {
    if (this.exitInfo) return;
    if (this.paused) clearInterval(this.paused.timer);
    this.paused = null;
    for (const pid of this.meter.pids.slice(1)) {
      try {
        process.kill(pid, "SIGKILL"); // bwrap's inner processes lead a session of their own
      } catch {
        // gone
      }
    }
    try {
      process.kill(-this.pid, "SIGKILL");
    } catch {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  }

  private onStdout(chunk: Buffer): void {
    if (!this.alive && this.exitInfo) return;
    let frames: ExecutorFrame[];
    try {
      frames = this.channel.push(chunk);
    } catch (error) {
      if (!(error instanceof ChannelFault)) throw error;
      this.fault(error.message);
      return;
    }
    for (const frame of frames) if (!this.onFrame(frame)) return;
  }

  /** Dispatches one verified frame. Returns false once the executor has been given up on. */
  private onFrame(frame: ExecutorFrame): boolean {
    switch (frame.t) {
      case "ready":
        this.readyWaiter?.resolve();
        this.readyWaiter = null;
        return true;
      case "snapshot-done":
        this.snapshotWaiter?.resolve();
        this.snapshotWaiter = null;
        return true;
      case "started":
        this.onStarted();
        return true;
      case "out":
        if ((frame.fd !== 1 && frame.fd !== 2) || !(frame.data instanceof Uint8Array)) return this.fault("executor sent a malformed output frame");
        return this.onOutput(frame.fd, frame.data);
      case "result":
        this.onResult(frame.outcome);
        return this.alive;
      case "call":
        this.onCall(frame.callId, frame.name, frame.args);
        return true;
      case "fs-reply": {
        const waiter = this.fsWaiters.get(frame.rid);
        this.fsWaiters.delete(frame.rid);
        waiter?.({ ok: frame.ok === true, entries: frame.entries, data: frame.data instanceof Uint8Array ? frame.data : undefined, error: frame.error });
        return true;
      }
      case "retire":
        // The executor could not restore its warm state after a reused run: discard it.
        this.readyWaiter?.reject(new WasmboxError("EXECUTOR_START_FAILED", `executor retired: ${frame.reason}`));
        this.readyWaiter = null;
        this.kill();
        return false;
      case "fatal":
        return this.fault(`executor failed: ${frame.message}`);
      default:
        return this.fault("executor sent an unknown frame");
    }
  }

  /**
   * The executor has the whole run: arm the guest's timeout (soft interrupt, then kill after a
   * grace) and, with a CPU-time limit, the poll of its CPU time. The run's CPU is counted from here:
   * what the executor used before (its start, earlier runs or calls) is not the run's.
   */
  private onStarted(): void {
    const active = this.active;
    if (!active || active.reason || active.started) return;
    active.started = true;
    if (active.delivery) clearTimeout(active.delivery);
    active.cpuAtStartMs = this.meter.cpuTimeMs();
    if (this.isolate && active.reuse) {
      const thread = this.meter.spareWorkerThread();
      const atStartMs = thread && this.meter.threadCpuTimeMs(thread);
      if (thread && atStartMs !== null) active.spare = { thread, atStartMs, lastMs: atStartMs };
    }
    active.timers.push(setTimeout(() => this.stopForTime(active, "wall"), active.run.timeoutMs));
    const limitMs = active.run.cpuTimeMs;
    if (limitMs === null) return;
    // The facade refuses cpuTimeMs where /proc cannot be read (Sandbox.run); an executor whose
    // tree cannot be read here must not run without the limit it was asked for.
    if (active.cpuAtStartMs === null) return this.end("crash", "cpuTimeMs: the host cannot read this executor's CPU time (/proc)");
    const poll = setInterval(() => {
      const used = this.readRunCpu(active);
      if (used !== null && used > limitMs) this.stopForTime(active, "cpu");
    }, CPU_POLL_MS);
    active.timers.push(poll as unknown as NodeJS.Timeout);
  }

  /** The run's CPU time so far in ms (kept on the run for its result), or null when unreadable. */
  private readRunCpu(active: ActiveRun): number | null {
    if (active.cpuAtStartMs === null || !this.alive) return active.cpuTimeMs;
    const now = this.meter.cpuTimeMs();
    const spare = active.spare;
    if (spare) spare.lastMs = this.meter.threadCpuTimeMs(spare.thread) ?? spare.lastMs;
    const spareMs = spare ? spare.lastMs - spare.atStartMs : 0;
    if (now !== null) active.cpuTimeMs = Math.max(0, now - active.cpuAtStartMs - spareMs);
    return active.cpuTimeMs;
  }

  /**
   * A time limit passed (the wall clock or the CPU time): the soft interrupt (a KeyboardInterrupt
   * the guest may catch to clean up), then the kill after INTERRUPT_GRACE_MS. The first limit to
   * pass decides what the result's error names; the run ends as "timeout" either way.
   */
  private stopForTime(active: ActiveRun, limit: "wall" | "cpu"): void {
    if (active.interrupted || active.reason || this.active !== active) return;
    active.interrupted = true;
    active.timeLimit = limit;
    if (limit === "cpu") active.cpuAtLimitMs = active.cpuTimeMs;
    this.send({ t: "interrupt" });
    active.timers.push(setTimeout(() => this.end("timeout"), INTERRUPT_GRACE_MS));
  }

  private onOutput(fd: 1 | 2, bytes: Uint8Array): boolean {
    const active = this.active;
    if (!active || active.reason) return true;
    const room = active.run.maxOutputBytes - active.outputBytes;
    const kept = bytes.length > room ? bytes.subarray(0, room) : bytes;
    if (kept.length > 0) {
      active.chunks.push({ fd, bytes: kept });
      active.outputBytes += kept.length;
      active.onOutput?.(fd, kept);
    }
    if (bytes.length > room) {
      this.end("output_limit");
      return false;
    }
    return true;
  }

  /**
   * A guest called a host function (host-calls.ts answers it). The reply goes back even if the
   * function throws; a reply that arrives after the run ended is dropped.
   */
  private onCall(callId: unknown, name: unknown, rawArgs: unknown): void {
    const active = this.active;
    if (!active || active.reason || !Number.isInteger(callId)) return;
    if (active.callInFlight) {
      // Only guest JavaScript posting calls directly can get here: refuse rather than run host code in parallel.
      this.send({ t: "call-result", callId, reply: JSON.stringify({ ok: false, error: "another host function call is in progress" }) });
      return;
    }
    active.callInFlight = true;
    void answerHostCall(active.tools, name, rawArgs).then((reply) => {
      active.callInFlight = false;
      if (this.active === active && !active.reason) this.send({ t: "call-result", callId, reply });
    });
  }

  private onResult(raw: unknown): void {
    const active = this.active;
    if (!active || active.reason) return;
    this.readRunCpu(active);
    const outcome = validateOutcome(raw, active.run);
    if (!outcome) return void this.end("crash", "executor sent a malformed result");
    this.finish(judgeOutcome(outcome, active), outcome);
  }

  /** Gives up on the executor: kills it and ends any run as "crash". */
  private fault(message: string): false {
    if (this.active) this.end("crash", message);
    else {
      this.readyWaiter?.reject(new WasmboxError("EXECUTOR_START_FAILED", `${message}${this.stderrSuffix()}`));
      this.snapshotWaiter?.reject(new WasmboxError("SNAPSHOT_FAILED", `${message}${this.stderrSuffix()}`));
      this.kill();
    }
    return false;
  }

  private stderrSuffix(): string {
    const tail = this.stderrTail.trim().split("\n").slice(-5).join("\n");
    return tail ? `\n${tail}` : "";
  }

  /**
   * Ends the active run for a host-side reason (limits, cancel, crash): the executor is killed.
   * `detail` says what crossed the limit, for the error message.
   */
  private end(reason: EndReason, crashMessage?: string, detail?: string): void {
    const active = this.active;
    if (!active || active.reason) return;
    this.readRunCpu(active); // before the kill: what the run used until it was stopped
    active.reason = reason;
    active.crashMessage = crashMessage ?? null;
    active.limitDetail = detail ?? null;
    this.killReason ??= `a call ended with status "${reason}"${detail ? `: ${detail}` : crashMessage ? `: ${crashMessage}` : ""}`;
    this.kill();
    // Wait for the exit so what the executor printed last (e.g. V8's out-of-memory note) is known.
    void this.exited.then(() => this.finish(reason, null));
  }

  private onExit(): void {
    if (this.paused) clearInterval(this.paused.timer);
    this.paused = null;
    if (this.cleanupDir) removeOwnedTempDir(this.cleanupDir);
    this.closeChannel();
    removeOwnedTempDir(this.channelDir);
    const why = `executor exited (${this.exitInfo?.signal ?? `code ${this.exitInfo?.code}`})`;
    for (const waiter of this.fsWaiters.values()) waiter({ ok: false, error: "EXECUTOR_EXITED" });
    this.fsWaiters.clear();
    this.readyWaiter?.reject(new WasmboxError("EXECUTOR_START_FAILED", `${why} before it was ready${this.stderrSuffix()}`));
    this.snapshotWaiter?.reject(new WasmboxError("SNAPSHOT_FAILED", `${why} before the snapshot was written${this.stderrSuffix()}`));
    this.readyWaiter = this.snapshotWaiter = null;
    const active = this.active;
    if (active && !active.reason) {
      const oom = /out of memory|heap limit|Allocation failed/i.test(this.stderrTail);
      active.reason = oom ? "memory_limit" : "crash";
      active.crashMessage = oom ? null : why;
      this.finish(active.reason, null);
    }
  }

  private finish(status: RunStatus, outcome: ExecutorOutcome | null): void {
    const active = this.active;
    if (!active) return;
    this.active = null;
    for (const timer of active.timers) clearTimeout(timer);
    active.removeAbort?.();
    const reusable = active.reuse && outcome !== null && (status === "ok" || status === "error");
    if (reusable) {
      this.resetting = this.waitFor("ready", RESET_TIMEOUT_MS).then(
        async () => (this.isolate ? await this.endedWorkersGone() : true) && this.withinReuseBudget(),
        () => false,
      );
    } else if (!active.keepAlive) this.kill();
    else this.pause(); // a session between calls: stopped until its next call
    active.resolve(assembleResult(status, outcome, active));
  }
}
