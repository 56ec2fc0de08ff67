/**
 * CPU-bound speed of pure Python, timed INSIDE the guest (perf_counter around bench()), so
 * start-up is excluded. Each sample runs in a fresh interpreter, as every wasmbox run does.
 * Baseline: native CPython. Summary: the geometric mean of per-workload p50 ratios.
 *
 * Also measures what V8 flags do: through wasmbox itself (`Sandbox.create({ v8Flags })`, when this
 * build's executors take them) and with a standalone Deno + Pyodide process per sample.
 *
 * The loop runs workloads outside and peers inside, and a workload's native samples are taken
 * both before and after its peers, so the baseline is measured close in time to what it is
 * compared with: on a shared machine the load drifts over minutes.
 */
import { wants, type BenchContext } from "../lib/context.js";
import { attempt, latencyRow, valueRow } from "../lib/rows.js";
import { geomean, summarize } from "../lib/stats.js";
import { emptySection, type Section } from "../lib/types.js";
import { MONTY_LABEL, montyCpu, montyUnavailable } from "../peers/monty.js";
import { nativeCpu, nativeLabel } from "../peers/native-python.js";
import { benchSnapshot, freshCpuRun, freshRun } from "../peers/pyodide-direct.js";
import { WasmboxLibrary, executorsTakeV8Flags } from "../peers/wasmbox-library.js";
import { CPU_WORKLOADS, parseTimed, sameCheck, timedSource, type CpuWorkload } from "./cpu-suite.js";

/** V8 flag variants for a Deno + Pyodide process. The first is the default, the comparison point. */
export const V8_VARIANTS: { label: string; flags: string[]; why: string }[] = [
  { label: "default flags", flags: [], why: "V8's defaults: Liftoff, then TurboFan for hot functions (wasmbox with wasmTierUp: true)" },
  { label: "--liftoff-only", flags: ["--liftoff-only"], why: "baseline compiler only, never optimise" },
  { label: "--no-wasm-tier-up", flags: ["--no-wasm-tier-up"], why: "Liftoff code is never replaced by TurboFan" },
  { label: "--no-liftoff", flags: ["--no-liftoff"], why: "TurboFan only: optimised code from the first call" },
  { label: "--no-wasm-lazy-compilation", flags: ["--no-wasm-lazy-compilation"], why: "compile every function at load instead of on first call" },
  { label: "--wasm-tiering-budget=1000000", flags: ["--wasm-tiering-budget=1000000"], why: "tier up hot functions ~13× sooner than the default budget" },
];

const WARM_LABEL = "Deno+Pyodide, 3rd run in the same process";
const NODE_LABEL = "Node+Pyodide, fresh process";
const variantLabel = (variant: (typeof V8_VARIANTS)[number]) => `Deno+Pyodide, ${variant.label}`;

interface Measured {
  samples: number[];
  check: unknown;
}

interface Peer {
  label: string;
  note: string;
  /** Only these workloads (the standalone peers may run a subset in --quick). */
  workloads: CpuWorkload[];
  /** Measures one workload; null when it cannot run it (the reason is recorded by the peer). */
  measure: (w: CpuWorkload) => Promise<Measured | null>;
  results: Map<string, Measured>;
}

/** Measures a workload through a wasmbox library peer: `reps` runs, each timed inside the guest. */
function inGuestTimes(lib: WasmboxLibrary, reps: number): Peer["measure"] {
  return async (w) => {
    const samples: number[] = [];
    let check: unknown = null;
    for (let i = 0; i < reps; i++) {
      const timed = parseTimed((await lib.run(timedSource(w), 300_000)).stdout);
      samples.push(timed.ms);
      check = timed.check;
    }
    return { samples, check };
  };
}

