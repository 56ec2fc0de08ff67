import { constants as bufferConstants } from "node:buffer";
import type { Readable, Writable } from "node:stream";
import { WasmboxError } from "../core/errors.js";
import { DEFAULT_MAX_REQUEST_BYTES } from "../core/limits.js";
import { contentBytes, RUN_SOURCE_FIELDS, validateRunRequest } from "../protocol/run-request.js";
import { validateSessionRequest, validateToolNames } from "../protocol/session-request.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import { SandboxService } from "../service/sandbox-service.js";

/** Fields of a request line that are protocol, not run fields. */
const PROTOCOL_FIELDS = ["id", "op", "stream", "tools", "sessionId"] as const;

type Id = string | number;

/** The longest string the runtime can make: a request line, or a reply, is one. */
const MAX_LINE_CHARS = bufferConstants.MAX_STRING_LENGTH;

export interface StdioServerOptions {
  /** Largest accepted request line in bytes. Default 8 MiB. */
  maxRequestBytes?: number;
  /** Aborting cancels every run in flight (they answer "cancelled") and stops reading input. */
  signal?: AbortSignal;
  /** Save idle sessions here instead of closing them (`--save-idle-sessions`). */
  saveIdleSessionsDir?: string;
}

/**
 * `wasmbox serve --stdio`: one JSON request per line in, one JSON reply per line out, nothing else
 * on the output. Requests with an `id` may overlap; their replies carry the id and may come out of
 * order. The minimal form `{"code": "4 + 5"}` answers `{"output": 9}` or `{"error": "Type: message"}`.
 * Resolves when input ends or `{"shutdown": true}` arrives, after in-flight runs have answered.
 */
