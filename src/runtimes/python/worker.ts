/**
 * Runs INSIDE the executor, in a Deno worker: loads Pyodide (from the memory snapshot when one is
 * given), then runs one program. Guest code shares this worker's JS realm, so nothing secret lives
 * here: the frame key stays in the executor's main isolate, and everything this worker posts is
 * treated there as untrusted input.
 */
import "../worker-hardening.js";
import type { WorkerFiles, WorkerInit, WorkerMessage, WorkerRun } from "../worker-protocol.js";
import { ringWriter } from "../output-ring.js";
import { collectOutputFiles, type FileListing } from "../../vfs/output-files.js";
import { setGrowCap } from "../memory-cap.js";
import { CALL_INTERRUPTED, CALL_WAITING, HOST_CALL_DATA_OFFSET } from "./host-call-layout.js";
import { snapshotSetupSource } from "./runner-source.js";
import { pyodideModuleFactory } from "./shared-module.js";
import { afterMicrotasks, cancelRunTimers, capturePristine, forgetPristine, restorePristine, trackRunResources } from "./pristine-state.js";

declare const self: {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
};

// deno-lint-ignore no-explicit-any
type Pyodide = any;

let pyodide: Pyodide | null = null;
/** The runner's run(), looked up once: a proxy made per run would outlive a memory reset. */
let runnerRun: Pyodide = null;
let callState: Int32Array;
let callData: Uint8Array;
let callSeq = 0;

/** Called from Python (wasmbox.tools): posts the call and blocks until the main isolate answers. */
function hostCall(name: string, argsJson: string): string {
  const callId = ++callSeq;
  Atomics.store(callState, 0, CALL_WAITING);
  post({ t: "call", callId, name, args: argsJson });
  while (Atomics.load(callState, 0) === CALL_WAITING) Atomics.wait(callState, 0, CALL_WAITING);
  if (Atomics.load(callState, 0) === CALL_INTERRUPTED) return '{"interrupted": true}';
  const length = Atomics.load(callState, 1);
  return new TextDecoder().decode(callData.slice(0, length));
}
let stdinBytes: Uint8Array = new Uint8Array(0);
let stdinOffset = 0;

function post(message: unknown, transfer: Transferable[] = []): void {
  self.postMessage(message, transfer);
}

let writeOutput: (fd: 1 | 2, bytes: Uint8Array) => boolean = () => false;

function writer(fd: 1 | 2) {
  return {
    write(buffer: Uint8Array): number {
      writeOutput(fd, buffer);
      return buffer.length;
    },
    isatty: false,
  };
}

declare const Deno: { readFile(path: string): Promise<Uint8Array> };

async function load(init: WorkerInit): Promise<void> {
  // args: [pyodide package directory, snapshot path] (the snapshot is only read when serving)
  const [dir, snapshotPath] = init.args as [string, string];
  const pyodideDir = dir.endsWith("/") ? dir : dir + "/";
  // The 30 MB snapshot is read off-thread while Pyodide's JavaScript loads.
  const snapshot = init.makeSnapshot ? null : Deno.readFile(snapshotPath);
  snapshot?.catch(() => {}); // awaited below; a failure surfaces there
  const asmUrl = new URL(`file://${pyodideDir}pyodide.asm.mjs`).href;
  const factory = import(asmUrl).then((m) => m.default);
  factory.catch(() => {}); // awaited by loadPyodide
  const { loadPyodide } = await import(new URL(`file://${pyodideDir}pyodide.mjs`).href);
  // Isolate mode: later workers instantiate the module the first one compiled and offered.
  const shared = init.shared as { module?: unknown } | undefined;
  const sharedModule = shared?.module instanceof WebAssembly.Module ? shared.module : null;
  let compiled: WebAssembly.Module | null = null;
  const options = {
    indexURL: pyodideDir,
    env: {},
    stdout: () => {},
    stderr: () => {},
    // The snapshot already holds the interpreter; skip the checks that would read more files.
    checkAPIVersion: true,
    createPyodideModule: pyodideModuleFactory(factory, sharedModule, init.offerShared ? (m) => (compiled = m) : undefined),
  };
  if (init.makeSnapshot) {
    pyodide = await loadPyodide({ ...options, _makeSnapshot: true });
    pyodide.runPython(snapshotSetupSource());
    const bytes: Uint8Array = pyodide.makeMemorySnapshot();
    post({ t: "snapshot", bytes }, [bytes.buffer]);
    return;
  }
  if (init.keepPristine) trackRunResources();
  pyodide = await loadPyodide({ ...options, _loadSnapshot: await snapshot });
  writeOutput = ringWriter(init.output);
  pyodide.setStdout(writer(1));
  pyodide.setStderr(writer(2));
  pyodide.setStdin({
    read(buffer: Uint8Array): number {
      const n = Math.min(buffer.length, stdinBytes.length - stdinOffset);
      buffer.set(stdinBytes.subarray(stdinOffset, stdinOffset + n));
      stdinOffset += n;
      return n; // 0 is EOF
    },
    isatty: false,
  });
  pyodide.setInterruptBuffer(new Int32Array(init.interrupt));
  callState = new Int32Array(init.calls, 0, 2);
  callData = new Uint8Array(init.calls, HOST_CALL_DATA_OFFSET);
  const runner = pyodide.pyimport("_wasmbox_runner");
  runner.set_host_call(hostCall);
  runnerRun = runner.run;
  // Take the JS bridges out of the guest's reach (an extra layer, not a wall: see docs/architecture.md).
  for (const name of ["js", "pyodide_js"]) {
    try {
      pyodide.unregisterJsModule(name);
    } catch {
      // not registered in this build
    }
  }
  runner.harden();
  if (init.warmUp) warmUp();
  if (init.keepPristine) capturePristine(pyodide);
  // Still before any guest code: nothing here can have been touched by a run.
  if (init.offerShared && compiled) post({ t: "shared", assets: { module: compiled } });
  post({ t: "ready" });
}

