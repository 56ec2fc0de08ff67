import { availableParallelism } from "node:os";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { RunResult } from "../core/result.js";
import type { RunRequest } from "../core/request.js";
import { normalizeRunRequest } from "../sandbox/normalize-request.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import { HttpError, toHttpError } from "./http-errors.js";
import { HttpMetrics } from "./http-metrics.js";
import { openApiDocument } from "./openapi.js";
import { DEFAULT_MAX_BODY_BYTES, readBody } from "./read-body.js";
import { bearerMatches, hostHeaderAllowed, isLoopbackHost } from "./request-guard.js";

/** Default number of runs that may wait for a slot beyond the running ones before requests get 429. */
export const DEFAULT_MAX_QUEUE = 64;
/** Default time in-flight runs get to finish on shutdown before they are cancelled. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

export interface HttpServerOptions {
  /** TCP port; 0 picks a free one (read it back from `port`). Default 0. */
  port?: number;
  /** Address to bind. Default "127.0.0.1". Anything beyond loopback requires `token`. */
  host?: string;
  /** Bearer token every route but /healthz and /openapi.json requires. Required beyond loopback. */
  token?: string;
  /** Largest accepted request body in bytes. Default 8 MiB. */
  maxBodyBytes?: number;
  /** Runs that may wait beyond the running ones; one more answers 429. Default 64. */
  maxQueue?: number;
  /**
   * The sandbox's maxConcurrency (runs at once), used to tell running from queued runs.
   * Default: the facade's default, max(2, CPU cores). Pass the value the Sandbox was created with.
   */
  maxConcurrency?: number;
  /** The sandbox's poolSize, reported on /metrics when given. */
  poolSize?: number;
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
   * (they answer status "cancelled") and closes every connection. Does not close the sandbox.
   * Idempotent.
   */
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

const SESSION_RUN = /^\/v1\/sessions\/[^/]+\/run$/;
const SESSION = /^\/v1\/sessions\/[^/]+$/;

/**
 * Starts `wasmbox serve --http` on a node:http server (which Deno provides too): POST /v1/run,
 * the session routes (501 until issue 4), /healthz, /metrics and /openapi.json. Resolves once
 * the port is bound. The sandbox stays the caller's to close, after `close()` here.
 */
