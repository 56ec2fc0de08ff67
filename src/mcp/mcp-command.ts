import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { ServerFlag } from "../http/server-args.js";
import { packageVersion, runServerCommand, serveUntilSignal } from "../http/server-command.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import { startMcpHttpServer } from "./mcp-http.js";
import { createMcpServer } from "./mcp-server.js";

/** The options `mcp` takes (its `--help` lists these). */
export const MCP_FLAGS = [
  "--http", "--host", "--token", "--max-body-bytes", "--max-concurrency", "--pool", "--grace", "--os-sandbox", "--isolation", "--max-sessions",
  "--header-timeout", "--request-timeout", "--max-connections", "--package", "--wheelhouse",
] as const satisfies readonly ServerFlag[];

/** The options of MCP_FLAGS that only the HTTP transport uses. */
export const MCP_HTTP_ONLY_FLAGS = ["--http", "--host", "--token", "--max-body-bytes", "--grace", "--header-timeout", "--request-timeout", "--max-connections"] as const satisfies readonly ServerFlag[];

/**
 * `wasmbox mcp [options]`: an MCP server on stdio (stdout carries only protocol messages;
 * diagnostics go to stderr). It ends when its input ends (exit 0), or on SIGTERM, SIGINT, SIGHUP
 * or its parent exiting (exit 128 + the signal's number): in-flight runs are cancelled and every
 * executor stopped. On stdio it answers the client before the runtime is prepared (a machine's
 * first start makes the snapshot, seconds): the first tool call waits for it and, with a
 * progressToken, hears what is made.
 *
 * `wasmbox mcp --http PORT [--host ADDR] [--token T] [--max-body-bytes N] [--grace T] ...`: the
 * streamable HTTP transport at http://HOST:PORT/mcp; prints `wasmbox: MCP endpoint URL` on stderr.
 */
export function mcpCommand(args: string[]): Promise<number> {
  return runServerCommand("mcp", args, MCP_FLAGS, async (sandbox, options, stop) => {
    if (options.port === undefined) return serveStdio(sandbox, stop.received);
    const server = await startMcpHttpServer(sandbox, {
      port: options.port,
      host: options.host,
      token: options.token,
      maxBodyBytes: options.maxBodyBytes,
      headersTimeoutMs: options.headersTimeoutMs,
      requestTimeoutMs: options.requestTimeoutMs,
      maxConnections: options.maxConnections,
      version: packageVersion(),
    });
    await serveUntilSignal(server, "MCP endpoint", options, stop);
  }, undefined, (options) => options.port === undefined);
}

async function serveStdio(sandbox: Sandbox, signal: Promise<unknown>): Promise<void> {
  const mcp = createMcpServer(sandbox, { version: packageVersion() });
  const transport = new StdioServerTransport();
  // The SDK's stdio transport does not notice end of input: without this the warm executors
  // would keep the process alive after the client has gone.
  const inputEnded = new Promise<void>((resolve) => {
    process.stdin.once("end", resolve);
    process.stdin.once("close", resolve);
    transport.onclose = resolve;
  });
  await mcp.server.connect(transport);
  try {
    const why = await Promise.race([inputEnded.then(() => "input ended"), signal]);
    process.stderr.write(`wasmbox: ${String(why)}: stopping the MCP server\n`);
  } finally {
    // Closing the transport aborts in-flight handlers, so their runs end as "cancelled".
    await mcp.close();
    process.stdin.pause();
  }
}
