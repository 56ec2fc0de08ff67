/**
 * What the executor's main isolate and a runtime worker say to each other. Every runtime adapter
 * (src/runtimes/<language>/worker.ts) speaks it: the main isolate relays host requests and signs
 * what the worker posts, after checking its shape (guest code shares the worker's realm).
 *
 * main -> worker: init, then run / fs.   worker -> main: ready, out, call, result, fs-reply, fatal
 * (and snapshot, in snapshot mode; after a run with `reset`, ready again or retire; shared, when
 * asked to offer it).
 */
export type WorkerInit = {
  t: "init";
  /** The runtime's own launch arguments (asset paths, snapshot path, …), as the host gave them. */
  args: string[];
  /** Make the runtime's memory snapshot and post it instead of becoming ready. */
  makeSnapshot: boolean;
  /** Int32 [0]: 2 asks the guest to stop (Python's SIGINT). */
  interrupt: SharedArrayBuffer;
  /** Where host-call replies arrive: see host-call-layout.ts. */
  calls: SharedArrayBuffer;
  /** Where guest output goes: see output-ring.ts. */
  output: SharedArrayBuffer;
  /**
   * Capture the warm state so runs can be followed by a reset to it ("interpreter" isolation).
   * Runtimes that cannot reset ignore it, and the host never asks them to.
   */
  keepPristine: boolean;
  /**
   * Run trusted warm-up programs before `ready`, so later runs do not compile lazily. Worth it for
   * an executor that waits in a pool; not for one a run is already waiting for.
   */
  warmUp: boolean;
  /**
   * Isolate mode, first worker only: post `{t: "shared", assets}` before `ready` with what later
   * workers may reuse (Python: the compiled WebAssembly.Module, whose code V8 shares between
   * isolates). Sent before any guest code exists; the main isolate accepts it from no one else.
   */
  offerShared: boolean;
  /** What the first worker shared, handed to each later one; undefined for the first. */
  shared: unknown;
};

export type WorkerRun = {
  t: "run";
  code: string;
  filename: string;
  files: [string, Uint8Array][];
  stdin: Uint8Array;
  argv: string[];
  env: Record<string, string>;
  memoryLimitBytes: number;
  maxOutputBytes: number;
  /** Caps on the files the run gives back (each, all together): files past them are listed, not carried. */
  maxOutputFileBytes: number;
  maxOutputFilesTotalBytes: number;
  /** Keep globals and files for the next run (a session). */
  keepState: boolean;
  /** Host functions this run may call. */
  tools: string[];
  /**
   * After the result, restore the captured warm state and post `ready` again (or `retire` with the
   * reason it cannot be restored).
   */
  reset: boolean;
};

export type WorkerFiles =
  | { t: "fs"; rid: number; op: "read"; path: string }
  | { t: "fs"; rid: number; op: "write"; path: string; data: Uint8Array }
  | { t: "fs"; rid: number; op: "list" }
  /** A session's interpreter state as bytes (runtimes with `state` hooks; Python). */
  | { t: "fs"; rid: number; op: "save" }
  /** Puts saved state into this fresh worker. */
  | { t: "fs"; rid: number; op: "restore"; data: Uint8Array };

export type WorkerMessage = WorkerInit | WorkerRun | WorkerFiles;
