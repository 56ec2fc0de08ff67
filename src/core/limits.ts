/** Default limits for one run. Every quantity carries its unit in its name. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Default cap on the guest's memory: the wasm heap, and (with overhead) the executor's resident memory. */
export const DEFAULT_MEMORY_LIMIT_BYTES = 256 * 1024 * 1024;
/** Default cap on stdout and stderr together. */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
/** Default caps on what a run takes in: stdin, each input file, and everything together (stdin, files, code). */
export const DEFAULT_MAX_STDIN_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_INPUT_FILE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_INPUT_BYTES = 128 * 1024 * 1024;
/** Default caps on the files a run gives back: each one, and all of them together. */
export const DEFAULT_MAX_OUTPUT_FILE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_OUTPUT_FILES_TOTAL_BYTES = 128 * 1024 * 1024;
/** The highest a caller may raise the input caps to. */
export const MAX_INPUT_BYTES_LIMIT = 1024 * 1024 * 1024;
/**
 * The highest a caller may raise the output-file caps to: a result carries its files as JSON text
 * (base64 where that is cheaper), and a JavaScript string holds at most ~512 M characters.
 */
export const MAX_OUTPUT_FILES_BYTES_LIMIT = 256 * 1024 * 1024;

/** Largest accepted JSON request line on `serve --stdio`. */
export const DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024;

/** Bounds a caller may not exceed, so a request cannot ask for an unbounded sandbox. */
export const MAX_TIMEOUT_MS = 24 * 60 * 60 * 1000;
export const MIN_MEMORY_LIMIT_BYTES = 48 * 1024 * 1024;
export const MAX_MEMORY_LIMIT_BYTES = 4 * 1024 * 1024 * 1024;
export const MAX_OUTPUT_BYTES_LIMIT = 256 * 1024 * 1024;

/** After a soft interrupt, how long the guest has to come back before its executor is killed. */
export const INTERRUPT_GRACE_MS = 1_000;

/** Working directory of every run; `files` paths are relative to it. */
export const SANDBOX_DIR = "/sandbox";

/** Longest `valueRepr`, error message and traceback a result carries; longer ones are cut with "…". */
export const VALUE_REPR_MAX_CHARS = 65_536;
export const ERROR_MESSAGE_MAX_CHARS = 65_536;
export const TRACEBACK_MAX_CHARS = 262_144;
