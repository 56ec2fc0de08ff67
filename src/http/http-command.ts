import { startHttpServer } from "./http-server.js";
import { ServerUsageError, type ServerFlag } from "./server-args.js";
import { packageVersion, runServerCommand, serveUntilSignal } from "./server-command.js";

/** The options `serve --http` takes (its `--help` lists these). */
export const HTTP_SERVE_FLAGS = [
  "--http", "--host", "--token", "--max-body-bytes", "--max-queue", "--max-concurrency", "--pool", "--grace", "--os-sandbox", "--isolation", "--max-sessions",
  "--header-timeout", "--request-timeout", "--max-connections", "--package", "--wheelhouse", "--save-idle-sessions",
] as const satisfies readonly ServerFlag[];

/**
 * `wasmbox serve --http PORT [options]`. Prints `wasmbox: listening on http://HOST:PORT` on stderr
 * once bound; SIGTERM, SIGINT, SIGHUP or the parent exiting drain it (see runServerCommand) and it
 * exits 128 + the signal's number.
 */
export function httpCommand(args: string[]): Promise<number> {
  // `serve` itself is the word before these args; main.ts routes here when --http is present.
  return runServerCommand(
    "serve",
    args,
    HTTP_SERVE_FLAGS,
    async (sandbox, options, stop) => {
      const server = await startHttpServer(sandbox, {
        port: options.port,
        host: options.host,
        token: options.token,
        maxBodyBytes: options.maxBodyBytes,
        maxQueue: options.maxQueue,
        saveIdleSessionsDir: options.saveIdleSessionsDir,
        headersTimeoutMs: options.headersTimeoutMs,
        requestTimeoutMs: options.requestTimeoutMs,
        maxConnections: options.maxConnections,
        version: packageVersion(),
      });
      await serveUntilSignal(server, "listening on", options, stop);
    },
    (options) => {
      if (options.port === undefined) throw new ServerUsageError("serve --http needs a PORT (0 picks a free one)");
    },
  );
}
