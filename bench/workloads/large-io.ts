/**
 * Large inputs and outputs (issue 20): stdin and an input file of 1, 10, 100 and 500 MiB, and a
 * zero-filled and a random 50 MiB output file, each through the wasmbox library in a fresh host
 * process. Time against `cat` copying the same number of bytes through a pipe (the baseline,
 * measured in the same run); the host's peak resident memory against the data's size.
 */
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BENCH_DIR, REPO_DIR, wants, type BenchContext } from "../lib/context.js";
import { exec, firstErrorLine, lastJsonLine, MIB } from "../lib/proc.js";
import { attempt, valueRow } from "../lib/rows.js";
import { summarize } from "../lib/stats.js";
import { emptySection, type Section } from "../lib/types.js";

const CHILD = join(BENCH_DIR, "peers", "wasmbox-large-io-child.ts");

interface ChildOut {
  kind: string;
  bytes: number;
  status: string;
  error: string | null;
  exact: boolean;
  wallMs: number;
  durationMs: number;
  rssBefore: number;
  peakRss: number;
  encoding: string | null;
}

/** Milliseconds `cat FILE | cat > /dev/null` takes for `sizeMiB` (median of `reps`). */
function catThroughPipeMs(sizeMiB: number, reps: number): number {
  const file = join(tmpdir(), `wasmbox-bench-cat-${process.pid}.bin`);
  writeFileSync(file, Buffer.alloc(sizeMiB * MIB, 1));
  try {
    const samples: number[] = [];
    for (let i = 0; i < reps; i++) {
      const started = performance.now();
      const r = spawnSync("sh", ["-c", `cat "${file}" | cat > /dev/null`]);
      if (r.status !== 0) throw new Error(`cat failed: ${r.stderr}`);
      samples.push(performance.now() - started);
    }
    return summarize(samples).p50;
  } finally {
    rmSync(file, { force: true });
  }
}

async function child(ctx: BenchContext, kind: string, sizeMiB: number): Promise<ChildOut> {
  const result = await exec(ctx.node, ["--import", "tsx", CHILD, kind, String(sizeMiB)], { cwd: REPO_DIR, timeoutMs: 15 * 60_000 });
  const out = lastJsonLine<ChildOut>(result.stdout);
  if (result.code !== 0 || !out) throw new Error(`large-io child exited ${result.code}: ${firstErrorLine(result.stderr)}`);
  if (out.status !== "ok" || !out.exact) throw new Error(`${kind} ${sizeMiB} MiB: status ${out.status}, every byte seen: ${out.exact}; ${out.error}`);
  return out;
}

/** One workload: the cat baseline for `size` MiB, then `reps` fresh wasmbox hosts moving it. */
async function measure(ctx: BenchContext, section: Section, W: string, kind: string, size: number, reps: number, describe: (first: ChildOut) => string): Promise<void> {
  if (!wants(ctx, W, "wasmbox-lib")) return;
  const catMs = catThroughPipeMs(size, 9);
  section.rows.push(valueRow(W, "cat | cat through a pipe", "ms", catMs, 1, { baseline: true, note: "the same bytes copied through a pipe (median of 9)" }));
  const samples: ChildOut[] = [];
  for (let i = 0; i < reps; i++) {
    const out = await attempt(section, ctx.log, "wasmbox library", W, () => child(ctx, kind, size));
    if (out) samples.push(out);
  }
  if (samples.length === 0) return;
  const wall = summarize(samples.map((s) => s.wallMs));
  const peak = Math.max(...samples.map((s) => s.peakRss));
  const added = Math.max(...samples.map((s) => s.peakRss - s.rssBefore));
  const times = (bytes: number) => `${(bytes / (size * MIB)).toFixed(2)}× the data`;
  section.rows.push(valueRow(W, "wasmbox library, warm executor", "ms", wall.p50, wall.p50 / catMs, {
    n: samples.length,
    latency: samples.map((s) => s.wallMs),
    note: `${describe(samples[0]!)}; host peak RSS ${(peak / MIB).toFixed(0)} MiB (${times(peak)}), of which the run added ${(added / MIB).toFixed(1)} MiB (${times(added)})`,
    extra: { samples },
  }));
}

export async function largeIoWorkload(ctx: BenchContext): Promise<Section> {
  const section = emptySection();
  const sizes = ctx.quick ? [1, 10] : [1, 10, 100, 500];
  const reps = ctx.quick ? 1 : 3;
  for (const [kind, label] of [["stdin", "stdin"], ["file", "one input file"]] as const) {
    for (const size of sizes) {
      await measure(ctx, section, `large-io: ${label} of ${size} MiB, read whole by the guest`, kind, size, reps, () =>
        "whole run, the guest reading every byte; the input is allocated before the run and counts in the peak");
    }
  }
  for (const [kind, label] of [["out-zero", "zero-filled"], ["out-random", "random"]] as const) {
    const size = ctx.quick ? 10 : 50;
    await measure(ctx, section, `large-io: a ${label} ${size} MiB output file`, kind, size, reps, (first) =>
      `whole run, the guest writing it; it comes back as ${first.encoding}`);
  }
  return section;
}
