/**
 * Runs INSIDE the executor, in a Deno worker: language "python". Loads Pyodide (from the memory
 * snapshot when one is given), then runs programs through the runner (runner.py). Served by the
 * same kit as every other runtime; what is Python's own here is the snapshot, Pyodide's file
 * system as the run's workspace, host-function calls, and the reset for "interpreter" isolation.
 * Guest code shares this worker's JS realm, so nothing secret lives here: the frame key stays in
 * the executor's main isolate, and everything this worker posts is treated there as untrusted input.
 */
import type { WorkerInit } from "../worker-protocol.js";
import { serveRuntime, waitUnlessInterrupted, type LoadContext, type RunContext, type RunOutcome, type SandboxTree, type Workspace } from "../worker-kit.js";
import type { FileListing } from "../../vfs/output-files.js";
import { CALL_INTERRUPTED, CALL_WAITING, HOST_CALL_DATA_OFFSET } from "./host-call-layout.js";
import { snapshotSetupSource } from "./runner-source.js";
import { pyodideModuleFactory } from "./shared-module.js";
import { mountBundle, type BundleSource } from "./bundle-fs.js";
import { BYTECODE_TRAILER, joinSnapshotFile, parseBundle, readBundleHeader, SITE_PACKAGES, splitSnapshotFile, type BundleHeader } from "../../core/environment-bundle.js";
import { asFileSystemOwner } from "./fs-owner.js";
import { guardFinalizers, recordBaseline, restoreState, saveState, type BaseMemory } from "./session-state.js";
import { afterMicrotasks, cancelRunTimers, capturePristine, forgetPristine, restorePristine, trackRunResources } from "./pristine-state.js";

// deno-lint-ignore no-explicit-any
type Pyodide = any;
/** Emscripten's FS object, as Pyodide exposes it. */
// deno-lint-ignore no-explicit-any
type PyodideFs = any;

declare const Deno: {
  readFile(path: string): Promise<Uint8Array>;
  openSync(path: string, options: { read: boolean }): { seekSync(offset: number, whence: 0 | 2): number; readSync(buffer: Uint8Array): number | null; close(): void };
};

let pyodide: Pyodide | null = null;
/** The runner's run(), looked up once: a proxy made per run would outlive a memory reset. */
let runnerRun: Pyodide = null;
let callState: Int32Array;
let callData: Uint8Array;
let callSeq = 0;
let stdinBytes: Uint8Array = new Uint8Array(0);
let stdinOffset = 0;
/** Set once os._exit() has ended the interpreter. */
let exited = false;
/** Where the package environment is mounted (read-only; the interpreter-mode reset leaves it alone). */
let environmentMounts: string[] = [];
/** The snapshot file this worker started from: saved state is the difference from its memory. */
let snapshotPath = "";
/** True once a session's call or a restore used this interpreter (a restore needs one no session has touched). */
let used = false;

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

/** Called from Python (wasmbox.tools): posts the call and blocks until the main isolate answers. */
function hostCall(name: string, argsJson: string): string {
  const callId = ++callSeq;
  Atomics.store(callState, 0, CALL_WAITING);
  (self as unknown as { postMessage(message: unknown): void }).postMessage({ t: "call", callId, name, args: argsJson });
  while (Atomics.load(callState, 0) === CALL_WAITING) Atomics.wait(callState, 0, CALL_WAITING);
  if (Atomics.load(callState, 0) === CALL_INTERRUPTED) return '{"interrupted": true}';
  const length = Atomics.load(callState, 1);
  return new TextDecoder().decode(callData.slice(0, length));
}

/**
 * time.sleep and asyncio's waits (compat.py): waits on the interrupt cell instead of Emscripten's
 * busy loop, so a sleeping guest uses no CPU and the host's interrupt (timeout) wakes it. Returns
 * true when interrupted, having taken the interrupt from the cell (Python raises KeyboardInterrupt).
 */
function sleeper(interrupt: Int32Array) {
  return (ms: number): boolean => {
    if (!waitUnlessInterrupted(interrupt, ms)) return false;
    Atomics.store(interrupt, 0, 0);
    return true;
  };
}

