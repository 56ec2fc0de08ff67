import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface Listening {
  /** The bound address, e.g. "127.0.0.1". */
  host: string;
  port: number;
  /** "http://host:port", with IPv6 addresses in brackets. */
  origin: string;
  /** Connections open now, so shutdown can end idle keep-alive ones. */
  sockets: Set<Socket>;
}

/** How long a client may take to send a request, and how many may be connected at once. */
export interface ConnectionLimits {
  /** Time to send the request headers, in milliseconds (slow-header clients are cut off). Default 10 s. */
  headersTimeoutMs?: number;
  /** Time to send the whole request, body included, in milliseconds. Default 60 s. Answering may take longer. */
  requestTimeoutMs?: number;
  /** Connections open at once; more are closed as they arrive. Default 256. */
  maxConnections?: number;
}

export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_CONNECTIONS = 256;

/**
 * An HTTP server with the limits applied. Node enforces the two timeouts from a periodic check
 * (connectionsCheckingInterval, 30 s by default): it runs every second here, so a slow client is
 * cut off within about a second of its deadline instead of half a minute later.
 */
export function createLimitedServer(handler: RequestListener<typeof IncomingMessage, typeof ServerResponse>, limits: ConnectionLimits = {}): Server {
  const headersTimeoutMs = limits.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const requestTimeoutMs = Math.max(limits.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, headersTimeoutMs);
  const maxConnections = limits.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  for (const [name, value] of [["headersTimeoutMs", headersTimeoutMs], ["requestTimeoutMs", requestTimeoutMs], ["maxConnections", maxConnections]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be an integer >= 1`);
  }
  const server = createServer({ headersTimeout: headersTimeoutMs, requestTimeout: requestTimeoutMs, connectionsCheckingInterval: 1_000 }, handler);
  server.maxConnections = maxConnections;
  return server;
}

/** Binds `server` to host:port (0 picks a free port), tracking its open connections. */
export async function listen(server: Server, port: number, host: string): Promise<Listening> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.address.includes(":") ? `[${address.address}]` : address.address;
  return { host: address.address, port: address.port, origin: `http://${urlHost}:${address.port}`, sockets };
}
