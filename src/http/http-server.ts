import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { WasmboxError } from "../core/errors.js";
import type { RunResult } from "../core/result.js";
import { validateRunRequest } from "../protocol/run-request.js";
import type { RunOptions, Sandbox } from "../sandbox/sandbox.js";
import type { Session } from "../sandbox/session.js";
import { HttpError, toHttpError } from "./http-errors.js";
import { HttpMetrics } from "./http-metrics.js";
import { openApiDocument } from "./openapi.js";
import { DEFAULT_MAX_BODY_BYTES, readBody } from "./read-body.js";
import { bearerMatches, hostHeaderAllowed, isLoopbackHost } from "./request-guard.js";
import { parseSessionOptions } from "./session-options.js";
import { createLimitedServer, listen, type ConnectionLimits } from "./listen.js";

/** Default number of runs that may wait for a slot beyond the running ones before requests get 429. */
export const DEFAULT_MAX_QUEUE = 64;
/** Default time in-flight runs get to finish on shutdown before they are cancelled. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/** How many ended sessions are remembered, to answer them with 410 SESSION_CLOSED/DEAD rather than 404. */
const REMEMBERED_SESSIONS = 1000;

export interface HttpServerOptions extends ConnectionLimits {
  /** TCP port; 0 picks a free one (read it back from `port`). Default 0. */
  port?: number;
  /** Address to bind. Default "127.0.0.1". Anything beyond loopback requires `token`. */
  host?: string;
  /** Bearer token every route but /healthz and /openapi.json requires. Required beyond loopback. */
  token?: string;
  /** Largest accepted request body in bytes. Default 8 MiB. */
  maxBodyBytes?: number;
  /**
   * Runs of POST /v1/run that may wait beyond the sandbox's `maxConcurrency` running ones; one
   * more answers 429. Also the number of calls that may wait on one session. Default 64.
   */
  maxQueue?: number;
  /** Version reported in the OpenAPI document. */
  version?: string;
}

export interface HttpServer {
  /** The bound address, e.g. "127.0.0.1". */
  readonly host: string;
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** Base URL, e.g. "http://127.0.0.1:8080". */
  readonly url: string;
  /**
   * Stops accepting, lets in-flight runs finish for graceMs (default 10 s), then cancels the rest
   * (they answer status "cancelled"), closes the sessions opened through this server and every
   * connection. Does not close the sandbox. Idempotent.
   */
  /** Stops accepting, lets runs finish within `graceMs`, then cancels the rest. Called again with 0 while closing: cancel now. */
  close(options?: { graceMs?: number }): Promise<void>;
}

type StreamMode = "json" | "sse" | "ndjson";

/** Picks the response form from Accept: the first streaming type listed wins, else plain JSON. */
function streamMode(accept: string | undefined): StreamMode {
  for (const part of (accept ?? "").split(",")) {
    const type = part.split(";")[0]!.trim().toLowerCase();
    if (type === "text/event-stream") return "sse";
    if (type === "application/x-ndjson") return "ndjson";
  }
  return "json";
}

function isJsonContentType(header: string | undefined): boolean {
  if (!header) return false;
  const type = header.split(";")[0]!.trim().toLowerCase();
  return type === "application/json" || /^application\/[a-z0-9.+-]*\+json$/.test(type);
}

const SESSION_RUN = /^\/v1\/sessions\/([^/]+)\/run$/;
const SESSION = /^\/v1\/sessions\/([^/]+)$/;

/** The session id of a path, decoded; an undecodable id is one no session has. */
function pathId(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return encoded;
  }
}

/** A session opened through this server. */
interface SessionEntry {
  session: Session;
  /** Set by DELETE: later requests answer SESSION_CLOSED, whatever state the session ended in. */
  deleted: boolean;
  /** Calls of this session waiting or running. */
  pending: number;
  /** Controllers of this session's calls in flight; DELETE aborts them. */
  calls: Set<AbortController>;
}