/** Pyodide's loader, its options, and the compiled module it used (to offer to later workers in isolate mode). */
async function pyodideLoader(init: WorkerInit) {
  const dir = pyodideArgs(init).pyodideDir;
  const pyodideDir = dir.endsWith("/") ? dir : dir + "/";
  const asmUrl = new URL(`file://${pyodideDir}pyodide.asm.mjs`).href;
  const factory = import(asmUrl).then((m) => m.default);
  factory.catch(() => {}); // awaited by loadPyodide
  const { loadPyodide } = await import(new URL(`file://${pyodideDir}pyodide.mjs`).href);
  // Isolate mode: later workers instantiate the module the first one compiled and offered.
  const shared = init.shared as { module?: unknown } | undefined;
  const sharedModule = shared?.module instanceof WebAssembly.Module ? shared.module : null;
  const state = { compiled: null as WebAssembly.Module | null };
  const options = {
    indexURL: pyodideDir,
    env: {},
    stdout: () => {},
    stderr: () => {},
    // The snapshot already holds the interpreter; skip the checks that would read more files.
    checkAPIVersion: true,
    createPyodideModule: pyodideModuleFactory(factory, sharedModule, init.offerShared ? (m) => (state.compiled = m) : undefined),
  };
  return { loadPyodide, options, state };
}

/**
 * The worker's arguments: [Pyodide's package directory, the environment bundle (only with
 * packages), the snapshot (read when serving, written when making it)].
 */
function pyodideArgs(init: WorkerInit): { pyodideDir: string; bundle: string | null; snapshot: string } {
  const args = init.args.filter((arg) => !arg.startsWith(SEED_ARG));
  return { pyodideDir: args[0]!, bundle: args.length > 2 ? args[1]! : null, snapshot: args.at(-1)! };
}

/**
 * A bundle file read through one open handle: its header now, each file's bytes when the guest
 * first reads it. (The worker may read the bundle's path; nothing else is opened.)
 */
function bundleFile(path: string): BundleSource {
  const file = Deno.openSync(path, { read: true });
  const readAt = (offset: number, length: number): Uint8Array => {
    const out = new Uint8Array(length);
    file.seekSync(offset, 0);
    let filled = 0;
    while (filled < length) {
      const n = file.readSync(out.subarray(filled));
      if (n === null || n === 0) break;
      filled += n;
    }
    return filled === length ? out : out.subarray(0, filled);
  };
  const { header, dataStart } = readBundleHeader(readAt);
  return { header, read: (offset, size) => readAt(dataStart + offset, size) };
}

/** Mounts the package environment, if any, with the bytecode that came in the snapshot file laid over it. */
function mountEnvironment(init: WorkerInit, py: Pyodide, bytecode: Uint8Array | null): BundleHeader | null {
  const { bundle } = pyodideArgs(init);
  if (!bundle) return null;
  const sources = [bundleFile(bundle)];
  if (bytecode) {
    const { header, data } = parseBundle(bytecode);
    sources.push({ header, read: (offset, size) => data.subarray(offset, offset + size) });
  }
  const mounted = mountBundle(py.FS, py.ERRNO_CODES, ...sources);
  environmentMounts = mounted.mountPoints;
  return mounted.header;
}

/**
 * Compiles, once, when the snapshot is made, the modules each executor will import when it starts
 * (those imported after `before`) and, within a time budget, the other modules of the packages
 * named that the snapshot does not hold already, into unchecked hash-based .pyc files laid over site-packages' __pycache__ directories.
 * The bundle is read-only and Python writes no bytecode: without this every executor (and every
 * lazy import in a run) compiles them from source again (pydantic: ~50 modules, ~0.6 s).
 * Returns a bundle (environment-bundle.ts) made in Python.
 */
const COMPILE_BYTECODE = `
import importlib.util, importlib._bootstrap_external as _external, json, os, struct, sys, time
def _wasmbox_bytecode(before, roots, site, budget_s):
    files = {}
    def add(path):
        if not isinstance(path, str) or not path.endswith(".py") or not path.startswith(site + "/"):
            return
        cached = importlib.util.cache_from_source(path)
        if cached in files:
            return
        with open(path, "rb") as f:
            source = f.read()
        code = compile(source, path, "exec", dont_inherit=True)
        files[cached] = _external._code_to_hash_pyc(code, importlib.util.source_hash(source), False)
    for name, module in list(sys.modules.items()):
        if name not in before:
            try:
                add(getattr(module, "__file__", None))
            except Exception:
                pass
    loaded = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
    deadline = time.monotonic() + budget_s
    for root in roots:
        for folder, dirs, names in os.walk(os.path.join(site, root)):
            dirs[:] = sorted(d for d in dirs if d not in ("tests", "test", "testing", "__pycache__"))
            for name in sorted(names):
                if time.monotonic() > deadline:
                    break
                path = os.path.join(folder, name)
                if path in loaded:
                    continue  # in the snapshot's memory already: never compiled again
                try:
                    add(path)
                except Exception:
                    pass
    tree, chunks, offset = {}, [], 0
    for path, data in sorted(files.items()):
        parts = path[len(site) + 1:].split("/")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = [offset, len(data)]
        chunks.append(data)
        offset += len(data)
    header = json.dumps({"roots": {site: tree}, "snapshotImports": [], "startImports": [], "sharedLibraries": []}).encode()
    return b"WBXENV1\\n" + struct.pack("<I", len(header)) + header + b"".join(chunks)
`;

