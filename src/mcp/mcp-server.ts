import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { CallToolResult, ServerNotification, ServerRequest } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { WasmboxError } from "../core/errors.js";
import {
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_MEMORY_LIMIT_BYTES,
  DEFAULT_TIMEOUT_MS,
  MAX_TIMEOUT_MS,
  SANDBOX_DIR,
} from "../core/limits.js";
import { LANGUAGES, type Language, type RunRequest } from "../core/request.js";
import { RUN_STATUSES } from "../core/result.js";
import { normalizeRunRequest } from "../sandbox/normalize-request.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import { McpSessionScope } from "./mcp-session-scope.js";
import { registerSessionTools } from "./session-tools.js";
import { errorToolResult, toCallToolResult } from "./tool-result.js";

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

const MIB = 1024 * 1024;

const LIMITS =
  `Limits per call: wall-clock timeout ${DEFAULT_TIMEOUT_MS / 1000} s by default (timeoutMs, up to ${MAX_TIMEOUT_MS / 3_600_000} h), ` +
  `memory ${DEFAULT_MEMORY_LIMIT_BYTES / MIB} MiB, stdout and stderr together ${DEFAULT_MAX_OUTPUT_BYTES / MIB} MiB; ` +
  `a run past a limit is stopped and reported with status timeout, memory_limit or output_limit.`;

const SANDBOX =
  "Each call runs in a fresh interpreter inside an isolated process: nothing (variables, imports, files) carries " +
  "over between calls. No network access, no package installs, no subprocesses, and no file of the host. The " +
  `working directory is ${SANDBOX_DIR}; files given in \`files\` are written there first, and files the program ` +
  "creates or changes there are returned.";

const ENVIRONMENT =
  "Python is CPython 3.14 (Pyodide, WebAssembly) with the standard library only: no numpy, pandas or other " +
  "third-party packages, no pip/micropip. " + SANDBOX;

const RESULTS =
  "To get results back: end the code with an expression (its repr() is returned as the value, like in a REPL, and " +
  "as JSON when it converts) or print() them. The answer gives status (ok, error, timeout, memory_limit, " +
  "output_limit, crash, cancelled), stdout, stderr, the value and, on an exception, its traceback; any status but " +
  "ok is a tool error.";

const INSTRUCTIONS =
  "wasmbox runs untrusted Python for you in a sandbox. Use run_python for Python code. " + ENVIRONMENT + " " + RESULTS + " " + LIMITS;

const fileContent = z.union([
  z.string().describe("UTF-8 text"),
  z.object({
    encoding: z.enum(["utf8", "base64"]).describe('"base64" for binary content'),
    content: z.string(),
  }),
]);

const runShape = {
  code: z.string().describe("The program's source. End with an expression to get its value back, or print() results."),
  files: z
    .record(z.string(), fileContent)
    .optional()
    .describe(`Files to create before the run: path relative to ${SANDBOX_DIR} (e.g. "data/input.csv") -> content.`),
  stdin: z.string().optional().describe("Text the program reads from standard input (input(), sys.stdin); it sees end-of-file after it."),
  timeoutMs: z
    .number()
    .int()
    .min(1)
    .max(MAX_TIMEOUT_MS)
    .optional()
    .describe(`Wall-clock limit in milliseconds. Default ${DEFAULT_TIMEOUT_MS}.`),
};

/** The RunResult contract as an output schema; loose so fields added later do not fail clients' validation. */
const runResultShape = {
  status: z.enum(RUN_STATUSES as [string, ...string[]]),
  exitCode: z.number().int().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  value: z.unknown(),
  valueRepr: z.string().nullable(),
  error: z.looseObject({ type: z.string(), message: z.string(), traceback: z.string() }).nullable(),
  files: z.array(z.looseObject({ path: z.string(), size: z.number(), encoding: z.enum(["utf8", "base64"]), content: z.string() })),
  durationMs: z.number(),
};

