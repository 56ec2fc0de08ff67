/** `wasmbox/mcp` (once package.json exports it): the MCP server, for any MCP SDK transport. */
export { createMcpServer, type McpServerOptions, type WasmboxMcpServer } from "./mcp-server.js";
export {
  startMcpHttpServer,
  DEFAULT_MAX_SESSIONS,
  DEFAULT_SESSION_IDLE_MS,
  type McpHttpServer,
  type McpHttpServerOptions,
} from "./mcp-http.js";
export { McpSessionScope } from "./mcp-session-scope.js";
export { DEFAULT_MCP_SESSION_IDLE_MS, type SessionToolsOptions } from "./session-tools.js";
export { toCallToolResult, resultText } from "./tool-result.js";
