/** `wasmbox serve --http PORT`: being built (issue 6). */
export async function httpCommand(_args: string[]): Promise<number> {
  process.stderr.write("wasmbox: the HTTP server is not available yet\n");
  return 2;
}
