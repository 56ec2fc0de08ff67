/** A client for JSON-lines servers on a child's stdio (wasmbox serve --stdio, the hand-rolled server). */
import { spawn, type ChildProcessWithoutNullStreams, type SpawnOptions } from "node:child_process";

type Reply = Record<string, unknown>;

export class JsonLinesClient {
  readonly child: ChildProcessWithoutNullStreams;
  private buffer = "";
  private readonly waiting = new Map<string | number, (reply: Reply) => void>();
  private readonly unmatched: Reply[] = [];
  private unmatchedWaiter: ((reply: Reply) => void) | null = null;
  private stderrTail = "";
  readonly exited: Promise<number | null>;

  constructor(command: string, args: string[], options: SpawnOptions = {}) {
    this.child = spawn(command, args, { ...options, stdio: ["pipe", "pipe", "pipe"] }) as ChildProcessWithoutNullStreams;
    this.child.stdout.setEncoding("utf8").on("data", (chunk: string) => this.onData(chunk));
    this.child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-16 * 1024);
    });
    this.child.stdin.on("error", () => {});
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
    void this.exited.then(() => {
      const error = { error: { code: "EXITED", message: `server exited: ${this.stderrTail.trim().split("\n").pop() ?? ""}` } };
      for (const resolve of this.waiting.values()) resolve(error);
      this.waiting.clear();
      this.unmatchedWaiter?.(error);
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get stderr(): string {
    return this.stderrTail;
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      if (!line.trim()) continue;
      let reply: Reply;
      try {
        reply = JSON.parse(line) as Reply;
      } catch {
        continue; // not ours: a server that logs to stdout
      }
      const id = reply.id as string | number | undefined;
      const resolve = id !== undefined ? this.waiting.get(id) : undefined;
      if (resolve && reply.event === undefined) {
        this.waiting.delete(id!);
        resolve(reply);
      } else if (id === undefined) {
        if (this.unmatchedWaiter) {
          const waiter = this.unmatchedWaiter;
          this.unmatchedWaiter = null;
          waiter(reply);
        } else this.unmatched.push(reply);
      }
    }
  }

  /** Waits for the next line that carries no id (e.g. a server's {"ready": true}). */
  nextUnmatched(timeoutMs: number): Promise<Reply> {
    const queued = this.unmatched.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line from server within ${timeoutMs} ms; stderr: ${this.stderrTail.slice(-500)}`)), timeoutMs);
      this.unmatchedWaiter = (reply) => {
        clearTimeout(timer);
        resolve(reply);
      };
    });
  }

  /** Sends one request with an id and resolves with its reply (replies may come out of order). */
  request(message: Record<string, unknown> & { id: string | number }): Promise<Reply> {
    return new Promise((resolve) => {
      this.waiting.set(message.id, resolve);
      this.child.stdin.write(JSON.stringify(message) + "\n");
    });
  }

  send(message: Record<string, unknown>): void {
    this.child.stdin.write(JSON.stringify(message) + "\n");
  }

  /** Ends the server: the given goodbye line if any, stdin closed, then SIGKILL after a grace period. */
  async close(goodbye?: Record<string, unknown>, graceMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (goodbye) this.send(goodbye);
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
