/** `wasmbox mcp [--http PORT]`: being built (issue 6). */
export async function mcpCommand(_args: string[]): Promise<number> {
  process.stderr.write("wasmbox: the MCP server is not available yet\n");
  return 2;
}
