/** Everything a workload needs to know about this machine and this run of the bench. */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, realpathSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);

export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const REPO_DIR = dirname(BENCH_DIR);
export const CACHE_DIR = join(BENCH_DIR, ".cache");

/** Iteration counts for one mode. */
export interface Counts {
  /** Sequential `print(1)` requests to fast peers (native, hand-rolled server, Monty). */
  latencyFast: number;
  /** Sequential requests to wasmbox (each waits for a warm pool). */
  latencyWasmbox: number;
  /** Sequential runs of peers that load Pyodide per run (seconds each). */
  latencyPerRun: number;
  /** Requests in the throughput test, and how many are kept in flight. */
  throughputRequests: number;
  concurrency: number;
  /** Cold one-shot runs of the CLI and the baseline. */
  cold: number;
  /** Cold one-shot runs of the naive fresh-process Pyodide peers (seconds each). */
  coldNaive: number;
  /** Samples per CPU workload per peer (each in a fresh interpreter). */
  cpuReps: number;
  /** Samples per CPU workload per V8 flag variant (each in a fresh Deno process). */
  flagReps: number;
  /** CPU workloads the standalone Pyodide peers run (null: all). */
  flagWorkloads: string[] | null;
  /** Executors in the pool whose idle resident memory is read. */
  idlePool: number;
  /** Runs before the host's resident memory is read again (process isolation). */
  hostRuns: number;
  /** The same with isolation "interpreter", where runs are cheap enough for many more. */
  hostRunsReused: number;
  /** Runs before the first reading (start-up allocations are not growth). */
  hostWarmup: number;
  /** HumanEval problems graded (two programs each); null: all 164. */
  humanevalProblems: number | null;
}

export const FULL: Counts = {
  latencyFast: 200,
  latencyWasmbox: 60,
  latencyPerRun: 5,
  throughputRequests: 200,
  concurrency: 16,
  cold: 10,
  coldNaive: 3,
  cpuReps: 5,
  flagReps: 3,
  flagWorkloads: null,
  idlePool: 4,
  hostRuns: 1000,
  hostRunsReused: 10_000,
  hostWarmup: 20,
  humanevalProblems: null,
};

export const QUICK: Counts = {
  latencyFast: 10,
  latencyWasmbox: 5,
  latencyPerRun: 1,
  throughputRequests: 16,
  concurrency: 16,
  cold: 2,
  coldNaive: 1,
  cpuReps: 1,
  flagReps: 1,
  flagWorkloads: ["fib"],
  idlePool: 2,
  hostRuns: 10,
  hostRunsReused: 100,
  hostWarmup: 3,
  humanevalProblems: 8,
};

export interface NativePython {
  path: string;
  version: string;
  /** How it was found, for the report. */
  how: string;
}

export interface BenchContext {
  quick: boolean;
  counts: Counts;
  node: string;
  deno: string;
  denoVersion: string;
  pyodideDir: string;
  pyodideVersion: string;
  python: NativePython | null;
  pythonProblem: string | null;
  /** `node dist/cli/bin.js` */
  cli: string;
  /** `--only` filters: a workload runs when a filter names it or one of its peers (its baseline always runs with it). */
  only: string[];
  log: (message: string) => void;
}

/** Whether `--only` selects this workload/peer pair. */
export function wants(ctx: BenchContext, workload: string, peerId: string): boolean {
  if (ctx.only.length === 0) return true;
  const name = workload.toLowerCase();
  return ctx.only.some((f) => name.includes(f.toLowerCase()) || peerId.includes(f));
}

/** The Deno binary wasmbox itself would use: the `deno` npm package's platform binary. */
export function findDeno(): string {
  if (process.env.WASMBOX_DENO) return realpathSync(process.env.WASMBOX_DENO);
  const arch = process.arch === "x64" ? "x64" : "arm64";
  const pkg = process.platform === "linux" ? `@deno/linux-${arch}-glibc` : process.platform === "darwin" ? `@deno/darwin-${arch}` : `@deno/win32-${arch}`;
  const denoPkg = dirname(require.resolve("deno/package.json"));
  const candidate = join(dirname(createRequire(join(denoPkg, "package.json")).resolve(`${pkg}/package.json`)), "deno");
  if (existsSync(candidate)) return realpathSync(candidate);
  return realpathSync(join(denoPkg, "deno"));
}

function probePython(command: string): NativePython | null {
  try {
    const out = execFileSync(command, ["-c", "import sys, platform; print(sys.executable); print(platform.python_implementation(), platform.python_version())"], {
      encoding: "utf8",
      timeout: 10_000,
      stdio: ["ignore", "pipe", "ignore"],
    }).trim().split("\n");
    if (out.length < 2 || !out[1]!.startsWith("CPython")) return null;
    // The resolved executable, not a launcher: a pyenv shim is a shell script that adds ~50 ms.
    return { path: realpathSync(out[0]!), version: out[1]!.split(" ")[1]!, how: command };
  } catch {
    return null;
  }
}

function versionKey(version: string): number {
  const [major, minor, patch] = version.split(".").map((p) => parseInt(p, 10) || 0);
  return major! * 1_000_000 + minor! * 1000 + patch!;
}

/**
 * The native CPython baseline. WASMBOX_BENCH_PYTHON wins; otherwise the newest CPython found
 * (Pyodide runs 3.14, so the closest version makes the fairest CPU comparison): python3.14,
 * python3.13 on PATH, pyenv's installed versions, then python3.
 */
export function findPython(): { python: NativePython | null; problem: string | null } {
  if (process.env.WASMBOX_BENCH_PYTHON) {
    const python = probePython(process.env.WASMBOX_BENCH_PYTHON);
    return python ? { python, problem: null } : { python: null, problem: `WASMBOX_BENCH_PYTHON=${process.env.WASMBOX_BENCH_PYTHON} is not a working CPython` };
  }
  const candidates = ["python3.14", "python3.13", "python3"];
  const pyenvRoot = process.env.PYENV_ROOT ?? join(process.env.HOME ?? "/root", ".pyenv");
  try {
    for (const version of readdirSync(join(pyenvRoot, "versions"))) {
      if (/^3\.\d+\.\d+$/.test(version)) candidates.push(join(pyenvRoot, "versions", version, "bin", "python3"));
    }
  } catch {
    // no pyenv
  }
  const found = candidates.map(probePython).filter((p): p is NativePython => p !== null);
  if (found.length === 0) return { python: null, problem: "no CPython found (python3 on PATH, or set WASMBOX_BENCH_PYTHON)" };
  found.sort((a, b) => versionKey(b.version) - versionKey(a.version));
  return { python: found[0]!, problem: null };
}

export function pyodideInfo(): { dir: string; version: string } {
  const dir = realpathSync(dirname(require.resolve("pyodide/package.json")));
  return { dir, version: (require(join(dir, "package.json")) as { version: string }).version };
}
