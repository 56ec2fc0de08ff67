/**
 * The operations every transport offers, once: runs (with cancellation by id, host functions
 * answered by the caller, a bounded queue), sessions (open, run, files, close; ended ones are
 * remembered so a late call hears how they ended) and shutdown. stdio, HTTP and MCP only frame
 * messages: they validate at the edge (src/protocol/) and call this; every failure here is a
 * WasmboxError whose code each transport maps to its own form.
 */
import { randomUUID } from "node:crypto";
import { WasmboxError } from "../core/errors.js";
import type { RunResult } from "../core/result.js";
import type { FileEntry, HostFunction } from "../host/executor-process.js";
import type { ValidRun } from "../protocol/run-request.js";
import type { SessionRequest } from "../protocol/session-request.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import type { Session } from "../sandbox/session.js";

/** How many ended sessions are remembered, to answer them with SESSION_CLOSED/DEAD rather than SESSION_NOT_FOUND. */
const REMEMBERED_SESSIONS = 1000;

export interface ServiceOptions {
  /**
   * Runs that may wait for a slot beyond the sandbox's running ones, and calls that may wait on one
   * session; one more is refused with QUEUE_FULL. Default: no bound.
   */
  maxQueue?: number;
  /** What a refused run's error says the bound is called (e.g. "--max-queue"). */
  queueName?: string;
}

/** A host function call the guest made, for the caller to answer with `answerCall`. */
export interface CallEvent {
  callId: string;
  name: string;
  args: unknown;
}

export interface ServiceRun {
  run: ValidRun;
  /** Run in this session (opened here) instead of a fresh interpreter. */
  sessionId?: string;
  /** The caller's id for the run, by which `cancel` finds it; unique among runs in flight. */
  runId?: string | number;
  /** Host functions the caller answers, besides its session's: each call becomes `onCall`. */
  tools?: readonly string[];
  signal?: AbortSignal;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  /** Where host function calls go; required when there are tools. */
  onCall?: (call: CallEvent) => void;
}

interface SessionEntry {
  session: Session;
  /** Host functions every run of the session offers, answered by the caller. */
  tools: readonly string[];
  /** Set by closeSession: later requests answer SESSION_CLOSED, whatever state the session ended in. */
  deleted: boolean;
  /** Calls of this session waiting or running. */
  pending: number;
  /** Controllers of this session's calls in flight; closing the session aborts them. */
  calls: Set<AbortController>;
}

export class SandboxService {
  private readonly maxQueue: number;
  private readonly queueName: string;
  private readonly sessions = new Map<string, SessionEntry>();
  private readonly running = new Map<string | number, AbortController>();
  /** Host function calls waiting for the caller's answer, by call id; `run` is the run's own token. */
  private readonly pendingCalls = new Map<string, { run: object; runId: string | number | undefined; settle: (answer: { result?: unknown; error?: unknown }) => void }>();
  /** Fresh runs admitted and not yet answered: what the queue bound counts. */
  private admitted = 0;
  private closing = false;

  constructor(
    readonly sandbox: Sandbox,
    options: ServiceOptions = {},
  ) {
    this.maxQueue = options.maxQueue ?? Number.POSITIVE_INFINITY;
    this.queueName = options.queueName ?? "the queue";
  }

  /** Fresh runs admitted (running or waiting for a slot). */
  get queued(): number {
    return this.admitted;
  }

  /** Opens a session; its executor is started before this resolves. `signal` gives up on it. */
  async openSession(request: SessionRequest, signal?: AbortSignal): Promise<Session> {
    this.refuseWhileClosing();
    const session = await this.sandbox.session({
      idleTimeoutMs: request.idleTimeoutMs,
      maxLifetimeMs: request.maxLifetimeMs,
      language: request.language,
      packages: request.packages,
      signal,
    });
    if (this.closing) {
      await session.close("the server shut down");
      throw new WasmboxError("SANDBOX_CLOSED", "the server is shutting down");
    }
    this.remember(session, request.tools ?? []);
    return session;
  }

