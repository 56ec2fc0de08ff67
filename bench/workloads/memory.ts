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

  for (const isolation of ["process", "isolate"] as const) {
    if (!wants(ctx, W, "wasmbox-lib")) break;
    const idle = await attempt(section, log, `wasmbox executors (${isolation})`, W, () =>
      child<{ warm: boolean; executors: { deno: number; withWrappers: number }[] }>(ctx, ["idle", String(counts.idlePool), isolation], 180_000),
    );
    if (idle) {
      if (idle.executors.length === 0) {
        section.skips.push({ peer: "wasmbox executor", workload: W, reason: "no executor processes found below the pool's process", kind: "failed" });
      } else {
        const deno = summarize(idle.executors.map((e) => e.deno / MIB));
        const wrapped = summarize(idle.executors.map((e) => e.withWrappers / MIB));
        const label = isolation === "process" ? "wasmbox idle warm executor (Deno + Pyodide snapshot)" : "wasmbox idle executor, isolation isolate, after 20 runs";
        section.rows.push(
          valueRow(W, label, "MiB", deno.mean, base ? deno.mean / base : null, {
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
    type HostOut = {
      runs: number;
      failed: number;
      firstFailure: string | null;
      seconds: number;
      warmup: number;
      before: { rss: number; heapUsed: number; executors: number };
      after: { rss: number; heapUsed: number; executors: number };
      timeline: { runs: number; rss: number }[];
      executorsStarted: number;
    };
    // Process isolation starts a process per run (a few runs/s here), so it gets fewer runs; the
    // interpreter mode is where many runs meet one long-lived executor, so it gets the full count.
    const modes = [
      { isolation: "process", runs: counts.hostRuns },
      { isolation: "interpreter", runs: counts.hostRunsReused },
    ];
    for (const { isolation, runs } of modes) {
      const H = `memory: host RSS growth over ${runs} runs`;
      const peer = `wasmbox library (Node host process), isolation ${isolation}`;
      const host = await attempt(section, log, peer, H, () => child<HostOut>(ctx, ["host", String(runs), "4", String(counts.hostWarmup), isolation], 60 * 60_000));
      if (!host) continue;
      const growth = (host.after.rss - host.before.rss) / MIB;
      section.rows.push(
        valueRow(H, peer, "MiB", growth, null, {
          n: host.runs,
          note:
            `RSS ${(host.before.rss / MIB).toFixed(1)} → ${(host.after.rss / MIB).toFixed(1)} MiB after ${host.warmup} warm-up runs (${((growth * 1024) / host.runs).toFixed(2)} KiB/run); ` +
            `heapUsed ${(host.before.heapUsed / MIB).toFixed(1)} → ${(host.after.heapUsed / MIB).toFixed(1)} MiB; ` +
            `executors' RSS ${(host.before.executors / MIB).toFixed(0)} → ${(host.after.executors / MIB).toFixed(0)} MiB; ` +
            `${host.executorsStarted} executor processes started; ${(host.runs / host.seconds).toFixed(1)} runs/s, 4 in flight` +
            (host.failed ? `; ${host.failed} runs FAILED (first: ${host.firstFailure})` : ""),
          extra: { ...host },
        }),
      );
      if (host.failed) section.skips.push({ peer, workload: H, reason: `${host.failed} of ${host.runs} runs failed: ${host.firstFailure}`, kind: "failed" });
    }
  }
  return section;
}
