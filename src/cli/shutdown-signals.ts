/**
 * When a long-lived server (`serve --stdio`, `serve --http`, `mcp`, `mcp --http`) should stop, and
 * the exit status that says why. Used by every server command through runServerCommand, so they
 * all stop the same way: on SIGTERM, SIGINT or SIGHUP, and when the process that started them is
 * gone (issue 17: `npx wasmbox serve --http 8787 &` then `kill %1` killed npx, and the server it
 * had started kept serving).
 */

/** Why a server stops: a signal, or its parent process exiting. */
export type StopReason = "SIGTERM" | "SIGINT" | "SIGHUP" | "parent exited";

/** 128 + the signal's number: what a shell reports for a process the signal ended. */
export const SIGNAL_EXIT_CODES = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;

const SIGNALS = Object.keys(SIGNAL_EXIT_CODES) as (keyof typeof SIGNAL_EXIT_CODES)[];

/** How often the parent is checked. An unref'd timer: it never keeps the process alive itself. */
export const PARENT_POLL_MS = 500;

export interface ShutdownSignals {
  /** Resolves with the first reason to stop. */
  readonly received: Promise<StopReason>;
  /** Resolves on the next signal after the first: cut a graceful shutdown short. */
  readonly again: Promise<StopReason>;
  /** Aborted when `received` resolves, for what takes an AbortSignal. */
  readonly signal: AbortSignal;
  /**
   * The exit status for how the server stopped: 0 when no reason arrived (its input ended, a
   * shutdown request), else 128 + the signal's number; a parent that exited counts as a hang-up
   * (129), the signal a terminal sends when the session it belonged to is gone.
   */
  exitCode(): number;
  /** Removes the signal handlers and stops watching the parent. Idempotent. */
  dispose(): void;
}

/**
 * Starts listening for SIGTERM, SIGINT and SIGHUP and watching the parent process. The handlers
 * stay installed until `dispose`, so a signal during shutdown cannot kill the process before its
 * executors are stopped. Works on Node and on Deno's Node compatibility layer (`process.ppid`,
 * `process.on(signal)`), which the Python client runs this CLI on.
 */
export function shutdownSignals(options: { parentPollMs?: number } = {}): ShutdownSignals {
  let first!: (reason: StopReason) => void;
  let second!: (reason: StopReason) => void;
  const received = new Promise<StopReason>((resolve) => (first = resolve));
  const again = new Promise<StopReason>((resolve) => (second = resolve));
  const controller = new AbortController();
  let reason: StopReason | null = null;
  const stop = (why: StopReason) => {
    if (reason !== null) {
      if (why !== "parent exited") second(why);
      return;
    }
    reason = why;
    // Whoever read our output may be gone with the parent: a write to its pipe then fails with
    // EPIPE, which must not end the process before its executors are stopped.
    for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});
    controller.abort(why);
    first(why);
  };

  const installed: [string, () => void][] = [];
  for (const name of SIGNALS) {
    const handler = () => stop(name);
    try {
      process.on(name, handler);
      installed.push([name, handler]);
    } catch {
      // A runtime that cannot listen for this signal here (Deno on Windows takes only SIGINT and
      // SIGBREAK): the default action stays, and the others still stop the server cleanly.
    }
  }

  // Node has no prctl(PR_SET_PDEATHSIG), so nothing tells a process that its parent died. On Unix
  // an orphan is re-parented (to init or the nearest subreaper), which changes its ppid: polling
  // it notices. That is the case of a server started by `npx` (npm forwards SIGTERM to its `sh -c`,
  // which dies and leaves the server orphaned) or by a client killed outright, which can send
  // nothing. On Windows a process keeps its parent's pid when the parent exits: nothing to poll.
  let parentWatch: ReturnType<typeof setInterval> | undefined;
  const parent = process.ppid;
  if (process.platform !== "win32" && parent > 1) {
    parentWatch = setInterval(() => {
      if (process.ppid !== parent) stop("parent exited");
    }, options.parentPollMs ?? PARENT_POLL_MS);
    parentWatch.unref();
  }

  return {
    received,
    again,
    signal: controller.signal,
    exitCode: () => (reason === null ? 0 : reason === "parent exited" ? SIGNAL_EXIT_CODES.SIGHUP : SIGNAL_EXIT_CODES[reason]),
    dispose: () => {
      clearInterval(parentWatch);
      parentWatch = undefined;
      for (const [name, handler] of installed.splice(0)) process.off(name, handler);
    },
  };
}
