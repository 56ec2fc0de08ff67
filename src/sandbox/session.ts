import { randomUUID } from "node:crypto";
import { WasmboxError } from "../core/errors.js";
import type { Language } from "../core/request.js";
import type { RunResult } from "../core/result.js";
import type { NormalizedRun } from "../core/request.js";
import type { ExecutorProcess, FileEntry, HostFunction } from "../host/executor-process.js";
import { normalizeSandboxPath } from "../vfs/sandbox-path.js";
import { contentBytes, normalizeRunRequest, ValidRun, type FileContent, type RunRequest } from "../protocol/run-request.js";
import { DEFAULT_SESSION_IDLE_TIMEOUT_MS, DEFAULT_SESSION_MAX_LIFETIME_MS } from "../protocol/session-request.js";
import { outputListener, refuseUnmeasurableCpuLimit, validateTools, type RunOptions } from "./run-options.js";
import { requirementName, type PackageEnvironment } from "../packages/environment.js";
import { encodeSessionBlob } from "./session-blob.js";

export interface SessionOptions {
  /** The session's language. Default "python". */
  language?: Language;
  /** Close the session after this long without a call, in milliseconds. Default 10 minutes. */
  idleTimeoutMs?: number;
  /** Close the session this long after it opened, in milliseconds. Default 1 hour. */
  maxLifetimeMs?: number;
  /** Host functions every call of this session may use (a call's own `tools` add to them). */
  tools?: Readonly<Record<string, HostFunction>>;
  /** Aborting while the session's executor starts gives up with ABORTED. */
  signal?: AbortSignal;
  /**
   * Python packages from the wheelhouse the session's interpreter has (besides the sandbox's own),
   * imported ahead. Fixed when it opens: a call naming others is refused.
   */
  packages?: string[];
  /**
   * A saved session (`session.save()`) to continue: its language, packages and interpreter state;
   * the host functions it was opened with must be in `tools` again (bound by name). Limits and
   * timeouts are this call's, never the blob's.
   */
  restore?: Uint8Array;
  /** With `restore`: the largest decompressed state accepted, in bytes. Default 2 GiB (at most 4 GiB). */
  maxStateBytes?: number;
  /**
   * @internal For servers, whose callers answer host functions per call: names of the host functions
   * the session offers (saved with it, and accepted as bound on restore).
   */
  toolNames?: readonly string[];
  /** @internal The session's id (a server keeps a session's id across a save to disk and restore). */
  id?: string;
  /**
   * @internal Called instead of closing when the idle timeout passes (a server saves the session to
   * disk, then closes it).
   */
  onIdle?: (session: Session) => void;
}

/** @internal What a session asks of its sandbox to save and fork itself. */
export interface SessionHost {
  identity(language: Language, environment: PackageEnvironment | null): Promise<{ runtime: string; baseSha256: string } | null>;
  fork(state: Uint8Array, count: number, language: Language, environment: PackageEnvironment | null, options: SessionOptions): Promise<Session[]>;
}

export type SessionState = "open" | "closed" | "dead";

export { DEFAULT_SESSION_IDLE_TIMEOUT_MS, DEFAULT_SESSION_MAX_LIFETIME_MS };

/**
 * A notebook-style interpreter bound to one executor that no other session or run shares: globals,
 * imports and files carry over between calls. A timeout or memory limit ends the call; when the
 * interpreter survived it (the guest took the KeyboardInterrupt or MemoryError) the session goes
 * on, otherwise it is dead and the next call rejects with SESSION_DEAD.
 */
export class Session {
  readonly id: string;
  private stateValue: SessionState = "open";
  private why = "";
  private queue: Promise<unknown> = Promise.resolve();
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly lifetimeTimer: NodeJS.Timeout;
  private readonly idleTimeoutMs: number;
  private readonly tools: Readonly<Record<string, HostFunction>>;
  readonly language: Language;
  /** What a fork opens with (not the restore blob, nor the signal of the open). */
  private readonly options: SessionOptions;