function writeFiles(files: [string, Uint8Array][]): void {
  const FS = pyodide.FS;
  FS.mkdirTree("/sandbox");
  for (const [path, bytes] of files) {
    const full = "/sandbox/" + path;
    FS.mkdirTree(full.slice(0, full.lastIndexOf("/")));
    FS.writeFile(full, bytes);
  }
}

/** Regular files under /sandbox (relative paths, sizes), read on demand. */
function sandboxListing(): FileListing[] {
  const FS = pyodide.FS;
  const out: FileListing[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const name of FS.readdir(dir) as string[]) {
      if (name === "." || name === "..") continue;
      const full = `${dir}/${name}`;
      const rel = prefix ? `${prefix}/${name}` : name;
      const stat = FS.lstat(full);
      if (FS.isDir(stat.mode)) walk(full, rel);
      else if (FS.isFile(stat.mode)) out.push({ path: rel, size: stat.size, read: () => FS.readFile(full), peek: () => memfsView(full, stat.size) });
    }
  };
  FS.mkdirTree("/sandbox");
  walk("/sandbox", "");
  return out;
}

/** A MEMFS file's bytes without a copy (Emscripten keeps them in node.contents), else a copy. */
function memfsView(path: string, size: number): Uint8Array {
  const node = pyodide.FS.lookupPath(path).node as { contents?: unknown; usedBytes?: number };
  if (node.contents instanceof Uint8Array && node.usedBytes === size) return node.contents.subarray(0, size);
  return pyodide.FS.readFile(path);
}

function readAllFiles(): Map<string, Uint8Array> {
  return new Map(sandboxListing().map((f) => [f.path, f.read()]));
}

/** Set once os._exit() has ended the interpreter. */
let exited = false;

/**
 * Trusted programs run once through the whole run path before the executor says it is ready. Each
 * executor is a fresh process, so otherwise the first call of every wasm function a run touches
 * (parsing, compiling, tracebacks, JSON) would be compiled lazily inside the guest's time. Their
 * output is discarded and the next run resets argv, env, cwd and __main__; no guest code is involved.
 */
const WARM_UP_PROGRAMS = [
  "import io\n_out = io.StringIO()\nprint('warm', 1, 2.5, file=_out)\ndata = {'k': [i * 2 for i in range(50)], 's': 'x' * 10}\ndata",
  "def f(x):\n    return 1 / x\nf(0)",
  "raise SystemExit(3)",
];

function warmUp(): void {
  const write = writeOutput;
  writeOutput = () => true;
  try {
    for (const code of WARM_UP_PROGRAMS) {
      execute({
        t: "run", code, filename: "<string>", files: [], stdin: new Uint8Array(0), argv: [], env: {},
        memoryLimitBytes: Number.POSITIVE_INFINITY, maxOutputBytes: 1024 * 1024, maxOutputFileBytes: 0, maxOutputFilesTotalBytes: 0,
        keepState: false, tools: [], reset: false,
      });
    }
  } finally {
    writeOutput = write;
    setGrowCap(Number.POSITIVE_INFINITY);
  }
}

