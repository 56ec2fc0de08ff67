import type { Readable, Writable } from "node:stream";
import { WasmboxError } from "../core/errors.js";
import { DEFAULT_MAX_REQUEST_BYTES } from "../core/limits.js";
import type { RunResult } from "../core/result.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import { normalizeRunRequest } from "../sandbox/normalize-request.js";

type Id = string | number;

export interface StdioServerOptions {
  /** Largest accepted request line in bytes. Default 8 MiB. */
  maxRequestBytes?: number;
}

/**
 * `wasmbox serve --stdio`: one JSON request per line in, one JSON reply per line out, nothing else
 * on the output. Requests with an `id` may overlap; their replies carry the id and may come out of
 * order. The minimal form `{"code": "4 + 5"}` answers `{"output": 9}` or `{"error": "Type: message"}`.
 * Resolves when input ends or `{"shutdown": true}` arrives, after in-flight runs have answered.
 */
export async function serveStdio(sandbox: Sandbox, input: Readable, output: Writable, options: StdioServerOptions = {}): Promise<void> {
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const inFlight = new Set<Promise<void>>();
  let shuttingDown = false;

  const reply = (message: object) => {
    output.write(JSON.stringify(message) + "\n");
  };
  const replyError = (id: Id | undefined, code: string, message: string) => {
    // Requests with an id get a typed error; the minimal protocol's callers expect a string.
    reply(id === undefined ? { error: message } : { id, error: { code, message } });
  };

  const handle = async (line: string) => {
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch {
      return replyError(readId(line), "INVALID_REQUEST", "request is not valid JSON");
    }
    if (typeof request !== "object" || request === null || Array.isArray(request)) {
      return replyError(undefined, "INVALID_REQUEST", "request must be a JSON object");
    }
    const fields = request as Record<string, unknown>;
    const rawId = fields.id;
    if (rawId !== undefined && typeof rawId !== "string" && !(typeof rawId === "number" && Number.isFinite(rawId))) {
      return replyError(undefined, "INVALID_REQUEST", "id must be a string or a number");
    }
    const id = rawId as Id | undefined;
    if (fields.shutdown === true) {
      shuttingDown = true;
      return;
    }
    const op = fields.op ?? (fields.code !== undefined || fields.entryPath !== undefined ? "run" : undefined);
    if (op !== "run") {
      return replyError(id, "UNKNOWN_OP", op === undefined ? "request has neither code nor a known op" : `unknown op ${JSON.stringify(op)}`);
    }
    if (fields.stream !== undefined && typeof fields.stream !== "boolean") {
      return replyError(id, "INVALID_REQUEST", "stream must be a boolean");
    }
    let result: RunResult;
    try {
      const run = { ...fields };
      delete run.id;
      delete run.op;
      delete run.stream;
      normalizeRunRequest(run); // validate before queueing, so bad input answers at once
      const stream = fields.stream === true && id !== undefined;
      result = await sandbox.run(run, {
        onStdout: stream ? (data) => reply({ id, event: "stdout", data }) : undefined,
        onStderr: stream ? (data) => reply({ id, event: "stderr", data }) : undefined,
      });
    } catch (error) {
      if (error instanceof WasmboxError) return replyError(id, error.code, error.message);
      return replyError(id, "INTERNAL_ERROR", error instanceof Error ? error.message : String(error));
    }
    if (id !== undefined) return reply({ id, ...result });
    // The minimal protocol of hand-rolled Deno + Pyodide servers.
    if (result.status === "ok") {
      const out: Record<string, unknown> = { output: result.valueRepr !== null ? (result.value ?? result.valueRepr) : null };
      if (result.stdout) out.stdout = result.stdout;
      return reply(out);
    }
    reply({ error: result.error ? `${result.error.type}: ${result.error.message}` : result.status });
  };

  const track = (line: string) => {
    const task = handle(line).catch((error) => replyError(undefined, "INTERNAL_ERROR", String(error)));
    inFlight.add(task);
    void task.finally(() => inFlight.delete(task));
  };

  for await (const event of jsonLines(input, maxRequestBytes)) {
    if (event.kind === "too-large") {
      replyError(event.id, "REQUEST_TOO_LARGE", `request line is larger than ${maxRequestBytes} bytes`);
    } else if (event.line.trim()) {
      track(event.line);
    }
    if (shuttingDown) break;
    // let a shutdown request that was just parsed take effect before reading on
    await Promise.resolve();
    if (shuttingDown) break;
  }
  while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
}

/** Reads the id from the start of a line that could not be parsed whole. */
function readId(prefix: string): Id | undefined {
  const match = /^\s*\{\s*"id"\s*:\s*("(?:[^"\\]|\\.){0,200}"|-?\d{1,15})/.exec(prefix);
  if (!match) return undefined;
  try {
    return JSON.parse(match[1]!);
  } catch {
    return undefined;
  }
}

type LineEvent = { kind: "line"; line: string } | { kind: "too-large"; id: Id | undefined };

/** Splits input into lines, never holding more than maxBytes of one line in memory. */
async function* jsonLines(input: Readable, maxBytes: number): AsyncGenerator<LineEvent> {
  let parts: Buffer[] = [];
  let size = 0;
  let discarding: { id: Id | undefined } | null = null;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(0x0a, start);
      const end = newline < 0 ? chunk.length : newline;
      const piece = chunk.subarray(start, end);
      if (discarding) {
        // skip the rest of an oversized line
      } else if (size + piece.length > maxBytes) {
        const head = Buffer.concat([...parts, piece]).subarray(0, 256).toString("utf8");
        discarding = { id: readId(head) };
        parts = [];
        size = 0;
      } else {
        parts.push(piece);
        size += piece.length;
      }
      if (newline < 0) break;
      if (discarding) {
        yield { kind: "too-large", id: discarding.id };
        discarding = null;
      } else {
        yield { kind: "line", line: Buffer.concat(parts).toString("utf8") };
      }
      parts = [];
      size = 0;
      start = newline + 1;
    }
  }
  if (discarding) yield { kind: "too-large", id: discarding.id };
  else if (size > 0) yield { kind: "line", line: Buffer.concat(parts).toString("utf8") };
}
