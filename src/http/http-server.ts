import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { WasmboxError } from "../core/errors.js";
import type { RunResult } from "../core/result.js";
import { validateRunRequest } from "../protocol/run-request.js";
import { validateSessionRequest, validateToolNames, type SessionRequest } from "../protocol/session-request.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import { SandboxService, type CallEvent } from "../service/sandbox-service.js";
import type { Session } from "../sandbox/session.js";
import { HttpError, toHttpError } from "./http-errors.js";
import { HttpMetrics } from "./http-metrics.js";
import { openApiDocument } from "./openapi.js";
import { DEFAULT_MAX_BODY_BYTES, readBody } from "./read-body.js";
import { bearerMatches, hostHeaderAllowed, isLoopbackHost } from "./request-guard.js";
import { createLimitedServer, listen, type ConnectionLimits } from "./listen.js";

/** Default number of runs that may wait for a slot beyond the running ones before requests get 429. */
export const DEFAULT_MAX_QUEUE = 64;
/** Default time in-flight runs get to finish on shutdown before they are cancelled. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

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
  /** Save idle sessions here instead of closing them, and every open one on shutdown (`--save-idle-sessions`). */
  saveIdleSessionsDir?: string;
  /** Largest saved session accepted as an upload (POST /v1/sessions, application/octet-stream). Default 512 MiB. */
  maxSessionBlobBytes?: number;
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

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isOctetStream(header: string | undefined): boolean {
  return header?.split(";")[0]!.trim().toLowerCase() === "application/octet-stream";
}

/** The options of a restore upload, from its query string (?tools=a,b&idleTimeoutMs=…&maxLifetimeMs=…). */
function sessionQuery(query: URLSearchParams): SessionRequest {
  const options: Record<string, unknown> = {};
  for (const [key, value] of query) {
    if (key === "tools") options.tools = value === "" ? [] : value.split(",");
    else if (key === "idleTimeoutMs" || key === "maxLifetimeMs") options[key] = /^\d+$/.test(value) ? Number(value) : value;
    else throw new HttpError("INVALID_REQUEST", `unknown query parameter ${JSON.stringify(key)}; a restore takes tools, idleTimeoutMs and maxLifetimeMs`);
  }
  return validateSessionRequest(options);
}

function isJsonContentType(header: string | undefined): boolean {
  if (!header) return false;
  const type = header.split(";")[0]!.trim().toLowerCase();
  return type === "application/json" || /^application\/[a-z0-9.+-]*\+json$/.test(type);
}

const SESSION_RUN = /^\/v1\/sessions\/([^/]+)\/run$/;
const SESSION = /^\/v1\/sessions\/([^/]+)$/;
const SESSION_SAVED = /^\/v1\/sessions\/([^/]+)\/saved$/;
const SESSION_FORK = /^\/v1\/sessions\/([^/]+)\/fork$/;

/**
 * The largest state an uploaded saved session may inflate to: a blob declares its size, and the host
 * holds the state in memory while the executor takes it.
 */
const MAX_UPLOADED_STATE_BYTES = 2 * 1024 * 1024 * 1024;

/** The largest saved session `POST /v1/sessions` takes as an upload (application/octet-stream). */
export const DEFAULT_MAX_SESSION_BLOB_BYTES = 512 * 1024 * 1024;
const SESSION_FILES = /^\/v1\/sessions\/([^/]+)\/files$/;
const SESSION_FILE = /^\/v1\/sessions\/([^/]+)\/files\/(.+)$/;
const CALL = /^\/v1\/calls\/([^/]+)$/;

