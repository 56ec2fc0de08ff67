/**
 * Runs INSIDE the executor, in the runtime's worker: the worker-protocol plumbing every non-Python
 * runtime shares (init/ready, runs, session file ops, output messages, the changed-files diff), so
 * an adapter only loads its interpreter and runs one program. Guest code may share this realm (it
 * can for Pyodide; QuickJS and WASI guests cannot reach it), so nothing secret lives here.
 */
import "../worker-hardening.js";
import { MemFs } from "../../vfs/wasi-memfs.js";
import { collectOutputFiles } from "../../vfs/output-files.js";
import type { WorkerFiles, WorkerInit, WorkerMessage, WorkerRun } from "../worker-protocol.js";
import { setGrowCap } from "../memory-cap.js";
import { ringWriter } from "../output-ring.js";

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
  valueRepr: string | null;
  error: GuestErrorInfo | null;
}

export interface RunContext {
  run: WorkerRun;
  /** /sandbox holds the run's input files (and, in a session, what earlier runs left); /tmp is empty. */
  fs: MemFs;
  /** Sends guest output on (through the output ring to the main isolate, which frames and signs it). */
  write(fd: 1 | 2, bytes: Uint8Array): void;
  /** True once the host asked the run to stop (timeout). */
  interrupted(): boolean;
  /** The shared interrupt cell: Int32 [0] becomes 2 on interrupt; usable with Atomics.wait. */
  interruptCell: Int32Array<ArrayBufferLike>;
}

export interface RuntimeAdapter {
  /** Loads and compiles the runtime once per executor, before it reports ready. */
  load(args: string[]): Promise<void>;
  run(context: RunContext): RunOutcome | Promise<RunOutcome>;
}

function post(message: unknown, transfer: Transferable[] = []): void {
  self.postMessage(message, transfer);
}

/** Formats an unexpected host-side error (a bug in an adapter) for a `fatal` message. */
function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Serves the worker protocol for one adapter. Call once, at the worker module's top level. */
export function serveRuntime(adapter: RuntimeAdapter): void {
  let interruptCell: Int32Array<ArrayBufferLike> = new Int32Array(4);
  let fs: MemFs | null = null;
  let writeOutput: (fd: 1 | 2, bytes: Uint8Array) => boolean = () => false;

  async function init(message: WorkerInit): Promise<void> {
    if (message.makeSnapshot) throw new Error("this runtime makes no snapshot");
    interruptCell = new Int32Array(message.interrupt);
    writeOutput = ringWriter(message.output);
    await adapter.load(message.args);
    post({ t: "ready" });
  }

  async function run(message: WorkerRun): Promise<void> {
    setGrowCap(message.memoryLimitBytes);
    if (!fs || !message.keepState) fs = new MemFs();
    // Files count against the memory limit: they live in this process's memory.
    fs.quotaBytes = message.memoryLimitBytes;
    fs.mkdirp(SANDBOX);
    fs.mkdirp("/tmp");
    for (const [path, bytes] of message.files) fs.writeFile(`${SANDBOX}/${path}`, bytes);
    const before = message.keepState ? fs.files(SANDBOX) : new Map(message.files);
    const cell = interruptCell;
    const outcome = await adapter.run({
      run: message,
      fs,
      write(fd, bytes) {
        if (bytes.length > 0) writeOutput(fd, bytes);
      },
      interrupted: () => Atomics.load(cell, 0) === 2,
      interruptCell: cell,
    });
    const { files, overLimit } = collectOutputFiles(fs.listing(SANDBOX), before, message);
    post({ t: "result", outcome: { ...outcome, files, filesOverLimit: overLimit } }, files.map((f) => f.data.buffer as ArrayBuffer));
  }

  function files(message: WorkerFiles): void {
    try {
      fs ??= new MemFs();
      fs.mkdirp(SANDBOX);
      if (message.op === "list") {
        const entries = [...fs.files(SANDBOX)].map(([path, bytes]) => ({ path, size: bytes.length }));
        post({ t: "fs-reply", rid: message.rid, ok: true, entries });
      } else if (message.op === "read") {
        const data = fs.readFile(`${SANDBOX}/${message.path}`);
        post({ t: "fs-reply", rid: message.rid, ok: true, data }, [data.buffer]);
      } else {
        fs.writeFile(`${SANDBOX}/${message.path}`, message.data);
        post({ t: "fs-reply", rid: message.rid, ok: true });
      }
    } catch (error) {
      post({ t: "fs-reply", rid: message.rid, ok: false, error: (error as { code?: string }).code ?? "EIO" });
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
