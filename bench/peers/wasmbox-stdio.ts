/** wasmbox as a server: `node dist/cli/bin.js serve --stdio`, JSON lines over the child's stdio. */
import { join } from "node:path";
import { REPO_DIR, type BenchContext } from "../lib/context.js";
import { JsonLinesClient } from "../lib/jsonl-client.js";
import { waitForIdleExecutors } from "../lib/proc.js";

export class WasmboxStdio {
  private nextId = 1;
  private constructor(
    readonly client: JsonLinesClient,
    readonly poolSize: number,
  ) {}

  static start(ctx: BenchContext, poolSize = 2, extraArgs: string[] = []): WasmboxStdio {
    const args = [join(REPO_DIR, "dist", "cli", "bin.js"), "serve", "--stdio", "--pool", String(poolSize), ...extraArgs];
    const client = new JsonLinesClient(ctx.node, args, { cwd: REPO_DIR });
    return new WasmboxStdio(client, poolSize);
  }

  /** Waits until the server's pool is started and idle (its executors are found through /proc). */
  warm(timeoutMs = 60_000): Promise<boolean> {
    return waitForIdleExecutors(this.client.pid, this.poolSize, timeoutMs);
  }

  /** One request, timed from writing the line to reading its reply. */
  async run(code: string): Promise<number> {
    const id = this.nextId++;
    const started = performance.now();
    const reply = await this.client.request({ id, code });
    const ms = performance.now() - started;
    if (reply.status !== "ok" || reply.stdout !== "1\n") {
      throw new Error(`serve --stdio: ${JSON.stringify(reply.error ?? reply.status ?? reply).slice(0, 300)}`);
    }
    return ms;
  }

  /** One request for any program: its status ("ok", "error", "timeout", …) and its latency. */
  async runProgram(code: string, timeoutMs: number): Promise<{ status: string; ms: number }> {
    const id = this.nextId++;
    const started = performance.now();
    const reply = await this.client.request({ id, code, timeoutMs });
    const ms = performance.now() - started;
    if (typeof reply.status !== "string") throw new Error(`serve --stdio: ${JSON.stringify(reply.error ?? reply).slice(0, 300)}`);
    return { status: reply.status, ms };
  }

  async close(): Promise<void> {
    await this.client.close({ shutdown: true });
  }
}

/** `total` requests with `concurrency` in flight over one connection: runs/s and per-request latency. */
export async function jsonLinesThroughput(run: () => Promise<number>, total: number, concurrency: number): Promise<{ runsPerSecond: number; samples: number[] }> {
  const samples: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < total) {
      next++;
      samples.push(await run());
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { runsPerSecond: total / ((performance.now() - started) / 1000), samples };
}
