import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { WasmboxError } from "../core/errors.js";
import { LANGUAGES, type Language } from "../core/request.js";
import { validateRunRequest, type RunRequest } from "../protocol/run-request.js";
import { SandboxService } from "../service/sandbox-service.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import { McpSessionScope } from "./mcp-session-scope.js";
import { progressReporter, type Extra } from "./progress-reporter.js";
import { registerSessionTools } from "./session-tools.js";
import { errorToolResult, toCallToolResult } from "./tool-result.js";
import { environmentText, LIMITS, RESULTS, runResultShape, runShape, SANDBOX } from "./tool-schemas.js";

function instructions(environment: string): string {
  return (
    "wasmbox runs untrusted Python for you in a sandbox. Use run_python for Python code that stands on its own, and " +
    "session_run to keep variables, imports and files from one call to the next (like notebook cells). " +
    environment + " " + RESULTS + " " + LIMITS
  );
}

export interface McpServerOptions {
  /** Reported as the server's version in `initialize`. */
  version?: string;
  /** session_run's interpreter is closed after this long without a call, in milliseconds. Default 30 minutes. */
  sessionIdleTimeoutMs?: number;
  /** session_run's interpreter is closed this long after it started, in milliseconds. Default 1 hour. */
  sessionMaxLifetimeMs?: number;
}

export interface WasmboxMcpServer {
  server: McpServer;
  /** The MCP session's lifetime; session tools hang their state on it. */
  scope: McpSessionScope;
  /** Ends the session: cancels its runs (the transport aborts their signals), reaps its state. Idempotent. */
  close(): Promise<void>;
}

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
    return toCallToolResult(result);
  } catch (error) {
    await progress?.flush();
    if (error instanceof WasmboxError) return errorToolResult(error.code, error.message);
    throw error;
  }
}

/**
 * One MCP server (one per MCP session) offering `run_python`, `run_code`, `session_run` and
 * `session_reset` on a shared Sandbox.
 * Connect it to a transport; call `close()` when the session ends.
 */
export function createMcpServer(sandbox: Sandbox, options: McpServerOptions = {}): WasmboxMcpServer {
  const server = new McpServer(
    { name: "wasmbox", title: "wasmbox Python sandbox", version: options.version ?? "0.0.0" },
    { capabilities: { tools: {} }, instructions: instructions(environmentText(sandbox.packages)) },
  );
  const annotations = { readOnlyHint: true, destructiveHint: false, openWorldHint: false };
  // The same service stdio and HTTP call: run tools and the conversation's session tools alike.
  const service = new SandboxService(sandbox);

  server.registerTool(
    "run_python",
    {
      title: "Run Python in a sandbox",
      description: `Run Python code and get back its output and the value of its last expression. ${environmentText(sandbox.packages)} ${RESULTS} ${LIMITS}`,
      inputSchema: runShape,
      outputSchema: runResultShape,
      annotations,
    },
    (args, extra) => runTool(service, { ...args, language: "python" }, extra),
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
    (args, extra) => runTool(service, args, extra),
  );

  const scope = new McpSessionScope();
  registerSessionTools(server, service, scope, {
    idleTimeoutMs: options.sessionIdleTimeoutMs,
    maxLifetimeMs: options.sessionMaxLifetimeMs,
  });

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
