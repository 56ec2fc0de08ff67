/**
 * Runs INSIDE the executor, in a Deno worker: language "javascript", QuickJS compiled to wasm
 * (quickjs-emscripten, the single release-sync variant). The guest runs in QuickJS's own heap and
 * realm: it has no path to this worker's JavaScript realm beyond the host functions below, which
 * take strings and ArrayBuffers and touch only the run's in-memory files and output.
 *
 * Limits: QuickJS's memory limit (runtime.setMemoryLimit) is the run's memoryLimitBytes, so a bomb
 * gets "InternalError: out of memory" (a catchable error; uncaught it is "memory_limit"); its
 * interrupt handler stops the guest (uncatchably) once the host asks for a stop.
 */
import type { QuickJSContext, QuickJSHandle, QuickJSRuntime, QuickJSWASMModule } from "quickjs-emscripten-core";
import { FsError } from "../../vfs/wasi-memfs.js";
import { readAsset, SANDBOX, serveRuntime, setGrowCap, waitUnlessInterrupted, type RunContext, type RunOutcome } from "../worker-kit.js";
import { GUEST_PRELUDE } from "./guest-prelude.js";
import { importModuleGraph } from "./module-graph.js";

type Core = typeof import("quickjs-emscripten-core");

/** Room for QuickJS's own structures and the emscripten stack above the guest's malloc limit. */
const HEAP_SLACK_BYTES = 32 * 1024 * 1024;
const STACK_LIMIT_BYTES = 256 * 1024;

let quickjs: QuickJSWASMModule;
let coreVersion = "";
/** A session keeps its runtime and context between runs. */
let kept: { runtime: QuickJSRuntime; vm: QuickJSContext } | null = null;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function load(args: string[]): Promise<void> {
  // args: [quickjs-emscripten-core dir, variant dir, ffi-types dir]
  const [coreDir, variantDir, typesDir] = args as [string, string, string];
  const core = (await importModuleGraph(`${coreDir}/dist/index.mjs`, {
    "@jitl/quickjs-ffi-types": `${typesDir}/dist/index.mjs`,
  })) as unknown as Core;
  const wasmBinary = await readAsset(`${variantDir}/dist/emscripten-module.wasm`);
  const variant = core.newVariant(
    {
      type: "sync",
      importFFI: () => import(`file://${variantDir}/dist/ffi.mjs`).then((m) => m.QuickJSFFI),
      importModuleLoader: () => import(`file://${variantDir}/dist/emscripten-module.mjs`).then((m) => m.default),
    } as never,
    {
      wasmBinary: wasmBinary.buffer as ArrayBuffer,
      // Nothing of QuickJS's C side may print to the executor's stdout (it carries signed frames).
      emscriptenModule: { print: () => {}, printErr: () => {} } as never,
      log: () => {},
    },
  );
  quickjs = await core.newQuickJSWASMModuleFromVariant(variant);
  coreVersion = JSON.parse(decoder.decode(await readAsset(`${coreDir}/package.json`))).version;
}

/** Resolves a guest path against /sandbox; only the in-memory tree exists. */
function guestPath(path: string): string {
  return path.startsWith("/") ? path : `${SANDBOX}/${path}`;
}

function fsReply(vm: QuickJSContext, body: () => unknown): QuickJSHandle {
  try {
    const value = body();
    if (value instanceof Uint8Array) return vm.newArrayBuffer(value.slice().buffer);
    return vm.newString(JSON.stringify({ ok: true, value: value ?? null }));
  } catch (error) {
    if (error instanceof FsError) return vm.newString(JSON.stringify({ ok: false, code: error.code }));
    throw error;
  }
}

