/**
 * Latency of one fresh `print(1)`, request to result, one request at a time. Baseline: a native
 * `python3 -c "print(1)"` subprocess, which is also a fresh, isolated interpreter per run.
 */
import { wants, type BenchContext } from "../lib/context.js";
import { attempt, latencyRow, valueRow } from "../lib/rows.js";
import { summarize, type Summary } from "../lib/stats.js";
import { emptySection, type Section } from "../lib/types.js";
import { HANDROLLED_LABEL, HANDROLLED_NOTE, sharedHandrolled } from "../peers/handrolled.js";
import { MONTY_LABEL, montyLatency, montyLimits, montyUnavailable } from "../peers/monty.js";
import { nativeLabel, nativeLatency } from "../peers/native-python.js";
import { perRunLatency } from "../peers/pyodide-direct.js";
import { PYPI_PEERS, cachedFailure, ensurePeersVenv, recordProbe, runPypiPeer } from "../peers/pypi-peers.js";
import { WasmboxLibrary } from "../peers/wasmbox-library.js";
import { WasmboxStdio } from "../peers/wasmbox-stdio.js";

const W = "latency print(1)";
const S = "session call";

/**
 * A call in a session (`x += 1`) against the bare host↔executor round trip with no Python
 * (`files.list()`, which relays through the same pipes, isolates and signatures): the difference
 * of their medians is what a call costs inside the interpreter.
 */
async function sessionOverhead(ctx: BenchContext, section: Section, lib: WasmboxLibrary): Promise<void> {
  const { counts, log } = ctx;
  const measured = await attempt(section, log, "wasmbox session", S, async () => {
    await using session = await lib.sandbox.session();
    await session.run({ code: "x = 0" });
    const calls: number[] = [];
    const trips: number[] = [];
    for (let i = 0; i < counts.latencyFast; i++) {
      let started = performance.now();
      const result = await session.run({ code: "x += 1" });
      calls.push(performance.now() - started);
      if (result.status !== "ok") throw new Error(`session call ${result.status}`);
      started = performance.now();
      await session.files.list();
      trips.push(performance.now() - started);
    }
    return { calls, trips };
  });
  if (!measured) return;
  const calls = summarize(measured.calls);
  const trips = summarize(measured.trips);
  section.rows.push(latencyRow(S, "wasmbox session.run(\"x += 1\")", measured.calls, null, { note: "request to result, one call at a time" }));
  section.rows.push(latencyRow(S, "wasmbox session.files.list()", measured.trips, null, { note: "the same round trip through host, executor and worker, with no Python run" }));
  section.rows.push(
    valueRow(S, "per-call cost inside the interpreter (difference of p50s)", "ms", calls.p50 - trips.p50, null, {
      note: "the runner: compile, exec, result to JSON, the /sandbox diff; cold caches after each wake-up make it ~2-3x its hot-loop cost",
    }),
  );
}

