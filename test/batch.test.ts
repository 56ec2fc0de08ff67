/**
 * `wasmbox batch` on this machine (issue 18): one result line per id, each what a local
 * `sandbox.run` of the same request gives; malformed lines answered with their line numbers; a
 * batch killed outright or interrupted leaves a file that `--resume` completes. Real executors.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Sandbox } from "../src/sandbox/sandbox.js";
import { BIN, wasmbox } from "./helpers/cli.js";
import { alive, descendants, waitUntil, type Proc } from "./helpers/processes.js";

const tmp = () => mkdtempSync(join(tmpdir(), "wasmbox-batch-test-"));

/** Processes this file started, and what they started: killed by pid at the end whatever happened. */
const started: ChildProcess[] = [];
const trees: Proc[] = [];
after(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const proc of trees) if (alive(proc)) process.kill(proc.pid, "SIGKILL");
});

type Line = Record<string, unknown> & { id: unknown; status: string };

/** The lines of a results file, each parsed (a line that does not parse fails the test). */
function readResults(path: string): Line[] {
  const text = readFileSync(path, "utf8");
  assert.ok(text === "" || text.endsWith("\n"), "the file ends with a whole line");
  return text.split("\n").filter(Boolean).map((line) => JSON.parse(line) as Line);
}

// Time measurements differ from run to run: durationMs and the CPU the run used.
const withoutDuration = ({ durationMs: _d, cpuTimeMs: _c, ...rest }: Record<string, unknown>) => rest;

/** Starts `wasmbox batch ARGS` in the background; resolves its exit status when it ends. */
function startBatch(args: string[]): { child: ChildProcess; exit: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [BIN, "batch", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  started.push(child);
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => child.on("close", (code, signal) => resolve(signal === "SIGKILL" ? -9 : code)));
  return { child, exit, stderr: () => stderr };
}

/** Polls the results file until it has `n` lines. */
async function waitForLines(path: string, n: number): Promise<void> {
  await waitUntil(() => existsSync(path) && readFileSync(path, "utf8").split("\n").filter(Boolean).length >= n, `${n} result lines`);
}

/** Jobs that each sleep a little, so a batch of them can be interrupted part-way. */
function slowJobs(n: number): string {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ id: `job-${i}`, code: `import time\ntime.sleep(0.3)\nprint(${i} * ${i})` })).join("\n") + "\n";
}

function assertEachIdOnce(lines: Line[], ids: string[]): void {
  const seen = lines.map((l) => l.id as string).sort();
  assert.deepEqual(seen, [...ids].sort(), "every id exactly once");
  for (const line of lines) {
    assert.equal(line.status, "ok", JSON.stringify(line));
    const i = Number(String(line.id).slice(4));
    assert.equal(line.stdout, `${i * i}\n`);
  }
}

