/**
 * The run request: one schema (zod) from which the TypeScript type, the validation at every edge,
 * the MCP tools' input schemas and the OpenAPI document are derived. Adding a field is one entry in
 * FIELDS (and its test); `validateRunRequest` turns a request into a `ValidRun` once, at the edge,
 * and nothing behind it checks again.
 */
import { Buffer } from "node:buffer";
import { z } from "zod";
import { WasmboxError } from "../core/errors.js";
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
  SANDBOX_DIR,
} from "../core/limits.js";
import { LANGUAGES, type Language, type NormalizedRun } from "../core/request.js";
import { normalizeSandboxPath } from "../vfs/sandbox-path.js";

/**
 * Who reads the schema: "json" is the wire form (HTTP, stdio, MCP, OpenAPI), where bytes travel as
 * `{"encoding": "base64", "content": …}`; "library" also takes `Uint8Array` wherever bytes go.
 */
type Form = "json" | "library";

/** Raw bytes: the library form only (any Uint8Array, Buffer included). */
const bytes = () => z.custom<Uint8Array>((value) => value instanceof Uint8Array);

const CONTENT_EXPECTED = 'must be a string, bytes, or {"encoding": "utf8"|"base64", "content": string}';

/** Text, or `{encoding, content}`; in the library form also bytes. */
function contentSchema(form: Form, description: string) {
  const encoded = z.strictObject({
    encoding: z.enum(["utf8", "base64"]).optional().describe('"base64" for binary content; default "utf8".'),
    content: z.string(),
  });
  const wire = [z.string().describe("UTF-8 text."), encoded] as const;
  // Bytes first: zod would otherwise check a Uint8Array against the object schema, listing its keys (one per byte).
  return (form === "library" ? z.union([bytes(), ...wire]) : z.union(wire)).describe(description);
}

function wasmSchema(form: Form) {
  const encoded = z.strictObject({ encoding: z.literal("base64"), content: z.string() });
  return (form === "library" ? z.union([bytes(), encoded]) : encoded).describe(
    'Language "wasi" only: the WASI preview1 command module to run, as {"encoding": "base64", "content": …} (or give entryPath, a .wasm among files).',
  );
}

