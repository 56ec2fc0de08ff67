import { runRequestJsonSchemaDocument } from "../protocol/run-request.js";
import { errorBodySchema, jsonSchemaOf, runResultSchema } from "../protocol/run-result.js";
import { sessionOptionsJsonSchema, toolNamesSchema } from "../protocol/session-request.js";
import { HTTP_ERROR_CODES } from "./http-errors.js";

const errorResponse = (description: string, codes: string[]) => ({
  description: `${description} Codes: ${codes.join(", ")}.`,
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
});

const runResponse = {
  description: "The run finished in some way: read `status`.",
  content: {
    "application/json": { schema: { $ref: "#/components/schemas/RunResult" } },
    "text/event-stream": { schema: { type: "string" } },
    "application/x-ndjson": { schema: { type: "string" } },
  },
};
const sessionIdParameter = { name: "sessionId", in: "path", required: true, schema: { type: "string" }, description: "From `POST /v1/sessions`." };
const filePathParameter = {
  name: "path",
  in: "path",
  required: true,
  schema: { type: "string" },
  description: "Relative to /sandbox, its / separators as they are (e.g. `data/in.csv`); absolute or climbing paths are refused.",
};
const sessionNotFound = errorResponse(
  "This server never opened a session with that id (or has forgotten it: it remembers the last 1000 that ended).",
  ["SESSION_NOT_FOUND"],
);
const sessionGone = errorResponse(
  "The session has ended for good: `SESSION_CLOSED` when it was deleted, reaped (idle timeout, maximum lifetime) or the server " +
    "is shutting down; `SESSION_DEAD` when a call had to be killed and its interpreter with it. Open a new session.",
  ["SESSION_CLOSED", "SESSION_DEAD"],
);
const tooLarge = errorResponse(
  "The body is larger than the server's limit (`--max-body-bytes`, default 8 MiB), or an input is past its cap (`maxStdinBytes`, `maxInputFileBytes`, `maxInputBytes`; the message names it).",
  ["REQUEST_TOO_LARGE"],
);
const hostFailed = errorResponse("The host failed.", ["EXECUTOR_START_FAILED", "INTERNAL_ERROR"]);
const shuttingDown = errorResponse("The server is shutting down.", ["SANDBOX_CLOSED"]);
const unauthorized = errorResponse("A token is configured and the request has no matching `Authorization: Bearer` header.", ["UNAUTHORIZED"]);

/** The run request, plus the host functions (`tools`) an HTTP caller answers on the run's stream. */
function runRequestWithTools(): Record<string, unknown> {
  const document = runRequestJsonSchemaDocument();
  (document.properties as Record<string, unknown>).tools = jsonSchemaOf(toolNamesSchema, "input");
  return document;
}

