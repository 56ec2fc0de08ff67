import { WasmboxError } from "../core/errors.js";
import { Buffer } from "node:buffer";
import {
  DEFAULT_MAX_INPUT_BYTES,
  DEFAULT_MAX_INPUT_FILE_BYTES,
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_MAX_OUTPUT_FILE_BYTES,
  DEFAULT_MAX_OUTPUT_FILES_TOTAL_BYTES,
  DEFAULT_MAX_STDIN_BYTES,
  DEFAULT_MEMORY_LIMIT_BYTES,
  DEFAULT_TIMEOUT_MS,
  MAX_INPUT_BYTES_LIMIT,
  MAX_MEMORY_LIMIT_BYTES,
  MAX_OUTPUT_BYTES_LIMIT,
  MAX_OUTPUT_FILES_BYTES_LIMIT,
  MAX_TIMEOUT_MS,
  MIN_MEMORY_LIMIT_BYTES,
} from "../core/limits.js";
import { LANGUAGES, type Language, type NormalizedRun } from "../core/request.js";
import { normalizeSandboxPath } from "../vfs/sandbox-path.js";

const RUN_FIELDS = new Set([
  "code", "entryPath", "language", "wasm", "files", "stdin", "argv", "env",
  "timeoutMs", "memoryLimitBytes", "maxOutputBytes",
  "maxStdinBytes", "maxInputFileBytes", "maxInputBytes", "maxOutputFileBytes", "maxOutputFilesTotalBytes",
]);