function installHost(vm: QuickJSContext, context: RunContext, state: { exitCode: number | null }): void {
  const { fs, run } = context;
  const host = vm.newObject();
  const text = (h: QuickJSHandle | undefined): string => (h === undefined ? "" : String(vm.dump(h)));
  const bytes = (h: QuickJSHandle | undefined): Uint8Array => {
    if (h === undefined) return new Uint8Array(0);
    if (vm.typeof(h) === "string") return encoder.encode(vm.getString(h));
    const lifetime = vm.getArrayBuffer(h);
    try {
      return lifetime.value.slice();
    } finally {
      lifetime.dispose();
    }
  };
  const fns: Record<string, (...args: QuickJSHandle[]) => QuickJSHandle | void> = {
    write: (fd, data) => {
      const n = vm.getNumber(fd!);
      context.write(n === 2 ? 2 : 1, encoder.encode(text(data)));
    },
    decode: (data) => vm.newString(decoder.decode(bytes(data))),
    exit: (code) => {
      state.exitCode = vm.getNumber(code!) | 0;
    },
    fs: (opHandle, pathHandle, a, b) => {
      const op = text(opHandle);
      const path = text(pathHandle);
      return fsReply(vm, () => {
        if (op === "read") {
          if (path === "0") return run.stdin;
          return fs.readFile(guestPath(path));
        }
        const full = guestPath(path);
        switch (op) {
          case "write": {
            const data = bytes(a);
            const append = b !== undefined && vm.dump(b) === true;
            const file = fs.openFile(full, fs.root, { create: true, truncate: !append });
            fs.write(file, append ? file.size : 0, data);
            return null;
          }
          case "exists":
            try {
              fs.lookup(full);
              return true;
            } catch {
              return false;
            }
          case "readdir": {
            const node = fs.lookup(full);
            if (node.kind !== "dir") throw new FsError(54);
            return [...node.entries.keys()].sort();
          }
          case "mkdir":
            if (a !== undefined && vm.dump(a) === true) fs.mkdirp(full);
            else fs.mkdir(full);
            return null;
          case "rm": {
            const recursive = a !== undefined && vm.dump(a) === true;
            const force = b !== undefined && vm.dump(b) === true;
            try {
              const node = fs.lookup(full);
              if (node.kind === "dir") {
                if (!recursive) throw new FsError(31);
                const [parent, name] = fs.parentOf(full);
                parent.entries.delete(name);
              } else fs.unlink(full);
            } catch (error) {
              if (!(force && error instanceof FsError && error.errno === 44)) throw error;
            }
            return null;
          }
          case "unlink":
            fs.unlink(full);
            return null;
          case "rmdir":
            fs.rmdir(full);
            return null;
          case "rename":
            fs.rename(full, fs.root, guestPath(text(a)), fs.root);
            return null;
          case "stat": {
            const node = fs.lookup(full);
            return {
              size: node.kind === "file" ? node.size : 0,
              file: node.kind === "file",
              mtimeMs: Number(node.mtimeNs / 1_000_000n),
            };
          }
          default:
            throw new FsError(28);
        }
      });
    },
  };
  for (const [name, fn] of Object.entries(fns)) {
    const handle = vm.newFunction(name, fn);
    vm.setProp(host, name, handle);
    handle.dispose();
  }
  const config = vm.newString(
    JSON.stringify({ filename: run.filename === "<string>" ? "main.js" : run.filename, argv: run.argv, env: run.env, quickjs: coreVersion }),
  );
  vm.setProp(host, "config", config);
  config.dispose();
  vm.setProp(vm.global, "__wasmbox_host", host);
  host.dispose();
  const prelude = vm.evalCode(GUEST_PRELUDE, "<wasmbox>");
  vm.unwrapResult(prelude).dispose();
}

interface ErrorInfo {
  type: string;
  message: string;
  traceback: string;
}

function errorInfo(vm: QuickJSContext, handle: QuickJSHandle): ErrorInfo {
  const dumped = vm.dump(handle) as { name?: unknown; message?: unknown; stack?: unknown } | unknown;
  if (dumped && typeof dumped === "object") {
    const e = dumped as { name?: unknown; message?: unknown; stack?: unknown };
    return {
      type: typeof e.name === "string" ? e.name : "Error",
      message: typeof e.message === "string" ? e.message : String(dumped),
      traceback: typeof e.stack === "string" ? e.stack : "",
    };
  }
  return { type: "Error", message: `Uncaught ${typeof dumped === "string" ? JSON.stringify(dumped) : String(dumped)}`, traceback: "" };
}

