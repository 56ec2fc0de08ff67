/**
 * The jobs file of `wasmbox batch`: one run request per line (the JSON `serve --stdio` takes) with
 * an `id`. Each line is validated here, once, with the protocol's own validation; a line that is
 * not a job becomes an "invalid" record with its line number, and the batch goes on.
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { WasmboxError } from "../core/errors.js";
import { validateRunRequest, type RunRequest, type ValidRun } from "../protocol/run-request.js";

/** A job's id: a string or a finite number, as the stdio server takes it. */
export type JobId = string | number;

/** The key of an id in sets and maps: `1` and `"1"` are different ids. */
export function idKey(id: JobId): string {
  return JSON.stringify(id);
}

/** A line that is a job: its id, its request as written (for the queue) and as validated. */
export interface JobLine {
  kind: "job";
  /** 1-based line number in the jobs file. */
  line: number;
  id: JobId;
  /** The request without its id, with the batch's default limits filled in where it set none. */
  request: Record<string, unknown>;
  run: ValidRun;
}

/** A line that is not a job: bad JSON, not an object, no usable id, an invalid request, a repeated id. */
export interface InvalidLine {
  kind: "invalid";
  line: number;
  /** The id when one could be read, else null. */
  id: JobId | null;
  code: string;
  message: string;
}

/** Limits a job gets when its line sets none (`--timeout`, `--cpu-time`, `--memory`, `--max-output`). */
export type DefaultLimits = Pick<RunRequest, "timeoutMs" | "cpuTimeMs" | "memoryLimitBytes" | "maxOutputBytes">;

/** Reads the id from the start of a line that is not JSON, so its error record can name it. */
function readId(text: string): JobId | null {
  const match = /^\s*\{\s*"id"\s*:\s*("(?:[^"\\]|\\.){0,200}"|-?\d{1,15})/.exec(text);
  if (!match) return null;
  try {
    return JSON.parse(match[1]!) as JobId;
  } catch {
    return null;
  }
}

/**
 * One line of the jobs file as a job or an invalid record (blank lines are null). `defaults` fill
 * the limits a job does not set. Duplicate ids are the caller's business (parseJobs below).
 */
export function parseJobLine(text: string, line: number, defaults: DefaultLimits = {}): JobLine | InvalidLine | null {
  if (!text.trim()) return null;
  const invalid = (id: JobId | null, code: string, message: string): InvalidLine => ({ kind: "invalid", line, id, code, message });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return invalid(readId(text), "INVALID_REQUEST", "line is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return invalid(null, "INVALID_REQUEST", "line must be a JSON object");
  const { id, ...request } = value as Record<string, unknown>;
  if (id === undefined || id === null) return invalid(null, "INVALID_REQUEST", "a job needs an id (a string or a number)");
  if (typeof id !== "string" && !(typeof id === "number" && Number.isFinite(id))) return invalid(null, "INVALID_REQUEST", "id must be a string or a number");
  for (const [name, fallback] of Object.entries(defaults)) {
    if (fallback !== undefined && (request[name] === undefined || request[name] === null)) request[name] = fallback;
  }
  try {
    return { kind: "job", line, id, request, run: validateRunRequest(request) };
  } catch (error) {
    if (error instanceof WasmboxError) return invalid(id, error.code, error.message);
    throw error;
  }
}

/** The jobs of a file (or stdin: "-"), line by line, as they are read: a file of any length streams. */
export async function* readJobs(source: string | Readable, defaults: DefaultLimits = {}): AsyncGenerator<JobLine | InvalidLine> {
  const input = typeof source === "string" ? (source === "-" ? process.stdin : createReadStream(source)) : source;
  const lines = createInterface({ input, crlfDelay: Infinity });
  const seen = new Set<string>();
  let n = 0;
  for await (const text of lines) {
    n++;
    const parsed = parseJobLine(text, n, defaults);
    if (parsed === null) continue;
    if (parsed.kind === "job") {
      const key = idKey(parsed.id);
      // A repeated id would make "one result per id" ambiguous: the later line is refused.
      if (seen.has(key)) {
        yield { kind: "invalid", line: n, id: parsed.id, code: "DUPLICATE_ID", message: `id ${key} is already used by an earlier line` };
        continue;
      }
      seen.add(key);
    }
    yield parsed;
  }
}

/** How many non-blank lines a jobs file has (for the progress display's total and ETA), read fast. */
export async function countJobLines(path: string): Promise<number> {
  let count = 0;
  let blank = true;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (byte === 0x0a) {
        if (!blank) count++;
        blank = true;
      } else if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) blank = false;
    }
  }
  return blank ? count : count + 1;
}
