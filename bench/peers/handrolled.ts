/** The hand-rolled long-lived Deno + Pyodide JSON-lines server (handrolled-server.mjs). */
import { join } from "node:path";
import { BENCH_DIR, type BenchContext } from "../lib/context.js";
import { JsonLinesClient } from "../lib/jsonl-client.js";
import { residentBytes } from "../lib/proc.js";

export const HANDROLLED_LABEL = "hand-rolled Deno+Pyodide server (shared interpreter)";
export const HANDROLLED_NOTE = "one Pyodide for all requests, shared globals: NO isolation between runs";

export class HandrolledServer {
  private nextId = 1;
  private constructor(
    readonly client: JsonLinesClient,
    /** Resident bytes right after Pyodide loaded, before any request. */
    readonly idleResidentBytes: number | null,
  ) {}

  static async start(ctx: BenchContext): Promise<HandrolledServer> {
    const client = new JsonLinesClient(
      ctx.deno,
      ["run", "--no-prompt", "--no-config", "--no-lock", `--allow-read=${ctx.pyodideDir}`, join(BENCH_DIR, "peers", "handrolled-server.mjs"), ctx.pyodideDir],
      { env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" } },
    );
    const ready = await client.nextUnmatched(120_000);
    if (ready.ready !== true) throw new Error(`hand-rolled server did not start: ${JSON.stringify(ready)}`);
    return new HandrolledServer(client, residentBytes(client.pid));
  }

  async run(code = "print(1)"): Promise<number> {
    const id = this.nextId++;
    const started = performance.now();
    const reply = await this.client.request({ id, code });
    const ms = performance.now() - started;
    if (reply.status !== "ok" || reply.stdout !== "1\n") throw new Error(`hand-rolled server: ${JSON.stringify(reply).slice(0, 300)}`);
    return ms;
  }

  async close(): Promise<void> {
    await this.client.close({ shutdown: true }, 5_000);
  }
}

let shared: Promise<HandrolledServer> | null = null;

/**
 * One server for every workload that uses it: loading Pyodide without a snapshot takes seconds,
 * and a long-lived process is what this design is. Closed by closeSharedHandrolled() at the end.
 */
export function sharedHandrolled(ctx: BenchContext): Promise<HandrolledServer> {
  shared ??= HandrolledServer.start(ctx);
  return shared;
}

export async function closeSharedHandrolled(): Promise<void> {
  const server = await shared?.catch(() => null);
  shared = null;
  await server?.close();
}
