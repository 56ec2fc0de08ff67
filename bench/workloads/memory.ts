/**
 * Memory: resident memory of each idle warm executor (the pool's Deno processes, found through
 * /proc below a child process that holds the pool), against an idle native interpreter; and the
 * host's resident memory growth over N runs.
 */
import { join } from "node:path";
import { BENCH_DIR, REPO_DIR, wants, type BenchContext } from "../lib/context.js";
import { MIB, exec, firstErrorLine, lastJsonLine } from "../lib/proc.js";
import { attempt, valueRow } from "../lib/rows.js";
import { summarize } from "../lib/stats.js";
import { emptySection, type Section } from "../lib/types.js";
import { HANDROLLED_LABEL, sharedHandrolled } from "../peers/handrolled.js";
import { nativeIdleResidentBytes, nativeLabel } from "../peers/native-python.js";

const CHILD = join(BENCH_DIR, "peers", "wasmbox-memory-child.ts");

async function child<T>(ctx: BenchContext, args: string[], timeoutMs: number): Promise<T> {
  const result = await exec(ctx.node, ["--expose-gc", "--import", "tsx", CHILD, ...args], { cwd: REPO_DIR, timeoutMs });
  const out = lastJsonLine<T>(result.stdout);
  if (result.code !== 0 || !out) throw new Error(`memory child exited ${result.code}: ${firstErrorLine(result.stderr)}`);
  return out;
}

export async function memoryWorkload(ctx: BenchContext): Promise<Section> {
  const section = emptySection();
  const { counts, log } = ctx;
  const W = "memory: idle interpreter RSS";
  let base: number | null = null;
  if (ctx.python) {
    const python = ctx.python;
    const bytes = await attempt(section, log, "native", W, () => nativeIdleResidentBytes(python));
    if (bytes !== null) {
      base = bytes / MIB;
      section.rows.push(valueRow(W, nativeLabel(python).replace("subprocess", "process"), "MiB", base, 1, { baseline: true, note: "started, waiting on stdin" }));
    }
  }

  if (wants(ctx, W, "wasmbox-lib")) {
    const idle = await attempt(section, log, "wasmbox executors", W, () =>
      child<{ warm: boolean; executors: { deno: number; withWrappers: number }[] }>(ctx, ["idle", String(counts.idlePool)], 180_000),
    );
    if (idle) {
      if (idle.executors.length === 0) {
        section.skips.push({ peer: "wasmbox executor", workload: W, reason: "no executor processes found below the pool's process", kind: "failed" });
      } else {
        const deno = summarize(idle.executors.map((e) => e.deno / MIB));
        const wrapped = summarize(idle.executors.map((e) => e.withWrappers / MIB));
        section.rows.push(
          valueRow(W, "wasmbox idle warm executor (Deno + Pyodide snapshot)", "MiB", deno.mean, base ? deno.mean / base : null, {
            n: deno.n,
            note: `mean of ${deno.n} in a pool of ${counts.idlePool} (min ${deno.min.toFixed(1)}, max ${deno.max.toFixed(1)}); with its bwrap wrappers ${wrapped.mean.toFixed(1)} MiB` + (idle.warm ? "" : "; pool was not idle when read"),
            extra: { executors: idle.executors },
          }),
        );
      }
    }
  }

  if (wants(ctx, W, "handrolled")) {
    const server = await attempt(section, log, HANDROLLED_LABEL, W, () => sharedHandrolled(ctx));
    const bytes = server?.idleResidentBytes ?? null;
    if (bytes !== null) {
      section.rows.push(valueRow(W, HANDROLLED_LABEL, "MiB", bytes / MIB, base ? bytes / MIB / base : null, { note: "one process for all runs; read right after loading Pyodide (no snapshot), before any request" }));
    }
  }

  if (wants(ctx, "memory: host", "wasmbox-lib")) {
    const H = `memory: host RSS growth over ${counts.hostRuns} runs`;
    type HostOut = {
      runs: number;
      failed: number;
      firstFailure: string | null;
      seconds: number;
      warmup: number;
      before: { rss: number; heapUsed: number };
      after: { rss: number; heapUsed: number };
      timeline: { runs: number; rss: number }[];
    };
    const host = await attempt(section, log, "wasmbox library host", H, () => child<HostOut>(ctx, ["host", String(counts.hostRuns), "4", String(counts.hostWarmup)], 60 * 60_000));
    if (host) {
      const growth = (host.after.rss - host.before.rss) / MIB;
      section.rows.push(
        valueRow(H, "wasmbox library (Node host process)", "MiB", growth, null, {
          n: host.runs,
          note:
            `RSS ${(host.before.rss / MIB).toFixed(1)} → ${(host.after.rss / MIB).toFixed(1)} MiB after ${host.warmup} warm-up runs (${((growth * 1024) / host.runs).toFixed(2)} KiB/run); ` +
            `heapUsed ${(host.before.heapUsed / MIB).toFixed(1)} → ${(host.after.heapUsed / MIB).toFixed(1)} MiB; ${(host.runs / host.seconds).toFixed(1)} runs/s, 4 in flight` +
            (host.failed ? `; ${host.failed} runs FAILED (first: ${host.firstFailure})` : ""),
          extra: { ...host },
        }),
      );
      if (host.failed) section.skips.push({ peer: "wasmbox library", workload: H, reason: `${host.failed} of ${host.runs} runs failed: ${host.firstFailure}`, kind: "failed" });
    }
  }
  return section;
}
