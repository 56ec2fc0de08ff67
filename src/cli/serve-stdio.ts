import type { Readable, Writable } from "node:stream";
import { WasmboxError } from "../core/errors.js";
import { DEFAULT_MAX_REQUEST_BYTES } from "../core/limits.js";
import type { HostFunction } from "../host/executor-process.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import type { Session } from "../sandbox/session.js";
import { validateRunRequest } from "../protocol/run-request.js";
import { assertToolName } from "../sandbox/run-options.js";

/** Fields of a request line that are protocol, not run fields. */
const PROTOCOL_FIELDS = ["id", "op", "stream", "tools", "sessionId"] as const;
/** How many closed or dead sessions are remembered, to answer them with SESSION_CLOSED/DEAD rather than NOT_FOUND. */
const REMEMBERED_SESSIONS = 1000;

type Id = string | number;

export interface StdioServerOptions {
  /** Largest accepted request line in bytes. Default 8 MiB. */
  maxRequestBytes?: number;
  /** Aborting cancels every run in flight (they answer "cancelled") and stops reading input. */
  signal?: AbortSignal;
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
  const sessions = new Map<string, { session: Session; tools: string[] }>();
  const pendingCalls = new Map<string, { id: Id; settle: (reply: { result?: unknown; error?: unknown }) => void }>();
  let nextCallId = 0;
  /** Runs in flight by request id, so `{"op": "cancel", "id"}` can stop one. */
  const running = new Map<Id, AbortController>();
  const stopAll = () => {
    for (const controller of running.values()) controller.abort();
  };
  options.signal?.addEventListener(
    "abort",
    () => {
      stopAll();
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
    if (fields.callId !== undefined) return answerCall(id, fields);
    const op = fields.op ?? (fields.code !== undefined || fields.entryPath !== undefined ? "run" : undefined);
    try {
      switch (op) {
        case "run":
          return await runOp(id, fields, null);
        case "session.open":
          return await openOp(id, fields);
        case "session.run":
          return await runOp(id, fields, sessionFor(fields));
        case "cancel": {
          // The cancelled run answers for itself, with status "cancelled".
          const controller = running.get(needId(id, "cancel"));
          if (!controller) throw new WasmboxError("NOT_FOUND", `no run with id ${JSON.stringify(id)} is in progress`);
          controller.abort();
          return;
        }
        case "session.close": {
          const entry = sessionFor(fields);
          await entry.session.close();
          return reply({ id, closed: true });
        }
        case "session.files.list": {
          const entry = sessionFor(fields);
          return reply({ id, files: await entry.session.files.list() });
        }
        case "session.files.read": {
          const entry = sessionFor(fields);
          const path = pathField(fields);
          const bytes = await entry.session.files.read(path);
          return reply({ id, path, encoding: "base64", content: Buffer.from(bytes).toString("base64") });
        }
        case "session.files.write": {
          const entry = sessionFor(fields);
          const path = pathField(fields);
          const { content, encoding = "utf8" } = fields;
          if (typeof content !== "string") throw new WasmboxError("INVALID_REQUEST", "content must be a string");
          if (encoding !== "utf8" && encoding !== "base64") throw new WasmboxError("INVALID_REQUEST", 'encoding must be "utf8" or "base64"');
          await entry.session.files.write(path, encoding === "base64" ? Buffer.from(content, "base64") : content);
          return reply({ id, written: true });
        }
        default:
          return replyError(id, "UNKNOWN_OP", op === undefined ? "request has neither code nor a known op" : `unknown op ${JSON.stringify(op)}`);
      }
    } catch (error) {
      if (error instanceof WasmboxError) return replyError(id, error.code, error.message);
      if (error instanceof TypeError || error instanceof RangeError) return replyError(id, "INVALID_REQUEST", error.message);
      return replyError(id, "INTERNAL_ERROR", error instanceof Error ? error.message : String(error));
    }
  };

  const needId = (id: Id | undefined, op: string): Id => {
    if (id === undefined) throw new WasmboxError("INVALID_REQUEST", `${op} needs an id`);
    return id;
  };

  const toolNames = (value: unknown): string[] => {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value) || !value.every((n) => typeof n === "string")) {
      throw new WasmboxError("INVALID_REQUEST", "tools must be an array of host function names");
    }
    return value;
  };

  const pathField = (fields: Record<string, unknown>): string => {
    if (typeof fields.path !== "string") throw new WasmboxError("INVALID_REQUEST", "path must be a string");
    return fields.path;
  };

  const sessionFor = (fields: Record<string, unknown>) => {
    if (typeof fields.sessionId !== "string") throw new WasmboxError("INVALID_REQUEST", "sessionId must be a string");
    const entry = sessions.get(fields.sessionId);
    if (!entry) throw new WasmboxError("SESSION_NOT_FOUND", `no session ${JSON.stringify(fields.sessionId)}`);
    return entry;
  };

  /** Host functions named in a request become call events answered by `{id, callId, result|error}` lines. */
  const callProxies = (id: Id, names: string[]): Record<string, HostFunction> => {
    const tools: Record<string, HostFunction> = {};
    for (const name of names) {
      tools[name] = (args) =>
        new Promise((resolve, reject) => {
          const callId = `c${nextCallId++}`;
          pendingCalls.set(callId, {
            id,
            settle: (answer) => {
              pendingCalls.delete(callId);
              if (answer.error !== undefined) reject(new Error(typeof answer.error === "string" ? answer.error : JSON.stringify(answer.error)));
              else resolve(answer.result);
            },
          });
          reply({ id, event: "call", callId, name, args });
        });
    }
    return tools;
  };

  const answerCall = (id: Id | undefined, fields: Record<string, unknown>) => {
    const pending = typeof fields.callId === "string" ? pendingCalls.get(fields.callId) : undefined;
    if (!pending || (id !== undefined && pending.id !== id)) {
      return replyError(id, "INVALID_REQUEST", `no host function call ${JSON.stringify(fields.callId)} is waiting for an answer`);
    }
    if (!("result" in fields) && !("error" in fields)) {
      return replyError(id, "INVALID_REQUEST", "a call answer needs result or error");
    }
    pending.settle({ result: fields.result, error: fields.error });
  };

  const openOp = async (rawId: Id | undefined, fields: Record<string, unknown>) => {
    const id = needId(rawId, "session.open");
    const tools = toolNames(fields.tools);
    for (const name of tools) assertToolName(name);
    for (const key of Object.keys(fields)) {
      if (!["id", "op", "tools", "idleTimeoutMs", "maxLifetimeMs"].includes(key)) {
        throw new WasmboxError("INVALID_REQUEST", `unknown field ${JSON.stringify(key)} for session.open`);
      }
    }
    const ms = (name: "idleTimeoutMs" | "maxLifetimeMs") => {
      const value = fields[name];
      if (value === undefined) return undefined;
      if (!Number.isInteger(value) || (value as number) < 1) throw new WasmboxError("INVALID_REQUEST", `${name} must be a positive integer`);
      return value as number;
    };
    const session = await sandbox.session({ idleTimeoutMs: ms("idleTimeoutMs"), maxLifetimeMs: ms("maxLifetimeMs") });
    sessions.set(session.id, { session, tools });
    while (sessions.size > REMEMBERED_SESSIONS) {
      const oldest = [...sessions].find(([, e]) => e.session.state !== "open");
      if (!oldest) break;
      sessions.delete(oldest[0]);
    }
    reply({ id, sessionId: session.id });
  };

  const runOp = async (id: Id | undefined, fields: Record<string, unknown>, entry: { session: Session; tools: string[] } | null) => {
    if (fields.stream !== undefined && typeof fields.stream !== "boolean") {
      throw new WasmboxError("INVALID_REQUEST", "stream must be a boolean");
    }
    const names = [...(entry?.tools ?? []), ...toolNames(fields.tools)];
    for (const name of names) assertToolName(name);
    if (names.length > 0) needId(id, "a run with tools");
    const request: Record<string, unknown> = { ...fields };
    for (const key of PROTOCOL_FIELDS) delete request[key];
    // Validated once, before queueing, so bad input answers at once; the sandbox does not check it again.
    const run = validateRunRequest(request, { defaultLanguage: entry?.session.language });
    const stream = fields.stream === true && id !== undefined;
    const controller = new AbortController();
    if (id !== undefined) {
      if (running.has(id)) throw new WasmboxError("INVALID_REQUEST", `a run with id ${JSON.stringify(id)} is already in progress`);
      running.set(id, controller);
    }
    if (options.signal?.aborted) controller.abort();
    const runOptions = {
      signal: controller.signal,
      onStdout: stream ? (data: string) => reply({ id, event: "stdout", data }) : undefined,
      onStderr: stream ? (data: string) => reply({ id, event: "stderr", data }) : undefined,
      tools: id !== undefined ? callProxies(id, names) : undefined,
    };
    let result;
    try {
      result = entry ? await entry.session.run(run, runOptions) : await sandbox.run(run, runOptions);
    } finally {
      if (id !== undefined && running.get(id) === controller) running.delete(id);
      for (const [callId, pending] of pendingCalls) if (pending.id === id) pendingCalls.delete(callId);
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
  await Promise.all([...sessions.values()].map((e) => e.session.close("the server shut down")));
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