function invalid(message: string): never {
  throw new WasmboxError("INVALID_REQUEST", message);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** Strict base64 (whitespace allowed) to bytes, in native code: linear, one copy. */
function decodeBase64(text: string, what: string): Uint8Array {
  const compact = /\s/.test(text) ? text.replace(/\s+/g, "") : text;
  if (compact.length % 4 === 1 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) invalid(`${what} is not valid base64`);
  const bytes = Buffer.from(compact, "base64");
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("base64");
}

function tooLarge(what: string, bytes: number, cap: string, capBytes: number, max: number): never {
  throw new WasmboxError(
    "REQUEST_TOO_LARGE",
    `${what} is ${bytes} bytes, over ${cap} (${capBytes} bytes)${capBytes < max ? `; raise ${cap} (up to ${max})` : ""}`,
  );
}

/** Text, bytes, or `{encoding, content}` (the JSON form) to bytes. */
export function contentBytes(value: unknown, what: string): Uint8Array {
  if (typeof value === "string") return new TextEncoder().encode(value);
  if (value instanceof Uint8Array) return value;
  if (isPlainObject(value) && typeof value.content === "string") {
    if (value.encoding === "base64") return decodeBase64(value.content, what);
    if (value.encoding === "utf8" || value.encoding === undefined) return new TextEncoder().encode(value.content);
    invalid(`${what}.encoding must be "utf8" or "base64"`);
  }
  invalid(`${what} must be a string, bytes, or {"encoding": "utf8"|"base64", "content": string}`);
}

function integerIn(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || !Number.isInteger(value)) {
    invalid(`${name} must be an integer, got ${JSON.stringify(value)}`);
  }
  if (value < min || value > max) invalid(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

/**
 * Validates a run request from any edge (library call or JSON) and applies defaults.
 * Throws WasmboxError INVALID_REQUEST / INVALID_PATH with a message naming the bad field.
 */
export function normalizeRunRequest(input: unknown, options: { allowExtraFields?: readonly string[] } = {}): NormalizedRun {
  if (!isPlainObject(input)) invalid("a run request must be a JSON object");
  const allowed = options.allowExtraFields ?? [];
  for (const key of Object.keys(input)) {
    if (!RUN_FIELDS.has(key) && !allowed.includes(key)) invalid(`unknown field ${JSON.stringify(key)}`);
  }

  const language = (input.language ?? "python") as Language;
  if (typeof language !== "string" || !LANGUAGES.includes(language)) {
    throw new WasmboxError(
      "UNSUPPORTED_LANGUAGE",
      `language ${JSON.stringify(input.language)} is not supported; supported: ${LANGUAGES.join(", ")}`,
    );
  }

  const files = new Map<string, Uint8Array>();
  if (input.files !== undefined && input.files !== null) {
    if (!isPlainObject(input.files)) invalid("files must be an object mapping sandbox paths to contents");
    for (const [path, content] of Object.entries(input.files)) {
      const normal = normalizeSandboxPath(path);
      if (files.has(normal)) invalid(`files names ${JSON.stringify(normal)} twice`);
      files.set(normal, contentBytes(content, `files[${JSON.stringify(path)}]`));
    }
  }

  let code: string;
  let filename: string;
  const given = (value: unknown) => value !== undefined && value !== null;
  if (given(input.wasm) && language !== "wasi") invalid('wasm is only for language "wasi"');
  if (language === "wasi") {
    // The module travels to the executor as base64 in `code`, the one field every layer carries.
    if (given(input.code)) invalid('language "wasi" takes the module in wasm (bytes or {"encoding": "base64", "content": ...}), not code');
    let bytes: Uint8Array;
    if (given(input.wasm)) {
      if (given(input.entryPath)) invalid("give either wasm or entryPath, not both");
      if (typeof input.wasm === "string") invalid('wasm must be bytes or {"encoding": "base64", "content": string}');
      bytes = contentBytes(input.wasm, "wasm");
      filename = "main.wasm";
    } else if (given(input.entryPath)) {
      const entry = normalizeSandboxPath(input.entryPath);
      const found = files.get(entry);
      if (!found) invalid(`entryPath ${JSON.stringify(entry)} is not among files`);
      bytes = found;
      filename = entry;
    } else {
      invalid('language "wasi" needs wasm (the module) or entryPath (a .wasm among files)');
    }
    if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
      invalid("wasm is not a WebAssembly module (no \\0asm header)");
    }
    code = toBase64(bytes);
  } else if (input.code !== undefined && input.code !== null) {
    if (typeof input.code !== "string") invalid("code must be a string");
    if (input.entryPath !== undefined && input.entryPath !== null) invalid("give either code or entryPath, not both");
    code = input.code;
    filename = "<string>";
  } else if (input.entryPath !== undefined && input.entryPath !== null) {
    const entry = normalizeSandboxPath(input.entryPath);
    const bytes = files.get(entry);
    if (!bytes) invalid(`entryPath ${JSON.stringify(entry)} is not among files`);
    code = new TextDecoder().decode(bytes);
    filename = entry;
  } else {
    invalid("a run request needs code (a string) or entryPath (a path among files)");
  }

  const stdin = input.stdin === undefined || input.stdin === null ? new Uint8Array(0) : contentBytes(input.stdin, "stdin");

  // Input caps, refused here, before anything reaches an executor, with the cap's name.
  const maxStdinBytes = integerIn(input.maxStdinBytes, "maxStdinBytes", 0, MAX_INPUT_BYTES_LIMIT, DEFAULT_MAX_STDIN_BYTES);
  const maxInputFileBytes = integerIn(input.maxInputFileBytes, "maxInputFileBytes", 0, MAX_INPUT_BYTES_LIMIT, DEFAULT_MAX_INPUT_FILE_BYTES);
  const maxInputBytes = integerIn(input.maxInputBytes, "maxInputBytes", 0, MAX_INPUT_BYTES_LIMIT, DEFAULT_MAX_INPUT_BYTES);
  if (stdin.length > maxStdinBytes) tooLarge("stdin", stdin.length, "maxStdinBytes", maxStdinBytes, MAX_INPUT_BYTES_LIMIT);
  let inputBytes = stdin.length + Buffer.byteLength(code);
  for (const [path, bytes] of files) {
    if (bytes.length > maxInputFileBytes) tooLarge(`input file ${JSON.stringify(path)}`, bytes.length, "maxInputFileBytes", maxInputFileBytes, MAX_INPUT_BYTES_LIMIT);
    inputBytes += bytes.length;
  }
  if (inputBytes > maxInputBytes) tooLarge("the run's input (stdin, files and code)", inputBytes, "maxInputBytes", maxInputBytes, MAX_INPUT_BYTES_LIMIT);

  let argv: string[] = [];
  if (input.argv !== undefined && input.argv !== null) {
    if (!Array.isArray(input.argv) || !input.argv.every((a) => typeof a === "string")) {
      invalid("argv must be an array of strings");
    }
    argv = [...input.argv];
  }

  const env: Record<string, string> = {};
  if (input.env !== undefined && input.env !== null) {
    if (!isPlainObject(input.env)) invalid("env must be an object of string values");
    for (const [key, value] of Object.entries(input.env)) {
      if (typeof value !== "string") invalid(`env[${JSON.stringify(key)}] must be a string`);
      if (key === "" || key.includes("=") || key.includes("\0") || value.includes("\0")) {
        invalid(`env name ${JSON.stringify(key)} is not a valid variable name`);
      }
      env[key] = value;
    }
  }

  return {
    language,
    code,
    filename,
    files,
    stdin,
    argv,
    env,
    timeoutMs: integerIn(input.timeoutMs, "timeoutMs", 1, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS),
    memoryLimitBytes: integerIn(
      input.memoryLimitBytes, "memoryLimitBytes", MIN_MEMORY_LIMIT_BYTES, MAX_MEMORY_LIMIT_BYTES, DEFAULT_MEMORY_LIMIT_BYTES,
    ),
    maxOutputBytes: integerIn(input.maxOutputBytes, "maxOutputBytes", 0, MAX_OUTPUT_BYTES_LIMIT, DEFAULT_MAX_OUTPUT_BYTES),
    maxOutputFileBytes: integerIn(input.maxOutputFileBytes, "maxOutputFileBytes", 0, MAX_OUTPUT_FILES_BYTES_LIMIT, DEFAULT_MAX_OUTPUT_FILE_BYTES),
    maxOutputFilesTotalBytes: integerIn(
      input.maxOutputFilesTotalBytes, "maxOutputFilesTotalBytes", 0, MAX_OUTPUT_FILES_BYTES_LIMIT, DEFAULT_MAX_OUTPUT_FILES_TOTAL_BYTES,
    ),
    inputBytes,
  };
}