  /** A session opened here that can take calls; SESSION_NOT_FOUND, SESSION_CLOSED or SESSION_DEAD otherwise. */
  usableSession(id: string): Session {
    const entry = this.entry(id);
    this.assertUsable(entry);
    return entry.session;
  }

  /** Host functions every run of a session offers (given when it opened). */
  sessionTools(id: string): readonly string[] {
    return this.entry(id).tools;
  }

  /** Runs a validated request, fresh or in a session. Resolves with the result for every guest outcome. */
  async run(request: ServiceRun): Promise<RunResult> {
    this.refuseWhileClosing();
    const entry = request.sessionId !== undefined ? this.entry(request.sessionId) : null;
    const names = [...(entry?.tools ?? []), ...(request.tools ?? [])];
    if (names.length > 0 && !request.onCall) throw new WasmboxError("INVALID_REQUEST", "host functions need a channel for their calls (an id, or a stream)");
    if (entry) {
      this.assertUsable(entry);
      if (request.run.run.language !== entry.session.language) {
        throw new WasmboxError("INVALID_REQUEST", `this session runs ${entry.session.language}, not ${request.run.run.language}`);
      }
      if (entry.pending > this.maxQueue) {
        throw new WasmboxError("QUEUE_FULL", `1 call of this session is running and ${this.maxQueue} waiting; retry later`);
      }
    } else {
      const { maxConcurrency } = this.sandbox.stats;
      if (this.admitted >= maxConcurrency + this.maxQueue) {
        throw new WasmboxError("QUEUE_FULL", `${maxConcurrency} runs are running and ${this.maxQueue} waiting (${this.queueName}); retry later`);
      }
    }
    const controller = new AbortController();
    const { runId } = request;
    if (runId !== undefined) {
      if (this.running.has(runId)) throw new WasmboxError("INVALID_REQUEST", `a run with id ${JSON.stringify(runId)} is already in progress`);
      this.running.set(runId, controller);
    }
    const onAbort = () => controller.abort();
    if (request.signal?.aborted) controller.abort();
    request.signal?.addEventListener("abort", onAbort, { once: true });
    const options = {
      signal: controller.signal,
      onStdout: request.onStdout,
      onStderr: request.onStderr,
      tools: names.length > 0 ? this.callProxies(controller, runId, names, request.onCall!) : undefined,
    };
    if (entry) {
      entry.pending++;
      entry.calls.add(controller);
    } else {
      this.admitted++;
    }
    try {
      return entry ? await entry.session.run(request.run, options) : await this.sandbox.run(request.run, options);
    } finally {
      request.signal?.removeEventListener("abort", onAbort);
      if (entry) {
        entry.pending--;
        entry.calls.delete(controller);
      } else {
        this.admitted--;
      }
      if (runId !== undefined && this.running.get(runId) === controller) this.running.delete(runId);
      for (const [callId, pending] of this.pendingCalls) if (pending.run === controller) this.pendingCalls.delete(callId);
    }
  }

  /** Cancels a run in flight by its id: it answers for itself, with status "cancelled". */
  cancel(runId: string | number): void {
    const controller = this.running.get(runId);
    if (!controller) throw new WasmboxError("NOT_FOUND", `no run with id ${JSON.stringify(runId)} is in progress`);
    controller.abort();
  }

  /**
   * Answers a host function call: `result` (any JSON) or `error` (its message reaches the guest as
   * a ToolError). `runId`, when given, must be the run that made the call.
   */
  answerCall(callId: unknown, answer: { result?: unknown; error?: unknown }, runId?: string | number): void {
    const pending = typeof callId === "string" ? this.pendingCalls.get(callId) : undefined;
    if (!pending || (runId !== undefined && pending.runId !== runId)) {
      throw new WasmboxError("INVALID_REQUEST", `no host function call ${JSON.stringify(callId)} is waiting for an answer`);
    }
    if (!("result" in answer) && !("error" in answer)) throw new WasmboxError("INVALID_REQUEST", "a call answer needs result or error");
    pending.settle(answer);
  }

