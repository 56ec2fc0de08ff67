import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import type { McpSessionScope } from "./mcp-session-scope.js";

/**
 * Seam for issue 4 (sessions), called once per MCP session by createMcpServer(). Registers
 * nothing yet. The facade now has `sandbox.session()`; wiring it here is the whole change:
 * `session_run` (same input as run_python) runs in one interpreter created on first use, kept for
 * the MCP session so variables and files carry over, and closed when the MCP session ends:
 *
 *     let session: Promise<Session> | null = null;
 *     scope.onClose(async () => (await session?.catch(() => null))?.close("the MCP session ended"));
 *     server.registerTool("session_run", { inputSchema: runShape, outputSchema: runResultShape, ... },
 *       async (args, extra) => {
 *         session ??= sandbox.session({ language: "python" });
 *         return toCallToolResult(await (await session).run(args, { signal: extra.signal }));
 *       });
 *
 * SESSION_DEAD / SESSION_CLOSED should drop the cached session and answer a tool error telling
 * the model its state is gone. Over HTTP, several MCP sessions share one Sandbox; each has its
 * own scope, so one client never sees another's variables.
 */
export function registerSessionTools(_server: McpServer, _sandbox: Sandbox, _scope: McpSessionScope): void {
  // Intentionally empty until issue 4 lands.
}
