import { WasmboxError } from "../core/errors.js";
import type { NormalizedRun } from "../core/request.js";
import { canMeasureCpuTime } from "../host/executor-meter.js";
import type { HostFunction, OutputListener } from "../host/executor-process.js";

export interface RunOptions {
  /** Aborting ends the run at once (its executor is killed) with status "cancelled". */
  signal?: AbortSignal;
  /** Called with each piece of guest stdout as it is produced, in order. */
  onStdout?: (chunk: string) => void;
  /** Called with each piece of guest stderr as it is produced, in order. */
  onStderr?: (chunk: string) => void;
  /**
   * Host functions the guest may call: `from wasmbox import tools; tools.name(key=value)`.
   * Each gets the keyword arguments as an object and returns (or resolves to) a JSON value; what it
   * throws becomes `wasmbox.ToolError` in Python. Calls count against the run's timeout.
   */
  tools?: Readonly<Record<string, HostFunction>>;
}

/**
 * Refuses a run with a CPU-time limit where the host cannot read an executor's CPU time (no Linux
 * /proc: macOS), with NOT_IMPLEMENTED: a limit asked for is never silently left out, and a wall
 * clock in its place would make the verdict depend on the machine's load, which is what the
 * caller wanted to avoid.
 */
export function refuseUnmeasurableCpuLimit(run: Pick<NormalizedRun, "cpuTimeMs">, measurable = canMeasureCpuTime): void {
  if (run.cpuTimeMs !== null && !measurable) {
    throw new WasmboxError(
      "NOT_IMPLEMENTED",
      "cpuTimeMs needs the executor's CPU time, which this host cannot read (Linux /proc); leave cpuTimeMs out and use timeoutMs",
    );
  }
}

const TOOL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Throws TypeError unless `name` can be a host function: a Python identifier not starting with "__". */
export function assertToolName(name: string): void {
  if (!TOOL_NAME.test(name) || name.startsWith("__")) {
    throw new TypeError(`host function name ${JSON.stringify(name)} must be a Python identifier not starting with "__"`);
  }
}

/** Checks host function names and values; returns a null-prototype copy so no inherited name is callable. */
export function validateTools(tools: Readonly<Record<string, HostFunction>> | undefined): Record<string, HostFunction> {
  const out: Record<string, HostFunction> = Object.create(null);
  if (!tools) return out;
  for (const [name, fn] of Object.entries(tools)) {
    assertToolName(name);
    if (typeof fn !== "function") throw new TypeError(`host function ${name} must be a function`);
    out[name] = fn;
  }
  return out;
}

/** Turns byte chunks from the executor into text callbacks, decoding UTF-8 across chunk edges. */
export function outputListener(options: RunOptions): OutputListener | undefined {
  if (!options.onStdout && !options.onStderr) return undefined;
  const decoders = { 1: new TextDecoder(), 2: new TextDecoder() };
  const listeners = { 1: options.onStdout, 2: options.onStderr };
  return (fd, chunk) => {
    const text = decoders[fd].decode(chunk, { stream: true });
    if (text) listeners[fd]?.(text);
  };
}
