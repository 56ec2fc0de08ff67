import { readFileSync } from "node:fs";
import { shutdownSignals, type ShutdownSignals } from "../cli/shutdown-signals.js";
import { Sandbox } from "../sandbox/sandbox.js";
import { parseServerArgs, ServerUsageError, type ServerArgs, type ServerFlag } from "./server-args.js";

/** Reads the package version for the OpenAPI document and the MCP server info. */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "0.0.0";
  }
}

/** A server that is listening: where, and how to stop it within a grace period. */
export interface ListeningServer {
  url: string;
  close(options: { graceMs: number }): Promise<void>;
}

/**
 * The life of every server command (`serve --stdio`, `serve --http`, `mcp`, `mcp --http`): parse
 * the flags (usage errors exit 2, naming `command`'s help), create the sandbox they describe, run
 * `serve` until it returns, then close the sandbox (waiting for runs in flight, then stopping every
 * executor). `serve` learns of the first reason to stop (SIGTERM, SIGINT, SIGHUP, the parent gone:
 * see shutdown-signals.ts) and must return soon after it; the handlers stay installed until the
 * end, so a second signal cannot kill the process mid-shutdown. Returns the exit status: 0 when
 * `serve` ended by itself (input ended, a shutdown request), 128 + the signal's number otherwise.
 */
export async function runServerCommand(
  command: string,
  args: string[],
  flags: readonly ServerFlag[],
  serve: (sandbox: Sandbox, options: ServerArgs, stop: ShutdownSignals) => Promise<void>,
  check: (options: ServerArgs) => void = () => {},
  prepareInBackground: (options: ServerArgs) => boolean = () => false,
): Promise<number> {
  let options: ServerArgs;
  try {
    options = parseServerArgs(args, flags);
    check(options);
  } catch (error) {
    if (!(error instanceof ServerUsageError)) throw error;
    process.stderr.write(`wasmbox: ${error.message} (see wasmbox ${command} --help)\n`);
    return 2;
  }
  // Listening starts before the sandbox does: a signal while executors start still shuts down cleanly.
  const signals = shutdownSignals();
  try {
    const sandbox = await Sandbox.create({
      poolSize: options.poolSize,
      maxConcurrency: options.maxConcurrency,
      osSandbox: options.osSandbox,
      isolation: options.isolation,
      maxSessions: options.maxSessions,
      packages: options.packages,
      wheelhouse: options.wheelhouse,
      prepareInBackground: prepareInBackground(options),
    });
    try {
      await serve(sandbox, options, signals);
    } finally {
      await sandbox.close();
    }
    return signals.exitCode();
  } finally {
    signals.dispose();
  }
}

/**
 * Says where the server listens, waits for a signal, then drains it within the grace period; a
 * second signal cancels the runs still going at once.
 */
export async function serveUntilSignal(server: ListeningServer, what: string, options: ServerArgs, stop: ShutdownSignals): Promise<void> {
  process.stderr.write(`wasmbox: ${what} ${server.url}${options.token ? " (bearer token required)" : ""}\n`);
  const reason = await stop.received;
  process.stderr.write(`wasmbox: ${reason}: draining (grace ${options.graceMs} ms; signal again to cancel runs now)\n`);
  const closing = server.close({ graceMs: options.graceMs });
  void stop.again.then((again) => {
    process.stderr.write(`wasmbox: ${again} again: cancelling runs now\n`);
    void server.close({ graceMs: 0 });
  });
  await closing;
}
