/**
 * `wasmbox serve --stdio [options]` (JSON lines, serve-stdio.ts) and `wasmbox serve --http PORT
 * [options]` (the HTTP API, src/http/). Both live and stop as every server command does
 * (runServerCommand): SIGTERM, SIGINT, SIGHUP or the parent exiting stop them, leaving no executor.
 */
import { HTTP_SERVE_FLAGS, httpCommand } from "../http/http-command.js";
import { ServerUsageError, type ServerFlag } from "../http/server-args.js";
import { runServerCommand } from "../http/server-command.js";
import { serveStdio } from "./serve-stdio.js";

/** The options `serve --stdio` takes (its `--help` lists these). */
export const SERVE_STDIO_FLAGS = [
  "--stdio", "--max-request-bytes", "--pool", "--max-sessions", "--isolation", "--package", "--wheelhouse", "--os-sandbox", "--save-idle-sessions",
] as const satisfies readonly ServerFlag[];

/** Whether `serve`'s arguments ask for the HTTP server (`--http PORT` or `--http=PORT`). */
export function wantsHttp(args: readonly string[]): boolean {
  return args.some((a) => a === "--http" || a.startsWith("--http="));
}

/** `wasmbox serve ARGS`: returns the exit status. */
export function serveCommand(args: string[]): Promise<number> {
  if (wantsHttp(args)) return httpCommand(args);
  return runServerCommand(
    "serve",
    args,
    SERVE_STDIO_FLAGS,
    // Ends when input ends or {"shutdown": true} arrives (exit 0), or at once on a stop reason:
    // the runs in flight are cancelled and answered, then runServerCommand closes the sandbox.
    (sandbox, options, stop) => serveStdio(sandbox, process.stdin, process.stdout, { maxRequestBytes: options.maxRequestBytes, signal: stop.signal, saveIdleSessionsDir: options.saveIdleSessionsDir }),
    (options) => {
      if (!options.stdio) throw new ServerUsageError("serve needs --stdio or --http PORT");
    },
  );
}
