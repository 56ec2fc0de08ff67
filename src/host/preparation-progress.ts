/**
 * What the host is doing while it prepares a runtime the first time on a machine (the memory
 * snapshot, a package environment, the executors' compile cache): seconds to tens of seconds in
 * which a caller would otherwise see nothing. The adapters show it: the CLI as a line on stderr,
 * the MCP server as progress notifications, the Python client as log records (from the stdio
 * host's stderr). A process-wide channel, because the cache it describes is machine-wide.
 */

export type PreparationStep = "snapshot" | "compile-cache";

export interface PreparationEvent {
  /**
   * "started": this process builds it; "waiting": another process is building it (a lock in the
   * cache) and this one waits for its result; "finished" / "failed": the end of either.
   */
  phase: "started" | "waiting" | "finished" | "failed";
  step: PreparationStep;
  /** What it is for, for people: "Python", "Python with sympy, networkx". */
  subject: string;
  /** The artefact's path in the cache. */
  path: string;
  /** Since this step started (0 on "started"/"waiting"). */
  elapsedMs: number;
  /** On "waiting": the pid of the process building it. */
  ownerPid?: number;
  /** On "failed": why. */
  error?: string;
}

export type PreparationListener = (event: PreparationEvent) => void;

const listeners = new Set<PreparationListener>();

/** Calls `listener` for every preparation step of this process; returns the unsubscribe function. */
export function onPreparation(listener: PreparationListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function reportPreparation(event: PreparationEvent): void {
  for (const listener of listeners) {
    try {
      listener(event);
    } catch {
      // a display's failure must not fail the preparation
    }
  }
}

/** One line for people, e.g. "making the memory snapshot for Python (once per machine)". */
export function describePreparation(event: Pick<PreparationEvent, "step" | "subject">): string {
  return event.step === "snapshot"
    ? `making the memory snapshot for ${event.subject} (once per machine)`
    : `compiling the executor's code cache for ${event.subject} (once per machine)`;
}
