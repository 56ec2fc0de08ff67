/**
 * Runs INSIDE the executor, in the runtime's worker: the worker-protocol plumbing every runtime
 * shares (init and ready, snapshot making, runs, the reset after a run, session file operations,
 * output, the changed-files diff), so an adapter only loads its interpreter and runs one program.
 * Guest code may share this realm (it can for Pyodide; QuickJS and WASI guests cannot reach it), so
 * nothing secret lives here: the main isolate checks everything this worker posts.
 */
import "./worker-hardening.js";
import { MemFs } from "../vfs/wasi-memfs.js";
import { collectOutputFiles, type FileListing } from "../vfs/output-files.js";
import type { WorkerFiles, WorkerInit, WorkerMessage, WorkerRun } from "./worker-protocol.js";
import { setGrowCap } from "./memory-cap.js";
import { ringWriter } from "./output-ring.js";

export { setGrowCap };

declare const self: {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
};

/** The working directory of every run, as the guest sees it. */
export const SANDBOX = "/sandbox";

export interface GuestErrorInfo {
  type: string;
  message: string;
  traceback: string;
}

/** What an adapter reports for one run; the kit adds the changed files. */
export interface RunOutcome {
  status: "ok" | "error" | "memory_limit";
  exitCode: number | null;
  value: unknown;
  /** The value in the tagged lossless form (docs/values.md), where the runtime makes one. */
  valueLossless?: unknown;
  valueRepr: string | null;
  error: GuestErrorInfo | null;
  /** Rich results (display bundles, core/result.ts RichResult), where the runtime makes them. */
  results?: unknown[];
  /** Set when the rich results went past the output cap: the bytes they would have taken. */
  resultsOverLimit?: number;
}

/** The run's files under /sandbox, by relative path: how the kit fills inputs, diffs outputs and serves session file operations. */
export interface SandboxTree {
  /** Writes a whole file, making its parent directories. */
  write(path: string, bytes: Uint8Array): void;
  read(path: string): Uint8Array;
  /** Every regular file, read only on demand. */
  listing(): FileListing[];
}

/** A run's file system (`fs`, what the adapter works with) and the kit's view of it. */
export interface Workspace<F> {
  fs: F;
  tree: SandboxTree;
}

export interface RunContext<F = MemFs> {
  run: WorkerRun;
  /** /sandbox holds the run's input files (and, in a session, what earlier runs left); /tmp is empty. */
  fs: F;
  /** Sends guest output on (through the output ring to the main isolate, which frames and signs it). */
  write(fd: 1 | 2, bytes: Uint8Array): void;
  /** True once the host asked the run to stop (timeout). */
  interrupted(): boolean;
  /** The shared interrupt cell: Int32 [0] becomes 2 on interrupt; usable with Atomics.wait. */
  interruptCell: Int32Array<ArrayBufferLike>;
}

export interface LoadContext {
  init: WorkerInit;
  /** Where guest output goes (runtimes that own their stdio, like Pyodide, hold on to it). */
  write(fd: 1 | 2, bytes: Uint8Array): void;
}

/** For "interpreter" isolation: the warm state captured once, and put back after each run. */
export interface ResetHooks {
  /** After the warm-up, before `ready` and before any guest code. */
  capture(): void;
  /** Before the result is posted: nothing the run scheduled may fire after it. */
  beforeResult(): void;
  /** After the result: null when the warm state is back, else why it cannot be (the host then retires the executor). */
  restore(): Promise<string | null>;
}

export interface RuntimeAdapter<F = MemFs> {
  /**
   * Loads and compiles the runtime once per executor, before it reports ready. What it returns in
   * `shared` is offered to later workers (isolate mode; see WorkerInit.offerShared).
   */
  load(context: LoadContext): Promise<{ shared?: unknown } | void>;
  /** Makes the runtime's memory snapshot instead of serving (init.makeSnapshot). Runtimes without one leave it out. */
  makeSnapshot?(init: WorkerInit): Promise<Uint8Array>;
  /**
   * The file system for a run (`run` null: a session file operation between runs). Defaults to an
   * in-memory MemFs, fresh per run unless the run keeps state, whose quota is the run's memory limit.
   */
  workspace?(previous: Workspace<F> | null, run: WorkerRun | null): Workspace<F>;
  run(context: RunContext<F>): RunOutcome | Promise<RunOutcome>;
  /**
   * Trusted programs put through the whole run path with their output discarded before `ready`
   * (when init.warmUp), so a run does not pay for compiling what it calls first.
   */
  warmUpPrograms?: readonly string[];
  reset?: ResetHooks;
  /**
   * A session's state as bytes and back (save, restore, fork). Each throws an error whose message
   * says what cannot be saved or restored. Runtimes without them refuse.
   */
  state?: StateHooks;
}

