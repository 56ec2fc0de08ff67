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

  const modes = [
    { label: "wasmbox serve --stdio", args: [], note: "defaults: pool 2, maxConcurrency max(2, cores); one fresh executor process per run" },
    {
      label: "wasmbox serve --stdio --isolation isolate",
      args: ["--isolation", "isolate"],
      note: "pool 2; executor processes serve many runs, each in a fresh worker (V8 isolate + wasm instance) loaded while the run before executes",
    },
    {
      label: "wasmbox serve --stdio --isolation interpreter",
      args: ["--isolation", "interpreter"],
      note: "pool 2; executors serve many runs, each from the restored warm interpreter (one trust domain)",
    },
  ];
  for (const mode of modes) {
    if (!wants(ctx, W, "wasmbox-stdio")) break;
    const server = WasmboxStdio.start(ctx, 2, mode.args);
    try {
      const result = await attempt(section, log, mode.label, W, async () => {
        await server.warm();
        return jsonLinesThroughput(() => server.run("print(1)"), counts.throughputRequests, counts.concurrency);
      });
      if (result) {
        section.rows.push(
          valueRow(W, mode.label, "runs/s", result.runsPerSecond, ratio(result.runsPerSecond), {
            latency: result.samples,
            note: `${mode.note}; p50/p95/p99 = per-request latency under load`,
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