/** Seconds the snapshot maker may spend compiling modules no executor imports at start. */
const BYTECODE_BUDGET_S = 20;

/** The dynamic libraries the interpreter has loaded (Emscripten's dynamic linker's table). */
function loadedLibraries(py: Pyodide): Set<string> {
  return new Set(Object.keys(py._module?.LDSO?.loadedLibsByName ?? {}));
}

/**
 * Imports a package and what its `__all__` names: packages that load their submodules lazily on
 * first attribute access (pydantic: `pydantic.BaseModel` imports ~50 modules, compiled from source
 * each time) would otherwise make every run pay for it. A name whose lazy import fails is left for
 * the run to meet. Runs in a namespace of its own: nothing is bound in __main__, the namespace of
 * the guest's first run.
 */
const IMPORT_PACKAGE = `
import importlib
_module = importlib.import_module(NAME)
for _name in list(getattr(_module, "__all__", None) or ()):
    try:
        getattr(_module, _name)
    except Exception:
        pass
`;

/** Imports `modules` one by one; a failure names the module and carries its traceback. */
function importAll(py: Pyodide, modules: readonly string[], phase: string): void {
  for (const module of modules) {
    try {
      py.runPython(`exec(${JSON.stringify(IMPORT_PACKAGE)}, {"NAME": ${JSON.stringify(module)}, "__name__": "_wasmbox_import"})`);
    } catch (error) {
      const text = String((error as Error)?.message ?? error).trim();
      throw new Error(`PACKAGE_IMPORT_FAILED ${module} (${phase}): ${text.split("\n").slice(-3).join(" | ")}`);
    }
  }
}

/** Loads Pyodide-distribution shared libraries with global symbols, as Pyodide's loadPackage does. */
function loadSharedLibraries(py: Pyodide, libraries: readonly string[]): void {
  if (libraries.length === 0) return;
  py.runPython(`import ctypes\nfor _lib in ${JSON.stringify(libraries)}:\n    ctypes.CDLL(_lib, mode=ctypes.RTLD_GLOBAL)\ndel _lib`);
}

/**
 * The snapshot: the interpreter with the runner, compat and preloaded stdlib, and with a package
 * environment its pure-Python packages imported. A package that loads a WebAssembly library while
 * imported cannot be in it (the library's code and table entries live outside the memory): that
 * is reported as "NATIVE_AT_IMPORT <modules>" and the host moves those to startImports. The
 * start imports are tried after the snapshot is taken, so a package that fails to import is
 * found here, once, and not by every executor.
 */
/** The snapshot maker's argument carrying WASMBOX_SNAPSHOT_SEED's digest (runtime-registry.ts snapshotSeed). */
const SEED_ARG = "--snapshot-seed=";

/**
 * Makes this snapshot maker deterministic: entropy drawn from the seed (Pyodide draws through Node's
 * crypto.randomFillSync under Deno, and WebCrypto) and a clock that starts at a fixed time and
 * advances by each call. With the same seed, two machines make byte-identical snapshots (tested:
 * without it ~7 MB of 30 differ, with entropy alone ~190 bytes: time stamps). Only this process,
 * which runs no guest code and exits after the snapshot, is changed.
 */