export interface McpServerOptions {
  /** Reported as the server's version in `initialize`. */
  version?: string;
}

export interface WasmboxMcpServer {
  server: McpServer;
  /** The MCP session's lifetime; session tools hang their state on it. */
  scope: McpSessionScope;
  /** Ends the session: cancels its runs (the transport aborts their signals), reaps its state. Idempotent. */
  close(): Promise<void>;
}

/**
 * Streams guest output as `notifications/progress` when the caller asked for progress (sent a
 * progressToken): the output is the message, coalesced so a chatty loop does not flood the client.
 */
function progressReporter(extra: Extra): { push: (chunk: string) => void; flush: () => Promise<void> } | null {
  const progressToken = extra._meta?.progressToken;
  if (progressToken === undefined) return null;
  let buffered = "";
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  let chain = Promise.resolve();
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    // After a cancellation the client has forgotten the token: progress would only be noise.
    if (buffered && !extra.signal.aborted) {
      const message = buffered;
      buffered = "";
      sent++;
      chain = chain
        .then(() => extra.sendNotification({ method: "notifications/progress", params: { progressToken, progress: sent, message } }))
        .catch(() => {});
    }
    return chain;
  };
  return {
    push: (chunk) => {
      buffered += chunk;
      timer ??= setTimeout(flush, 50);
    },
    flush,
  };
}

async function runTool(sandbox: Sandbox, request: RunRequest, extra: Extra): Promise<CallToolResult> {
  const progress = progressReporter(extra);
  try {
    normalizeRunRequest(request); // validated at the edge: a bad path answers before a slot is taken
    const result = await sandbox.run(request, {
      // A client's cancellation (notifications/cancelled, or the session ending) stops the run.
      signal: extra.signal,
      onStdout: progress?.push,
      onStderr: progress?.push,
    });
    await progress?.flush();
    return toCallToolResult(result);
  } catch (error) {
    await progress?.flush();
    if (error instanceof WasmboxError) return errorToolResult(error.code, error.message);
    throw error;
  }
}

/**
 * One MCP server (one per MCP session) offering `run_python` and `run_code` on a shared Sandbox.
 * Connect it to a transport; call `close()` when the session ends.
 */
export function createMcpServer(sandbox: Sandbox, options: McpServerOptions = {}): WasmboxMcpServer {
  const server = new McpServer(
    { name: "wasmbox", title: "wasmbox Python sandbox", version: options.version ?? "0.0.0" },
    { capabilities: { tools: {} }, instructions: INSTRUCTIONS },
  );
  const annotations = { readOnlyHint: true, destructiveHint: false, openWorldHint: false };

  server.registerTool(
    "run_python",
    {
      title: "Run Python in a sandbox",
      description: `Run Python code and get back its output and the value of its last expression. ${ENVIRONMENT} ${RESULTS} ${LIMITS}`,
      inputSchema: runShape,
      outputSchema: runResultShape,
      annotations,
    },
    (args, extra) => runTool(sandbox, { ...args, language: "python" }, extra),
  );

  server.registerTool(
    "run_code",
    {
      title: "Run code in a sandbox",
      description:
        `Run a program in one of the supported languages (${LANGUAGES.join(", ")}) and get back its output and result. ` +
        `For Python, prefer run_python. ${SANDBOX} ${RESULTS} ${LIMITS}`,
      inputSchema: { language: z.enum(LANGUAGES as [Language, ...Language[]]).describe("The program's language."), ...runShape },
      outputSchema: runResultShape,
      annotations,
    },
    (args, extra) => runTool(sandbox, args, extra),
  );

  const scope = new McpSessionScope();
  registerSessionTools(server, sandbox, scope);

  let closing: Promise<void> | null = null;
  return {
    server,
    scope,
    close() {
      closing ??= (async () => {
        try {
          await server.close(); // closes the transport, which aborts in-flight handlers' signals
        } finally {
          await scope.close();
        }
      })();
      return closing;
    },
  };
}
