import type { Server } from "node:http";
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