function seedSnapshotMaker(seedHex: string): void {
  // xoshiro128** from the seed digest's first 128 bits.
  const state = Uint32Array.from({ length: 4 }, (_, i) => parseInt(seedHex.slice(i * 8, i * 8 + 8), 16) >>> 0);
  if (state.every((word) => word === 0)) state[0] = 1;
  const next = (): number => {
    const result = Math.imul(rotl(Math.imul(state[1]!, 5), 7), 9) >>> 0;
    const t = state[1]! << 9;
    state[2]! ^= state[0]!;
    state[3]! ^= state[1]!;
    state[1]! ^= state[2]!;
    state[0]! ^= state[3]!;
    state[2]! ^= t;
    state[3] = rotl(state[3]!, 11);
    return result;
  };
  const fill = <T extends ArrayBufferView>(view: T): T => {
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    for (let i = 0; i < bytes.length; i += 4) {
      const word = next();
      for (let j = 0; j < 4 && i + j < bytes.length; j++) bytes[i + j] = (word >>> (8 * j)) & 0xff;
    }
    return view;
  };
  (crypto as { getRandomValues: unknown }).getRandomValues = fill;
  // The module object Pyodide's require("node:crypto") returns (no import: this layer imports no node:*).
  const builtin = (globalThis as unknown as { process?: { getBuiltinModule?(name: string): Record<string, unknown> | undefined } }).process?.getBuiltinModule?.("node:crypto");
  if (builtin) builtin.randomFillSync = fill;
  let nowMs = Date.UTC(2026, 0, 1);
  Date.now = () => (nowMs += 1);
  let monotonicMs = 1000;
  performance.now = () => (monotonicMs += 0.5);
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

async function makeSnapshot(init: WorkerInit): Promise<Uint8Array> {
  const seed = init.args.find((arg) => arg.startsWith(SEED_ARG))?.slice(SEED_ARG.length);
  if (seed) seedSnapshotMaker(seed);
  const { loadPyodide, options } = await pyodideLoader(init);
  const snapshotting = await loadPyodide({ ...options, _makeSnapshot: true });
  const header = mountEnvironment(init, snapshotting, null);
  snapshotting.runPython(snapshotSetupSource());
  if (header) {
    const native: string[] = [];
    for (const module of header.snapshotImports) {
      const before = loadedLibraries(snapshotting);
      importAll(snapshotting, [module], "before the snapshot");
      if ([...loadedLibraries(snapshotting)].some((lib) => !before.has(lib))) native.push(module);
    }
    if (native.length > 0) throw new Error(`NATIVE_AT_IMPORT ${native.join(",")}`);
  }
  const bytes = snapshotting.makeMemorySnapshot();
  if (!header) return bytes;
  // After the snapshot, nothing here reaches it: the interpreter is used to check the start
  // imports and to compile their bytecode.
  snapshotting.runPython(COMPILE_BYTECODE);
  const before = snapshotting.runPython("__import__('json').dumps(sorted(__import__('sys').modules))") as string;
  loadSharedLibraries(snapshotting, header.sharedLibraries);
  importAll(snapshotting, header.startImports, "when an executor starts");
  const roots = [...new Set([...header.snapshotImports, ...header.startImports].map((m) => m.split(".")[0]!))];
  const made = snapshotting.runPython(
    `_wasmbox_bytecode(set(__import__('json').loads(${JSON.stringify(before)})), ${JSON.stringify(roots)}, ${JSON.stringify(SITE_PACKAGES)}, ${BYTECODE_BUDGET_S})`,
  );
  const bytecode = made.toJs() as Uint8Array;
  made.destroy();
  return joinSnapshotFile(bytes, bytecode);
}

/**
 * Pyodide takes Deno's global `process` for Node's and calls it: Emscripten's getuid() asks
 * process.getuid() (Deno's sys permission, denied: an executor crash), and its TTY (/dev/tty,
 * getpass) reads process.stdin's fd, the executor's own frame pipe, blocking the run past its
 * interrupt. Give this worker a process that answers uid 0 (compat.py's container user) and has no
 * stdin descriptor (a read fails as EIO). Guest code shares this realm and could undo it: that only
 * harms its own run, which the host's watchdog still ends.
 */
function containProcess(): void {
  const proc = (globalThis as unknown as { process?: object }).process;
  if (!proc) return;
  for (const name of ["getuid", "geteuid", "getgid", "getegid"]) Object.defineProperty(proc, name, { value: () => 0, configurable: true });
  Object.defineProperty(proc, "stdin", { value: Object.freeze({ fd: -1, isTTY: false }), configurable: true });
}

/**
 * Pyodide's fatal-error handler (a wasm trap, a JS exception inside a wasm import) dumps the Python
 * stack to fd 1, which would reach the guest's stdout with the runner's internal frames. It logs
 * "Pyodide has suffered a fatal error" first: from then on this worker's output is dropped (the
 * run ends as a crash, with the cause in its error).
 */
function watchForFatalError(onFatal: () => void): void {
  const consoleError = console.error.bind(console);
  console.error = (...args: unknown[]) => {
    if (typeof args[0] === "string" && args[0].startsWith("Pyodide has suffered a fatal error")) onFatal();
    consoleError(...args);
  };
}

async function load({ init, write }: LoadContext): Promise<{ shared?: unknown }> {
  // The 30 MB snapshot is read off-thread while Pyodide's JavaScript loads.
  snapshotPath = pyodideArgs(init).snapshot;
  const snapshot = Deno.readFile(snapshotPath);
  snapshot.catch(() => {}); // awaited below; a failure surfaces there
  const { loadPyodide, options, state } = await pyodideLoader(init);
  containProcess();
  let fatal = false;
  watchForFatalError(() => (fatal = true));
  if (init.keepPristine) trackRunResources();
  guardFinalizers();
  const split = splitSnapshotFile(await snapshot);
  const memory = split.snapshot;
  // A copy, so the file's buffer (Pyodide copies the memory part into the heap) can be collected.
  const bytecode = split.bytecode?.slice() ?? null;
  pyodide = await loadPyodide({ ...options, _loadSnapshot: memory });
  const header = mountEnvironment(init, pyodide, bytecode);
  pyodide.setStdin({
    read(buffer: Uint8Array): number {
      const n = Math.min(buffer.length, stdinBytes.length - stdinOffset);
      buffer.set(stdinBytes.subarray(stdinOffset, stdinOffset + n));
      stdinOffset += n;
      return n; // 0 is EOF
    },
    isatty: false,
  });
  const interrupt = new Int32Array(init.interrupt);
  pyodide.setInterruptBuffer(interrupt);
  callState = new Int32Array(init.calls, 0, 2);
  callData = new Uint8Array(init.calls, HOST_CALL_DATA_OFFSET);
  const runner = pyodide.pyimport("_wasmbox_runner");
  runner.set_host_call(hostCall);
  runner.set_sleep(sleeper(interrupt));
  runnerRun = runner.run;
  if (header) {
    // Packages with WebAssembly libraries: imported here, before ready, so no run pays for them;
    // in "interpreter" isolation they are part of the warm state each reset restores.
    loadSharedLibraries(pyodide, header.sharedLibraries);
    importAll(pyodide, header.startImports, "when an executor starts");
    pyodide.runPython('__import__("sys").stdout.flush(); __import__("sys").stderr.flush()');
  }
  // Only now is output the guest's: what a package printed while imported above went nowhere.
  const writer = (fd: 1 | 2) => ({
    write(buffer: Uint8Array): number {
      if (!fatal) write(fd, buffer);
      return buffer.length;
    },
    isatty: false,
  });
  pyodide.setStdout(writer(1));
  pyodide.setStderr(writer(2));
  // Take the JS bridges out of the guest's reach (an extra layer, not a wall: see docs/architecture.md).
  for (const name of ["js", "pyodide_js"]) {
    try {
      pyodide.unregisterJsModule(name);
    } catch {
      // not registered in this build
    }
  }
  runner.harden();
  return state.compiled ? { shared: { module: state.compiled } } : {};
}

/** A MEMFS file's bytes without a copy (Emscripten keeps them in node.contents), else a copy. */
function memfsView(FS: PyodideFs, path: string, size: number): Uint8Array {
  const node = FS.lookupPath(path).node as { contents?: unknown; usedBytes?: number };
  if (node.contents instanceof Uint8Array && node.usedBytes === size) return node.contents.subarray(0, size);
  return FS.readFile(path);
}

/** The kit's view of /sandbox in Pyodide's file system (after os._exit the runtime refuses use: no files). */
function pyodideTree(FS: PyodideFs): SandboxTree {
  return {
    write: (path, bytes) =>
      asFileSystemOwner(FS, () => {
        const full = "/sandbox/" + path;
        FS.mkdirTree(full.slice(0, full.lastIndexOf("/")));
        FS.writeFile(full, bytes);
      }),
    read: (path) => asFileSystemOwner(FS, () => FS.readFile("/sandbox/" + path)),
    listing: () => asFileSystemOwner(FS, () => listing(FS)),
  };
}

/** Every regular file under /sandbox; each read later, as the owner too. */
function listing(FS: PyodideFs): FileListing[] {
  if (exited) return [];
  const out: FileListing[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const name of FS.readdir(dir) as string[]) {
      if (name === "." || name === "..") continue;
      const full = `${dir}/${name}`;
      const rel = prefix ? `${prefix}/${name}` : name;
      const stat = FS.lstat(full);
      if (FS.isDir(stat.mode)) walk(full, rel);
      else if (FS.isFile(stat.mode)) {
        out.push({ path: rel, size: stat.size, read: () => asFileSystemOwner(FS, () => FS.readFile(full)), peek: () => asFileSystemOwner(FS, () => memfsView(FS, full, stat.size)) });
      }
    }
  };
  FS.mkdirTree("/sandbox");
  walk("/sandbox", "");
  return out;
}

