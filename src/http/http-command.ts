import { readFileSync } from "node:fs";
import { Sandbox } from "../sandbox/sandbox.js";
import { startHttpServer } from "./http-server.js";
import { parseServerArgs, ServerUsageError } from "./server-args.js";

/** Reads the package version for the OpenAPI document and the MCP server info. */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "0.0.0";
  }
}

/**
 * Resolves on the first SIGTERM or SIGINT. The handlers stay installed until `dispose`, so a
 * signal during shutdown does not kill the process before executors are stopped.
 */
export function shutdownSignal(): { received: Promise<NodeJS.Signals>; dispose: () => void } {
  let resolve!: (signal: NodeJS.Signals) => void;
  const received = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const onSignal = (signal: NodeJS.Signals) => resolve(signal);
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return {
    received,
    dispose: () => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    },
  };
}

/**
 * `wasmbox serve --http PORT [--host ADDR] [--token T] [--max-body-bytes N] [--max-queue N]
 * [--max-concurrency N] [--pool N] [--grace T] [--os-sandbox MODE]`. Prints
 * `wasmbox: listening on http://HOST:PORT` on stderr once bound; SIGTERM/SIGINT drain and exit 0.
 */
export async function httpCommand(args: string[]): Promise<number> {
  let options;
  try {
    // `serve` itself is the word before these args; main.ts routes here when --http is present.
    options = parseServerArgs(args, [
      "--http", "--host", "--token", "--max-body-bytes", "--max-queue", "--max-concurrency", "--pool", "--grace", "--os-sandbox",
    ]);
    if (options.port === undefined) throw new ServerUsageError("serve --http needs a PORT (0 picks a free one)");
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
      const server = await startHttpServer(sandbox, {
        port: options.port,
        host: options.host,
        token: options.token,
        maxBodyBytes: options.maxBodyBytes,
        maxQueue: options.maxQueue,
        version: packageVersion(),
      });
      process.stderr.write(`wasmbox: listening on ${server.url}${options.token ? " (bearer token required)" : ""}\n`);
      const signal = await signals.received;
      process.stderr.write(`wasmbox: ${signal}: draining (grace ${options.graceMs} ms)\n`);
      await server.close({ graceMs: options.graceMs });
    } finally {
      // Waits for runs still in flight, then stops every executor.
      await sandbox.close();
    }
  } finally {
    signals.dispose();
  }
  return 0;
}