/** The OpenAPI 3.1 document served at `GET /openapi.json`. */
export function openApiDocument(version: string, options: { auth: boolean }): object {
  const security = options.auth ? [{ bearer: [] }] : [];
  return {
    openapi: "3.1.0",
    info: {
      title: "wasmbox",
      version,
      description:
        "Runs untrusted Python in a zero-permission WebAssembly sandbox. What the guest did (an exception, a timeout, a limit) " +
        "is data: a 200 whose body has `status`. Errors of the request itself answer 4xx/5xx with " +
        '`{"error": {"code": "SCREAMING_SNAKE", "message": "..."}}`, the same codes as the TypeScript WasmboxError.',
    },
    security,
    paths: {
      "/v1/run": {
        post: {
          operationId: "run",
          summary: "Run one program in a fresh interpreter.",
          description:
            "Answers the result object. With `Accept: text/event-stream` (SSE events `stdout` and `stderr` whose `data` is a " +
            "JSON string, then `result` with the result object or `error` with `{code, message}`) " +
            'or `Accept: application/x-ndjson` (lines `{"event":"stdout","data":"..."}`, ' +
            '`{"event":"stderr","data":"..."}`, then `{"event":"result","result":{...}}` or `{"event":"error","error":{...}}`) ' +
            "output is streamed as it is produced. With `tools` (host function names), the answer must be streamed: each call " +
            "the guest makes is a `call` event, answered at `POST /v1/calls/{callId}`. Closing the connection cancels the run. " +
            "The request body must be `application/json`.",
          requestBody: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/RunRequest" } } } },
          responses: {
            "200": runResponse,
            "400": errorResponse("The request is malformed.", ["INVALID_REQUEST", "INVALID_PATH", "UNSUPPORTED_LANGUAGE"]),
            "401": unauthorized,
            "413": tooLarge,
            "415": errorResponse("The body is not declared as JSON.", ["UNSUPPORTED_MEDIA_TYPE"]),
            "429": errorResponse(
              "As many runs are waiting as the queue holds (`--max-queue`) beyond the running ones. Retry later.",
              ["QUEUE_FULL"],
            ),
            "500": hostFailed,
            "503": shuttingDown,
          },
        },
      },
      "/v1/sessions": {
        post: {
          operationId: "createSession",
          summary: "Open a session: one interpreter whose globals, imports and files persist between its runs.",
          description:
            "The session holds an executor of its own until it is deleted, goes unused for `idleTimeoutMs`, reaches " +
            "`maxLifetimeMs`, or the server shuts down. The body is optional (none, or `{}`, takes the defaults). `tools` names host " +
            "functions every run of the session offers (its runs must then be streamed, as with `tools` on a run). " +
            "To continue a saved session (`GET /v1/sessions/{sessionId}/saved`, here or on another server of the same wasmbox " +
            "version and packages), send its bytes as `application/octet-stream`, the options in the query: `tools` (comma-separated; " +
            "it must name the host functions the saved session was opened with), `idleTimeoutMs`, `maxLifetimeMs`. A saved session is " +
            "checked (format, checksum, runtime) before any executor sees it: 422 `INVALID_SESSION_BLOB` or `SESSION_BLOB_INCOMPATIBLE`.",
          parameters: [
            { name: "tools", in: "query", required: false, schema: { type: "string" }, description: "With a saved session: host function names, comma-separated." },
            { name: "idleTimeoutMs", in: "query", required: false, schema: { type: "integer" }, description: "With a saved session." },
            { name: "maxLifetimeMs", in: "query", required: false, schema: { type: "integer" }, description: "With a saved session." },
          ],
          requestBody: {
            required: false,
            content: {
              "application/json": { schema: { $ref: "#/components/schemas/SessionOptions" } },
              "application/octet-stream": { schema: { type: "string", format: "binary" }, description: "A saved session to continue (at most 512 MiB)." },
            },
          },
          responses: {
            "201": {
              description: "Opened. `Location` is the session's URL.",
              headers: { Location: { schema: { type: "string" }, description: "/v1/sessions/{sessionId}" } },
              content: {
                "application/json": {
                  schema: { type: "object", required: ["sessionId"], properties: { sessionId: { type: "string" } } },
                },
              },
            },
            "400": errorResponse("The options are malformed.", ["INVALID_REQUEST", "UNSUPPORTED_LANGUAGE"]),
            "401": unauthorized,
            "413": tooLarge,
            "415": errorResponse("A body was sent but not declared as JSON.", ["UNSUPPORTED_MEDIA_TYPE"]),
            "422": errorResponse("The uploaded saved session is damaged, truncated, not one, or from another wasmbox version or package set.", ["INVALID_SESSION_BLOB", "SESSION_BLOB_INCOMPATIBLE"]),
            "429": errorResponse("As many sessions are open as the sandbox allows (`maxSessions`, default 16). Delete one first.", ["TOO_MANY_SESSIONS"]),
            "500": hostFailed,
            "503": shuttingDown,
          },
        },
      },
      "/v1/sessions/{sessionId}/saved": {
        get: {
          operationId: "saveSession",
          summary: "Download the session saved: its interpreter (globals, modules, objects, random state), files and options, as one blob.",
          description:
            "A versioned, checksummed, compressed blob (Python sessions). Send it to `POST /v1/sessions` as `application/octet-stream` to " +
            "continue it, on this server or another of the same wasmbox version and packages. The session goes on. State a saved session " +
            "cannot carry (JavaScript objects Python holds, a shared library loaded after the start) answers 409 `SESSION_NOT_SAVEABLE` " +
            "naming it.",
          parameters: [sessionIdParameter],
          responses: {
            "200": { description: "The saved session.", content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } },
            "401": unauthorized,
            "404": sessionNotFound,
            "409": errorResponse("The session holds state a saved session cannot carry; the message names it. The session is still open.", ["SESSION_NOT_SAVEABLE"]),
            "410": sessionGone,
            "501": errorResponse("Sessions of this language cannot be saved (Python only).", ["NOT_IMPLEMENTED"]),
          },
        },
      },
      "/v1/sessions/{sessionId}/fork": {
        post: {
          operationId: "forkSession",
          summary: "Independent copies of a session, each on an executor of its own, with its host functions and timeouts.",
          description: "The body is optional: `{}` or `{\"count\": N}` (default 1). Opens all or none; each counts against `maxSessions`.",
          parameters: [sessionIdParameter],
          requestBody: {
            required: false,
            content: { "application/json": { schema: { type: "object", properties: { count: { type: "integer", minimum: 1, default: 1 } }, additionalProperties: false } } },
          },
          responses: {
            "201": {
              description: "The forks' ids.",
              content: { "application/json": { schema: { type: "object", required: ["sessionIds"], properties: { sessionIds: { type: "array", items: { type: "string" } } } } } },
            },
            "400": errorResponse("The body is malformed.", ["INVALID_REQUEST"]),
            "401": unauthorized,
            "404": sessionNotFound,
            "409": errorResponse("The session holds state a fork cannot carry; the message names it.", ["SESSION_NOT_SAVEABLE"]),
            "410": sessionGone,
            "429": errorResponse("The forks would pass `maxSessions`.", ["TOO_MANY_SESSIONS"]),
            "501": errorResponse("Sessions of this language cannot be forked (Python only).", ["NOT_IMPLEMENTED"]),
          },
        },
      },
      "/v1/sessions/{sessionId}/run": {
        post: {
          operationId: "sessionRun",
          summary: "Run code in a session's interpreter: what earlier runs defined is still there.",
          description:
            "The same request, answer and streaming as `POST /v1/run`; `language`, when given, must be the session's. Runs " +
            "of one session execute one after another. A guest that survives its limit (a caught KeyboardInterrupt at the " +
            "timeout, a MemoryError) leaves the session usable; a run that had to be killed (a limit the guest did not " +
            "survive, or a connection closed before the answer, which cancels the run) leaves the session dead: later " +
            "calls answer 410 `SESSION_DEAD`.",
          parameters: [sessionIdParameter],
          requestBody: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/RunRequest" } } } },
          responses: {
            "200": runResponse,
            "400": errorResponse("The request is malformed, or names another language than the session's.", ["INVALID_REQUEST", "INVALID_PATH", "UNSUPPORTED_LANGUAGE"]),
            "401": unauthorized,
            "404": sessionNotFound,
            "410": sessionGone,
            "413": tooLarge,
            "415": errorResponse("The body is not declared as JSON.", ["UNSUPPORTED_MEDIA_TYPE"]),
            "429": errorResponse("One call of this session is running and `--max-queue` more are waiting. Retry later.", ["QUEUE_FULL"]),
            "500": hostFailed,
            "503": shuttingDown,
          },
        },
      },
      "/v1/sessions/{sessionId}": {
        delete: {
          operationId: "deleteSession",
          summary: "End a session and stop its executor; its calls in flight answer `status: \"cancelled\"`.",
          description: "Idempotent: deleting a session that has already ended (deleted, reaped or dead) answers the same 200.",
          parameters: [sessionIdParameter],
          responses: {
            "200": {
              description: "The session is closed.",
              content: { "application/json": { schema: { type: "object", required: ["closed"], properties: { closed: { const: true } } } } },
            },
            "401": unauthorized,
            "404": sessionNotFound,
          },
        },
      },
      "/v1/calls/{callId}": {
        post: {
          operationId: "answerCall",
          summary: "Answer a host function call a run made: the guest's `tools.<name>(...)` returns `result`, or raises ToolError(`error`).",
          description:
            "A run (or session run) whose body names `tools` (or whose session was opened with them) must be streamed; each call is an " +
            'event on its stream: SSE `event: call` with `data: {"callId", "name", "args"}`, or an NDJSON line ' +
            '`{"event": "call", "callId", "name", "args"}`. The guest waits (within its timeout) until this route answers.',
          parameters: [{ name: "callId", in: "path", required: true, schema: { type: "string" }, description: "From the call event." }],
          requestBody: {
            required: true,
            content: {
              "application/json": {
                schema: {
                  oneOf: [
                    { type: "object", required: ["result"], properties: { result: { description: "Any JSON value: what the call returns." } } },
                    { type: "object", required: ["error"], properties: { error: { type: "string", description: "The message of the ToolError the call raises." } } },
                  ],
                },
              },
            },
          },
          responses: {
            "200": { description: "Answered.", content: { "application/json": { schema: { type: "object", properties: { answered: { const: true } } } } } },
            "400": errorResponse("No call with that id is waiting (never made, already answered, or its run has ended), or the body is neither.", ["INVALID_REQUEST"]),
            "401": unauthorized,
          },
        },
      },
      "/v1/sessions/{sessionId}/files": {
        get: {
          operationId: "listSessionFiles",
          summary: "The session's files under /sandbox, between its calls.",
          parameters: [sessionIdParameter],
          responses: {
            "200": {
              description: "Every regular file, with its size in bytes.",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    required: ["files"],
                    properties: { files: { type: "array", items: { type: "object", required: ["path", "size"], properties: { path: { type: "string" }, size: { type: "integer" } } } } },
                  },
                },
              },
            },
            "401": unauthorized,
            "404": sessionNotFound,
            "410": sessionGone,
          },
        },
      },
      "/v1/sessions/{sessionId}/files/{path}": {
        get: {
          operationId: "readSessionFile",
          summary: "One file of the session, as its raw bytes.",
          parameters: [sessionIdParameter, filePathParameter],
          responses: {
            "200": { description: "The file's bytes.", content: { "application/octet-stream": { schema: { type: "string", contentMediaType: "application/octet-stream" } } } },
            "400": errorResponse("The path is absolute, climbs out of /sandbox, or names no file.", ["INVALID_PATH"]),
            "401": unauthorized,
            "404": sessionNotFound,
            "410": sessionGone,
          },
        },
        put: {
          operationId: "writeSessionFile",
          summary: "Create or replace one file of the session with the request body's raw bytes (any content type).",
          parameters: [sessionIdParameter, filePathParameter],
          requestBody: { required: true, content: { "application/octet-stream": { schema: { type: "string", contentMediaType: "application/octet-stream" } } } },
          responses: {
            "200": { description: "Written.", content: { "application/json": { schema: { type: "object", properties: { written: { const: true } } } } } },
            "400": errorResponse("The path is absolute or climbs out of /sandbox.", ["INVALID_PATH"]),
            "401": unauthorized,
            "404": sessionNotFound,
            "410": sessionGone,
            "413": tooLarge,
          },
        },
      },
      "/healthz": {
        get: {
          operationId: "health",
          summary: "Liveness: 200 while serving, 503 while shutting down. Never needs a token.",
          security: [],
          responses: {
            "200": { description: "Serving.", content: { "application/json": { schema: { type: "object", properties: { status: { const: "ok" } } } } } },
            "503": { description: "Shutting down.", content: { "application/json": { schema: { type: "object", properties: { status: { const: "draining" } } } } } },
          },
        },
      },
      "/metrics": {
        get: {
          operationId: "metrics",
          summary: "Prometheus text: runs by status, run durations, running and queued runs, warm and starting executors, open sessions, limits.",
          responses: { "200": { description: "Prometheus text format 0.0.4.", content: { "text/plain": { schema: { type: "string" } } } }, "401": unauthorized },
        },
      },
      "/openapi.json": {
        get: { operationId: "openapi", summary: "This document. Never needs a token.", security: [], responses: { "200": { description: "OpenAPI 3.1." } } },
      },
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "`--token` or WASMBOX_TOKEN; required whenever the server binds beyond loopback." } },
      schemas: {
        RunRequest: runRequestWithTools(),
        SessionOptions: sessionOptionsJsonSchema(),
        RunResult: jsonSchemaOf(runResultSchema),
        Error: jsonSchemaOf(errorBodySchema(HTTP_ERROR_CODES)),
      },
    },
  };
}