/** One interpreter per executor: every run and file operation works in its file system. */
function workspace(previous: Workspace<PyodideFs> | null): Workspace<PyodideFs> {
  if (previous) return previous;
  pyodide.FS.mkdirTree("/sandbox");
  return { fs: pyodide.FS, tree: pyodideTree(pyodide.FS) };
}

function run({ run: message }: RunContext<PyodideFs>): RunOutcome {
  if (exited) throw new Error("the interpreter exited (os._exit) in an earlier call");
  if (message.keepState) {
    forgetPristine();
    // What Python holds of JavaScript before the session's first call (after the warm-up, which
    // every pool executor has had): what a saved session may hold.
    recordBaseline(pyodide);
    used = true;
  }
  stdinBytes = message.stdin;
  stdinOffset = 0;
  let outcome: RunOutcome;
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
  if (typeof outcome.valueLossless === "string") outcome.valueLossless = JSON.parse(outcome.valueLossless);
  return outcome;
}

/**
 * The base snapshot's memory, read from the snapshot file (the executor may read it) where it lies:
 * after Pyodide's header, before the package environment's bytecode (environment-bundle.ts).
 */
function baseMemory(): BaseMemory {
  const file = Deno.openSync(snapshotPath, { read: true });
  const readAt = (offset: number, into: Uint8Array): void => {
    file.seekSync(offset, 0);
    let filled = 0;
    while (filled < into.length) {
      const n = file.readSync(into.subarray(filled));
      if (n === null || n === 0) throw new Error("the snapshot file is shorter than it says");
      filled += n;
    }
  };
  const size = file.seekSync(0, 2);
  const head = new Uint8Array(8);
  readAt(0, head);
  const memoryStart = new DataView(head.buffer).getUint32(4, true);
  const tail = new Uint8Array(Math.min(size, 64));
  readAt(size - tail.length, tail);
  const snapshotEnd = size - bytecodeLength(tail);
  return {
    length: snapshotEnd - memoryStart,
    read: (offset, into) => readAt(memoryStart + offset, into),
    close: () => file.close(),
  };
}