function runGuest(context: RunContext): RunOutcome {
  const { run } = context;
  setGrowCap(run.memoryLimitBytes + HEAP_SLACK_BYTES);
  const state = { exitCode: null as number | null };
  let runtime: QuickJSRuntime;
  let vm: QuickJSContext;
  if (kept && run.keepState) {
    ({ runtime, vm } = kept);
  } else {
    kept?.vm.dispose();
    kept?.runtime.dispose();
    kept = null;
    runtime = quickjs.newRuntime();
    vm = runtime.newContext();
  }
  runtime.setMemoryLimit(run.memoryLimitBytes);
  runtime.setMaxStackSize(STACK_LIMIT_BYTES);
  // Called by QuickJS every few thousand operations; true ends the guest with an uncatchable error.
  runtime.setInterruptHandler(() => context.interrupted() || state.exitCode !== null);
  // Every run binds fresh host functions (this run's files, output, argv); a session's context
  // keeps the guest's own globals.
  installHost(vm, context, state);
  if (run.keepState) kept = { runtime, vm };

  let failure: ErrorInfo | null = null;
  let value: unknown = null;
  let valueRepr: string | null = null;
  const filename = run.filename === "<string>" ? "main.js" : run.filename;
  let evaluated: ReturnType<QuickJSContext["evalCode"]>;
  try {
    evaluated = vm.evalCode(run.code, filename);
  } catch (error) {
    // Deep recursion can exhaust the worker's native stack (wasm frames) before QuickJS's own
    // stack check fires. The interpreter may be inconsistent afterwards: a session does not keep it.
    if (!(error instanceof RangeError)) throw error;
    kept = null;
    const message = "Maximum call stack size exceeded";
    context.write(2, encoder.encode(`Uncaught RangeError: ${message}\n`));
    return { status: "error", exitCode: 1, value: null, valueRepr: null, error: { type: "RangeError", message, traceback: "" } };
  }
  const settle = () => {
    // Promise jobs, then timers in due order, until nothing is left (or the guest failed).
    for (;;) {
      const jobs = runtime.executePendingJobs();
      if (jobs.error) {
        failure ??= errorInfo(vm, jobs.error);
        jobs.error.dispose();
        return;
      }
      if (state.exitCode !== null || context.interrupted()) return;
      const timers = vm.getProp(vm.global, "__wasmbox_timers");
      const wait = vm.getProp(timers, "wait");
      const waitResult = vm.callFunction(wait, timers);
      wait.dispose();
      const ms = waitResult.error ? -1 : vm.getNumber(waitResult.value);
      (waitResult.error ?? waitResult.value).dispose();
      if (ms < 0) return timers.dispose();
      if (ms > 0) waitUnlessInterrupted(context.interruptCell, ms);
      if (context.interrupted()) return timers.dispose();
      const fire = vm.getProp(timers, "fire");
      const fired = vm.callFunction(fire, timers);
      fire.dispose();
      timers.dispose();
      if (fired.error) {
        failure ??= errorInfo(vm, fired.error);
        fired.error.dispose();
        return;
      }
      fired.value.dispose();
    }
  };
  if (evaluated.error) {
    failure = errorInfo(vm, evaluated.error);
    evaluated.error.dispose();
  } else {
    const describe = vm.getProp(vm.global, "__wasmbox_describe");
    const described = vm.callFunction(describe, vm.undefined, evaluated.value);
    describe.dispose();
    const isUndefined = vm.typeof(evaluated.value) === "undefined";
    evaluated.value.dispose();
    if (!described.error) {
      const { json, repr } = JSON.parse(vm.getString(described.value)) as { json: string | null; repr: string };
      described.value.dispose();
      if (!isUndefined) {
        value = json === null ? null : JSON.parse(json);
        valueRepr = repr;
      }
    } else described.error.dispose();
    settle();
  }
  if (state.exitCode === null && failure === null) {
    const exitCode = vm.getProp(vm.global, "__wasmbox_exitCode");
    const got = vm.callFunction(exitCode, vm.undefined);
    exitCode.dispose();
    if (!got.error) {
      const n = vm.dump(got.value);
      if (typeof n === "number" && n !== 0) state.exitCode = n | 0;
      got.value.dispose();
    } else got.error.dispose();
  }
  if (state.exitCode !== null) {
    const code = state.exitCode;
    return {
      status: code === 0 ? "ok" : "error",
      exitCode: code,
      value: null,
      valueRepr: null,
      error: code === 0 ? null : { type: "Exit", message: `process.exit(${code})`, traceback: "" },
    };
  }
  if (failure) {
    const f: ErrorInfo = failure;
    const outOfMemory = f.type === "InternalError" && /out of memory/.test(f.message);
    const shown = f.traceback ? `Uncaught ${f.type}: ${f.message}\n${f.traceback.replace(/\n$/, "")}\n` : `Uncaught ${f.type}: ${f.message}\n`;
    context.write(2, encoder.encode(shown));
    return { status: outOfMemory ? "memory_limit" : "error", exitCode: outOfMemory ? null : 1, value: null, valueRepr: null, error: f };
  }
  return { status: "ok", exitCode: 0, value, valueRepr, error: null };
}

serveRuntime({ load: ({ init }) => load(init.args), run: runGuest });
