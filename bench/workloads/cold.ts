/**
 * Cold one-shot: a whole new process that runs print(1) and exits, timed from spawn to exit.
 * wasmbox: `node dist/cli/bin.js run -c "print(1)"` with the snapshot already cached and no pool.
 * Baseline: `python3 -c "print(1)"`.
 */
import { join } from "node:path";
import { REPO_DIR, wants, type BenchContext } from "../lib/context.js";
import { exec } from "../lib/proc.js";
import { attempt, latencyRow } from "../lib/rows.js";
import { summarize, type Summary } from "../lib/stats.js";
import { emptySection, type Section } from "../lib/types.js";
import { nativeLabel, nativeLatency } from "../peers/native-python.js";
import { oneShotWallMs } from "../peers/pyodide-direct.js";

const W = "cold one-shot print(1)";

export async function coldWorkload(ctx: BenchContext): Promise<Section> {
  const section = emptySection();
  const { counts, log } = ctx;
  let base: Summary | null = null;
  if (ctx.python) {
    const python = ctx.python;
    const samples = await attempt(section, log, "native", W, () => nativeLatency(python, counts.cold));
    if (samples) {
      base = summarize(samples);
      section.rows.push(latencyRow(W, nativeLabel(python), samples, null, { baseline: true }));
    }
  }

  if (wants(ctx, W, "wasmbox-cli")) {
    const cli = join(REPO_DIR, "dist", "cli", "bin.js");
    // One untimed run first: it makes the snapshot if this build has none yet ("snapshot cached").
    const samples = await attempt(section, log, "wasmbox run -c", W, async () => {
      await exec(ctx.node, [cli, "run", "-c", "print(1)"], { cwd: REPO_DIR, timeoutMs: 180_000 });
      const out: number[] = [];
      for (let i = 0; i < counts.cold; i++) {
        const result = await exec(ctx.node, [cli, "run", "-c", "print(1)"], { cwd: REPO_DIR, timeoutMs: 120_000 });
        if (result.code !== 0 || result.stdout !== "1\n") throw new Error(`exit ${result.code}: ${result.stderr.slice(-300)}`);
        out.push(result.wallMs);
      }
      return out;
    });
    if (samples) section.rows.push(latencyRow(W, "wasmbox CLI: node dist/cli/bin.js run -c", samples, base, { note: "snapshot cached, pool 0: Node start + one executor start + run" }));
  }

  for (const runtime of ["node", "deno"] as const) {
    if (!wants(ctx, W, `pyodide-${runtime}`)) continue;
    const label = `${runtime === "node" ? "node" : "deno run"} + loadPyodide(), fresh process`;
    const samples = await attempt(section, log, label, W, async () => {
      const out: number[] = [];
      for (let i = 0; i < counts.coldNaive; i++) out.push(await oneShotWallMs(ctx, runtime));
      return out;
    });
    if (samples) section.rows.push(latencyRow(W, label, samples, base, { note: "the naive one-shot: no snapshot, no isolation layers" }));
  }
  return section;
}
