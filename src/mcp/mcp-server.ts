import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { WasmboxError } from "../core/errors.js";
import { validateRunRequest, type RunRequest } from "../protocol/run-request.js";
import { SandboxService } from "../service/sandbox-service.js";
import { listLanguages } from "../sandbox/languages.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import { McpSessionScope } from "./mcp-session-scope.js";
import { progressReporter, type Extra } from "./progress-reporter.js";
import { mcpPythonSession } from "./session-tools.js";
import { errorToolResult, toCallToolResult } from "./tool-result.js";
import { INSTRUCTIONS, runDescription, runInputShape, SESSION_RESET_DESCRIPTION, toolLanguages } from "./tool-schemas.js";

export interface McpServerOptions {
  /** Reported as the server's version in `initialize`. */
  version?: string;
  /** The session interpreter (run_code with session: true) is closed after this long without a call, in milliseconds. Default 30 minutes. */
  sessionIdleTimeoutMs?: number;
  /** The session interpreter is closed this long after it started, in milliseconds. Default 1 hour. */
  sessionMaxLifetimeMs?: number;
}

export interface WasmboxMcpServer {
  server: McpServer;
  /** The MCP session's lifetime; session tools hang their state on it. */
  scope: McpSessionScope;
  /** Ends the session: cancels its runs (the transport aborts their signals), reaps its state. Idempotent. */
  close(): Promise<void>;
}

/** Time between a call's last progress notification and its result (see runTool). */
const LAST_PROGRESS_GAP_MS = 20;

async function runTool(service: SandboxService, request: RunRequest, extra: Extra): Promise<CallToolResult> {
  const progress = progressReporter(extra);
  try {
    const run = validateRunRequest(request); // at the edge, once: a bad path answers before a slot is taken
    const result = await service.run({
      run,
      // A client's cancellation (notifications/cancelled, or the session ending) stops the run.
      signal: extra.signal,
      onStdout: progress?.push,
      onStderr: progress?.push,
    });
    await progress?.flush();
    // The TypeScript SDK's client dispatches a notification a microtask after it reads it, but a
    // response at once, which retires the request's progress handler: a last notification that
    // reaches the client in the same read as the response is dropped (modelcontextprotocol/
    // typescript-sdk#2580, "a race servers cannot avoid"). A moment between them makes that rare.
    if (progress?.sentAtEnd) await new Promise((resolve) => setTimeout(resolve, LAST_PROGRESS_GAP_MS));
    return toCallToolResult(result);
  } catch (error) {
    await progress?.flush();
    if (error instanceof WasmboxError) return errorToolResult(error.code, error.message);
    throw error;
  }
}

/**
 * One MCP server (one per MCP session) offering `run_code` (every installed language, fresh each
 * call or, with `session: true`, in the MCP session's persistent Python interpreter) and
 * `session_reset`, on a shared Sandbox. One run tool rather than one per language or per kind of
 * run: each tool repeats its schema and prose in every conversation's context (src/mcp/tool-schemas.ts).
 * Connect it to a transport; call `close()` when the session ends.
 */
export function createMcpServer(sandbox: Sandbox, options: McpServerOptions = {}): WasmboxMcpServer {
  const server = new McpServer(
    { name: "wasmbox", title: "wasmbox code sandbox", version: options.version ?? "0.0.0" },
    { capabilities: { tools: {} }, instructions: INSTRUCTIONS },
  );
  // The same service stdio and HTTP call: fresh runs and the conversation's session alike.
  const service = new SandboxService(sandbox);
  const scope = new McpSessionScope();
  const session = mcpPythonSession(service, scope, {
    idleTimeoutMs: options.sessionIdleTimeoutMs,
    maxLifetimeMs: options.sessionMaxLifetimeMs,
  });
  const languages = toolLanguages(listLanguages());

  server.registerTool(
    "run_code",
    {
      title: "Run code in a sandbox",
      description: runDescription(languages, sandbox.packages),
      inputSchema: runInputShape(languages.map((l) => l.name), session.lifetimes),
      // Not read-only: with session: true a call changes the session's state. Nothing outside the sandbox changes.
      annotations: { destructiveHint: false, openWorldHint: false },
    },
    (args, extra) => {
      const { session: persistent, ...request } = args;
      if (!persistent) return runTool(service, request, extra);
      if (request.language !== "python") {
        return errorToolResult("INVALID_REQUEST", `session: true is for Python only; run ${request.language} without it (fresh each call).`);
      }
      return session.run(request, extra);
    },
  );

  server.registerTool(
    "session_reset",
    { description: SESSION_RESET_DESCRIPTION, annotations: { idempotentHint: true, openWorldHint: false } },
    () => session.reset(),
  );

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
