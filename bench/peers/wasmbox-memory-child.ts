/**
 * Memory measurements of wasmbox, in a process of their own so the bench's other work does not
 * blur the host's resident memory. Run by workloads/memory.ts as
 *   node --expose-gc --import tsx wasmbox-memory-child.ts idle POOL [ISOLATION]
 *   node --expose-gc --import tsx wasmbox-memory-child.ts host RUNS IN_FLIGHT WARMUP [ISOLATION]
 * and prints one JSON line.
 */
import { WasmboxLibrary } from "./wasmbox-library.js";
import { executorResidentBytes, residentBytes } from "../lib/proc.js";

const [mode, a, b, c, d] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const hostBytes = () => residentBytes(process.pid) ?? process.memoryUsage().rss;

function settle(): void {
  gc();
  gc();
}

if (mode === "idle") {
  const pool = Number(a);
  const isolation = b ?? "process";
  const lib = await WasmboxLibrary.create(pool, { isolation });
  try {
    // A reused executor is read after it has served runs: what it keeps between runs is its cost.
    if (isolation !== "process") for (let i = 0; i < 20; i++) await lib.run("print(1)");
    const warm = await lib.warm(120_000);
    const executors = executorResidentBytes(process.pid);
    console.log(JSON.stringify({ warm, executors }));
  } finally {
    await lib.close();
  }
} else if (mode === "host") {
  const runs = Number(a);
  const inFlight = Number(b);
  const isolation = d ?? "process";
  const lib = await WasmboxLibrary.create(2, { isolation });
  try {
    const warmup = Number(c ?? 20);
    for (let i = 0; i < warmup; i++) await lib.run("print(1)");
    settle();
    const executorsBytes = () => executorResidentBytes(process.pid).reduce((sum, e) => sum + e.deno, 0);
    const before = { rss: hostBytes(), heapUsed: process.memoryUsage().heapUsed, executors: executorsBytes() };
    const timeline: { runs: number; rss: number }[] = [{ runs: 0, rss: before.rss }];
    const step = Math.max(1, Math.floor(runs / 10));
    let started = 0;
    let done = 0;
    let failed = 0;
    let firstFailure: string | null = null;
    const t0 = performance.now();
    const worker = async () => {
      while (started < runs) {
        started++;
        try {
          const result = await lib.run("print(1)");
          if (result.stdout !== "1\n") throw new Error(`stdout ${JSON.stringify(result.stdout)}`);
        } catch (error) {
          failed++;
          firstFailure ??= (error as Error).message;
        }
        done++;
        if (done % step === 0) timeline.push({ runs: done, rss: hostBytes() });
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    const seconds = (performance.now() - t0) / 1000;
    settle();
    const after = { rss: hostBytes(), heapUsed: process.memoryUsage().heapUsed, executors: executorsBytes() };
    const executorsStarted = lib.sandbox.stats.executorsStarted;
    console.log(JSON.stringify({ runs, failed, firstFailure, seconds, warmup, before, after, timeline, isolation, executorsStarted }));
  } finally {
    await lib.close();
  }
} else {
  console.error("usage: wasmbox-memory-child.ts idle POOL [ISOLATION] | host RUNS IN_FLIGHT WARMUP [ISOLATION]");
  process.exit(2);
}