/**
 * Starts `wasmbox serve --http` on a node:http server (which Deno provides too): POST /v1/run,
 * the session routes, /healthz, /metrics and /openapi.json. Resolves once the port is bound. The
 * sandbox stays the caller's to close, after `close()` here.
 */
export async function startHttpServer(sandbox: Sandbox, options: HttpServerOptions = {}): Promise<HttpServer> {
  const host = options.host ?? "127.0.0.1";
  const loopback = isLoopbackHost(host);
  const token = options.token || undefined;
  if (!loopback && !token) throw new RangeError(`binding ${host} (beyond loopback) requires a token`);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) throw new RangeError("maxBodyBytes must be an integer >= 1");
  if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new RangeError("maxQueue must be an integer >= 0");
  const openApi = JSON.stringify(openApiDocument(options.version ?? "0.0.0", { auth: token !== undefined }));

  const metrics = new HttpMetrics();
  /** Requests admitted to /v1/run and not yet answered: the number the queue limit counts. */
  let admitted = 0;
  let draining = false;
  /** Requests doing work (runs, session calls, sessions opening): shutdown waits for them, then aborts them. */
  const work = new Set<{ controller: AbortController; done: Promise<void> }>();
  const sessions = new Map<string, SessionEntry>();

  const send = (res: ServerResponse, route: string, statusCode: number, body: string, headers: Record<string, string | number>) => {
    metrics.recordResponse(route, statusCode);
    if (draining) headers = { ...headers, connection: "close" };
    res.writeHead(statusCode, { ...headers, "content-length": Buffer.byteLength(body) });
    res.end(body);
  };
  const sendJson = (res: ServerResponse, route: string, statusCode: number, value: unknown, headers: Record<string, string> = {}) =>
    send(res, route, statusCode, JSON.stringify(value), { "content-type": "application/json", ...headers });
  const sendError = (res: ServerResponse, route: string, error: HttpError) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendJson(res, route, error.statusCode, error.toBody(), error.headers);
  };

  const allow = (req: IncomingMessage, methods: string[]) => {
    if (!methods.includes(req.method ?? "")) {
      throw new HttpError("METHOD_NOT_ALLOWED", `use ${methods.join(" or ")}`, { allow: methods.join(", ") });
    }
  };

  const refuseWhileDraining = () => {
    if (draining) throw new HttpError("SANDBOX_CLOSED", "the server is shutting down");
  };

  /** Runs `task` as work that shutdown waits for and, after the grace, aborts through `controller`. */
  const tracked = async (task: (controller: AbortController) => Promise<void>) => {
    const controller = new AbortController();
    let finished!: () => void;
    const entry = { controller, done: new Promise<void>((resolve) => (finished = resolve)) };
    work.add(entry);
    try {
      await task(controller);
    } finally {
      work.delete(entry);
      finished();
    }
  };

  /**
   * Reads a JSON body within maxBodyBytes; null when the client went away. With `emptyAllowed`, no
   * body at all reads as `{}` (whatever its Content-Type).
   */
  const readJson = async (req: IncomingMessage, emptyAllowed = false): Promise<{ value: unknown } | null> => {
    const body = await readBody(req, maxBodyBytes);
    if (body.kind === "aborted") return null;
    if (body.kind === "too-large") {
      // The rest of the body is never read: close the connection rather than drain it.
      throw new HttpError("REQUEST_TOO_LARGE", `request body is larger than ${maxBodyBytes} bytes`, { connection: "close" });
    }
    if (emptyAllowed && body.bytes.length === 0) return { value: {} };
    if (!isJsonContentType(req.headers["content-type"])) throw new HttpError("UNSUPPORTED_MEDIA_TYPE", "send the body as application/json");
    try {
      return { value: JSON.parse(body.bytes.toString("utf8")) };
    } catch (error) {
      throw new HttpError("INVALID_REQUEST", `request body is not valid JSON: ${(error as Error).message}`);
    }
  };

  /**
   * Runs a validated request and answers it: the result as JSON, or streamed as SSE / NDJSON
   * events when Accept asks for it. Closing the connection before the answer is complete aborts
   * `controller`, which cancels the run.
   */
  const answerRun = async (
    req: IncomingMessage,
    res: ServerResponse,
    route: string,
    controller: AbortController,
    execute: (options: RunOptions) => Promise<RunResult>,
  ) => {
    res.once("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    const mode = streamMode(req.headers.accept);
    const stream = mode === "json" ? null : openStream(res, mode, draining);
    if (stream) metrics.recordResponse(route, 200);
    let result: RunResult;
    try {
      result = await execute({
        signal: controller.signal,
        onStdout: stream ? (chunk) => stream.event("stdout", chunk) : undefined,
        onStderr: stream ? (chunk) => stream.event("stderr", chunk) : undefined,
      });
    } catch (error) {
      if (!stream) throw error;
      stream.end("error", toHttpError(error).toBody().error);
      return;
    }
    metrics.recordRun(result.status, result.durationMs);
    if (stream) stream.end("result", result);
    else sendJson(res, route, 200, result);
  };

  const handleRun = async (req: IncomingMessage, res: ServerResponse, route: string) => {
    refuseWhileDraining();
    if (!isJsonContentType(req.headers["content-type"])) {
      throw new HttpError("UNSUPPORTED_MEDIA_TYPE", "send the run request as application/json");
    }
    // Shed load before reading the body: a full queue costs the caller one round trip, not 8 MiB.
    const { maxConcurrency } = sandbox.stats;
    if (admitted >= maxConcurrency + maxQueue) {
      throw new HttpError("QUEUE_FULL", `${maxConcurrency} runs are running and ${maxQueue} waiting; retry later`, { "retry-after": "1" });
    }
    admitted++;
    try {
      await tracked(async (controller) => {
        const body = await readJson(req);
        if (!body) return;
        const run = validateRunRequest(body.value); // once, before taking a slot, so bad input answers at once
        await answerRun(req, res, route, controller, (runOptions) => sandbox.run(run, runOptions));
      });
    } finally {
      admitted--;
    }
  };

  /** The session of an id from a path: 404 when this server never issued it (or has forgotten it). */
  const sessionEntry = (id: string): SessionEntry => {
    const entry = sessions.get(id);
    if (!entry) throw new HttpError("SESSION_NOT_FOUND", `no session ${JSON.stringify(id)}; open one with POST /v1/sessions`);
    return entry;
  };

  /** 410 for a session that has ended, with the code saying how. */
  const assertUsable = (entry: SessionEntry) => {
    const id = entry.session.id;
    if (entry.deleted) throw new HttpError("SESSION_CLOSED", `session ${id} was deleted; open a new one`);
    const state = entry.session.state;
    if (state === "closed") {
      throw new HttpError("SESSION_CLOSED", `session ${id} is closed (it reached its idle timeout or maximum lifetime, or the server is shutting down); open a new one`);
    }
    if (state === "dead") {
      throw new HttpError("SESSION_DEAD", `session ${id} is dead: a call had to be killed (a limit, or a cancelled request) and its interpreter with it; open a new one`);
    }
  };

  const remember = (session: Session) => {
    sessions.set(session.id, { session, deleted: false, pending: 0, calls: new Set() });
    if (sessions.size <= REMEMBERED_SESSIONS) return;
    for (const [id, entry] of sessions) {
      if (sessions.size <= REMEMBERED_SESSIONS) break;
      if (entry.deleted || entry.session.state !== "open") sessions.delete(id);
    }
  };

  const handleOpenSession = async (req: IncomingMessage, res: ServerResponse, route: string) => {
    refuseWhileDraining();
    await tracked(async (controller) => {
      const body = await readJson(req, true);
      if (!body) return;
      const opts = parseSessionOptions(body.value);
      // Starting the executor can take a moment: a client that goes away meanwhile gives up on it.
      res.once("close", () => {
        if (!res.writableFinished) controller.abort();
      });
      let session: Session;
      try {
        session = await sandbox.session({ ...opts, signal: controller.signal });
      } catch (error) {
        if (draining && error instanceof WasmboxError && error.code === "ABORTED") throw new HttpError("SANDBOX_CLOSED", "the server is shutting down");
        throw error;
      }
      if (controller.signal.aborted) {
        await session.close(draining ? "the server shut down" : "the client went away before it was answered");
        if (draining) throw new HttpError("SANDBOX_CLOSED", "the server is shutting down");
        return;
      }
      remember(session);
      metrics.recordSessionOpened();
      sendJson(res, route, 201, { sessionId: session.id }, { location: `/v1/sessions/${encodeURIComponent(session.id)}` });
    });
  };

  const handleSessionRun = async (req: IncomingMessage, res: ServerResponse, route: string, id: string) => {
    refuseWhileDraining();
    if (!isJsonContentType(req.headers["content-type"])) {
      throw new HttpError("UNSUPPORTED_MEDIA_TYPE", "send the run request as application/json");
    }
    const entry = sessionEntry(id);
    assertUsable(entry);
    // Calls of one session run one after another: bound how many may wait, as for /v1/run.
    if (entry.pending > maxQueue) {
      throw new HttpError("QUEUE_FULL", `1 call of this session is running and ${maxQueue} waiting; retry later`, { "retry-after": "1" });
    }
    entry.pending++;
    try {
      await tracked(async (controller) => {
        entry.calls.add(controller);
        try {
          const body = await readJson(req);
          if (!body) return;
          const run = validateRunRequest(body.value, { defaultLanguage: entry.session.language });
          if (run.run.language !== entry.session.language) {
            throw new HttpError("INVALID_REQUEST", `this session runs ${entry.session.language}, not ${run.run.language}`);
          }
          assertUsable(entry); // it may have ended while the body arrived
          await answerRun(req, res, route, controller, (runOptions) => entry.session.run(run, runOptions));
        } finally {
          entry.calls.delete(controller);
        }
      });
    } finally {
      entry.pending--;
    }
  };

  const handleDeleteSession = async (res: ServerResponse, route: string, id: string) => {
    const entry = sessionEntry(id);
    // Idempotent, like `session.close` of serve --stdio: deleting an ended session answers the same.
    if (!entry.deleted) {
      entry.deleted = true;
      // Reject first, then kill: calls in flight answer "cancelled" before the executor goes.
      for (const call of entry.calls) call.abort();
      await entry.session.close("it was deleted");
    }
    sendJson(res, route, 200, { closed: true });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let route = "other";
    try {
      const path = new URL(req.url ?? "/", "http://localhost").pathname;
      if (loopback && !hostHeaderAllowed(req.headers.host)) {
        throw new HttpError("FORBIDDEN", "the Host header must name this machine (localhost, 127.0.0.1 or [::1])");
      }
      if (path === "/healthz") {
        route = path;
        allow(req, ["GET", "HEAD"]);
        return sendJson(res, route, draining ? 503 : 200, { status: draining ? "draining" : "ok" });
      }
      if (path === "/openapi.json") {
        route = path;
        allow(req, ["GET", "HEAD"]);
        return send(res, route, 200, openApi, { "content-type": "application/json" });
      }
      if (token !== undefined && !bearerMatches(req.headers.authorization, token)) {
        throw new HttpError("UNAUTHORIZED", "missing or wrong bearer token", { "www-authenticate": 'Bearer realm="wasmbox"' });
      }
      if (path === "/metrics") {
        route = path;
        allow(req, ["GET", "HEAD"]);
        const text = metrics.render({ ...sandbox.stats, maxQueue, draining });
        return send(res, route, 200, text, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      }
      if (path === "/v1/run") {
        route = path;
        allow(req, ["POST"]);
        return await handleRun(req, res, route);
      }
      if (path === "/v1/sessions") {
        route = path;
        allow(req, ["POST"]);
        return await handleOpenSession(req, res, route);
      }
      let match = SESSION_RUN.exec(path);
      if (match) {
        route = "/v1/sessions/{sessionId}/run";
        allow(req, ["POST"]);
        return await handleSessionRun(req, res, route, pathId(match[1]!));
      }
      match = SESSION.exec(path);
      if (match) {
        route = "/v1/sessions/{sessionId}";
        allow(req, ["DELETE"]);
        return await handleDeleteSession(res, route, pathId(match[1]!));
      }
      throw new HttpError("NOT_FOUND", `no route ${path}`);
    } catch (error) {
      sendError(res, route, toHttpError(error));
    }
  };

  const server: Server = createLimitedServer((req, res) => {
    void handle(req, res);
  }, options);
  const { host: boundHost, port: boundPort, origin, sockets } = await listen(server, options.port ?? 0, host);

  let closing: Promise<void> | null = null;
  /** Ends the grace period of a close in progress now (a second close with graceMs 0). */
  let endGrace = () => {};
  const close = async (graceMs: number) => {
    draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    (server as Server & { closeIdleConnections?: () => void }).closeIdleConnections?.();
    const pending = () => Promise.allSettled([...work].map((entry) => entry.done));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"grace-over">((resolve) => {
      timer = setTimeout(() => resolve("grace-over"), graceMs);
      endGrace = () => resolve("grace-over");
    });
    try {
      if ((await Promise.race([pending(), graceOver])) === "grace-over") {
        // Reject first, then stop: the runs answer "cancelled" to their callers.
        for (const entry of work) entry.controller.abort();
        await pending();
      }
    } finally {
      clearTimeout(timer);
      // Sessions opened here end with the server (their own idle and lifetime timers would reap them later).
      await Promise.allSettled([...sessions.values()].map((entry) => entry.session.close("the server shut down")));
    }
    // Answers are written; give sockets a turn to flush, then drop whatever is still open.
    await new Promise((resolve) => setImmediate(resolve));
    for (const socket of sockets) socket.destroy();
    await closed;
  };

  return {
    host: boundHost,
    port: boundPort,
    url: `${origin}`,
    close(closeOptions = {}) {
      if (closing && closeOptions.graceMs === 0) endGrace();
      closing ??= close(closeOptions.graceMs ?? DEFAULT_SHUTDOWN_GRACE_MS);
      return closing;
    },
  };
}

interface EventStream {
  event(name: "stdout" | "stderr", data: string): void;
  end(name: "result" | "error", payload: unknown): void;
}

/**
 * Starts a 200 streaming answer. SSE: `event: NAME` + `data: JSON`; NDJSON: one object a line,
 * `{"event":"stdout","data":"..."}` ... `{"event":"result","result":{...}}`.
 */
function openStream(res: ServerResponse, mode: "sse" | "ndjson", draining: boolean): EventStream {
  res.writeHead(200, {
    "content-type": mode === "sse" ? "text/event-stream; charset=utf-8" : "application/x-ndjson; charset=utf-8",
    "cache-control": "no-store",
    "x-accel-buffering": "no",
    ...(draining ? { connection: "close" } : {}),
  });
  res.flushHeaders();
  const write = (name: string, payload: unknown) => {
    if (res.writableEnded || res.destroyed) return;
    if (mode === "sse") res.write(`event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`);
    else res.write(JSON.stringify(name === "result" || name === "error" ? { event: name, [name]: payload } : { event: name, data: payload }) + "\n");
  };
  return {
    event: (name, data) => write(name, data),
    end: (name, payload) => {
      write(name, payload);
      res.end();
    },
  };
}
