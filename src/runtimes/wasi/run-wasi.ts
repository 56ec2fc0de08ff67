/**
 * Runs INSIDE the executor: one WASI command module, from `_start` to exit, against the run's
 * in-memory files, with its linear memory capped at the run's memory limit.
 */
import { WasiExit, WasiHost, WasiInterrupted, wasiImportsOnly } from "../../vfs/wasi-host.js";
import { cappedMemory, makeMemoryImported, nearMemoryCap, type MemoryShape } from "../../vfs/wasi-memory.js";
import { exitOutcome, SANDBOX, type RunContext, type RunOutcome } from "../worker-kit.js";

/** A compiled module and where its (capped) memory comes from. */
export interface PreparedModule {
  module: WebAssembly.Module;
  memory: MemoryShape | null;
}

/** Compiles a module after making its memory an import, so each instance can be capped. */
export async function prepareModule(bytes: Uint8Array): Promise<PreparedModule> {
  const cappable = makeMemoryImported(bytes);
  const module = await WebAssembly.compile(cappable.bytes as Uint8Array<ArrayBuffer>);
  return { module, memory: cappable.memory };
}

/** Directories a WASI program may open: the working directory (as "." and by name) and /tmp. */
export const PREOPENS: [string, string][] = [
  [".", SANDBOX],
  [SANDBOX, SANDBOX],
  ["/tmp", "/tmp"],
];

/** A WASI host for one run: the run's stdin, output, file system and interrupt, with `args` and `env`. */
export function wasiHostFor(context: RunContext, args: string[], env: Record<string, string> = context.run.env): WasiHost {
  return new WasiHost({
    args,
    env,
    stdin: context.run.stdin,
    write: context.write,
    fs: context.fs,
    preopens: PREOPENS,
    interrupted: context.interrupted,
  });
}

/** What a trap or exit means for the result. */
function failure(error: unknown, memory: WebAssembly.Memory | null, limitBytes: number): RunOutcome {
  const outOfMemory = memory !== null && nearMemoryCap(memory, limitBytes);
  if (error instanceof WasiExit) {
    if (error.code !== 0 && outOfMemory) return memoryLimit(limitBytes);
    return exitOutcome(error.code);
  }
  if (error instanceof WasiInterrupted) {
    return { status: "error", exitCode: null, value: null, valueRepr: null, error: { type: "Interrupted", message: "the run was interrupted", traceback: "" } };
  }
  if (error instanceof WebAssembly.RuntimeError || error instanceof RangeError) {
    if (outOfMemory || /out of memory|memory limit/i.test(String((error as Error).message))) return memoryLimit(limitBytes);
    const message = (error as Error).message;
    return {
      status: "error",
      exitCode: 134,
      value: null,
      valueRepr: null,
      error: { type: "Trap", message: `wasm trap: ${message}`, traceback: String((error as Error).stack ?? "") },
    };
  }
  throw error;
}

export function memoryLimit(limitBytes: number): RunOutcome {
  return {
    status: "memory_limit",
    exitCode: null,
    value: null,
    valueRepr: null,
    error: { type: "MemoryLimit", message: `the program ran out of memory (limit ${limitBytes} bytes)`, traceback: "" },
  };
}

/**
 * Instantiates and runs a command module. `programName` is argv[0]; `extraImports` serve modules
 * that import more than WASI (e.g. stubs).
 */
export function runCommand(
  prepared: PreparedModule,
  context: RunContext,
  options: { programName: string; writeTrapToStderr?: boolean; extraImports?: WebAssembly.Imports } = { programName: "main.wasm" },
): RunOutcome {
  const { run } = context;
  const missing = wasiImportsOnly(prepared.module).filter((name) => {
    const [module, field] = name.split(".") as [string, string];
    if (prepared.memory && module === prepared.memory.module && field === prepared.memory.name) return false;
    return !(options.extraImports?.[module] && field in options.extraImports[module]!);
  });
  if (missing.length > 0) {
    const message = `the module imports ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""}: only WASI preview1 (wasi_snapshot_preview1) is provided`;
    context.write(2, new TextEncoder().encode(`error: ${message}\n`));
    return { status: "error", exitCode: 1, value: null, valueRepr: null, error: { type: "LinkError", message, traceback: "" } };
  }
  const host = wasiHostFor(context, [options.programName, ...run.argv]);
  let memory: WebAssembly.Memory | null = null;
  const imports: WebAssembly.Imports = { ...options.extraImports, wasi_snapshot_preview1: host.imports as WebAssembly.ModuleImports };
  if (prepared.memory) {
    try {
      memory = cappedMemory(prepared.memory, run.memoryLimitBytes);
    } catch {
      return memoryLimit(run.memoryLimitBytes);
    }
    imports[prepared.memory.module] = { ...imports[prepared.memory.module], [prepared.memory.name]: memory };
    host.memory = memory;
  }
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(prepared.module, imports);
  } catch (error) {
    const message = (error as Error).message;
    return { status: "error", exitCode: 1, value: null, valueRepr: null, error: { type: "LinkError", message, traceback: "" } };
  }
  memory ??= (instance.exports.memory as WebAssembly.Memory | undefined) ?? null;
  try {
    const code = host.start(instance);
    if (code !== 0 && memory && nearMemoryCap(memory, run.memoryLimitBytes)) return memoryLimit(run.memoryLimitBytes);
    return exitOutcome(code);
  } catch (error) {
    host.flush();
    const outcome = failure(error, memory, run.memoryLimitBytes);
    if (options.writeTrapToStderr !== false && outcome.error?.type === "Trap") {
      context.write(2, new TextEncoder().encode(`${outcome.error.message}\n`));
    }
    return outcome;
  }
}
