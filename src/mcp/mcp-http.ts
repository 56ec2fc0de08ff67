import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { DEFAULT_SHUTDOWN_GRACE_MS } from "../http/http-server.js";
import { DEFAULT_MAX_BODY_BYTES, readBody } from "../http/read-body.js";
import { bearerMatches, hostHeaderAllowed, isLoopbackHost } from "../http/request-guard.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import { createMcpServer, type WasmboxMcpServer } from "./mcp-server.js";
import { createLimitedServer, listen, type ConnectionLimits } from "../http/listen.js";

/** Default time an MCP session may stay unused before it is reaped with its state. */
export const DEFAULT_SESSION_IDLE_MS = 30 * 60 * 1000;
/** Default number of MCP sessions open at once. */
export const DEFAULT_MAX_SESSIONS = 100;

export interface McpHttpServerOptions extends ConnectionLimits {
  /** TCP port; 0 picks a free one. Default 0. */
  port?: number;
  /** Address to bind. Default "127.0.0.1"; anything beyond loopback requires `token`. */
  host?: string;
  /** Bearer token required on /mcp. Required beyond loopback. */
  token?: string;
  /** Largest accepted JSON-RPC body in bytes. Default 8 MiB. */
  maxBodyBytes?: number;
  /**
   * A session unused this long (no request in flight) is closed and its state reaped; the session
   * interpreter (run_code, session: true) has the same idle timeout. Default 30 min.
   */
  sessionIdleMs?: number;
  /** Sessions open at once; one more `initialize` answers 503. Default 100. */
  maxSessions?: number;
  /** Reported as the server's version in `initialize`. */
  version?: string;
}

export interface McpHttpServer {
  readonly host: string;
  readonly port: number;
  /** The MCP endpoint, e.g. "http://127.0.0.1:8080/mcp". */
  readonly url: string;
  /** Number of MCP sessions open now. */
  readonly sessionCount: number;
  /**
   * Stops accepting, gives in-flight requests graceMs (default 10 s), then ends every session
   * (cancelling its runs) and closes every connection. Does not close the sandbox. Idempotent.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

interface Session {
  mcp: WasmboxMcpServer;
  transport: StreamableHTTPServerTransport;
  /** POSTs of this session being handled now (a tool call holds one until it answers). */
  active: number;
  lastUsed: number;
}

