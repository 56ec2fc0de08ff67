import { readFileSync } from "node:fs";
import { Sandbox } from "../sandbox/sandbox.js";
import { parseServerArgs, ServerUsageError, type ServerArgs } from "./server-args.js";

/** Reads the package version for the OpenAPI document and the MCP server info. */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "0.0.0";
  }
}

/** The first SIGTERM/SIGINT starts a graceful shutdown; a second one asks to cut it short. */
export interface StopSignals {
  received: Promise<NodeJS.Signals>;
  again: Promise<NodeJS.Signals>;
}

/**
 * Resolves `received` on the first SIGTERM or SIGINT and `again` on the next. The handlers stay
 * installed until `dispose`, so a signal during shutdown does not kill the process before
 * executors are stopped.
 */
export function shutdownSignal(): StopSignals & { dispose: () => void } {
  let first!: (signal: NodeJS.Signals) => void;
  let second!: (signal: NodeJS.Signals) => void;
  const received = new Promise<NodeJS.Signals>((r) => (first = r));
  const again = new Promise<NodeJS.Signals>((r) => (second = r));
  let count = 0;
  const onSignal = (signal: NodeJS.Signals) => (count++ === 0 ? first(signal) : second(signal));
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return {
    received,
    again,
    dispose: () => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    },
  };
}

type Flag = Parameters<typeof parseServerArgs>[1][number];

/** A server that is listening: where, and how to stop it within a grace period. */
export interface ListeningServer {
  url: string;
  close(options: { graceMs: number }): Promise<void>;
}

/**
 * The life of `serve --http` and `mcp`: parse the flags (usage errors exit 2), create the sandbox
 * they describe, run `serve` until it returns, then close the sandbox (waiting for runs in flight,
 * then stopping every executor). `serve` gets the first SIGTERM/SIGINT as a promise; the signal
 * handlers stay installed until the end, so a second signal cannot kill the process mid-shutdown.
 */
export async function runServerCommand(
  args: string[],
  flags: readonly Flag[],
  serve: (sandbox: Sandbox, options: ServerArgs, stop: StopSignals) => Promise<void>,
  check: (options: ServerArgs) => void = () => {},
  prepareInBackground: (options: ServerArgs) => boolean = () => false,
): Promise<number> {
  let options: ServerArgs;
  try {
    options = parseServerArgs(args, flags);
    check(options);
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
  } finally {
    signals.dispose();
  }
  return 0;
}

/**
 * Says where the server listens, waits for a signal, then drains it within the grace period; a
 * second signal cancels the runs still going at once.
 */
export async function serveUntilSignal(server: ListeningServer, what: string, options: ServerArgs, stop: StopSignals): Promise<void> {
  process.stderr.write(`wasmbox: ${what} ${server.url}${options.token ? " (bearer token required)" : ""}\n`);
  const signal = await stop.received;
  process.stderr.write(`wasmbox: ${signal}: draining (grace ${options.graceMs} ms; signal again to cancel runs now)\n`);
  const closing = server.close({ graceMs: options.graceMs });
  void stop.again.then((again) => {
    process.stderr.write(`wasmbox: ${again} again: cancelling runs now\n`);
    void server.close({ graceMs: 0 });
  });
  await closing;
}