/** The bytes the package environment's bytecode takes at the end of a snapshot file, from its last bytes. */
function bytecodeLength(tail: Uint8Array): number {
  const trailer = new TextEncoder().encode(BYTECODE_TRAILER);
  const end = tail.length - trailer.length;
  if (end < 4 || !trailer.every((byte, i) => tail[end + i] === byte)) return 0;
  return new DataView(tail.buffer, tail.byteOffset + end - 4, 4).getUint32(0, true) + 4 + trailer.length;
}

function withBaseMemory<T>(task: (base: BaseMemory) => T): T {
  const base = baseMemory();
  try {
    return task(base);
  } finally {
    base.close();
  }
}

serveRuntime<PyodideFs>({
  load,
  state: {
    save() {
      recordBaseline(pyodide);
      return withBaseMemory((base) => saveState(pyodide, base, exited));
    },
    restore(bytes) {
      if (used) throw new Error("internal: restore into an interpreter that already ran code");
      recordBaseline(pyodide);
      forgetPristine();
      withBaseMemory((base) => restoreState(pyodide, base, bytes));
      used = true;
    },
  },
  makeSnapshot,
  workspace,
  run,
  warmUpPrograms: WARM_UP_PROGRAMS,
  reset: {
    capture: () => capturePristine(pyodide, environmentMounts),
    // Nothing the run scheduled may fire after its result: its output would reach the next run.
    beforeResult: cancelRunTimers,
    restore: () =>
      new Promise((resolve, reject) =>
        // On the next macrotask: the run's microtasks have drained.
        afterMicrotasks(() => {
          try {
            resolve(exited ? "the interpreter exited (os._exit)" : restorePristine(pyodide, environmentMounts));
          } catch (error) {
            reject(error);
          }
        }),
      ),
  },
});
