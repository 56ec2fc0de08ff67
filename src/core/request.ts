/** Languages, and the run as inner layers take it. The request itself is src/protocol/run-request.ts (a schema). */

/**
 * Every language wasmbox knows. Python and JavaScript come with the package; the others run once
 * their opt-in npm package is installed (`wasmbox languages` says which and how). "wasi" runs a
 * WASI preview1 command module the caller supplies in `wasm`.
 */
export type Language = "python" | "javascript" | "ruby" | "c" | "cpp" | "sqlite" | "php" | "lua" | "wasi";
export const LANGUAGES: readonly Language[] = ["python", "javascript", "ruby", "c", "cpp", "sqlite", "php", "lua", "wasi"];

/** A validated run, with defaults applied and contents as bytes: what inner layers take. */
export interface NormalizedRun {
  language: Language;
  /** The source; for language "wasi", the module's bytes as base64. */
  code: string;
  /** Name shown in tracebacks and used as sys.argv[0]. */
  filename: string;
  files: Map<string, Uint8Array>;
  stdin: Uint8Array;
  argv: string[];
  env: Record<string, string>;
  /** Python packages (names with optional version specifiers) the run imports from the wheelhouse. */
  packages: string[];
  timeoutMs: number;
  /**
   * CPU-time limit in milliseconds: the CPU the executor (all its threads and processes) used from
   * the run's start, read by the host from /proc; null for none (only the wall clock).
   */
  cpuTimeMs: number | null;
  memoryLimitBytes: number;
  maxOutputBytes: number;
  maxOutputFileBytes: number;
  maxOutputFilesTotalBytes: number;
  /** Bytes of stdin, files and code: what the executor holds besides the guest's own memory. */
  inputBytes: number;
}