export interface StateHooks {
  save(): Uint8Array;
  /** Into a fresh worker, before any run. */
  restore(bytes: Uint8Array): void;
}

class StateOpError extends Error {}

function post(message: unknown, transfer: Transferable[] = []): void {
  self.postMessage(message, transfer);
}

/** Formats an unexpected error (a bug in an adapter) for a `fatal` message. */
function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  // Emscripten's file system throws ErrnoError objects, which are not Errors.
  const errno = (error as { errno?: unknown; name?: unknown } | null)?.errno;
  if (typeof errno === "number") return `${String((error as { name?: unknown }).name ?? "ErrnoError")} (errno ${errno})`;
  return String(error);
}

/** The kit's view of a MemFs's /sandbox. */
export function memTree(fs: MemFs): SandboxTree {
  return {
    write: (path, bytes) => fs.writeFile(`${SANDBOX}/${path}`, bytes),
    read: (path) => fs.readFile(`${SANDBOX}/${path}`),
    listing: () => fs.listing(SANDBOX),
  };
}

/** The default workspace: an in-memory file system; files count against the memory limit, since they live in this process's memory. */
function memWorkspace(previous: Workspace<MemFs> | null, run: WorkerRun | null): Workspace<MemFs> {
  const fs = previous && (run === null || run.keepState) ? previous.fs : new MemFs();
  if (run) fs.quotaBytes = run.memoryLimitBytes;
  fs.mkdirp(SANDBOX);
  fs.mkdirp("/tmp");
  return previous?.fs === fs ? previous : { fs, tree: memTree(fs) };
}

/** A run for the warm-up: no input, no limits but the output's, output discarded by the caller. */
function warmUpRun(code: string): WorkerRun {
  return {
    t: "run", code, filename: "<string>", files: [], stdin: new Uint8Array(0), argv: [], env: {},
    memoryLimitBytes: Number.POSITIVE_INFINITY, maxOutputBytes: 1024 * 1024, maxOutputFileBytes: 0, maxOutputFilesTotalBytes: 0,
    keepState: false, tools: [], reset: false,
  };
}

