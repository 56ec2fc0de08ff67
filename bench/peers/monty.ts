/** @pydantic/monty: a Python subset interpreter in Rust, run in-process (through a child Node process). */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { BENCH_DIR, REPO_DIR, type BenchContext } from "../lib/context.js";
import { exec, firstErrorLine, lastJsonLine } from "../lib/proc.js";
import { b64, montySource, type CpuWorkload } from "../workloads/cpu-suite.js";

export const MONTY_LABEL = "@pydantic/monty (in-process subset interpreter)";
const RUNNER = join(BENCH_DIR, "peers", "monty-runner.mjs");
// Not a dev dependency of the repository: its platform packages (@pydantic/monty-darwin-arm64, …)
// are missing from some registries, and a lock file without them makes `npm ci` refuse to install
// anything. The bench installs it on first use into bench/.peers (gitignored), like the PyPI peers.
const MONTY_SPEC = "@pydantic/monty@0.0.18";
const PEERS_DIR = join(BENCH_DIR, ".peers");
let installed: Promise<string | null> | undefined;

/** Installs the package into bench/.peers once; null when ready, else why not. */
function ensureMonty(ctx: BenchContext): Promise<string | null> {
  installed ??= (async () => {
    if (existsSync(join(PEERS_DIR, "node_modules", "@pydantic", "monty", "package.json"))) return null;
    ctx.log(`installing ${MONTY_SPEC} into bench/.peers (npm, once)…`);
    const npm = await exec("npm", ["install", "--prefix", PEERS_DIR, "--no-save", "--no-package-lock", "--no-audit", "--no-fund", MONTY_SPEC], { timeoutMs: 300_000 });
    return npm.code === 0 ? null : `npm install ${MONTY_SPEC} failed: ${firstErrorLine(npm.stderr)}`;
  })();
  return installed;
}

type MontyOut = { samples?: number[]; stdout?: string; check?: unknown; error?: string; probe?: Record<string, string | null> };

async function runner(ctx: BenchContext, mode: "latency" | "cpu" | "probe", n: number, code: string): Promise<MontyOut> {
  const missing = await ensureMonty(ctx);
  if (missing) throw new Error(missing);
  const result = await exec(ctx.node, [RUNNER, mode, String(n), b64(code), PEERS_DIR], { cwd: REPO_DIR, timeoutMs: 300_000 });
  const out = lastJsonLine<MontyOut>(result.stdout);
  if (!out) throw new Error(`monty runner: ${firstErrorLine(result.stderr)}`);
  return out;
}

/** Whether the package loads here: null when it does, else why not. */
export async function montyUnavailable(ctx: BenchContext): Promise<string | null> {
  try {
    const out = await runner(ctx, "latency", 1, "print(1)");
    if (out.error) return `cannot run print(1): ${out.error}`;
    return null;
  } catch (error) {
    return `@pydantic/monty does not load: ${(error as Error).message}`;
  }
}

/** Per-run ms of parse + run of `code` in a new Monty object. */
export async function montyLatency(ctx: BenchContext, n: number, code = "print(1)"): Promise<number[]> {
  const out = await runner(ctx, "latency", n, code);
  if (out.error) throw new Error(out.error);
  if (out.stdout !== "1\n") throw new Error(`monty printed ${JSON.stringify(out.stdout)}`);
  return out.samples!;
}

/** Host-timed ms of run() for a CPU workload, or the reason Monty cannot run it. */
export async function montyCpu(ctx: BenchContext, workload: CpuWorkload, reps: number): Promise<{ samples: number[]; check: unknown } | { unsupported: string }> {
  const out = await runner(ctx, "cpu", reps, montySource(workload));
  if (out.error) return { unsupported: out.error };
  return { samples: out.samples!, check: out.check };
}

/** Small programs of everyday Python, to say in the report what Monty cannot run. */
const PROBES: Record<string, string> = {
  "class definitions": "class A:\n    pass\nA()",
  "import time": "import time\ntime.perf_counter()",
  "import random": "import random\nrandom.random()",
  "import os": "import os\nos.getcwd()",
  "import collections": "import collections\ncollections.Counter('aab')",
  "import datetime": "import datetime\ndatetime.date(2020, 1, 1)",
  "open() a file": "open('x.txt', 'w')",
  "generators (yield)": "def g():\n    yield 1\nlist(g())",
  "try/except": "try:\n    1 / 0\nexcept ZeroDivisionError:\n    pass",
  "with + contextlib": "import contextlib\nwith contextlib.suppress(Exception):\n    pass",
  "async/await": "async def f():\n    return 1\nawait f()",
  "lambda and sorted(key=)": "sorted([3, 1, 2], key=lambda v: -v)",
  "f-strings": "x = 1\nf'{x:>3}'",
  "import re": "import re\nre.findall(r'\\d', 'a1')",
  "import json": "import json\njson.dumps([1])",
  "import math": "import math\nmath.sqrt(2)",
};

/** Which of the probe programs Monty fails on, with its error. */
export async function montyLimits(ctx: BenchContext): Promise<{ cannot: Record<string, string>; can: string[] }> {
  const out = await runner(ctx, "probe", 0, JSON.stringify(PROBES));
  if (!out.probe) throw new Error(out.error ?? "no probe result");
  const cannot: Record<string, string> = {};
  const can: string[] = [];
  for (const [name, error] of Object.entries(out.probe)) {
    if (error === null) can.push(name);
    else cannot[name] = error;
  }
  return { cannot, can };
}
