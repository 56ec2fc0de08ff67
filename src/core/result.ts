/**
 * The result of one run: the wire contract, with the same field names in TypeScript, JSON and
 * (in snake_case) Python. What the guest did is data, never a host exception.
 */
export type RunStatus =
  | "ok"
  | "error"
  | "timeout"
  | "memory_limit"
  | "output_limit"
  | "crash"
  | "cancelled";

export const RUN_STATUSES: readonly RunStatus[] = [
  "ok",
  "error",
  "timeout",
  "memory_limit",
  "output_limit",
  "crash",
  "cancelled",
];

export interface GuestError {
  /** Exception class name, e.g. "ZeroDivisionError". */
  type: string;
  message: string;
  /** Python-style traceback pointing at the user's code, without Pyodide-internal frames. */
  traceback: string;
}

export interface OutputFile {
  /** Path relative to the sandbox working directory, with "/" separators. */
  path: string;
  size: number;
  encoding: "utf8" | "base64";
  content: string;
}

export interface RunResult {
  status: RunStatus;
  /** `sys.exit(n)` gives n; an uncaught exception gives 1; null when the run did not finish. */
  exitCode: number | null;
  /** UTF-8, invalid bytes replaced; capped together with stderr at maxOutputBytes. */
  stdout: string;
  stderr: string;
  /** The last expression as JSON where it converts, else null. */
  value: unknown;
  /**
   * The last expression in the lossless tagged form, where it converts (Python: big ints, floats
   * that are integral or not finite, tuples, dicts with other keys, bytes, sets, dates, decimals
   * keep their types; see docs/values.md and decodeLosslessValue()), else null.
   */
  valueLossless: unknown;
  /** repr() of the last expression, or null when there is none (or it is None). */
  valueRepr: string | null;
  error: GuestError | null;
  /** Regular files under the sandbox directory that the run created or changed. */
  files: OutputFile[];
  /** Wall-clock time from the request reaching an executor to the result, in milliseconds. */
  durationMs: number;
}

/** Exit codes the CLI uses for statuses that have no guest exit code. */
export const CLI_EXIT_CODES: Record<Exclude<RunStatus, "ok" | "error">, number> = {
  timeout: 124,
  memory_limit: 137,
  output_limit: 125,
  crash: 70,
  cancelled: 130,
};

/** Decodes an output file's content to bytes (linear, one buffer of the file's size). */
export function fileBytes(file: OutputFile): Uint8Array {
  if (file.encoding !== "base64") return new TextEncoder().encode(file.content);
  const native = (Uint8Array as { fromBase64?: (text: string) => Uint8Array }).fromBase64;
  if (native) return native(file.content);
  const binary = atob(file.content);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