/** An integer field: its bounds and default are the schema's, the messages' and the document's. */
/** Package names a request may list. */
const MAX_PACKAGES = 100;
/** A name with optional extras and version specifiers (PEP 508 without markers or URLs). */
const PACKAGE_SPEC = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?\s*(\[[A-Za-z0-9._,\s-]*\])?\s*((===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+\s*(,\s*|$))*$/;

function integer(min: number, max: number, fallback: number, description: string) {
  return { kind: "integer" as const, min, max, fallback, schema: z.number().int().min(min).max(max).describe(`${description} Default ${fallback}.`) };
}

/** An integer field without a default: absent means the limit does not apply. */
function optionalInteger(min: number, max: number, description: string) {
  return { kind: "integer" as const, min, max, schema: z.number().int().min(min).max(max).describe(description) };
}

/**
 * Every field of a run request, in the order documents list them: its schema in each form and what
 * an error says it must be. The one place a field is declared.
 */
function fields(form: Form) {
  return {
    code: { expected: "must be a string", schema: z.string().describe("Source to run. The value of a last expression comes back as value/valueRepr.") },
    entryPath: { expected: "must be a string", schema: z.string().describe("Run this file from files instead of code; tracebacks and sys.argv[0] name it.") },
    language: { expected: "", schema: z.enum(LANGUAGES as [Language, ...Language[]]).describe('Default "python".') },
    wasm: { expected: 'must be bytes or {"encoding": "base64", "content": string}', schema: wasmSchema(form) },
    files: {
      expected: "must be an object mapping sandbox paths to contents",
      schema: z
        .record(z.string(), contentSchema(form, "The file's content."))
        .describe(`Path relative to ${SANDBOX_DIR} (the working directory) -> content. Absolute or climbing paths are refused.`),
    },
    stdin: { expected: CONTENT_EXPECTED, schema: contentSchema(form, "Everything the program reads from stdin; it sees end-of-file after it.") },
    argv: { expected: "must be an array of strings", schema: z.array(z.string()).describe("Arguments after the program name: sys.argv[1:].") },
    packages: {
      expected: 'must be an array of package names (e.g. ["sympy", "pydantic>=2"])',
      schema: z
        .array(z.string().min(1).max(200))
        .max(MAX_PACKAGES)
        .describe("Python: packages from the wheelhouse (`wasmbox packages add`) to import, with their dependencies; one not there is refused before the run (PACKAGE_NOT_FOUND)."),
    },
    env: {
      expected: "must be an object of string values",
      schema: z.record(z.string(), z.string()).describe("The guest's whole environment: nothing else is passed."),
    },
    timeoutMs: integer(1, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, "Wall-clock limit in milliseconds."),
    cpuTimeMs: optionalInteger(
      1,
      MAX_TIMEOUT_MS,
      'CPU-time limit in milliseconds: the CPU the executor uses for the run (all its threads), read by the host (Linux /proc, in 10 ms ticks, every 20 ms), so the verdict does not depend on how loaded the machine is. Past it the run ends as "timeout" with error.type "CpuTimeLimit". Default none: only timeoutMs applies. Refused (NOT_IMPLEMENTED) where the host cannot read CPU time (no /proc, e.g. macOS).',
    ),
    memoryLimitBytes: integer(MIN_MEMORY_LIMIT_BYTES, MAX_MEMORY_LIMIT_BYTES, DEFAULT_MEMORY_LIMIT_BYTES, "Memory cap in bytes."),
    maxOutputBytes: integer(0, MAX_OUTPUT_BYTES_LIMIT, DEFAULT_MAX_OUTPUT_BYTES, "Cap on stdout and stderr together, in bytes; past it the run ends as output_limit."),
    maxStdinBytes: integer(0, MAX_INPUT_BYTES_LIMIT, DEFAULT_MAX_STDIN_BYTES, "Cap on stdin in bytes; a larger stdin is refused before the run (REQUEST_TOO_LARGE, naming the cap)."),
    maxInputFileBytes: integer(0, MAX_INPUT_BYTES_LIMIT, DEFAULT_MAX_INPUT_FILE_BYTES, "Cap on each input file in bytes, refused before the run (REQUEST_TOO_LARGE)."),
    maxInputBytes: integer(0, MAX_INPUT_BYTES_LIMIT, DEFAULT_MAX_INPUT_BYTES, "Cap on stdin, files and code together in bytes, refused before the run (REQUEST_TOO_LARGE)."),
    maxOutputFileBytes: integer(0, MAX_OUTPUT_FILES_BYTES_LIMIT, DEFAULT_MAX_OUTPUT_FILE_BYTES, "Cap on each file the run gives back, in bytes; a larger one is left out and the run ends as output_limit."),
    maxOutputFilesTotalBytes: integer(0, MAX_OUTPUT_FILES_BYTES_LIMIT, DEFAULT_MAX_OUTPUT_FILES_TOTAL_BYTES, "Cap on all the files the run gives back together, in bytes (output_limit past it)."),
  };
}

type Fields = ReturnType<typeof fields>;
type FieldName = keyof Fields;

function requestSchema(form: Form) {
  const spec = fields(form);
  const shape = Object.fromEntries(Object.entries(spec).map(([name, field]) => [name, field.schema.optional()])) as {
    [K in FieldName]: z.ZodOptional<Fields[K]["schema"]>;
  };
  return z.strictObject(shape).describe("Give code, or entryPath naming one of files (language \"wasi\": wasm, or entryPath).");
}

const FIELDS = fields("library");
/** The request as the library takes it (bytes allowed). */
export const runRequestSchema = requestSchema("library");
/** The request on the wire (JSON): what HTTP, stdio and MCP accept and OpenAPI documents. */
export const runRequestJsonSchema = requestSchema("json");

/** What a caller may ask for in one run. Field names are the wire contract; see FIELDS for each one's meaning. */
export type RunRequest = z.input<typeof runRequestSchema>;
/** File content as given by a caller: text, raw bytes, or an explicit encoding (the wire form). */
export type FileContent = string | Uint8Array | { encoding?: "utf8" | "base64"; content: string };

/** The fields that say what a run runs: a request with none of them is not a run. */
export const RUN_SOURCE_FIELDS = ["code", "entryPath", "wasm"] as const;

/** Names of the fields a run request may carry. */
export const RUN_REQUEST_FIELDS: readonly FieldName[] = Object.keys(FIELDS) as FieldName[];

/** The request as JSON Schema (draft 2020-12, which OpenAPI 3.1 uses), with the defaults stated. */
export function runRequestJsonSchemaDocument(): Record<string, unknown> {
  const document = z.toJSONSchema(runRequestJsonSchema, { target: "draft-2020-12", io: "input" }) as Record<string, unknown>;
  delete document.$schema;
  const properties = document.properties as Record<string, Record<string, unknown>>;
  for (const [name, field] of Object.entries(FIELDS)) {
    if ("fallback" in field) properties[name]!.default = field.fallback;
  }
  properties.language!.default = "python";
  return document;
}

/** A request validated at the edge: what the sandbox runs without checking it again. */
export class ValidRun {
  /** Use validateRunRequest(). */
  constructor(readonly run: NormalizedRun) {
    Object.freeze(this);
  }
}

/**
 * Validates a run request from any edge (library call or JSON) and applies defaults. A null field
 * is the same as an absent one. Throws WasmboxError INVALID_REQUEST / INVALID_PATH /
 * UNSUPPORTED_LANGUAGE / REQUEST_TOO_LARGE with a message naming the field.
 */
export function validateRunRequest(input: unknown, options: RequestOptions = {}): ValidRun {
  return new ValidRun(normalizeRunRequest(input, options));
}

export interface RequestOptions {
  /** Fields an edge adds to the request for itself (an `id`, a session id), left out of the check. */
  allowExtraFields?: readonly string[];
  /** The language of a request that names none (a session's); default "python". */
  defaultLanguage?: Language;
}

function invalid(message: string): never {
  throw new WasmboxError("INVALID_REQUEST", message);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

const fieldName = (path: readonly PropertyKey[]) =>
  path.map((key, i) => (i === 0 ? String(key) : `[${JSON.stringify(typeof key === "symbol" ? String(key) : key)}]`)).join("");

/** The schema's first complaint, in the words callers have always read (tests and clients match them). */
function describeIssue(issue: z.core.$ZodIssue, input: Record<string, unknown>): never {
  if (issue.code === "unrecognized_keys") invalid(`unknown field ${JSON.stringify(issue.keys[0])}`);
  const top = issue.path[0] as FieldName;
  const field = FIELDS[top];
  if (!field) invalid(issue.message);
  const value = issue.path.reduce<unknown>((at, key) => (isPlainObject(at) ? at[key as string] : undefined), input);
  if (top === "language") {
    throw new WasmboxError("UNSUPPORTED_LANGUAGE", `language ${JSON.stringify(input.language)} is not supported; supported: ${LANGUAGES.join(", ")}`);
  }
  if ("kind" in field) {
    if (issue.code === "too_small" || issue.code === "too_big") invalid(`${top} must be between ${field.min} and ${field.max}, got ${String(value)}`);
    invalid(`${top} must be an integer, got ${JSON.stringify(value) ?? String(value)}`);
  }
  if ((top === "files" || top === "env") && issue.path.length >= 2) {
    const where = fieldName(issue.path.slice(0, 2));
    if (top === "env") invalid(`${where} must be a string`);
    if (issue.path.length >= 3 && issue.path[2] === "encoding") invalid(`${where}.encoding must be "utf8" or "base64"`);
    invalid(`${where} ${CONTENT_EXPECTED}`);
  }
  if (top === "stdin" && issue.path[1] === "encoding") invalid('stdin.encoding must be "utf8" or "base64"');
  invalid(`${top} ${field.expected}`);
}

/**
 * Bytes are a Uint8Array (or Buffer). Any other typed array or view is refused before the schema
 * sees it: checking one against the `{encoding, content}` object would list its keys, one per
 * element, and a large one would exhaust the heap.
 */
function refuseOtherBinaryViews(request: Record<string, unknown>): void {
  const other = (value: unknown) => (ArrayBuffer.isView(value) && !(value instanceof Uint8Array)) || value instanceof ArrayBuffer;
  for (const name of ["stdin", "wasm"] as const) {
    if (other(request[name])) invalid(`${name} must be a Uint8Array (bytes), not a ${(request[name] as object).constructor.name}`);
  }
  if (isPlainObject(request.files)) {
    for (const [path, value] of Object.entries(request.files)) {
      if (other(value)) invalid(`files[${JSON.stringify(path)}] must be a Uint8Array (bytes), not a ${(value as object).constructor.name}`);
    }
  }
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

/** Text, bytes, or `{encoding, content}` (the JSON form) to bytes. Also checks what the schema has not (a session's file write). */
export function contentBytes(value: unknown, what: string): Uint8Array {
  if (typeof value === "string") return new TextEncoder().encode(value);
  if (value instanceof Uint8Array) return value;
  if (isPlainObject(value) && typeof value.content === "string") {
    if (value.encoding === "base64") return decodeBase64(value.content, what);
    if (value.encoding === "utf8" || value.encoding === undefined) return new TextEncoder().encode(value.content);
    invalid(`${what}.encoding must be "utf8" or "base64"`);
  }
  invalid(`${what} ${CONTENT_EXPECTED}`);
}

/**
 * validateRunRequest()'s work, returning the plain normalized run (for the library's own calls and
 * tests): the schema checks each field, then the rules between fields, paths and caps.
 */
export function normalizeRunRequest(input: unknown, options: RequestOptions = {}): NormalizedRun {
  if (!isPlainObject(input)) invalid("a run request must be a JSON object");
  const allowed = options.allowExtraFields ?? [];
  const present: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    if (allowed.includes(key) && !(key in FIELDS)) continue;
    if (value !== null && value !== undefined) present[key] = value;
  }
  refuseOtherBinaryViews(present);
  const parsed = runRequestSchema.safeParse(present);
  if (!parsed.success) describeIssue(parsed.error.issues[0]!, present);
  const request = parsed.data;
  const language: Language = request.language ?? options.defaultLanguage ?? "python";

  const files = new Map<string, Uint8Array>();
  for (const [path, content] of Object.entries(request.files ?? {})) {
    const normal = normalizeSandboxPath(path);
    if (files.has(normal)) invalid(`files names ${JSON.stringify(normal)} twice`);
    files.set(normal, contentBytes(content, `files[${JSON.stringify(path)}]`));
  }

  let code: string;
  let filename: string;
  if (request.wasm !== undefined && language !== "wasi") invalid('wasm is only for language "wasi"');
  if (language === "wasi") {
    // The module travels to the executor as base64 in `code`, the one field every layer carries.
    if (request.code !== undefined) invalid('language "wasi" takes the module in wasm (bytes or {"encoding": "base64", "content": ...}), not code');
    let bytes: Uint8Array;
    if (request.wasm !== undefined) {
      if (request.entryPath !== undefined) invalid("give either wasm or entryPath, not both");
      bytes = contentBytes(request.wasm, "wasm");
      filename = "main.wasm";
    } else if (request.entryPath !== undefined) {
      const entry = normalizeSandboxPath(request.entryPath);
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
  } else if (request.code !== undefined) {
    if (request.entryPath !== undefined) invalid("give either code or entryPath, not both");
    code = request.code;
    filename = "<string>";
  } else if (request.entryPath !== undefined) {
    const entry = normalizeSandboxPath(request.entryPath);
    const bytes = files.get(entry);
    if (!bytes) invalid(`entryPath ${JSON.stringify(entry)} is not among files`);
    code = new TextDecoder().decode(bytes);
    filename = entry;
  } else {
    invalid("a run request needs code (a string) or entryPath (a path among files)");
  }

  const stdin = request.stdin === undefined ? new Uint8Array(0) : contentBytes(request.stdin, "stdin");
  const limit = <K extends FieldName>(name: K) => {
    const field = FIELDS[name];
    return (request[name] as number | undefined) ?? ("fallback" in field ? field.fallback : 0);
  };

  // Input caps, refused here, before anything reaches an executor, with the cap's name.
  const maxStdinBytes = limit("maxStdinBytes");
  const maxInputFileBytes = limit("maxInputFileBytes");
  const maxInputBytes = limit("maxInputBytes");
  if (stdin.length > maxStdinBytes) tooLarge("stdin", stdin.length, "maxStdinBytes", maxStdinBytes, MAX_INPUT_BYTES_LIMIT);
  let inputBytes = stdin.length + Buffer.byteLength(code);
  for (const [path, bytes] of files) {
    if (bytes.length > maxInputFileBytes) tooLarge(`input file ${JSON.stringify(path)}`, bytes.length, "maxInputFileBytes", maxInputFileBytes, MAX_INPUT_BYTES_LIMIT);
    inputBytes += bytes.length;
  }
  if (inputBytes > maxInputBytes) tooLarge("the run's input (stdin, files and code)", inputBytes, "maxInputBytes", maxInputBytes, MAX_INPUT_BYTES_LIMIT);

  const packages = [...new Set((request.packages ?? []).map((spec) => spec.trim()))];
  for (const spec of packages) {
    if (!PACKAGE_SPEC.test(spec)) invalid(`packages: ${JSON.stringify(spec)} is not a package name with optional version specifiers (e.g. "sympy" or "pydantic>=2")`);
  }
  if (packages.length > 0 && language !== "python") invalid('packages are for language "python"');

  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(request.env ?? {})) {
    if (key === "" || key.includes("=") || key.includes("\0") || value.includes("\0")) {
      invalid(`env name ${JSON.stringify(key)} is not a valid variable name`);
    }
    env[key] = value;
  }

  return {
    language,
    code,
    filename,
    files,
    stdin,
    argv: [...(request.argv ?? [])],
    env,
    packages,
    timeoutMs: limit("timeoutMs"),
    cpuTimeMs: request.cpuTimeMs ?? null,
    memoryLimitBytes: limit("memoryLimitBytes"),
    maxOutputBytes: limit("maxOutputBytes"),
    maxOutputFileBytes: limit("maxOutputFileBytes"),
    maxOutputFilesTotalBytes: limit("maxOutputFilesTotalBytes"),
    inputBytes,
  };
}
