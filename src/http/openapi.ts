import {
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_MEMORY_LIMIT_BYTES,
  DEFAULT_TIMEOUT_MS,
  MAX_MEMORY_LIMIT_BYTES,
  MAX_OUTPUT_BYTES_LIMIT,
  MAX_TIMEOUT_MS,
  MIN_MEMORY_LIMIT_BYTES,
} from "../core/limits.js";
import { LANGUAGES } from "../core/request.js";
import { RUN_STATUSES } from "../core/result.js";
import { HTTP_ERROR_CODES } from "./http-errors.js";

const content = {
  oneOf: [
    { type: "string", description: "UTF-8 text." },
    {
      type: "object",
      required: ["content"],
      additionalProperties: false,
      properties: {
        encoding: { type: "string", enum: ["utf8", "base64"], default: "utf8" },
        content: { type: "string" },
      },
    },
  ],
};

const errorResponse = (description: string, codes: string[]) => ({
  description: `${description} Codes: ${codes.join(", ")}.`,
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
});

const notImplemented = errorResponse("Sessions arrive with issue 4; until then every session route answers 501.", ["NOT_IMPLEMENTED"]);
const unauthorized = errorResponse("A token is configured and the request has no matching `Authorization: Bearer` header.", ["UNAUTHORIZED"]);

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
            "output is streamed as it is produced. Closing the connection cancels the run. The request body must be " +
            "`application/json`.",
          requestBody: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/RunRequest" } } } },
          responses: {
            "200": {
              description: "The run finished in some way: read `status`.",
              content: {
                "application/json": { schema: { $ref: "#/components/schemas/RunResult" } },
                "text/event-stream": { schema: { type: "string" } },
                "application/x-ndjson": { schema: { type: "string" } },
              },
            },
            "400": errorResponse("The request is malformed.", ["INVALID_REQUEST", "INVALID_PATH", "UNSUPPORTED_LANGUAGE"]),
            "401": unauthorized,
            "413": errorResponse("The body is larger than the server's limit (`--max-body-bytes`, default 8 MiB).", ["REQUEST_TOO_LARGE"]),
            "415": errorResponse("The body is not declared as JSON.", ["UNSUPPORTED_MEDIA_TYPE"]),
            "429": errorResponse(
              "As many runs are waiting as the queue holds (`--max-queue`) beyond the running ones. Retry later.",
              ["QUEUE_FULL"],
            ),
            "500": errorResponse("The host failed.", ["EXECUTOR_START_FAILED", "INTERNAL_ERROR"]),
            "503": errorResponse("The server is shutting down.", ["SANDBOX_CLOSED"]),
          },
        },
      },
      "/v1/sessions": {
        post: { operationId: "createSession", summary: "Create a session (not implemented yet).", responses: { "401": unauthorized, "501": notImplemented } },
      },
      "/v1/sessions/{sessionId}/run": {
        post: {
          operationId: "sessionRun",
          summary: "Run code in a session (not implemented yet).",
          parameters: [{ name: "sessionId", in: "path", required: true, schema: { type: "string" } }],
          responses: { "401": unauthorized, "501": notImplemented },
        },
      },
      "/v1/sessions/{sessionId}": {
        delete: {
          operationId: "deleteSession",
          summary: "End a session (not implemented yet).",
          parameters: [{ name: "sessionId", in: "path", required: true, schema: { type: "string" } }],
          responses: { "401": unauthorized, "501": notImplemented },
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
          summary: "Prometheus text: runs by status, run durations, running and queued runs, limits.",
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
        RunRequest: {
          type: "object",
          additionalProperties: false,
          description: "Give `code`, or `entryPath` naming one of `files`.",
          properties: {
            code: { type: "string", description: "Source to run. The value of a last expression comes back as `value`/`valueRepr`." },
            entryPath: { type: "string", description: "Run this file from `files` instead of `code`." },
            language: { type: "string", enum: [...LANGUAGES], default: "python" },
            files: {
              type: "object",
              additionalProperties: content,
              description: "Path relative to /sandbox (the working directory) -> content. Absolute or climbing paths are refused.",
            },
            stdin: { ...content, description: "Everything the program reads from stdin; EOF after it." },
            argv: { type: "array", items: { type: "string" }, description: "sys.argv[1:]." },
            env: { type: "object", additionalProperties: { type: "string" }, description: "The guest's whole environment." },
            timeoutMs: { type: "integer", minimum: 1, maximum: MAX_TIMEOUT_MS, default: DEFAULT_TIMEOUT_MS },
            memoryLimitBytes: { type: "integer", minimum: MIN_MEMORY_LIMIT_BYTES, maximum: MAX_MEMORY_LIMIT_BYTES, default: DEFAULT_MEMORY_LIMIT_BYTES },
            maxOutputBytes: { type: "integer", minimum: 0, maximum: MAX_OUTPUT_BYTES_LIMIT, default: DEFAULT_MAX_OUTPUT_BYTES },
          },
        },
        RunResult: {
          type: "object",
          required: ["status", "exitCode", "stdout", "stderr", "value", "valueRepr", "error", "files", "durationMs"],
          properties: {
            status: { type: "string", enum: [...RUN_STATUSES] },
            exitCode: { type: ["integer", "null"], description: "sys.exit(n) gives n, an uncaught exception 1; null when the run did not finish." },
            stdout: { type: "string" },
            stderr: { type: "string" },
            value: { description: "The last expression as JSON where it converts, else null." },
            valueRepr: { type: ["string", "null"], description: "repr() of the last expression; null when there is none." },
            error: {
              oneOf: [
                { type: "null" },
                {
                  type: "object",
                  required: ["type", "message", "traceback"],
                  properties: { type: { type: "string" }, message: { type: "string" }, traceback: { type: "string" } },
                },
              ],
            },
            files: {
              type: "array",
              description: "Files under /sandbox the run created or changed.",
              items: {
                type: "object",
                required: ["path", "size", "encoding", "content"],
                properties: {
                  path: { type: "string" },
                  size: { type: "integer" },
                  encoding: { type: "string", enum: ["utf8", "base64"] },
                  content: { type: "string" },
                },
              },
            },
            durationMs: { type: "number" },
          },
        },
        Error: {
          type: "object",
          required: ["error"],
          properties: {
            error: {
              type: "object",
              required: ["code", "message"],
              properties: { code: { type: "string", enum: [...HTTP_ERROR_CODES] }, message: { type: "string" } },
            },
          },
        },
      },
    },
  };
}
