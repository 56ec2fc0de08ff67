/**
 * The lifetime of one MCP session: over stdio, the connection; over HTTP, from `initialize` to
 * DELETE, idle reaping or shutdown. State tied to the session (the interpreter `run_code` with `session: true`
 * keeps, src/mcp/session-tools.ts) registers its cleanup here and is reaped when the session ends.
 */
export class McpSessionScope {
  private readonly cleanups: (() => void | Promise<void>)[] = [];
  private closing: Promise<void> | null = null;

  /** Whether the session has ended. */
  get closed(): boolean {
    return this.closing !== null;
  }

  /** Runs `cleanup` when the session ends (at once when it already has). */
  onClose(cleanup: () => void | Promise<void>): void {
    if (this.closing) void Promise.resolve().then(cleanup).catch(() => {});
    else this.cleanups.push(cleanup);
  }

  /** Runs every cleanup, newest first; one failing does not stop the others. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const cleanup of this.cleanups.splice(0).reverse()) {
        try {
          await cleanup();
        } catch {
          // a cleanup that fails must not keep the others from running
        }
      }
    })();
    return this.closing;
  }
}
