/** The baseline: native CPython, one subprocess per run (`python3 -c CODE`). */
import { spawn } from "node:child_process";
import type { BenchContext, NativePython } from "../lib/context.js";
import { exec, residentBytes, sleep } from "../lib/proc.js";
import { parseTimed, timedSource, type CpuWorkload } from "../workloads/cpu-suite.js";

export function nativeLabel(python: NativePython): string {
  return `native CPython ${python.version} subprocess`;
}

/** Wall time of `python -c CODE` from spawn to exit, per run. */
export async function nativeLatency(python: NativePython, n: number, code = "print(1)"): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const result = await exec(python.path, ["-c", code], { timeoutMs: 30_000 });
    if (result.code !== 0 || result.stdout !== "1\n") throw new Error(`python -c failed: ${result.stderr.slice(-300)}`);
    samples.push(result.wallMs);
  }
  return samples;
}

/** `total` subprocesses with `concurrency` in flight: runs/s and per-run latency. */
export async function nativeThroughput(python: NativePython, total: number, concurrency: number): Promise<{ runsPerSecond: number; samples: number[] }> {
  const samples: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < total) {
      next++;
      const result = await exec(python.path, ["-c", "print(1)"], { timeoutMs: 60_000 });
      if (result.code !== 0 || result.stdout !== "1\n") throw new Error(`python -c failed: ${result.stderr.slice(-300)}`);
      samples.push(result.wallMs);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { runsPerSecond: total / ((performance.now() - started) / 1000), samples };
}

/** In-guest milliseconds of one CPU workload, one fresh interpreter per sample. */
export async function nativeCpu(ctx: BenchContext, workload: CpuWorkload, reps: number): Promise<{ samples: number[]; check: unknown }> {
  const samples: number[] = [];
  let check: unknown = null;
  for (let i = 0; i < reps; i++) {
    const result = await exec(ctx.python!.path, ["-c", timedSource(workload)], { timeoutMs: 120_000 });
    if (result.code !== 0) throw new Error(`native ${workload.name} failed: ${result.stderr.slice(-300)}`);
    const timed = parseTimed(result.stdout);
    samples.push(timed.ms);
    check = timed.check;
  }
  return { samples, check };
}

/** Resident bytes of an idle interpreter that has started and waits on stdin. */
export async function nativeIdleResidentBytes(python: NativePython): Promise<number> {
  const child = spawn(python.path, ["-c", "import sys; print('ready', flush=True); sys.stdin.read()"], { stdio: ["pipe", "pipe", "ignore"] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.once("data", () => resolve());
      child.once("exit", () => reject(new Error("python exited early")));
    });
    await sleep(200);
    const bytes = residentBytes(child.pid!);
    if (bytes === null) throw new Error("cannot read the interpreter's resident memory");
    return bytes;
  } finally {
    child.stdin.end();
    child.kill();
  }
}