function run(message: WorkerRun): void {
  const outcome = execute(message);
  if (!message.reset) return post({ t: "result", outcome }, outcomeBuffers(outcome));
  // Nothing the run scheduled may fire after its result: its output would reach the next run.
  cancelRunTimers();
  post({ t: "result", outcome }, outcomeBuffers(outcome));
  afterMicrotasks(() => {
    let why: string | null;
    try {
      why = exited ? "the interpreter exited (os._exit)" : restorePristine(pyodide);
    } catch (error) {
      why = `restoring failed: ${error instanceof Error ? error.message : String(error)}`;
    }
    post(why === null ? { t: "ready" } : { t: "retire", reason: why });
  });
}

/** The result's file contents are handed over, not copied. */
function outcomeBuffers(outcome: { files?: { data: Uint8Array }[] }): Transferable[] {
  return (outcome.files ?? []).map((f) => f.data.buffer as ArrayBuffer);
}

function execute(message: WorkerRun) {
  if (exited) throw new Error("the interpreter exited (os._exit) in an earlier call");
  if (message.keepState) forgetPristine();
  setGrowCap(message.memoryLimitBytes);
  stdinBytes = message.stdin;
  stdinOffset = 0;
  writeFiles(message.files);
  // What the run starts from: its input files, and in a session whatever earlier calls left.
  const inputs = message.keepState ? readAllFiles() : new Map(message.files);
  let outcome;
  try {
    const { code, filename, argv, env, maxOutputBytes, keepState, tools } = message;
    outcome = JSON.parse(runnerRun(code, filename, JSON.stringify(argv), JSON.stringify(env), maxOutputBytes, keepState, JSON.stringify(tools)));
  } catch (error) {
    // os._exit(n) unwinds the whole interpreter (Pyodide's `Exit` error, "Program terminated with
    // exit(n)"): the program ended with that code, but this interpreter is gone, so the worker
    // takes no further run.
    const name = (error as Error)?.name;
    const found = /Program terminated with exit\((-?\d+)\)/.exec(String((error as Error)?.message));
    if ((name !== "Exit" && name !== "ExitStatus") || !found) throw error;
    exited = true;
    const code = Number(found[1]) & 0xff;
    outcome = {
      status: code === 0 ? "ok" : "error",
      exitCode: code,
      value: null,
      valueRepr: null,
      error: code === 0 ? null : { type: "SystemExit", message: String(code), traceback: "" },
    };
  }
  // Values become JSON text in Python; parse here so the host gets a plain object.
  if (typeof outcome.value === "string") outcome.value = JSON.parse(outcome.value);
  try {
    const { files, overLimit } = collectOutputFiles(sandboxListing(), inputs, message);
    outcome.files = files;
    outcome.filesOverLimit = overLimit;
  } catch (error) {
    if (!exited) throw error;
    outcome.files = []; // after os._exit the runtime refuses further use
  }
  return outcome;
}

/** Session file access between runs, without running guest code. */
function files(message: WorkerFiles): void {
  const FS = pyodide.FS;
  try {
    if (message.op === "list") {
      const entries = [...readAllFiles()].map(([path, bytes]) => ({ path, size: bytes.length }));
      post({ t: "fs-reply", rid: message.rid, ok: true, entries });
    } else if (message.op === "read") {
      const data: Uint8Array = FS.readFile("/sandbox/" + message.path);
      post({ t: "fs-reply", rid: message.rid, ok: true, data }, [data.buffer]);
    } else {
      writeFiles([[message.path, message.data]]);
      post({ t: "fs-reply", rid: message.rid, ok: true });
    }
  } catch (error) {
    const code = (error as { code?: string; errno?: number }).code ?? "EIO";
    post({ t: "fs-reply", rid: message.rid, ok: false, error: code });
  }
}

self.onmessage = (event: MessageEvent) => {
  const message = event.data as WorkerMessage;
  const task =
    message.t === "init"
      ? load(message)
      : Promise.resolve().then(() => (message.t === "run" ? run(message) : files(message)));
  task.catch((error: unknown) => {
    post({ t: "fatal", message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  });
};
