/**
 * Per-language start-up and hello world, as rows of the main table: start-up is the wall time of a
 * run on an empty pool minus the run's own durationMs; the baseline of both rows is Python.
 */
import { benchLanguages } from "../languages.js";
import type { BenchContext } from "../lib/context.js";
import { emptySection, type Row, type Section } from "../lib/types.js";

export async function languagesWorkload(ctx: BenchContext): Promise<Section> {
  const section = emptySection();
  const rows = await benchLanguages(ctx.quick ? 1 : 5);
  for (const [workload, pick, ratio] of [
    ["language start-up (empty pool)", (r: (typeof rows)[number]) => r.startupMs, (r: (typeof rows)[number]) => r.startupVsPython],
    ["language hello world (in the executor)", (r: (typeof rows)[number]) => r.helloMs, (r: (typeof rows)[number]) => r.helloVsPython],
  ] as const) {
    for (const r of rows) {
      const row: Row = {
        workload,
        peer: `${r.language}: ${r.version}`,
        baseline: r.language === "python",
        n: ctx.quick ? 1 : 5,
        unit: "ms",
        headline: pick(r),
        p50: pick(r),
        p95: null,
        p99: null,
        ratio: r.language === "python" ? null : ratio(r),
        ratioP99: null,
        note: r.ok ? "median; baseline: Python" : "THE HELLO WORLD DID NOT PRINT",
      };
      section.rows.push(row);
      if (!r.ok) section.skips.push({ peer: `wasmbox ${r.language}`, workload, reason: "hello world failed", kind: "failed" });
    }
  }
  return section;
}