export async function serveStdio(sandbox: Sandbox, input: Readable, output: Writable, options: StdioServerOptions = {}): Promise<void> {
  // A line becomes one string: past the longest string the runtime makes (Node and Deno: 2^29 - 24
  // characters) decoding it would throw in the reader and end the server, so the limit stops there.
  const maxRequestBytes = Math.min(options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES, MAX_LINE_CHARS);
  const service = new SandboxService(sandbox, { saveIdleSessionsDir: options.saveIdleSessionsDir });
  const inFlight = new Set<Promise<void>>();
  let shuttingDown = false;
  options.signal?.addEventListener(
    "abort",
    () => {
      service.cancelAll();
      input.destroy(); // ends the read loop below even while no line is coming
    },
    { once: true },
  );

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
    const op = fields.op ?? (RUN_SOURCE_FIELDS.some((name) => fields[name] !== undefined) ? "run" : undefined);
    try {
      if (fields.callId !== undefined) return service.answerCall(fields.callId, fields, id);
      switch (op) {
        case "run":
        case "session.run":
          return await runOp(id, fields, op === "session.run" ? sessionIdField(fields) : undefined);
        case "session.open": {
          needId(id, "session.open");
          const { id: _id, op: _op, restore, ...options } = fields;
          const blob = restore === undefined ? undefined : base64Field(restore, "restore");
          const session = await service.openSession({ ...validateSessionRequest(options), restore: blob });
          return reply({ id, sessionId: session.id });
        }
        case "session.save": {
          const blob = await service.saveSession(sessionIdField(fields));
          if (Math.ceil(blob.length / 3) * 4 + 1024 > MAX_LINE_CHARS) {
            throw new WasmboxError("REQUEST_TOO_LARGE", `the saved session is ${blob.length} bytes, too large for one JSON line; save it through the library or the HTTP API (GET /v1/sessions/{id}/saved)`);
          }
          return reply({ id, encoding: "base64", blob: Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).toString("base64"), bytes: blob.length });
        }
        case "session.fork": {
          const forks = await service.forkSession(sessionIdField(fields), fields.count);
          return reply({ id, sessionIds: forks.map((fork) => fork.id) });
        }
        case "cancel":
          // The cancelled run answers for itself, with status "cancelled".
          return service.cancel(needId(id, "cancel"));
        case "session.close":
          await service.closeSession(sessionIdField(fields));
          return reply({ id, closed: true });
        case "session.files.list":
          return reply({ id, files: await service.listFiles(sessionIdField(fields)) });
        case "session.files.read": {
          const path = pathField(fields);
          const bytes = await service.readFile(sessionIdField(fields), path);
          return reply({ id, path, encoding: "base64", content: Buffer.from(bytes).toString("base64") });
        }
        case "session.files.write": {
          const path = pathField(fields);
          await service.writeFile(sessionIdField(fields), path, fileContent(fields));
          return reply({ id, written: true });
        }
        default:
          return replyError(id, "UNKNOWN_OP", op === undefined ? "request has neither code (nor entryPath or wasm) nor a known op" : `unknown op ${JSON.stringify(op)}`);
      }
    } catch (error) {
      if (error instanceof WasmboxError) return replyError(id, error.code, error.message);
      if (error instanceof TypeError || error instanceof RangeError) return replyError(id, "INVALID_REQUEST", error.message);
      return replyError(id, "INTERNAL_ERROR", error instanceof Error ? error.message : String(error));
    }
  };

  /** A base64 field's bytes; anything but canonical base64 is refused, not silently skipped. */
  const base64Field = (value: unknown, name: string): Uint8Array => {
    if (typeof value !== "string" || value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
      throw new WasmboxError("INVALID_REQUEST", `${name} must be base64 text (the blob session.save answered)`);
    }
    return new Uint8Array(Buffer.from(value, "base64"));
  };

  const runOp = async (id: Id | undefined, fields: Record<string, unknown>, sessionId: string | undefined) => {
    if (fields.stream !== undefined && typeof fields.stream !== "boolean") {
      throw new WasmboxError("INVALID_REQUEST", "stream must be a boolean");
    }
    const tools = validateToolNames(fields.tools);
    if (tools.length > 0) needId(id, "a run with tools");
    const request: Record<string, unknown> = { ...fields };
    for (const key of PROTOCOL_FIELDS) delete request[key];
    // Validated once, before queueing, so bad input answers at once; the sandbox does not check it again.
    const run = validateRunRequest(request, { defaultLanguage: sessionId !== undefined ? service.checkSession(sessionId).language : undefined });
    const stream = fields.stream === true && id !== undefined;
    const result = await service.run({
      run,
      sessionId,
      runId: id,
      tools,
      signal: options.signal,
      onStdout: stream ? (data: string) => reply({ id, event: "stdout", data }) : undefined,
      onStderr: stream ? (data: string) => reply({ id, event: "stderr", data }) : undefined,
      onCall: id !== undefined ? (call) => reply({ id, event: "call", ...call }) : undefined,
    });
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

  // Race each read against the abort: on Deno, destroying stdin does not end a pending read.
  const aborted = new Promise<IteratorReturnResult<undefined>>((resolve) => {
    if (options.signal?.aborted) resolve({ done: true, value: undefined });
    options.signal?.addEventListener("abort", () => resolve({ done: true, value: undefined }), { once: true });
  });
  const events = jsonLines(input, maxRequestBytes);
  try {
    for (;;) {
      const next = await Promise.race([events.next(), aborted]);
      if (next.done) break;
      const event = next.value;
      if (event.kind === "too-large") {
        replyError(event.id, "REQUEST_TOO_LARGE", `request line is larger than ${maxRequestBytes} bytes`);
      } else if (event.line.trim()) {
        track(event.line);
      }
      if (shuttingDown) break;
    }
  } catch (error) {
    if (!options.signal?.aborted) throw error; // destroyed by the abort above: nothing more to read
  }
  while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
  await service.close();
}

function needId(id: Id | undefined, op: string): Id {
  if (id === undefined) throw new WasmboxError("INVALID_REQUEST", `${op} needs an id`);
  return id;
}

function pathField(fields: Record<string, unknown>): string {
  if (typeof fields.path !== "string") throw new WasmboxError("INVALID_REQUEST", "path must be a string");
  return fields.path;
}

function sessionIdField(fields: Record<string, unknown>): string {
  if (typeof fields.sessionId !== "string") throw new WasmboxError("INVALID_REQUEST", "sessionId must be a string");
  return fields.sessionId;
}

/** `content` of session.files.write: text, or base64 with `"encoding": "base64"`. */
function fileContent(fields: Record<string, unknown>): string | Uint8Array {
  const { content, encoding = "utf8" } = fields;
  if (typeof content !== "string") throw new WasmboxError("INVALID_REQUEST", "content must be a string");
  if (encoding !== "utf8" && encoding !== "base64") throw new WasmboxError("INVALID_REQUEST", 'encoding must be "utf8" or "base64"');
  return encoding === "base64" ? contentBytes({ encoding, content }, "content") : content;
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