export async function startHttpServer(sandbox: Sandbox, options: HttpServerOptions = {}): Promise<HttpServer> {
  const host = options.host ?? "127.0.0.1";
  const loopback = isLoopbackHost(host);
  const token = options.token || undefined;
  if (!loopback && !token) throw new RangeError(`binding ${host} (beyond loopback) requires a token`);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
  const maxConcurrency = options.maxConcurrency ?? Math.max(2, availableParallelism());
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) throw new RangeError("maxBodyBytes must be an integer >= 1");
  if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new RangeError("maxQueue must be an integer >= 0");
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1) throw new RangeError("maxConcurrency must be an integer >= 1");
  const openApi = JSON.stringify(openApiDocument(options.version ?? "0.0.0", { auth: token !== undefined }));

  const metrics = new HttpMetrics();
  /** Requests admitted to /v1/run and not yet answered: the number the queue limit counts. */
  let admitted = 0;
  /** Admitted requests that have reached sandbox.run(). */
  let inRun = 0;
  let draining = false;
  const runs = new Set<{ controller: AbortController; done: Promise<void> }>();
  const sockets = new Set<Socket>();

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
      throw new HttpError(405, "METHOD_NOT_ALLOWED", `use ${methods.join(" or ")}`, { allow: methods.join(", ") });
    }
  };

  const handleRun = async (req: IncomingMessage, res: ServerResponse, route: string) => {
    if (draining) throw new HttpError(503, "SANDBOX_CLOSED", "the server is shutting down");
    if (!isJsonContentType(req.headers["content-type"])) {
      throw new HttpError(415, "UNSUPPORTED_MEDIA_TYPE", "send the run request as application/json");
    }
    // Shed load before reading the body: a full queue costs the caller one round trip, not 8 MiB.
    if (admitted >= maxConcurrency + maxQueue) {
      throw new HttpError(429, "QUEUE_FULL", `${maxConcurrency} runs are running and ${maxQueue} waiting; retry later`, { "retry-after": "1" });
    }
    admitted++;
    const controller = new AbortController();
    let finished!: () => void;
    const entry = { controller, done: new Promise<void>((resolve) => (finished = resolve)) };
    runs.add(entry);
    try {
      const body = await readBody(req, maxBodyBytes);
      if (body.kind === "aborted") return;
      if (body.kind === "too-large") {
        // The rest of the body is never read: close the connection rather than drain it.
        throw new HttpError(413, "REQUEST_TOO_LARGE", `request body is larger than ${maxBodyBytes} bytes`, { connection: "close" });
      }
      let request: unknown;
      try {
        request = JSON.parse(body.bytes.toString("utf8"));
      } catch (error) {
        throw new HttpError(400, "INVALID_REQUEST", `request body is not valid JSON: ${(error as Error).message}`);
      }
      normalizeRunRequest(request); // validate before taking a slot, so bad input answers at once
      // Closing the connection before the answer is complete cancels the run.
      res.once("close", () => {
        if (!res.writableFinished) controller.abort();
      });
      const mode = streamMode(req.headers.accept);
      const stream = mode === "json" ? null : openStream(res, mode, draining);
      if (stream) metrics.recordResponse(route, 200);
      inRun++;
      let result: RunResult;
      try {
        result = await sandbox.run(request as RunRequest, {
          signal: controller.signal,
          onStdout: stream ? (chunk) => stream.event("stdout", chunk) : undefined,
          onStderr: stream ? (chunk) => stream.event("stderr", chunk) : undefined,
        });
      } catch (error) {
        if (!stream) throw error;
        stream.end("error", toHttpError(error).toBody().error);
        return;
      } finally {
        inRun--;
      }
      metrics.recordRun(result.status, result.durationMs);
      if (stream) stream.end("result", result);
      else sendJson(res, route, 200, result);
    } finally {
      admitted--;
      runs.delete(entry);
      finished();
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let route = "other";
    try {
      const path = new URL(req.url ?? "/", "http://localhost").pathname;
      if (loopback && !hostHeaderAllowed(req.headers.host)) {
        throw new HttpError(403, "FORBIDDEN", "the Host header must name this machine (localhost, 127.0.0.1 or [::1])");
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
        throw new HttpError(401, "UNAUTHORIZED", "missing or wrong bearer token", { "www-authenticate": 'Bearer realm="wasmbox"' });
      }
      if (path === "/metrics") {
        route = path;
        allow(req, ["GET", "HEAD"]);
        const running = Math.min(inRun, maxConcurrency);
        const text = metrics.render({
          running,
          queued: admitted - running,
          maxConcurrency,
          maxQueue,
          poolSize: options.poolSize,
          draining,
        });
        return send(res, route, 200, text, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      }
      if (path === "/v1/run") {
        route = path;
        allow(req, ["POST"]);
        return await handleRun(req, res, route);
      }
      // Seam for issue 4: these routes call sandbox.session() once sessions exist.
      if (path === "/v1/sessions" || SESSION_RUN.test(path) || SESSION.test(path)) {
        route = path === "/v1/sessions" ? path : SESSION_RUN.test(path) ? "/v1/sessions/{sessionId}/run" : "/v1/sessions/{sessionId}";
        allow(req, route === "/v1/sessions/{sessionId}" ? ["DELETE"] : ["POST"]);
        throw new HttpError(501, "NOT_IMPLEMENTED", "sessions are not available yet");
      }
      throw new HttpError(404, "NOT_FOUND", `no route ${path}`);
    } catch (error) {
      sendError(res, route, toHttpError(error));
    }
  };

  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" || address.address.includes(":") ? `[${address.address}]` : address.address;

  let closing: Promise<void> | null = null;
  const close = async (graceMs: number) => {
    draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    (server as Server & { closeIdleConnections?: () => void }).closeIdleConnections?.();
    const pending = () => Promise.allSettled([...runs].map((run) => run.done));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"grace-over">((resolve) => (timer = setTimeout(() => resolve("grace-over"), graceMs)));
    try {
      if ((await Promise.race([pending(), graceOver])) === "grace-over") {
        // Reject first, then stop: the runs answer "cancelled" to their callers.
        for (const run of runs) run.controller.abort();
        await pending();
      }
    } finally {
      clearTimeout(timer);
    }
    // Answers are written; give sockets a turn to flush, then drop whatever is still open.
    await new Promise((resolve) => setImmediate(resolve));
    for (const socket of sockets) socket.destroy();
    await closed;
  };

  return {
    host: address.address,
    port: address.port,
    url: `http://${urlHost}:${address.port}`,
    close(closeOptions = {}) {
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
