/**
 * Pyodide used directly, without wasmbox, through pyodide-standalone.mjs: loaded per run in Node
 * and in Deno (the naive design), and as a fresh Deno process per CPU sample with chosen V8 flags
 * (the same experiment outside wasmbox, with no executor protocol or OS wrapper around it).
 */
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BENCH_DIR, CACHE_DIR, type BenchContext } from "../lib/context.js";
import { exec, firstErrorLine, lastJsonLine } from "../lib/proc.js";
import { b64, parseTimed, timedSource, type CpuWorkload } from "../workloads/cpu-suite.js";

const SCRIPT = join(BENCH_DIR, "peers", "pyodide-standalone.mjs");
const ENV = { ...process.env, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" };

export type Runtime = "node" | "deno";

/** Command and arguments that run the standalone script on a runtime, with read access to what it needs. */
function command(ctx: BenchContext, runtime: Runtime, args: string[], options: { readable?: string[]; writable?: string; v8Flags?: string[] } = {}): [string, string[]] {
  if (runtime === "node") {
    return [ctx.node, [...(options.v8Flags ?? []), SCRIPT, ctx.pyodideDir, ...args]];
  }
  const deno = [
    "run",
    "--no-prompt",
    "--no-config",
    "--no-lock",
    `--allow-read=${[ctx.pyodideDir, ...(options.readable ?? [])].join(",")}`,
    ...(options.writable ? [`--allow-write=${options.writable}`] : []),
    ...(options.v8Flags?.length ? [`--v8-flags=${options.v8Flags.join(",")}`] : []),
    SCRIPT,
    ctx.pyodideDir,
    ...args,
  ];
  return [ctx.deno, deno];
}

/** In one process, `n` runs that each load Pyodide afresh: ms per run (load + run). */
export async function perRunLatency(ctx: BenchContext, runtime: Runtime, n: number, code = "print(1)"): Promise<number[]> {
  const [cmd, args] = command(ctx, runtime, ["per-run", String(n), b64(code)]);
  const result = await exec(cmd, args, { env: ENV, timeoutMs: 60_000 + n * 30_000 });
  const out = lastJsonLine<{ samples: number[]; stdout: string }>(result.stdout);
  if (result.code !== 0 || !out) throw new Error(`${runtime} + pyodide: ${firstErrorLine(result.stderr || result.stdout)}`);
  if (out.stdout !== "1\n") throw new Error(`${runtime} + pyodide printed ${JSON.stringify(out.stdout)}`);
  return out.samples;
}

/** Wall time of a fresh process that loads Pyodide and runs print(1): the naive one-shot CLI. */
export async function oneShotWallMs(ctx: BenchContext, runtime: Runtime): Promise<number> {
  const [cmd, args] = command(ctx, runtime, ["per-run", "1", b64("print(1)")]);
  const result = await exec(cmd, args, { env: ENV, timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`${runtime} + pyodide: ${firstErrorLine(result.stderr)}`);
  return result.wallMs;
}

const snapshotPromises = new Map<Runtime, Promise<string>>();

/**
 * A Pyodide memory snapshot for the CPU peers, made once per runtime with this Pyodide and cached
 * under bench/.cache, so a fresh process starts in ~0.3 s as wasmbox's executors do. (wasmbox's own
 * snapshot is an internal of the library; and a snapshot made under Deno does not load in Node.)
 */
export function benchSnapshot(ctx: BenchContext, runtime: Runtime = "deno"): Promise<string> {
  let promise = snapshotPromises.get(runtime);
  if (!promise) {
    promise = (async () => {
      mkdirSync(CACHE_DIR, { recursive: true });
      const version = runtime === "deno" ? `deno-${ctx.denoVersion}` : `node-${process.version}`;
      const path = join(CACHE_DIR, `pyodide-${ctx.pyodideVersion}-${version}.snapshot`);
      if (existsSync(path)) return path;
      const temp = `${path}.${process.pid}.tmp`;
      const [cmd, args] = command(ctx, runtime, ["make-snapshot", temp], { writable: CACHE_DIR });
      ctx.log(`making a Pyodide snapshot for ${runtime} (once)…`);
      const result = await exec(cmd, args, { env: ENV, timeoutMs: 180_000 });
      if (result.code !== 0 || !existsSync(temp)) {
        rmSync(temp, { force: true });
        throw new Error(`cannot make a Pyodide snapshot: ${firstErrorLine(result.stderr)}`);
      }
      renameSync(temp, path);
      return path;
    })();
    snapshotPromises.set(runtime, promise);
  }
  return promise;
}

export interface FreshRun {
  /** loadPyodide() from the snapshot, in-process ms (includes compiling the wasm module). */
  loadMs: number;
  /** runPython()'s wall ms for the first run in this process, then for each warm re-run. */
  runMs: number[];
  /** The last line each run printed. */
  outputs: string[];
}

/** One fresh process: load Pyodide from the snapshot, run `code` 1 + `warm` times. */
export async function freshRun(ctx: BenchContext, runtime: Runtime, code: string, options: { v8Flags?: string[]; warm?: number } = {}): Promise<FreshRun> {
  const snapshot = await benchSnapshot(ctx, runtime);
  const [cmd, args] = command(ctx, runtime, ["cpu", snapshot, String(options.warm ?? 0), b64(code)], {
    readable: [snapshot],
    v8Flags: options.v8Flags,
  });
  const result = await exec(cmd, args, { env: ENV, timeoutMs: 300_000 });
  if (result.code !== 0) throw new Error(`${runtime} ${options.v8Flags?.join(" ") ?? ""}: ${firstErrorLine(result.stderr)}`);
  const lines = result.stdout.trim().split("\n").map((line) => JSON.parse(line) as { t: string; loadMs?: number; out?: string; runMs?: number });
  const samples = lines.filter((l) => l.t === "sample");
  return {
    loadMs: lines.find((l) => l.t === "ready")?.loadMs ?? NaN,
    runMs: samples.map((l) => l.runMs!),
    outputs: samples.map((l) => l.out!),
  };
}

export interface FreshCpuRun {
  loadMs: number;
  /** In-guest ms of bench() for the first run in this process, then for each warm re-run. */
  samples: number[];
  check: unknown;
}

/** One fresh process running a CPU workload (timed inside the guest) 1 + `warm` times. */
export async function freshCpuRun(ctx: BenchContext, runtime: Runtime, workload: CpuWorkload, options: { v8Flags?: string[]; warm?: number } = {}): Promise<FreshCpuRun> {
  const run = await freshRun(ctx, runtime, timedSource(workload), options);
  const timed = run.outputs.map(parseTimed);
  return { loadMs: run.loadMs, samples: timed.map((t) => t.ms), check: timed[timed.length - 1]?.check ?? null };
}
