/** What a caller may ask for in one run. Field names are the wire contract. */

/** File content as given by a caller: text, raw bytes, or an explicit encoding (the wire form). */
export type FileContent = string | Uint8Array | { encoding: "utf8" | "base64"; content: string };

export type Language = "python";
export const LANGUAGES: readonly Language[] = ["python"];

export interface RunRequest {
  /** Source to run. Either `code` or `entryPath` (a path among `files`) is required. */
  code?: string;
  /** Run this file from `files` instead of `code`; tracebacks and sys.argv[0] name it. */
  entryPath?: string;
  /** Default "python". */
  language?: Language;
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
}

/** A validated run, with defaults applied and contents as bytes: what inner layers take. */
export interface NormalizedRun {
  language: Language;
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
}