describe("wasmbox batch (local)", () => {
  test("a batch of 50 jobs mixing ok, error and timeout writes exactly one line per id, each equal to a local sandbox.run of the same request", async () => {
    const dir = tmp();
    const requests = Array.from({ length: 50 }, (_, i) => {
      const kind = i % 5;
      if (kind === 3) return { id: i, code: `import time\nprint('before')\ntime.sleep(5)`, timeoutMs: 400 };
      if (kind === 4) return { id: `s${i}`, code: `def f(x):\n    return 1 / x\nf(${i % 2})`, stdin: "unused" };
      return { id: i, code: `import sys\ndata = sys.stdin.read()\nprint(data.upper(), ${i} ** 3)\n${i} * 2`, stdin: `in-${i}` };
    });
    writeFileSync(join(dir, "jobs.jsonl"), requests.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const r = await wasmbox(["batch", join(dir, "jobs.jsonl"), "-o", join(dir, "results.jsonl"), "--concurrency", "3"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /wasmbox batch: 50\/50 done · ok 35 timeout 10 error 5 · [\d.]+ jobs\/s in [\d.]+ s\n$/);
    const lines = readResults(join(dir, "results.jsonl"));
    assert.equal(lines.length, 50);
    assert.deepEqual(lines.map((l) => JSON.stringify(l.id)).sort(), requests.map((r) => JSON.stringify(r.id)).sort());
    const byId = new Map(lines.map((l) => [JSON.stringify(l.id), l]));
    const statuses = new Set(lines.map((l) => l.status));
    assert.deepEqual([...statuses].sort(), ["error", "ok", "timeout"]);

    await using sandbox = await Sandbox.create({ maxConcurrency: 3 });
    await Promise.all(
      requests.map(async ({ id, ...request }) => {
        const local = await sandbox.run(request);
        assert.deepEqual(withoutDuration(byId.get(JSON.stringify(id))!), { id, ...withoutDuration(local as unknown as Record<string, unknown>) }, `job ${id}`);
      }),
    );
  });

  test("malformed lines, a missing id and a repeated id get invalid lines with their line numbers, and the other jobs run", async () => {
    const dir = tmp();
    const jobs = [
      `{"id": 1, "code": "print('one')"}`,
      `{"id": 2, "code": "print('two'`,
      `[1, 2]`,
      `{"code": "print('no id')"}`,
      ``,
      `{"id": 1, "code": "print('again')"}`,
      `{"id": {"a": 1}, "code": "1"}`,
      `{"id": "x", "code": "1", "timeoutMs": "soon"}`,
      `{"id": "y", "code": "1", "stream": true}`,
      `{"id": "z", "code": "print('last')"}`,
    ];
    writeFileSync(join(dir, "jobs.jsonl"), jobs.join("\n")); // no final newline: the last line still counts
    const r = await wasmbox(["batch", join(dir, "jobs.jsonl"), "-o", join(dir, "out.jsonl")]);
    assert.equal(r.code, 1, "some lines did not run");
    const lines = readResults(join(dir, "out.jsonl"));
    const invalid = lines.filter((l) => l.status === "invalid").sort((a, b) => (a.line as number) - (b.line as number));
    assert.deepEqual(
      invalid.map((l) => [l.line, l.id, (l.error as { code: string }).code]),
      [
        [2, 2, "INVALID_REQUEST"],
        [3, null, "INVALID_REQUEST"],
        [4, null, "INVALID_REQUEST"],
        [6, 1, "DUPLICATE_ID"],
        [7, null, "INVALID_REQUEST"],
        [8, "x", "INVALID_REQUEST"],
        [9, "y", "INVALID_REQUEST"],
      ],
    );
    assert.match((invalid[0]!.error as { message: string }).message, /not valid JSON/);
    assert.match((invalid[5]!.error as { message: string }).message, /timeoutMs must be an integer/);
    const ran = lines.filter((l) => l.status !== "invalid");
    assert.deepEqual(ran.map((l) => [l.id, l.stdout]).sort(), [[1, "one\n"], ["z", "last\n"]]);
  });

  test("a batch killed with SIGKILL mid-run leaves whole lines, and --resume completes it: every id exactly once", async () => {
    const dir = tmp();
    const ids = Array.from({ length: 24 }, (_, i) => `job-${i}`);
    writeFileSync(join(dir, "jobs.jsonl"), slowJobs(ids.length));
    const out = join(dir, "out.jsonl");
    const first = startBatch([join(dir, "jobs.jsonl"), "-o", out, "--concurrency", "2"]);
    await waitForLines(out, 4);
    const tree = descendants(first.child.pid!);
    trees.push(...tree);
    first.child.kill("SIGKILL");
    assert.equal(await first.exit, -9);
    // The executors notice their host is gone (their stdin ends; bubblewrap's --die-with-parent).
    await waitUntil(() => tree.every((p) => !alive(p)), "the killed batch's executors to exit");
    const before = readResults(out);
    assert.ok(before.length >= 4 && before.length < ids.length, `${before.length} lines before the kill`);
    // A kill inside a write would leave a cut last line: --resume must cut it off, not trip on it.
    appendFileSync(out, `{"id":"job-23","status":"ok","std`);

    const second = await wasmbox(["batch", join(dir, "jobs.jsonl"), "-o", out, "--resume", "--concurrency", "2"]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /cut a partial last line \(33 bytes\)/);
    assert.match(second.stderr, new RegExp(`${before.length} already done`));
    assertEachIdOnce(readResults(out), ids);
  });

  test("SIGINT stops taking jobs, cancels the ones in flight without writing them, leaves a valid file and exits 130; --resume reruns the rest", async () => {
    const dir = tmp();
    const ids = Array.from({ length: 20 }, (_, i) => `job-${i}`);
    writeFileSync(join(dir, "jobs.jsonl"), slowJobs(ids.length));
    const out = join(dir, "out.jsonl");
    const run = startBatch([join(dir, "jobs.jsonl"), "-o", out, "--concurrency", "2"]);
    await waitForLines(out, 3);
    const tree = descendants(run.child.pid!);
    trees.push(...tree);
    run.child.kill("SIGINT");
    assert.equal(await run.exit, 130, run.stderr());
    assert.match(run.stderr(), /stopped \(SIGINT\)/);
    await waitUntil(() => tree.every((p) => !alive(p)), "the batch's executors to exit");
    const lines = readResults(out);
    assert.ok(lines.length < ids.length, "it stopped early");
    assert.ok(lines.every((l) => l.status === "ok"), "no cancelled run is written");

    const rest = await wasmbox(["batch", join(dir, "jobs.jsonl"), "-o", out, "--resume"]);
    assert.equal(rest.code, 0, rest.stderr);
    assertEachIdOnce(readResults(out), ids);
  });

  test("an existing results file is not overwritten without --resume, and --resume on stdout is refused", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "jobs.jsonl"), `{"id": 1, "code": "1"}\n`);
    writeFileSync(join(dir, "out.jsonl"), `{"id":0,"status":"ok"}\n`);
    const r = await wasmbox(["batch", join(dir, "jobs.jsonl"), "-o", join(dir, "out.jsonl")]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /already holds results: --resume continues it/);
    assert.equal(readFileSync(join(dir, "out.jsonl"), "utf8"), `{"id":0,"status":"ok"}\n`);
    const s = await wasmbox(["batch", "-", "--resume"]);
    assert.equal(s.code, 2);
    assert.match(s.stderr, /--resume needs a results file/);
  });

  test("jobs from stdin (-) with results on stdout take the batch's default limits where they set none", async () => {
    const jobs = [`{"id": "a", "code": "import time; time.sleep(3)"}`, `{"id": "b", "code": "import time; time.sleep(1); print('slept')", "timeoutMs": 10000}`].join("\n");
    const r = await wasmbox(["batch", "--timeout", "300ms", "-"], { stdin: jobs });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Line);
    assert.deepEqual(lines.map((l) => [l.id, l.status]).sort(), [["a", "timeout"], ["b", "ok"]]);
  });

  test("--cpu-time gives jobs that set none a CPU-time limit: a spinning job ends as timeout naming it, a sleeping one is ok", async () => {
    const jobs = [`{"id": "spin", "code": "while True: pass"}`, `{"id": "sleep", "code": "import time; time.sleep(1); print('slept')"}`].join("\n");
    const r = await wasmbox(["batch", "--cpu-time", "300ms", "--timeout", "30s", "-"], { stdin: jobs });
    assert.equal(r.code, 0, r.stderr);
    const byId = new Map(r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Line).map((l) => [l.id, l]));
    assert.equal(byId.get("spin")!.status, "timeout");
    assert.equal((byId.get("spin")!.error as { type: string }).type, "CpuTimeLimit");
    assert.equal(byId.get("sleep")!.status, "ok");
  });
});