export async function latencyWorkload(ctx: BenchContext): Promise<Section> {
  const section = emptySection();
  const { counts, log } = ctx;
  let base: Summary | null = null;
  if (!ctx.python) {
    section.skips.push({ peer: "native CPython", workload: W, reason: ctx.pythonProblem ?? "not found", kind: "skipped" });
  } else {
    const python = ctx.python;
    const samples = await attempt(section, log, "native", W, () => nativeLatency(python, counts.latencyFast));
    if (samples) {
      base = summarize(samples);
      section.rows.push(latencyRow(W, nativeLabel(python), samples, null, { baseline: true, note: "fresh process per run" }));
    }
  }

  if (wants(ctx, W, "wasmbox-lib")) {
    const lib = await attempt(section, log, "wasmbox library", W, () => WasmboxLibrary.create(2));
    if (lib) {
      try {
        let notWarm = 0;
        const durations: number[] = [];
        const warmSamples = await attempt(section, log, "wasmbox library (warm pool)", W, async () => {
          const samples: number[] = [];
          for (let i = 0; i < counts.latencyWasmbox; i++) {
            if (!(await lib.warm())) notWarm++;
            const run = await lib.run("print(1)");
            if (run.stdout !== "1\n") throw new Error(`stdout ${JSON.stringify(run.stdout)}`);
            samples.push(run.wallMs);
            durations.push(run.durationMs);
          }
          return samples;
        });
        if (warmSamples) {
          section.rows.push(
            latencyRow(W, "wasmbox library, warm pool", warmSamples, base, {
              note: `Sandbox.run(), pool of 2 warm before each run; result.durationMs p50 ${summarize(durations).p50.toFixed(1)} ms` + (notWarm ? `; pool not idle before ${notWarm} runs` : ""),
              extra: { durationMsSamples: durations },
            }),
          );
        }
        const b2b = await attempt(section, log, "wasmbox library (back-to-back)", W, async () => {
          await lib.warm();
          const samples: number[] = [];
          for (let i = 0; i < counts.latencyWasmbox; i++) samples.push((await lib.run("print(1)")).wallMs);
          return samples;
        });
        if (b2b) {
          section.rows.push(latencyRow(W, "wasmbox library, back-to-back", b2b, base, { note: "next run sent as soon as the last answered: the pool refills behind the runs" }));
        }
      } finally {
        await lib.close();
      }
    }
  }

  for (const mode of [
    { isolation: "isolate", note: "each run in a fresh worker inside a reused executor process; the next worker loads while a run executes" },
    { isolation: "interpreter", note: "executors serve many runs, each from the restored warm interpreter (one trust domain)" },
  ]) {
    if (!wants(ctx, W, "wasmbox-lib")) break;
    const label = `wasmbox library, isolation ${mode.isolation}, back-to-back`;
    const lib = await attempt(section, log, label, W, () => WasmboxLibrary.create(2, { isolation: mode.isolation }));
    if (!lib) continue;
    try {
      const durations: number[] = [];
      const samples = await attempt(section, log, label, W, async () => {
        await lib.warm();
        const out: number[] = [];
        for (let i = 0; i < counts.latencyFast; i++) {
          const run = await lib.run("print(1)");
          if (run.stdout !== "1\n") throw new Error(`stdout ${JSON.stringify(run.stdout)}`);
          out.push(run.wallMs);
          durations.push(run.durationMs);
        }
        return out;
      });
      if (samples) {
        section.rows.push(
          latencyRow(W, label, samples, base, {
            note: `${mode.note}; result.durationMs p50 ${summarize(durations).p50.toFixed(1)} ms`,
            extra: { durationMsSamples: durations },
          }),
        );
      }
      if (mode.isolation === "interpreter") await sessionOverhead(ctx, section, lib);
    } finally {
      await lib.close();
    }
  }

  for (const mode of [
    { label: "wasmbox serve --stdio, warm pool", args: [] as string[], note: "one request in flight, pool of 2 warm before each" },
    {
      label: "wasmbox serve --stdio --isolation isolate",
      args: ["--isolation", "isolate"],
      note: "one request in flight, pool of 2 warm before each; each run in a fresh worker inside a reused executor process",
    },
    {
      label: "wasmbox serve --stdio --isolation interpreter",
      args: ["--isolation", "interpreter"],
      note: "one request in flight, pool of 2 warm before each; executors serve many runs, each from the restored warm interpreter",
    },
  ]) {
    if (!wants(ctx, W, "wasmbox-stdio")) break;
    const server = WasmboxStdio.start(ctx, 2, mode.args);
    try {
      let notWarm = 0;
      const samples = await attempt(section, log, mode.label, W, async () => {
        const out: number[] = [];
        for (let i = 0; i < counts.latencyWasmbox; i++) {
          if (!(await server.warm())) notWarm++;
          out.push(await server.run("print(1)"));
        }
        return out;
      });
      if (samples) {
        section.rows.push(latencyRow(W, mode.label, samples, base, { note: mode.note + (notWarm ? `; pool not idle before ${notWarm} requests` : "") }));
      }
    } finally {
      await server.close();
    }
  }

  for (const runtime of ["node", "deno"] as const) {
    if (!wants(ctx, W, `pyodide-${runtime}`)) continue;
    const label = `Pyodide loaded per run (${runtime === "node" ? "Node" : "Deno"})`;
    const samples = await attempt(section, log, label, W, () => perRunLatency(ctx, runtime, counts.latencyPerRun));
    if (samples) {
      section.rows.push(latencyRow(W, label, samples, base, { note: "naive design: loadPyodide() per run in one long-lived process (no snapshot)" }));
    }
  }

  if (wants(ctx, W, "handrolled")) {
    const server = await attempt(section, log, HANDROLLED_LABEL, W, () => sharedHandrolled(ctx));
    if (server) {
      const samples = await attempt(section, log, HANDROLLED_LABEL, W, async () => {
        const out: number[] = [];
        for (let i = 0; i < counts.latencyFast; i++) out.push(await server.run());
        return out;
      });
      if (samples) section.rows.push(latencyRow(W, HANDROLLED_LABEL, samples, base, { note: HANDROLLED_NOTE }));
    }
  }

  if (wants(ctx, W, "monty")) {
    const why = await montyUnavailable(ctx);
    if (why) section.skips.push({ peer: MONTY_LABEL, workload: "*", reason: why, kind: "skipped" });
    else {
      const samples = await attempt(section, log, MONTY_LABEL, W, () => montyLatency(ctx, counts.latencyFast));
      if (samples) section.rows.push(latencyRow(W, MONTY_LABEL, samples, base, { note: "parse + run in the caller's process: no process isolation; a Python subset" }));
      const limits = await attempt(section, log, MONTY_LABEL, "capability probe", () => montyLimits(ctx));
      if (limits) {
        const cannot = Object.entries(limits.cannot).map(([what, error]) => `${what} (${error})`);
        section.notes.push(
          `@pydantic/monty cannot run: ${cannot.length ? cannot.join("; ") : "nothing in the probe set"}. It can: ${limits.can.join(", ")}. The CPU suite avoids classes and random so Monty can take part.`,
        );
      }
    }
  }

  const pypi = PYPI_PEERS.filter((peer) => wants(ctx, W, peer.id));
  if (pypi.length > 0) {
    const cached = pypi.map((peer) => cachedFailure(ctx, peer));
    const venvProblem = cached.every((c) => c !== null) ? null : await ensurePeersVenv(ctx);
    for (const [i, peer] of pypi.entries()) {
      if (cached[i]) {
        section.skips.push({ peer: peer.label, workload: "*", reason: cached[i]!, kind: "skipped" });
        continue;
      }
      if (venvProblem) {
        section.skips.push({ peer: peer.label, workload: "*", reason: venvProblem, kind: "skipped" });
        continue;
      }
      log(`${W}: ${peer.label}…`);
      try {
        const n = peer.id === "langchain-sandbox" ? counts.latencyPerRun : counts.latencyWasmbox;
        const result = await runPypiPeer(ctx, peer, n);
        recordProbe(peer, null);
        section.rows.push(latencyRow(W, peer.label, result.samples, base, { note: `first run (start-up) took ${result.setupMs.toFixed(0)} ms, not counted` }));
      } catch (error) {
        const reason = (error as Error).message;
        log(`${W}: ${peer.label} skipped: ${reason}`);
        recordProbe(peer, reason);
        section.skips.push({ peer: peer.label, workload: "*", reason, kind: "skipped" });
      }
    }
  }
  return section;
}