/** Serves the worker protocol for one adapter. Call once, at the worker module's top level. */
export function serveRuntime<F = MemFs>(adapter: RuntimeAdapter<F>): void {
  const openWorkspace = (adapter.workspace ?? memWorkspace) as (previous: Workspace<F> | null, run: WorkerRun | null) => Workspace<F>;
  let interruptCell: Int32Array<ArrayBufferLike> = new Int32Array(4);
  let workspace: Workspace<F> | null = null;
  let writeOutput: (fd: 1 | 2, bytes: Uint8Array) => boolean = () => false;
  const write = (fd: 1 | 2, bytes: Uint8Array) => {
    if (bytes.length > 0) writeOutput(fd, bytes);
  };

  async function init(message: WorkerInit): Promise<void> {
    if (message.makeSnapshot) {
      if (!adapter.makeSnapshot) throw new Error("this runtime makes no snapshot");
      const bytes = await adapter.makeSnapshot(message);
      return post({ t: "snapshot", bytes }, [bytes.buffer as ArrayBuffer]);
    }
    interruptCell = new Int32Array(message.interrupt);
    writeOutput = ringWriter(message.output);
    const loaded = await adapter.load({ init: message, write });
    if (message.warmUp && adapter.warmUpPrograms) await warmUp(adapter.warmUpPrograms);
    if (message.keepPristine) adapter.reset?.capture();
    // Still before any guest code: nothing offered here can have been touched by a run.
    if (message.offerShared && loaded?.shared !== undefined) post({ t: "shared", assets: loaded.shared });
    post({ t: "ready" });
  }

  async function warmUp(programs: readonly string[]): Promise<void> {
    const real = writeOutput;
    writeOutput = () => true;
    try {
      for (const code of programs) await execute(warmUpRun(code));
    } finally {
      writeOutput = real;
      workspace = null;
      setGrowCap(Number.POSITIVE_INFINITY);
    }
  }

  async function execute(message: WorkerRun) {
    setGrowCap(message.memoryLimitBytes);
    workspace = openWorkspace(workspace, message);
    const { fs, tree } = workspace;
    for (const [path, bytes] of message.files) tree.write(path, bytes);
    // What the run starts from: its input files, and in a session whatever earlier calls left.
    const before = message.keepState ? new Map(tree.listing().map((f) => [f.path, f.read()])) : new Map(message.files);
    const cell = interruptCell;
    const outcome = await adapter.run({
      run: message,
      fs,
      write,
      interrupted: () => Atomics.load(cell, 0) === 2,
      interruptCell: cell,
    });
    const { files, overLimit } = collectOutputFiles(tree.listing(), before, message);
    return { ...outcome, files, filesOverLimit: overLimit };
  }

  async function run(message: WorkerRun): Promise<void> {
    const outcome = await execute(message);
    if (message.reset) adapter.reset?.beforeResult();
    post({ t: "result", outcome }, outcome.files.map((f) => f.data.buffer as ArrayBuffer));
    if (!message.reset) return;
    let why: string | null;
    try {
      why = adapter.reset ? await adapter.reset.restore() : "this runtime cannot reset";
    } catch (error) {
      why = `restoring failed: ${error instanceof Error ? error.message : String(error)}`;
    }
    post(why === null ? { t: "ready" } : { t: "retire", reason: why });
  }

  function files(message: WorkerFiles): void {
    try {
      workspace = openWorkspace(workspace, null);
      const { tree } = workspace;
      if (message.op === "list") {
        const entries = tree.listing().map((f) => ({ path: f.path, size: f.size }));
        post({ t: "fs-reply", rid: message.rid, ok: true, entries });
      } else if (message.op === "read") {
        const data = tree.read(message.path);
        post({ t: "fs-reply", rid: message.rid, ok: true, data }, [data.buffer as ArrayBuffer]);
      } else if (message.op === "save" || message.op === "restore") {
        if (!adapter.state) throw new StateOpError("this language's sessions cannot be saved");
        try {
          if (message.op === "save") {
            const data = adapter.state.save();
            post({ t: "fs-reply", rid: message.rid, ok: true, data }, [data.buffer as ArrayBuffer]);
          } else {
            adapter.state.restore(message.data);
            post({ t: "fs-reply", rid: message.rid, ok: true });
          }
        } catch (error) {
          throw new StateOpError(error instanceof Error ? error.message : String(error));
        }
      } else {
        tree.write(message.path, message.data);
        post({ t: "fs-reply", rid: message.rid, ok: true });
      }
    } catch (error) {
      // A state operation's error is its reason, in words; a file operation's, an errno code.
      const reason = error instanceof StateOpError ? `STATE ${error.message}` : ((error as { code?: string }).code ?? "EIO");
      post({ t: "fs-reply", rid: message.rid, ok: false, error: reason });
    }
  }

  // Messages are handled one at a time, in order: a run finishes before the next message starts.
  let queue: Promise<void> = Promise.resolve();
  self.onmessage = (event: MessageEvent) => {
    const message = event.data as WorkerMessage;
    queue = queue
      .then(() => (message.t === "init" ? init(message) : message.t === "run" ? run(message) : files(message)))
      .catch((error: unknown) => post({ t: "fatal", message: describe(error) }));
  };
}

/**
 * Waits up to `ms` without using CPU, ending early when the host interrupts (the interrupt cell
 * becomes nonzero). True when interrupted; the cell is left as it is. For a runtime's sleep.
 */
export function waitUnlessInterrupted(cell: Int32Array<ArrayBufferLike>, ms: number): boolean {
  const end = performance.now() + ms;
  for (;;) {
    if (Atomics.load(cell, 0) !== 0) return true;
    const left = end - performance.now();
    if (!(left > 0)) return false;
    // The main isolate stores the interrupt without a notify: look at least every 50 ms.
    Atomics.wait(cell as Int32Array<SharedArrayBuffer>, 0, 0, Math.min(50, left));
  }
}

/** A result for a program that ended with `exitCode` (0 is "ok"). */
export function exitOutcome(exitCode: number, error: GuestErrorInfo | null = null): RunOutcome {
  return {
    status: exitCode === 0 ? "ok" : "error",
    exitCode,
    value: null,
    valueRepr: null,
    error: exitCode === 0 ? null : (error ?? { type: "Exit", message: `exit status ${exitCode}`, traceback: "" }),
  };
}

/** Reads a file of an installed package (the executor may read package directories it was given). */
export async function readAsset(path: string): Promise<Uint8Array> {
  return await (globalThis as unknown as { Deno: { readFile(path: string): Promise<Uint8Array> } }).Deno.readFile(path);
}