/** The session id of a path, decoded; an undecodable id is one no session has. */
function pathId(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return encoded;
  }
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
  const service = new SandboxService(sandbox, { maxQueue, queueName: "--max-queue", saveIdleSessionsDir: options.saveIdleSessionsDir });
  const maxSessionBlobBytes = options.maxSessionBlobBytes ?? DEFAULT_MAX_SESSION_BLOB_BYTES;

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
    body: unknown,
    sessionId?: string,
  ) => {
    const fields = isPlainObject(body) ? body : {};
    const tools = validateToolNames(fields.tools);
    const defaultLanguage = sessionId !== undefined ? service.checkSession(sessionId).language : undefined;
    // Once, at the edge: the service and the sandbox take it as it is.
    const run = validateRunRequest(body, { allowExtraFields: ["tools"], defaultLanguage });
    const mode = streamMode(req.headers.accept);
    const sessionTools = sessionId !== undefined && service.sessionTools(sessionId).length > 0;
    if (mode === "json" && (tools.length > 0 || sessionTools)) {
      throw new HttpError("INVALID_REQUEST", "host functions need a streamed answer (Accept: text/event-stream or application/x-ndjson): their calls are events on it");
    }
    res.once("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    const stream = mode === "json" ? null : openStream(res, mode, draining);
    if (stream) metrics.recordResponse(route, 200);
    let result: RunResult;
    try {
      result = await service.run({
        run,
        sessionId,
        tools,
        signal: controller.signal,
        onStdout: stream ? (chunk) => stream.event("stdout", chunk) : undefined,
        onStderr: stream ? (chunk) => stream.event("stderr", chunk) : undefined,
        onCall: stream ? (call) => stream.call(call) : undefined,
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
        await answerRun(req, res, route, controller, body.value);
      });
    } finally {
      admitted--;
    }
  };

  /**
   * POST /v1/sessions: JSON options open a new session; an application/octet-stream body is a saved
   * session (GET …/saved) to continue, its options in the query (?tools=a,b&idleTimeoutMs=…).
   */
  const handleOpenSession = async (req: IncomingMessage, res: ServerResponse, route: string, query: URLSearchParams) => {
    refuseWhileDraining();
    await tracked(async (controller) => {
      let opts: SessionRequest & { restore?: Uint8Array; maxStateBytes?: number };
      if (isOctetStream(req.headers["content-type"])) {
        const options = sessionQuery(query);
        const body = await readBody(req, maxSessionBlobBytes);
        if (body.kind === "aborted") return;
        if (body.kind === "too-large") throw new HttpError("REQUEST_TOO_LARGE", `a saved session larger than ${maxSessionBlobBytes} bytes is not accepted`, { connection: "close" });
        opts = { ...options, restore: new Uint8Array(body.bytes.buffer, body.bytes.byteOffset, body.bytes.length), maxStateBytes: MAX_UPLOADED_STATE_BYTES };
      } else {
        const body = await readJson(req, true);
        if (!body) return;
        opts = validateSessionRequest(body.value);
      }
      // Starting the executor can take a moment: a client that goes away meanwhile gives up on it.
      res.once("close", () => {
        if (!res.writableFinished) controller.abort();
      });
      let session: Session;
      try {
        session = await service.openSession(opts, controller.signal);
      } catch (error) {
        if (draining && error instanceof WasmboxError && error.code === "ABORTED") throw new HttpError("SANDBOX_CLOSED", "the server is shutting down");
        throw error;
      }
      if (controller.signal.aborted) {
        await session.close(draining ? "the server shut down" : "the client went away before it was answered");
        if (draining) throw new HttpError("SANDBOX_CLOSED", "the server is shutting down");
        return;
      }
      metrics.recordSessionOpened();
      sendJson(res, route, 201, { sessionId: session.id }, { location: `/v1/sessions/${encodeURIComponent(session.id)}` });
    });
  };

  const handleSessionRun = async (req: IncomingMessage, res: ServerResponse, route: string, id: string) => {
    refuseWhileDraining();
    if (!isJsonContentType(req.headers["content-type"])) {
      throw new HttpError("UNSUPPORTED_MEDIA_TYPE", "send the run request as application/json");
    }
    service.checkSession(id); // 404 or 410 before the body is read
    await tracked(async (controller) => {
      const body = await readJson(req);
      if (!body) return;
      await answerRun(req, res, route, controller, body.value, id);
    });
  };

  /** GET /v1/sessions/{id}/saved: the session saved, as a download (the session goes on). */
  const handleSaveSession = async (res: ServerResponse, route: string, id: string) => {
    const blob = await service.saveSession(id);
    metrics.recordResponse(route, 200);
    res.writeHead(200, {
      "content-type": "application/octet-stream",
      "content-length": blob.length,
      "content-disposition": `attachment; filename="${id}.session"`,
      ...(draining ? { connection: "close" } : {}),
    });
    res.end(blob);
  };

  /** POST /v1/sessions/{id}/fork {"count"?: N}: independent copies of the session; their ids. */
  const handleForkSession = async (req: IncomingMessage, res: ServerResponse, route: string, id: string) => {
    refuseWhileDraining();
    service.checkSession(id);
    await tracked(async () => {
      const body = await readJson(req, true);
      if (!body) return;
      const value = (body.value ?? {}) as Record<string, unknown>;
      if (!isPlainObject(value) || Object.keys(value).some((key) => key !== "count")) throw new HttpError("INVALID_REQUEST", 'a fork request is {} or {"count": N}');
      const forks = await service.forkSession(id, value.count);
      for (let i = 0; i < forks.length; i++) metrics.recordSessionOpened();
      sendJson(res, route, 201, { sessionIds: forks.map((fork) => fork.id) });
    });
  };

  const handleDeleteSession = async (res: ServerResponse, route: string, id: string) => {
    // Idempotent, like `session.close` of serve --stdio: deleting an ended session answers the same.
    // Calls in flight answer "cancelled" before the executor goes.
    await service.closeSession(id);
    sendJson(res, route, 200, { closed: true });
  };

  /** POST /v1/calls/{callId}: the caller's answer to a host function call it read on a run's stream. */
  const handleCallAnswer = async (req: IncomingMessage, res: ServerResponse, route: string, callId: string) => {
    const body = await readJson(req);
    if (!body) return;
    if (!isPlainObject(body.value)) throw new HttpError("INVALID_REQUEST", 'a call answer is {"result": ...} or {"error": "message"}');
    service.answerCall(callId, body.value);
    sendJson(res, route, 200, { answered: true });
  };

  /** GET lists a session's files; GET and PUT of …/files/{path} read and write one, as raw bytes. */
  const handleSessionFiles = async (req: IncomingMessage, res: ServerResponse, route: string, id: string, path: string | null) => {
    if (path === null) return sendJson(res, route, 200, { files: await service.listFiles(id) });
    if (req.method === "PUT") {
      service.checkSession(id);
      const body = await readBody(req, maxBodyBytes);
      if (body.kind === "aborted") return;
      if (body.kind === "too-large") throw new HttpError("REQUEST_TOO_LARGE", `request body is larger than ${maxBodyBytes} bytes`, { connection: "close" });
      await service.writeFile(id, path, new Uint8Array(body.bytes.buffer, body.bytes.byteOffset, body.bytes.length));
      return sendJson(res, route, 200, { written: true });
    }
    const bytes = await service.readFile(id, path);
    metrics.recordResponse(route, 200);
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes.length, ...(draining ? { connection: "close" } : {}) });
    res.end(bytes);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let route = "other";
    try {
      const url = new URL(req.url ?? "/", "http://localhost");
      const path = url.pathname;
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
        return await handleOpenSession(req, res, route, url.searchParams);
      }
      let saved = SESSION_SAVED.exec(path);
      if (saved) {
        route = "/v1/sessions/{sessionId}/saved";
        allow(req, ["GET"]);
        return await handleSaveSession(res, route, pathId(saved[1]!));
      }
      saved = SESSION_FORK.exec(path);
      if (saved) {
        route = "/v1/sessions/{sessionId}/fork";
        allow(req, ["POST"]);
        return await handleForkSession(req, res, route, pathId(saved[1]!));
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
      match = SESSION_FILES.exec(path);
      if (match) {
        route = "/v1/sessions/{sessionId}/files";
        allow(req, ["GET", "HEAD"]);
        return await handleSessionFiles(req, res, route, pathId(match[1]!), null);
      }
      match = SESSION_FILE.exec(path);
      if (match) {
        route = "/v1/sessions/{sessionId}/files/{path}";
        allow(req, ["GET", "HEAD", "PUT"]);
        return await handleSessionFiles(req, res, route, pathId(match[1]!), pathId(match[2]!));
      }
      match = CALL.exec(path);
      if (match) {
        route = "/v1/calls/{callId}";
        allow(req, ["POST"]);
        return await handleCallAnswer(req, res, route, pathId(match[1]!));
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
      await service.close();
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
  /** A host function call for the caller to answer at POST /v1/calls/{callId}. */
  call(call: CallEvent): void;
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
    call: (call) => {
      if (res.writableEnded || res.destroyed) return;
      if (mode === "sse") res.write(`event: call\ndata: ${JSON.stringify(call)}\n\n`);
      else res.write(JSON.stringify({ event: "call", ...call }) + "\n");
    },
    end: (name, payload) => {
      write(name, payload);
      res.end();
    },
  };
}
