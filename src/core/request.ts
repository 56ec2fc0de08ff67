/** What a caller may ask for in one run. Field names are the wire contract. */

/** File content as given by a caller: text, raw bytes, or an explicit encoding (the wire form). */
export type FileContent = string | Uint8Array | { encoding: "utf8" | "base64"; content: string };

/**
 * Every language wasmbox knows. Python and JavaScript come with the package; the others run once
 * their opt-in npm package is installed (`wasmbox languages` says which and how). "wasi" runs a
 * WASI preview1 command module the caller supplies in `wasm`.
 */
export type Language = "python" | "javascript" | "ruby" | "c" | "cpp" | "sqlite" | "php" | "lua" | "wasi";
export const LANGUAGES: readonly Language[] = ["python", "javascript", "ruby", "c", "cpp", "sqlite", "php", "lua", "wasi"];

export interface RunRequest {
  /** Source to run. Either `code` or `entryPath` (a path among `files`) is required. */
  code?: string;
  /** Run this file from `files` instead of `code`; tracebacks and sys.argv[0] name it. */
  entryPath?: string;
  /** Default "python". */
  language?: Language;
  /**
   * Language "wasi" only: the WASI preview1 command module to run, as bytes or
   * `{"encoding": "base64", "content": …}` (or give `entryPath`, a .wasm among `files`).
   */
  wasm?: Uint8Array | { encoding: "base64"; content: string };
  /** Sandbox path (relative to /sandbox) -> content. Absolute or climbing paths are refused. */
  files?: Record<string, FileContent>;
  /** Everything the program reads from stdin; it sees EOF after it. */
  stdin?: string | Uint8Array | { encoding: "utf8" | "base64"; content: string };
  /** Arguments after the program name: sys.argv[1:]. */
  argv?: string[];
  /** The guest's whole environment: nothing else is passed. */
  env?: Record<string, string>;
  /** Wall-clock limit in milliseconds. Default 30000. */
  timeoutMs?: number;
  /** Memory cap in bytes. Default 256 MiB. */
  memoryLimitBytes?: number;
  /** Cap on stdout + stderr in bytes. Default 1 MiB. */
  maxOutputBytes?: number;
  /** Cap on stdin in bytes; a larger stdin is refused before the run (REQUEST_TOO_LARGE). Default 64 MiB, at most 1 GiB. */
  maxStdinBytes?: number;
  /** Cap on each input file in bytes, refused before the run. Default 64 MiB, at most 1 GiB. */
  maxInputFileBytes?: number;
  /** Cap on stdin, files and code together in bytes, refused before the run. Default 128 MiB, at most 1 GiB. */
  maxInputBytes?: number;
  /** Cap on each file the run gives back, in bytes; a larger one ends the run as output_limit. Default 64 MiB, at most 256 MiB. */
  maxOutputFileBytes?: number;
  /** Cap on all the files the run gives back together, in bytes (output_limit past it). Default 128 MiB, at most 256 MiB. */
  maxOutputFilesTotalBytes?: number;
}

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
  timeoutMs: number;
  memoryLimitBytes: number;
  maxOutputBytes: number;
  maxOutputFileBytes: number;
  maxOutputFilesTotalBytes: number;
  /** Bytes of stdin, files and code: what the executor holds besides the guest's own memory. */
  inputBytes: number;
}