  /** Files of a session, between its calls. */
  listFiles(sessionId: string): Promise<FileEntry[]> {
    return this.usableSession(sessionId).files.list();
  }

  readFile(sessionId: string, path: string): Promise<Uint8Array> {
    return this.usableSession(sessionId).files.read(path);
  }

  writeFile(sessionId: string, path: string, content: string | Uint8Array): Promise<void> {
    return this.usableSession(sessionId).files.write(path, content);
  }

  /**
   * Ends a session opened here: its calls in flight answer "cancelled", then its executor stops.
   * Idempotent: closing an ended session succeeds; later calls answer SESSION_CLOSED.
   */
  async closeSession(id: string): Promise<void> {
    const entry = this.entry(id);
    if (entry.deleted) return;
    entry.deleted = true;
    for (const call of entry.calls) call.abort();
    await entry.session.close("it was closed");
  }

  /**
   * Refuses new work and ends every session opened here (their calls in flight answer "cancelled").
   * Fresh runs still going are the transport's to wait for or cancel (cancelAll, or their signals).
   */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([...this.sessions.values()].map((entry) => entry.session.close("the server shut down")));
  }

  /** Cancels every run in flight (fresh and in sessions). */
  cancelAll(): void {
    for (const controller of this.running.values()) controller.abort();
    for (const entry of this.sessions.values()) for (const call of entry.calls) call.abort();
  }

  private refuseWhileClosing(): void {
    if (this.closing) throw new WasmboxError("SANDBOX_CLOSED", "the server is shutting down");
  }

  private entry(id: string): SessionEntry {
    const entry = this.sessions.get(id);
    if (!entry) throw new WasmboxError("SESSION_NOT_FOUND", `no session ${JSON.stringify(id)}; open one first`);
    return entry;
  }

  private assertUsable(entry: SessionEntry): void {
    const id = entry.session.id;
    if (entry.deleted) throw new WasmboxError("SESSION_CLOSED", `session ${id} was closed; open a new one`);
    const { state, endedBecause } = entry.session;
    if (state === "closed") throw new WasmboxError("SESSION_CLOSED", `session ${id} is closed: ${endedBecause}; open a new one`);
    if (state === "dead") throw new WasmboxError("SESSION_DEAD", `session ${id} is dead: ${endedBecause}; open a new one`);
  }

  private remember(session: Session, tools: readonly string[]): void {
    this.sessions.set(session.id, { session, tools, deleted: false, pending: 0, calls: new Set() });
    if (this.sessions.size <= REMEMBERED_SESSIONS) return;
    for (const [id, entry] of this.sessions) {
      if (this.sessions.size <= REMEMBERED_SESSIONS) break;
      if (entry.deleted || entry.session.state !== "open") this.sessions.delete(id);
    }
  }

  /** Each named host function becomes a call event, settled by answerCall. */
  private callProxies(run: object, runId: string | number | undefined, names: string[], onCall: (call: CallEvent) => void): Record<string, HostFunction> {
    const tools: Record<string, HostFunction> = {};
    for (const name of names) {
      tools[name] = (args) =>
        new Promise((resolve, reject) => {
          // Unguessable: over HTTP any holder of the token may answer a call, but only by its id.
          const callId = `c-${randomUUID()}`;
          this.pendingCalls.set(callId, {
            run,
            runId,
            settle: (answer) => {
              this.pendingCalls.delete(callId);
              if (answer.error !== undefined) reject(new Error(typeof answer.error === "string" ? answer.error : JSON.stringify(answer.error)));
              else resolve(answer.result);
            },
          });
          onCall({ callId, name, args });
        });
    }
    return tools;
  }
}