/** JSON-RPC error body, the form the SDK's own transport answers with. */
function rpcError(res: ServerResponse, statusCode: number, code: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null });
  res.writeHead(statusCode, { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

/**
 * `wasmbox mcp --http PORT`: the MCP streamable HTTP transport at /mcp, one MCP server (and one
 * session scope) per MCP session, all sharing one Sandbox. Plus GET /healthz.
 */
export async function startMcpHttpServer(sandbox: Sandbox, options: McpHttpServerOptions = {}): Promise<McpHttpServer> {
  const host = options.host ?? "127.0.0.1";
  const loopback = isLoopbackHost(host);
  const token = options.token || undefined;
  if (!loopback && !token) throw new RangeError(`binding ${host} (beyond loopback) requires a token`);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const idleMs = options.sessionIdleMs ?? DEFAULT_SESSION_IDLE_MS;
  const maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
  const sessions = new Map<string, Session>();
  /** Sessions initializing: counted against maxSessions before they have an id. */
  let opening = 0;
  const inFlight = new Set<Promise<void>>();
  let draining = false;

  const endSession = (id: string) => {
    const session = sessions.get(id);
    if (!session) return;
    sessions.delete(id);
    void session.mcp.close();
  };

  const serve = async (session: Session, req: IncomingMessage, res: ServerResponse, body: unknown) => {
    // Only POSTs carry work; a GET is the standalone notification stream, open for the session's life.
    const counts = req.method === "POST";
    if (counts) session.active++;
    session.lastUsed = Date.now();
    try {
      await session.transport.handleRequest(req, res, body);
    } finally {
      if (counts) session.active--;
      session.lastUsed = Date.now();
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (loopback && !hostHeaderAllowed(req.headers.host)) {
      return rpcError(res, 403, -32000, "FORBIDDEN: the Host header must name this machine (localhost, 127.0.0.1 or [::1])");
    }
    if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
      // sessions: MCP sessions; interpreters: sandbox sessions held for run_code's session: true (each an executor).
      const body = JSON.stringify({ status: draining ? "draining" : "ok", sessions: sessions.size, interpreters: sandbox.stats.sessions });
      res.writeHead(draining ? 503 : 200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (token !== undefined && !bearerMatches(req.headers.authorization, token)) {
      return rpcError(res, 401, -32000, "UNAUTHORIZED: missing or wrong bearer token", { "www-authenticate": 'Bearer realm="wasmbox"' });
    }
    if (path !== "/mcp") return rpcError(res, 404, -32000, `NOT_FOUND: the MCP endpoint is /mcp, not ${path}`);
    if (req.method !== "POST" && req.method !== "GET" && req.method !== "DELETE") {
      return rpcError(res, 405, -32000, "METHOD_NOT_ALLOWED: use POST, GET or DELETE", { allow: "POST, GET, DELETE" });
    }

    let body: unknown;
    if (req.method === "POST") {
      const read = await readBody(req, maxBodyBytes);
      if (read.kind === "aborted") return;
      if (read.kind === "too-large") {
        return rpcError(res, 413, -32000, `REQUEST_TOO_LARGE: body is larger than ${maxBodyBytes} bytes`, { connection: "close" });
      }
      try {
        body = JSON.parse(read.bytes.toString("utf8"));
      } catch {
        return rpcError(res, 400, -32700, "Parse error: the body is not valid JSON");
      }
    }

    const sessionId = req.headers["mcp-session-id"];
    if (typeof sessionId === "string") {
      const session = sessions.get(sessionId);
      if (!session) return rpcError(res, 404, -32001, "Session not found");
      return serve(session, req, res, body);
    }
    if (req.method !== "POST" || !isInitializeRequest(body)) {
      return rpcError(res, 400, -32000, "Bad Request: no valid session id; start with initialize");
    }
    if (draining) return rpcError(res, 503, -32000, "SANDBOX_CLOSED: the server is shutting down");
    if (sessions.size + opening >= maxSessions) {
      return rpcError(res, 503, -32000, `too many MCP sessions (${maxSessions}); close one or retry later`, { "retry-after": "5" });
    }

    opening++;
    // The session's interpreter (run_code, session: true) lives as long as an unused MCP session is kept.
    const mcp = createMcpServer(sandbox, { version: options.version, sessionIdleTimeoutMs: idleMs });
    const session: Session = { mcp, transport: undefined as never, active: 0, lastUsed: Date.now() };
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, session);
      },
    });
    session.transport = transport;
    // Set before connect(): the SDK chains its own close handling after this one. Covers DELETE,
    // idle reaping and shutdown alike: the session's state is reaped with it.
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
      void mcp.close();
    };
    try {
      await mcp.server.connect(transport);
      await serve(session, req, res, body);
    } finally {
      opening--;
      if (!transport.sessionId) void mcp.close(); // initialize failed: nothing to keep
    }
  };

  const server: Server = createLimitedServer((req, res) => {
    const task = handle(req, res).catch((error: unknown) => {
      rpcError(res, 500, -32603, `INTERNAL_ERROR: ${error instanceof Error ? error.message : String(error)}`);
    });
    inFlight.add(task);
    void task.finally(() => inFlight.delete(task));
  }, options);
  const { host: boundHost, port: boundPort, origin, sockets } = await listen(server, options.port ?? 0, host);

  const reaper = setInterval(() => {
    const now = Date.now();
    for (const [id, session] of sessions) {
      if (session.active === 0 && now - session.lastUsed > idleMs) endSession(id);
    }
  }, Math.max(1000, Math.min(idleMs / 2, 60_000)));
  reaper.unref();

  let closing: Promise<void> | null = null;
  let deadline = 0;
  const close = async (graceMs: number) => {
    draining = true;
    clearInterval(reaper);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const working = () => [...sessions.values()].some((s) => s.active > 0) || opening > 0;
    deadline = Date.now() + graceMs;
    while (working() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    // Ending a session aborts its handlers' signals: runs still going answer "cancelled".
    await Promise.allSettled([...sessions.values()].map((s) => s.mcp.close()));
    sessions.clear();
    await Promise.race([Promise.allSettled([...inFlight]), new Promise((resolve) => setTimeout(resolve, 1000))]);
    for (const socket of sockets) socket.destroy();
    await closed;
  };

  return {
    host: boundHost,
    port: boundPort,
    url: `${origin}/mcp`,
    get sessionCount() {
      return sessions.size;
    },
    close(closeOptions = {}) {
      if (closing && closeOptions.graceMs === 0) deadline = 0; // a second close with no grace: cancel now
      closing ??= close(closeOptions.graceMs ?? DEFAULT_SHUTDOWN_GRACE_MS);
      return closing;
    },
  };
}
