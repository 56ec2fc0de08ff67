import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { packageVersion, shutdownSignal } from "../http/http-command.js";
import { parseServerArgs, ServerUsageError, type ServerArgs } from "../http/server-args.js";
import { Sandbox } from "../sandbox/sandbox.js";
import { startMcpHttpServer } from "./mcp-http.js";
import { createMcpServer } from "./mcp-server.js";

/**
 * `wasmbox mcp [--pool N] [--max-concurrency N] [--os-sandbox MODE]`: an MCP server on stdio
 * (stdout carries only protocol messages; diagnostics go to stderr). It ends when its input ends
 * or on SIGTERM/SIGINT: in-flight runs are cancelled and every executor stopped.
 *
 * `wasmbox mcp --http PORT [--host ADDR] [--token T] [--max-body-bytes N] [--grace T] ...`: the
 * streamable HTTP transport at http://HOST:PORT/mcp; prints `wasmbox: MCP endpoint URL` on stderr.
 */
export async function mcpCommand(args: string[]): Promise<number> {
  let options: ServerArgs;
  try {
    options = parseServerArgs(args, [
      "--http", "--host", "--token", "--max-body-bytes", "--max-concurrency", "--pool", "--grace", "--os-sandbox",
    ]);
  } catch (error) {
    if (!(error instanceof ServerUsageError)) throw error;
    process.stderr.write(`wasmbox: ${error.message} (see wasmbox --help)\n`);
    return 2;
  }
  const signals = shutdownSignal();
  try {
    const sandbox = await Sandbox.create({
      poolSize: options.poolSize,
      maxConcurrency: options.maxConcurrency,
      osSandbox: options.osSandbox,
    });
    try {
      if (options.port === undefined) await serveStdio(sandbox, signals.received);
      else {
        const server = await startMcpHttpServer(sandbox, {
          port: options.port,
          host: options.host,
          token: options.token,
          maxBodyBytes: options.maxBodyBytes,
          version: packageVersion(),
        });
        process.stderr.write(`wasmbox: MCP endpoint ${server.url}${options.token ? " (bearer token required)" : ""}\n`);
        const signal = await signals.received;
        process.stderr.write(`wasmbox: ${signal}: draining (grace ${options.graceMs} ms)\n`);
        await server.close({ graceMs: options.graceMs });
      }
    } finally {
      await sandbox.close();
    }
  } finally {
    signals.dispose();
  }
  return 0;
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
