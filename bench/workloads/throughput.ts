/**
 * Sustained throughput of fresh isolated runs: N `print(1)` requests with 16 in flight.
 * Baseline: native `python3 -c` subprocesses at the same concurrency.
 */
import { wants, type BenchContext } from "../lib/context.js";
import { attempt, valueRow } from "../lib/rows.js";
import { emptySection, type Section } from "../lib/types.js";
import { HANDROLLED_LABEL, HANDROLLED_NOTE, sharedHandrolled } from "../peers/handrolled.js";
import { nativeLabel, nativeThroughput } from "../peers/native-python.js";
import { WasmboxStdio, jsonLinesThroughput } from "../peers/wasmbox-stdio.js";

export async function throughputWorkload(ctx: BenchContext): Promise<Section> {
  const section = emptySection();
  const { counts, log } = ctx;
  const W = `throughput, ${counts.concurrency} in flight`;
  let baseRate: number | null = null;
  if (ctx.python) {
    const python = ctx.python;
    const native = await attempt(section, log, "native", W, () => nativeThroughput(python, counts.throughputRequests, counts.concurrency));
    if (native) {
      baseRate = native.runsPerSecond;
      section.rows.push(valueRow(W, nativeLabel(python), "runs/s", native.runsPerSecond, 1, { baseline: true, latency: native.samples, note: "subprocesses" }));
    }
  }
  const ratio = (rate: number) => (baseRate ? baseRate / rate : null);

  if (wants(ctx, W, "wasmbox-stdio")) {
    const server = WasmboxStdio.start(ctx, 2);
    try {
      const result = await attempt(section, log, "wasmbox serve --stdio", W, async () => {
        await server.warm();
        return jsonLinesThroughput(() => server.run("print(1)"), counts.throughputRequests, counts.concurrency);
      });
      if (result) {
        section.rows.push(
          valueRow(W, "wasmbox serve --stdio", "runs/s", result.runsPerSecond, ratio(result.runsPerSecond), {
            latency: result.samples,
            note: "defaults: pool 2, maxConcurrency max(2, cores); one fresh executor per run; p50/p95/p99 = per-request latency under load",
          }),
        );
      }
    } finally {
      await server.close();
    }
  }

  if (wants(ctx, W, "handrolled")) {
    const server = await attempt(section, log, HANDROLLED_LABEL, W, () => sharedHandrolled(ctx));
    if (server) {
      const result = await attempt(section, log, HANDROLLED_LABEL, W, () => jsonLinesThroughput(() => server.run(), counts.throughputRequests, counts.concurrency));
      if (result) {
        section.rows.push(valueRow(W, HANDROLLED_LABEL, "runs/s", result.runsPerSecond, ratio(result.runsPerSecond), { latency: result.samples, note: HANDROLLED_NOTE }));
      }
    }
  }
  return section;
}