  /** Session files, read and written between calls without running code. */
  readonly files = {
    read: (path: string): Promise<Uint8Array> => this.fileOp(async () => {
      const reply = await this.executor.files({ op: "read", path: normalizeSandboxPath(path) });
      if (!reply.ok || reply.data === undefined) {
        throw new WasmboxError("INVALID_PATH", `cannot read ${JSON.stringify(path)} in the session: ${reply.error ?? "no data"}`);
      }
      return reply.data;
    }),
    write: (path: string, content: FileContent): Promise<void> => this.fileOp(async () => {
      const reply = await this.executor.files({ op: "write", path: normalizeSandboxPath(path), data: contentBytes(content, "content") });
      if (!reply.ok) throw new WasmboxError("INVALID_PATH", `cannot write ${JSON.stringify(path)} in the session: ${reply.error}`);
    }),
    list: (): Promise<FileEntry[]> => this.fileOp(async () => {
      const reply = await this.executor.files({ op: "list" });
      if (!reply.ok) throw new WasmboxError("INTERNAL_ERROR", `cannot list session files: ${reply.error}`);
      return reply.entries ?? [];
    }),
  };

  /** @internal Created by `Sandbox.session()`. */
  constructor(
    private readonly executor: ExecutorProcess,
    options: SessionOptions,
    private readonly onClose: (session: Session) => void,
    /** The packages its interpreter has (null: none but the bundled ones). */
    private readonly environment: PackageEnvironment | null,
    private readonly host: SessionHost,
  ) {
    this.id = options.id ?? randomUUID();
    this.options = { idleTimeoutMs: options.idleTimeoutMs, maxLifetimeMs: options.maxLifetimeMs, tools: options.tools, toolNames: options.toolNames, onIdle: options.onIdle };
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_SESSION_IDLE_TIMEOUT_MS;
    this.language = options.language ?? "python";
    this.tools = validateTools(options.tools);
    this.lifetimeTimer = setTimeout(() => void this.close(`it reached its maximum lifetime of ${options.maxLifetimeMs ?? DEFAULT_SESSION_MAX_LIFETIME_MS} ms`), options.maxLifetimeMs ?? DEFAULT_SESSION_MAX_LIFETIME_MS);
    this.lifetimeTimer.unref();
    this.armIdle();
    void executor.exited.then(() => {
      // The host may have killed it between calls (memory, storage, running while stopped): say why.
      if (this.stateValue === "open") this.markDead(executor.exitReason ?? "its executor exited");
    });
  }

  get state(): SessionState {
    return this.stateValue;
  }

  /** Why the session ended ("it was idle for … ms", what killed its interpreter); empty while open. */
  get endedBecause(): string {
    return this.why;
  }

