/**
 * The operations every transport offers, once: runs (with cancellation by id, host functions
 * answered by the caller, a bounded queue), sessions (open, run, files, close; ended ones are
 * remembered so a late call hears how they ended) and shutdown. stdio, HTTP and MCP only frame
 * messages: they validate at the edge (src/protocol/) and call this; every failure here is a
 * WasmboxError whose code each transport maps to its own form.
 */
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { WasmboxError } from "../core/errors.js";
import type { RunResult } from "../core/result.js";
import type { FileEntry, HostFunction } from "../host/executor-process.js";
import type { ValidRun } from "../protocol/run-request.js";
import { DEFAULT_SESSION_IDLE_TIMEOUT_MS, DEFAULT_SESSION_MAX_LIFETIME_MS, type SessionRequest } from "../protocol/session-request.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import type { Session, SessionOptions } from "../sandbox/session.js";
import type { Language } from "../core/request.js";

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
  /**
   * Save sessions that reach their idle timeout to this directory instead of closing them, and
   * every open session when the server shuts down; a later call restores one (also after a
   * restart: the sessions saved here are known again when the service starts).
   */
  saveIdleSessionsDir?: string;
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
  id: string;
  /** The live session; null while it is saved to disk (saveIdleSessionsDir), until a call restores it. */
  session: Session | null;
  language: Language;
  /** What it was opened with (a restore from disk opens with the same). */
  options: Pick<SessionOptions, "idleTimeoutMs" | "maxLifetimeMs">;
  /** Where it is saved while idle (saveIdleSessionsDir), else null. */
  savedPath: string | null;
  /** The restore from disk in progress: calls that arrive meanwhile wait for it. */
  restoring: Promise<Session> | null;
  /** Why it ended, when it ended while saved (a restore that failed). */
  endedBecause: string | null;
  /** When it first opened (ms since the epoch): its maximum lifetime counts from there, across saves. */
  openedAtMs: number;
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
    this.saveDir = options.saveIdleSessionsDir ?? null;
    if (this.saveDir !== null) this.loadSaved(this.saveDir);
  }

  /** Fresh runs admitted (running or waiting for a slot). */
  get queued(): number {
    return this.admitted;
  }

  /**
   * Opens a session; its executor is started before this resolves. `signal` gives up on it. With
   * `restore`, the session continues a saved one (`saveSession`); `tools` must name the host
   * functions it was opened with.
   */
  async openSession(request: SessionRequest & { restore?: Uint8Array; maxStateBytes?: number }, signal?: AbortSignal): Promise<Session> {
    this.refuseWhileClosing();
    const tools = request.tools ?? [];
    const options = { idleTimeoutMs: request.idleTimeoutMs, maxLifetimeMs: request.maxLifetimeMs };
    const session = await this.sandbox.session({
      ...options,
      language: request.language,
      packages: request.packages,
      restore: request.restore,
      maxStateBytes: request.maxStateBytes,
      toolNames: tools,
      onIdle: this.onIdle,
      signal,
    });
    if (this.closing) {
      await session.close("the server shut down");
      throw new WasmboxError("SANDBOX_CLOSED", "the server is shutting down");
    }
    this.remember(session, tools, options);
    return session;
  }

  /** A saved session's bytes (`session.save()`); the session goes on. */
  async saveSession(id: string): Promise<Uint8Array> {
    this.refuseWhileClosing();
    const entry = this.entry(id);
    if (entry.savedPath !== null && entry.session === null) {
      // Saved to disk while idle: that file is the session as it is.
      this.assertUsable(entry);
      return new Uint8Array(await readFile(entry.savedPath));
    }
    return (await this.live(entry)).save();
  }

  /**
   * Independent copies of a session, each with its host functions and timeouts. `count` as the caller
   * sent it (absent: 1): Session.fork refuses anything but a whole number from 1 to 1000.
   */
  async forkSession(id: string, count: unknown = 1): Promise<Session[]> {
    this.refuseWhileClosing();
    const entry = this.entry(id);
    const forks = await (await this.live(entry)).fork(count as number);
    for (const fork of forks) this.remember(fork, entry.tools, entry.options);
    return forks;
  }

  /**
   * A session opened here that can take calls: checks it exists and is usable (SESSION_NOT_FOUND,
   * SESSION_CLOSED or SESSION_DEAD otherwise), without restoring one saved to disk. Its language.
   */
  checkSession(id: string): { language: Language } {
    const entry = this.entry(id);
    this.assertUsable(entry);
    return { language: entry.language };
  }

  /** The live session (restored from disk first when it was saved there while idle). */
  async usableSession(id: string): Promise<Session> {
    return this.live(this.entry(id));
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
      if (request.run.run.language !== entry.language) {
        throw new WasmboxError("INVALID_REQUEST", `this session runs ${entry.language}, not ${request.run.run.language}`);
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
      return entry ? await (await this.live(entry)).run(request.run, options) : await this.sandbox.run(request.run, options);
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
  async listFiles(sessionId: string): Promise<FileEntry[]> {
    return (await this.usableSession(sessionId)).files.list();
  }

  async readFile(sessionId: string, path: string): Promise<Uint8Array> {
    return (await this.usableSession(sessionId)).files.read(path);
  }

  async writeFile(sessionId: string, path: string, content: string | Uint8Array): Promise<void> {
    return (await this.usableSession(sessionId)).files.write(path, content);
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
    if (entry.savedPath !== null) await this.forgetSaved(entry);
    await entry.session?.close("it was closed");
  }

  /**
   * Refuses new work and ends every session opened here (their calls in flight answer "cancelled").
   * Fresh runs still going are the transport's to wait for or cancel (cancelAll, or their signals).
   */
  async close(): Promise<void> {
    this.closing = true;
    const dir = this.saveDir;
    await Promise.allSettled(
      [...this.sessions.values()].map(async (entry) => {
        const session = entry.session;
        if (!session) return;
        // With a save directory, a restart loses no session: each open one is saved first.
        if (dir !== null && !entry.deleted && session.state === "open") await this.saveToDisk(entry, session, "the server shut down");
        await session.close("the server shut down");
      }),
    );
  }

  /** Cancels every run in flight (fresh and in sessions). */
  cancelAll(): void {
    for (const controller of this.running.values()) controller.abort();
    for (const entry of this.sessions.values()) for (const call of entry.calls) call.abort();
  }

  /** The directory sessions are saved to while idle (saveIdleSessionsDir), or null. */
  private readonly saveDir: string | null;

  /** A session's idle timeout passed: saved to disk and closed with a save directory, else closed. */
  private readonly onIdle = (session: Session): void => {
    const entry = this.sessions.get(session.id);
    const idle = `it was idle for ${entry?.options.idleTimeoutMs ?? DEFAULT_SESSION_IDLE_TIMEOUT_MS} ms`;
    if (this.saveDir === null || !entry || entry.session !== session || entry.deleted) {
      void session.close(idle);
      return;
    }
    void this.saveToDisk(entry, session, "it was idle").then(() => {
      if (entry.session === null) void session.close("it was idle and was saved to disk");
      else if (entry.pending === 0) void session.close(idle);
      else entry.endedBecause = null; // a call came meanwhile: the session goes on
    });
  };

  /**
   * Saves a session to the save directory (`<id>.session` and its options in `<id>.json`, each
   * written whole then renamed) and marks its entry saved, so the next call restores it, unless a
   * call arrived meanwhile (the session then stays live and the files go). A session that cannot be
   * saved keeps the reason for its next call.
   */
  private async saveToDisk(entry: SessionEntry, session: Session, why: string): Promise<void> {
    const dir = this.saveDir!;
    const path = join(dir, `${session.id}.session`);
    try {
      const blob = await session.save();
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const meta = { id: session.id, language: entry.language, tools: entry.tools, options: entry.options, openedAtMs: entry.openedAtMs, savedAt: new Date().toISOString() };
      await writeFile(`${path}.tmp`, blob, { mode: 0o600 });
      await rename(`${path}.tmp`, path);
      await writeFile(join(dir, `${session.id}.json.tmp`), JSON.stringify(meta), { mode: 0o600 });
      await rename(join(dir, `${session.id}.json.tmp`), join(dir, `${session.id}.json`));
    } catch (error) {
      entry.endedBecause = `${why}, and could not be saved: ${error instanceof Error ? error.message : String(error)}`;
      return;
    }
    if (entry.session === session && entry.pending === 0 && !entry.deleted) {
      entry.session = null;
      entry.savedPath = path;
    } else {
      await rm(path, { force: true });
      await rm(join(dir, `${session.id}.json`), { force: true });
    }
  }

  /** The entry's live session, restoring it from the save directory when it was saved there. */
  private live(entry: SessionEntry): Promise<Session> {
    this.assertUsable(entry);
    if (entry.session) return Promise.resolve(entry.session);
    if (!entry.restoring) {
      const path = entry.savedPath!;
      const maxLifetimeMs = entry.options.maxLifetimeMs ?? DEFAULT_SESSION_MAX_LIFETIME_MS;
      const leftMs = entry.openedAtMs + maxLifetimeMs - Date.now();
      if (leftMs <= 0) {
        // Its lifetime ran out while it was on disk: it ends as it would have, and its files go.
        entry.deleted = true;
        void this.forgetSaved(entry);
        throw new WasmboxError("SESSION_CLOSED", `session ${entry.id} is closed: it reached its maximum lifetime of ${maxLifetimeMs} ms; open a new one`);
      }
      entry.restoring = (async () => {
        try {
          const blob = new Uint8Array(await readFile(path));
          const session = await this.sandbox.session({ ...entry.options, maxLifetimeMs: leftMs, id: entry.id, restore: blob, toolNames: entry.tools, onIdle: this.onIdle });
          entry.session = session;
          await this.forgetSaved(entry);
          return session;
        } catch (error) {
          entry.endedBecause = `it was saved to disk and could not be restored: ${error instanceof Error ? error.message : String(error)}`;
          // Dead from now on; its file is kept for the operator as <id>.session.unrestorable (another
          // wasmbox version may still restore it), out of the way of the next start.
          entry.savedPath = null;
          await rename(path, `${path}.unrestorable`).catch(() => {});
          await rm(path.replace(/\.session$/, ".json"), { force: true });
          throw new WasmboxError("SESSION_DEAD", `session ${entry.id} is dead: ${entry.endedBecause}; open a new one`);
        } finally {
          entry.restoring = null;
        }
      })();
    }
    return entry.restoring;
  }

  /** Removes a session's files from the save directory. */
  private async forgetSaved(entry: SessionEntry): Promise<void> {
    const path = entry.savedPath;
    entry.savedPath = null;
    if (path === null) return;
    await rm(path, { force: true });
    await rm(path.replace(/\.session$/, ".json"), { force: true });
  }

  /**
   * The sessions a previous server saved to the save directory, known again (restored by their next
   * call). A file that is not a saved session of ours is left alone.
   */
  private loadSaved(dir: string): void {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return; // made when the first session is saved
    }
    for (const name of names) {
      const found = /^([0-9a-f-]{36})\.json$/.exec(name);
      if (!found || !names.includes(`${found[1]}.session`)) continue;
      try {
        const meta = JSON.parse(readFileSync(join(dir, name), "utf8")) as { id: string; language: Language; tools: string[]; options: SessionEntry["options"]; openedAtMs: number };
        if (meta.id !== found[1] || typeof meta.language !== "string" || !Array.isArray(meta.tools) || typeof meta.openedAtMs !== "number") continue;
        if (meta.openedAtMs + (meta.options?.maxLifetimeMs ?? DEFAULT_SESSION_MAX_LIFETIME_MS) <= Date.now()) {
          // Past its maximum lifetime while the server was down: it would have ended; its files go.
          rmSync(join(dir, `${meta.id}.session`), { force: true });
          rmSync(join(dir, name), { force: true });
          continue;
        }
        this.sessions.set(meta.id, {
          id: meta.id, session: null, language: meta.language, tools: meta.tools, options: meta.options ?? {}, openedAtMs: meta.openedAtMs,
          savedPath: join(dir, `${meta.id}.session`), restoring: null, endedBecause: null,
          deleted: false, pending: 0, calls: new Set(),
        });
      } catch {
        // not ours, or damaged: left for the operator
      }
    }
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
    const id = entry.id;
    if (entry.deleted) throw new WasmboxError("SESSION_CLOSED", `session ${id} was closed; open a new one`);
    if (entry.session === null) {
      if (entry.savedPath === null) throw new WasmboxError("SESSION_DEAD", `session ${id} is dead: ${entry.endedBecause ?? "it could not be restored"}; open a new one`);
      return;
    }
    const { state } = entry.session;
    const endedBecause = entry.endedBecause ?? entry.session.endedBecause;
    if (state === "closed") throw new WasmboxError("SESSION_CLOSED", `session ${id} is closed: ${endedBecause}; open a new one`);
    if (state === "dead") throw new WasmboxError("SESSION_DEAD", `session ${id} is dead: ${endedBecause}; open a new one`);
  }

  private remember(session: Session, tools: readonly string[], options: SessionEntry["options"]): void {
    this.sessions.set(session.id, {
      id: session.id, session, language: session.language, tools, options, openedAtMs: Date.now(),
      savedPath: null, restoring: null, endedBecause: null, deleted: false, pending: 0, calls: new Set(),
    });
    if (this.sessions.size <= REMEMBERED_SESSIONS) return;
    for (const [id, entry] of this.sessions) {
      if (this.sessions.size <= REMEMBERED_SESSIONS) break;
      if (entry.deleted || (entry.session !== null && entry.session.state !== "open") || (entry.session === null && entry.savedPath === null)) this.sessions.delete(id);
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