export async function cpuWorkload(ctx: BenchContext): Promise<Section> {
  const section = emptySection();
  const { counts, log } = ctx;
  const workloads = CPU_WORKLOADS;
  const W = (w: CpuWorkload) => `cpu ${w.name}`;
  // The standalone Pyodide peers start a process per sample; --quick runs them on a subset only.
  const flagWorkloads = counts.flagWorkloads ? workloads.filter((w) => counts.flagWorkloads!.includes(w.name)) : workloads;
  if (flagWorkloads.length < workloads.length) {
    section.notes.push(`This run measured the standalone Deno/Node + Pyodide peers on ${flagWorkloads.map((w) => w.name).join(", ")} only, so their geomeans cover those.`);
  }
  section.notes.push(
    `CPU workloads: ${workloads.map((w) => `${w.name} (${w.what})`).join("; ")}. Times are in-guest ms of bench() (Monty: host-timed run(), it has no time module); ratio = p50 ÷ native p50.`,
  );
  if (!ctx.python) {
    section.skips.push({ peer: "native CPython", workload: "cpu", reason: ctx.pythonProblem ?? "not found", kind: "skipped" });
    return section;
  }
  const nativeName = nativeLabel(ctx.python).replace(" subprocess", "");
  const peers: Peer[] = [];
  const closers: (() => Promise<void>)[] = [];

  if (wants(ctx, "cpu", "wasmbox-lib")) {
    // Pool 0: the executor starts on demand, and nothing else starts while the guest is timed
    // (a refilling pool would compete for the same cores).
    const lib = await attempt(section, log, "wasmbox library", "cpu", () => WasmboxLibrary.create(0));
    if (lib) {
      closers.push(() => lib.close());
      peers.push({
        label: "wasmbox library",
        note: "fresh executor per sample (pool 0, so no executor starts during the timed code)",
        workloads,
        results: new Map(),
        measure: inGuestTimes(lib, counts.cpuReps),
      });
    }
  }

  // The same variants through wasmbox itself, when this build passes `v8Flags` to executors.
  const wasmboxFlagRows = new Map<string, { startAndRun: number[]; durations: number[] }>();
  if (wants(ctx, "cpu", "v8-flags") || wants(ctx, "cpu", "wasmbox-lib")) {
    const supported = await attempt(section, log, "wasmbox library", "v8Flags option", () => executorsTakeV8Flags(["--liftoff-only"]));
    if (supported === false) {
      section.skips.push({ peer: "wasmbox library with V8 flags", workload: "cpu", reason: "this build does not pass v8Flags to its executors; measured with standalone Deno+Pyodide only", kind: "skipped" });
    } else if (supported) {
      for (const variant of V8_VARIANTS) {
        const label = `wasmbox library, ${variant.label}`;
        // wasmTierUp: true so nothing is added to the variant's flags (wasmbox's default adds --liftoff-only).
        const lib = await attempt(section, log, label, "cpu", () => WasmboxLibrary.create(0, { wasmTierUp: true, v8Flags: variant.flags }));
        if (!lib) continue;
        closers.push(() => lib.close());
        const stats = { startAndRun: [] as number[], durations: [] as number[] };
        wasmboxFlagRows.set(variant.label, stats);
        await attempt(section, log, label, "V8 flags: wasmbox print(1)", async () => {
          for (let i = 0; i < Math.max(counts.flagReps, ctx.quick ? 1 : 5); i++) {
            const run = await lib.run("print(1)");
            stats.startAndRun.push(run.wallMs);
            stats.durations.push(run.durationMs);
          }
        });
        // (the "wasmbox library" peer above is wasmbox's own default: --liftoff-only)
        peers.push({
          label,
          note: `Sandbox.create({ wasmTierUp: true, v8Flags: ${JSON.stringify(variant.flags)} }), fresh executor per sample: ${variant.why}`,
          workloads: flagWorkloads,
          results: new Map(),
          measure: inGuestTimes(lib, counts.flagReps),
        });
      }
    }
  }

  const loadRows = new Map<string, { loads: number[]; firstRuns: number[] }>();
  if (wants(ctx, "cpu", "v8-flags") || wants(ctx, "cpu", "pyodide-deno")) {
    const snapshot = await attempt(section, log, "Deno+Pyodide", "cpu", () => benchSnapshot(ctx, "deno"));
    if (snapshot) {
      const warm: Peer = { label: WARM_LABEL, note: "after two runs of the same code in one process: wasm already tiered up (steady state, not what a fresh run gets)", workloads: flagWorkloads, results: new Map(), measure: async () => null };
      for (const variant of V8_VARIANTS) {
        const isDefault = variant.flags.length === 0;
        const stats = { loads: [] as number[], firstRuns: [] as number[] };
        loadRows.set(variant.label, stats);
        // print(1) first: what a request pays after the executor is ready, with these flags.
        await attempt(section, log, variantLabel(variant), "V8 flags: print(1)", async () => {
          for (let i = 0; i < Math.max(counts.flagReps, ctx.quick ? 1 : 5); i++) {
            const run = await freshRun(ctx, "deno", "print(1)", { v8Flags: variant.flags });
            if (run.outputs[0] !== "1") throw new Error(`printed ${JSON.stringify(run.outputs[0])}`);
            stats.loads.push(run.loadMs);
            stats.firstRuns.push(run.runMs[0]!);
          }
        });
        peers.push({
          label: variantLabel(variant),
          note: `fresh Deno process per sample, Pyodide from a snapshot: ${variant.why}`,
          workloads: flagWorkloads,
          results: new Map(),
          measure: async (w) => {
            const samples: number[] = [];
            const warmSamples: number[] = [];
            let check: unknown = null;
            for (let i = 0; i < counts.flagReps; i++) {
              const run = await freshCpuRun(ctx, "deno", w, { v8Flags: variant.flags, warm: isDefault ? 2 : 0 });
              stats.loads.push(run.loadMs);
              samples.push(run.samples[0]!);
              if (isDefault) warmSamples.push(run.samples[run.samples.length - 1]!);
              check = run.check;
            }
            if (isDefault) warm.results.set(w.name, { samples: warmSamples, check });
            return { samples, check };
          },
        });
      }
      peers.push(warm);
    }
  }

  if (wants(ctx, "cpu", "pyodide-node")) {
    peers.push({
      label: NODE_LABEL,
      note: `Node ${process.version}'s V8, Pyodide from a snapshot the bench made with Node`,
      workloads: flagWorkloads,
      results: new Map(),
      measure: async (w) => {
        const samples: number[] = [];
        let check: unknown = null;
        for (let i = 0; i < counts.flagReps; i++) {
          const run = await freshCpuRun(ctx, "node", w);
          samples.push(run.samples[0]!);
          check = run.check;
        }
        return { samples, check };
      },
    });
  }

  if (wants(ctx, "cpu", "monty")) {
    const why = await montyUnavailable(ctx);
    if (why) section.skips.push({ peer: MONTY_LABEL, workload: "cpu", reason: why, kind: "skipped" });
    else {
      peers.push({
        label: MONTY_LABEL,
        note: "host-timed run(); a Python subset",
        workloads,
        results: new Map(),
        measure: async (w) => {
          const m = await montyCpu(ctx, w, counts.cpuReps);
          if ("unsupported" in m) {
            section.skips.push({ peer: MONTY_LABEL, workload: W(w), reason: `cannot run it: ${m.unsupported}`, kind: "skipped" });
            return null;
          }
          return m;
        },
      });
    }
  }

  const native = new Map<string, Measured>();
  try {
    for (const w of workloads) {
      const half = Math.max(1, Math.ceil(Math.max(counts.cpuReps, 3) / 2));
      const before = await attempt(section, log, "native", W(w), () => nativeCpu(ctx, w, half));
      if (!before) continue;
      for (const peer of peers) {
        if (!peer.workloads.includes(w) || peer.label === WARM_LABEL) continue;
        const m = await attempt(section, log, peer.label, W(w), () => peer.measure(w));
        if (!m) continue;
        if (!sameCheck(m.check, before.check)) {
          section.skips.push({ peer: peer.label, workload: W(w), reason: `wrong answer: ${JSON.stringify(m.check)} (native ${JSON.stringify(before.check)})`, kind: "failed" });
          continue;
        }
        peer.results.set(w.name, m);
      }
      const after = await attempt(section, log, "native", W(w), () => nativeCpu(ctx, w, half));
      native.set(w.name, { samples: [...before.samples, ...(after?.samples ?? [])], check: before.check });
    }
  } finally {
    for (const close of closers) await close();
  }

  // V8 flag rows: load from snapshot and the first print(1), against the default flags.
  for (const [title, pick, note] of [
    ["V8 flags: Pyodide load from snapshot", (s: { loads: number[] }) => s.loads, "loadPyodide() from a memory snapshot (includes compiling the wasm), in-process ms, every fresh process of the variant"],
    ["V8 flags: first print(1) after load", (s: { firstRuns: number[] }) => s.firstRuns, "runPython('print(1)') right after loading: the part of a request a warm pool cannot prepay"],
  ] as const) {
    const baseSamples = pick(loadRows.get(V8_VARIANTS[0]!.label) ?? { loads: [], firstRuns: [] });
    const base = baseSamples.length ? summarize(baseSamples) : null;
    for (const variant of V8_VARIANTS) {
      const stats = loadRows.get(variant.label);
      const samples = stats ? pick(stats) : [];
      if (!samples.length) continue;
      const isDefault = variant.flags.length === 0;
      section.rows.push(latencyRow(title, variantLabel(variant), samples, isDefault ? null : base, { baseline: isDefault, note: isDefault ? note : variant.why }));
    }
  }

  // wasmbox with each variant: a run on an empty pool (executor start + print(1)), and the run's own durationMs.
  for (const [title, pick, note] of [
    ["V8 flags: wasmbox run on an empty pool", (s: { startAndRun: number[] }) => s.startAndRun, "Sandbox.run() with pool 0: executor start + print(1), request to result (ms)"],
    ["V8 flags: wasmbox print(1) durationMs", (s: { durations: number[] }) => s.durations, "result.durationMs of print(1): from the request reaching a ready executor to the result"],
  ] as const) {
    const baseSamples = pick(wasmboxFlagRows.get(V8_VARIANTS[0]!.label) ?? { startAndRun: [], durations: [] });
    const base = baseSamples.length ? summarize(baseSamples) : null;
    for (const variant of V8_VARIANTS) {
      const stats = wasmboxFlagRows.get(variant.label);
      const samples = stats ? pick(stats) : [];
      if (!samples.length) continue;
      const isDefault = variant.flags.length === 0;
      section.rows.push(latencyRow(title, `wasmbox library, ${variant.label}`, samples, isDefault ? null : base, { baseline: isDefault, note: isDefault ? note : variant.why }));
    }
  }

  // Per-workload rows, then one geometric-mean row per peer.
  for (const w of workloads) {
    const base = native.get(w.name);
    if (!base) continue;
    const baseSummary = summarize(base.samples);
    section.rows.push(latencyRow(W(w), nativeName, base.samples, null, { baseline: true }));
    for (const peer of peers) {
      const m = peer.results.get(w.name);
      if (m?.samples.length) section.rows.push(latencyRow(W(w), peer.label, m.samples, baseSummary));
    }
  }
  section.rows.push(valueRow("cpu geomean", nativeName, "×", 1, 1, { baseline: true, n: native.size }));
  for (const peer of peers) {
    const ratios: number[] = [];
    const missing: string[] = [];
    for (const w of workloads) {
      const m = peer.results.get(w.name);
      const base = native.get(w.name);
      if (m?.samples.length && base) ratios.push(summarize(m.samples).p50 / summarize(base.samples).p50);
      else if (peer.workloads.includes(w)) missing.push(w.name);
    }
    if (ratios.length === 0) continue;
    const g = geomean(ratios);
    const subset = peer.workloads.length < workloads.length ? `; on ${peer.workloads.map((w) => w.name).join(", ")} only` : "";
    section.rows.push(valueRow("cpu geomean", peer.label, "×", g, g, { n: ratios.length, note: peer.note + subset + (missing.length ? `; could not run ${missing.join(", ")}` : "") }));
  }
  return section;
}