  private armIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.options.onIdle) this.options.onIdle(this);
      else void this.close(`it was idle for ${this.idleTimeoutMs} ms`);
    }, this.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private markDead(why: string): void {
    this.stateValue = "dead";
    this.why = why;
    this.clearTimers();
    this.onClose(this);
  }

  private clearTimers(): void {
    clearTimeout(this.lifetimeTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
  }

  private assertOpen(): void {
    if (this.stateValue === "closed") throw new WasmboxError("SESSION_CLOSED", `session ${this.id} is closed: ${this.why}`);
    if (this.stateValue === "dead") throw new WasmboxError("SESSION_DEAD", `session ${this.id} is dead: ${this.why}; open a new session`);
  }

  /** Calls run one at a time, in the order they were made. */
  private serial<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => {});
    return next;
  }

  private fileOp<T>(task: () => Promise<T>): Promise<T> {
    return this.serial(async () => {
      this.assertOpen();
      this.armIdle();
      return task();
    });
  }

  /** Checks a call against the session: its language, and packages it was opened with. */
  private admit(request: RunRequest | ValidRun): NormalizedRun {
    const run = request instanceof ValidRun ? request.run : normalizeRunRequest(request, { defaultLanguage: this.language });
    if (run.language !== this.language) {
      throw new WasmboxError("INVALID_REQUEST", `this session runs ${this.language}, not ${run.language}`);
    }
    refuseUnmeasurableCpuLimit(run);
    const has = new Set(this.environment?.packages.map((p) => p.name) ?? []);
    const missing = run.packages.filter((spec) => !has.has(requirementName(spec)));
    if (missing.length > 0) {
      throw new WasmboxError("INVALID_REQUEST", `this session was opened without ${missing.join(", ")}: a session's packages are set when it opens (its packages option)`);
    }
    return run;
  }

  /**
   * Runs code in the session's interpreter. Limits apply per call. A `ValidRun` is taken as it is
   * (validate it with `defaultLanguage` set to the session's).
   */
  run(request: RunRequest | ValidRun, options: RunOptions = {}): Promise<RunResult> {
    let run: NormalizedRun;
    try {
      run = this.admit(request);
    } catch (error) {
      return Promise.reject(error);
    }
    const tools = { ...this.tools, ...validateTools(options.tools) };
    return this.serial(async () => {
      this.assertOpen();
      if (this.idleTimer) clearTimeout(this.idleTimer);
      try {
        const result = await this.executor.run(run, { signal: options.signal, onOutput: outputListener(options), tools, keepAlive: true });
        if (this.stateValue === "open" && (!this.executor.alive || result.status === "crash")) {
          this.executor.kill();
          this.markDead(`its interpreter did not survive a call that ended with status "${result.status}"`);
        }
        return result;
      } finally {
        if (this.stateValue === "open") this.armIdle();
      }
    });
  }

  /**
   * Saves the session: a self-contained, versioned, compressed blob of its interpreter (globals,
   * modules, class instances, the random state), its files (/sandbox, /tmp, /home) and what it was
   * opened with (language, packages, host function names). Continue it with
   * `sandbox.session({ restore: blob, tools })`, here, or on another machine with the same wasmbox
   * version, packages and WASMBOX_SNAPSHOT_SEED (docs/sessions.md). The session goes on. Rejects with SESSION_NOT_SAVEABLE naming state that
   * cannot be carried (JavaScript objects Python holds, a shared library loaded after the start, a
   * special file), NOT_IMPLEMENTED for languages other than Python.
   */
  save(): Promise<Uint8Array> {
    return this.serial(async () => {
      const { state, identity } = await this.captureState("saved");
      return encodeSessionBlob(state, identity, {
        language: this.language,
        packages: this.environment?.requested ?? [],
        tools: [...new Set([...Object.keys(this.tools), ...(this.options.toolNames ?? [])])],
      });
    });
  }

  /**
   * Independent copies of the session, each on an executor of its own, without a round trip
   * through a blob: `fork()` gives one session, `fork(n)` an array of n. Each starts from this
   * session's state now (its random generator too: reseed in a fork to draw differently) and
   * has its host functions and timeouts. Counts against `maxSessions`; opens all or none.
   */
  fork(): Promise<Session>;
  fork(count: number): Promise<Session[]>;
  async fork(count?: number): Promise<Session | Session[]> {
    if (count !== undefined && (!Number.isInteger(count) || count < 1 || count > 1000)) {
      throw new WasmboxError("INVALID_REQUEST", `fork count must be a whole number from 1 to 1000, not ${JSON.stringify(count)}`);
    }
    const { state } = await this.serial(() => this.captureState("forked"));
    const sessions = await this.host.fork(state, count ?? 1, this.language, this.environment, { ...this.options, language: this.language });
    return count === undefined ? sessions[0]! : sessions;
  }

  /** The interpreter's state (in the call queue), and the runtime it depends on; NOT_IMPLEMENTED but for Python. */
  private async captureState(verb: string): Promise<{ state: Uint8Array; identity: { runtime: string; baseSha256: string } }> {
    this.assertOpen();
    const identity = await this.host.identity(this.language, this.environment);
    if (!identity) throw new WasmboxError("NOT_IMPLEMENTED", `${this.language} sessions cannot be ${verb} (Python only)`);
    this.armIdle();
    return { state: await this.executor.saveState(), identity };
  }

  /** Stops the session's executor. Idempotent; later calls reject with SESSION_CLOSED. */
  async close(why = "it was closed"): Promise<void> {
    if (this.stateValue !== "open") return;
    this.stateValue = "closed";
    this.why = why;
    this.clearTimers();
    this.executor.kill();
    this.onClose(this);
    await this.executor.exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
