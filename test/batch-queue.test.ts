/**
 * `wasmbox batch --queue` and `wasmbox worker` on a real redis-server of the test's own (issue 18):
 * 3 workers, 2000 jobs, one worker SIGKILLed mid-batch, one Redis restart and one producer killed
 * and resumed; every id exactly once, each result identical (but for durationMs) to a local run of
 * the same job. Workers run `--isolation interpreter` (the jobs are our own small programs) so the
 * 2000 jobs take seconds, not minutes, on 2 cores; local mode's tests cover the default isolation.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Sandbox } from "../src/sandbox/sandbox.js";
import { BIN } from "./helpers/cli.js";
import { alive, descendants, waitUntil, type Proc } from "./helpers/processes.js";
import { redisAvailable, startRedis, type TestRedis } from "./helpers/redis.js";

const tmp = () => mkdtempSync(join(tmpdir(), "wasmbox-batch-queue-test-"));

/** Processes this file started, and what they started: stopped by pid at the end whatever happened. */
const started: ChildProcess[] = [];
const trees: Proc[] = [];
const servers: TestRedis[] = [];
after(async () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const proc of trees) if (alive(proc)) process.kill(proc.pid, "SIGKILL");
  for (const server of servers) await server.stop();
});

function start(args: string[]): { child: ChildProcess; exit: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  started.push(child);
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => child.on("close", (code, signal) => resolve(signal === "SIGKILL" ? -9 : code)));
  return { child, exit, stderr: () => stderr };
}

const lineCount = (path: string) => (existsSync(path) ? readFileSync(path, "utf8").split("\n").filter(Boolean).length : 0);

async function waitFor(check: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

type Line = Record<string, unknown> & { id: string; status: string };
// Time measurements differ from run to run: durationMs and the CPU the run used.
const withoutDuration = ({ durationMs: _d, cpuTimeMs: _c, ...rest }: Record<string, unknown>) => rest;

describe("wasmbox batch --queue with wasmbox worker", { skip: redisAvailable() ? false : "redis-server is not installed (apt-get install redis-server)" }, () => {
  test("3 workers run 2000 jobs through a worker SIGKILLed mid-batch, a Redis restart and a producer killed and resumed: every id once, each result what a local run gives", { timeout: 300_000 }, async () => {
    const redis = await startRedis({ persistent: true }); // the queue survives the restart
    servers.push(redis);
    const dir = tmp();
    const requests = Array.from({ length: 2000 }, (_, i) => ({
      id: `job-${i}`,
      // Some jobs take a while, so the killed worker surely had jobs in flight.
      code: i % 50 === 7 ? `import time\ntime.sleep(0.5)\nprint(${i} * ${i})` : `print(${i} * ${i})`,
    }));
    writeFileSync(join(dir, "jobs.jsonl"), requests.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const out = join(dir, "results.jsonl");
    const startedAt = Date.now();

    const worker = () => start(["worker", "--queue", redis.url, "--isolation", "interpreter", "--concurrency", "2", "--quiet"]);
    const workers = [worker(), worker(), worker()];
    let producer = start(["batch", join(dir, "jobs.jsonl"), "--queue", redis.url, "--name", "squares", "-o", out]);

    await waitFor(() => lineCount(out) >= 300, "300 results");
    const killed = workers[0]!;
    const tree = descendants(killed.child.pid!);
    trees.push(...tree);
    killed.child.kill("SIGKILL");
    assert.equal(await killed.exit, -9);
    await waitUntil(() => tree.every((p) => !alive(p)), "the killed worker's executors to exit");

    await waitFor(() => lineCount(out) >= 800, "800 results");
    await redis.stop();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await redis.start();

    await waitFor(() => lineCount(out) >= 1200, "1200 results");
    producer.child.kill("SIGKILL");
    assert.equal(await producer.exit, -9);
    producer = start(["batch", join(dir, "jobs.jsonl"), "--queue", redis.url, "--name", "squares", "-o", out, "--resume"]);
    assert.equal(await producer.exit, 0, producer.stderr());
    const seconds = (Date.now() - startedAt) / 1000;

    const text = readFileSync(out, "utf8");
    assert.ok(text.endsWith("\n"));
    const lines = text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Line);
    const ids = lines.map((l) => l.id);
    assert.equal(new Set(ids).size, ids.length, "no id twice");
    assert.deepEqual([...ids].sort(), requests.map((r) => r.id).sort(), "every id");

    await using sandbox = await Sandbox.create({ isolation: "interpreter" });
    const byId = new Map(lines.map((l) => [l.id, l]));
    for (const { id, ...request } of requests) {
      const local = await sandbox.run(request);
      assert.deepEqual(withoutDuration(byId.get(id)!), { id, ...withoutDuration(local as unknown as Record<string, unknown>) }, id);
    }

    // Workers stop cleanly on SIGTERM and leave no executor behind.
    for (const w of workers.slice(1)) {
      const tree = descendants(w.child.pid!);
      trees.push(...tree);
      w.child.kill("SIGTERM");
      assert.equal(await w.exit, 143, w.stderr());
      await waitUntil(() => tree.every((p) => !alive(p)), "a stopped worker's executors to exit");
    }
    process.stderr.write(`# 2000 jobs through the queue (kill, restart, resume included) in ${seconds.toFixed(1)} s\n`);
  });

  test("a worker refuses a job over its --max-timeout at once (a failed line, not retried), and guest errors are results", { timeout: 120_000 }, async () => {
    const redis = await startRedis();
    servers.push(redis);
    const dir = tmp();
    const jobs = [
      { id: "long", code: "print(1)", timeoutMs: 20_000 },
      { id: "fine", code: "print(2)", timeoutMs: 1_000 },
      { id: "raises", code: "1/0", timeoutMs: 1_000 },
      { id: "spins", code: "while True: pass", timeoutMs: 300 },
    ];
    writeFileSync(join(dir, "jobs.jsonl"), jobs.map((j) => JSON.stringify(j)).join("\n") + "\n");
    const w = start(["worker", "--queue", redis.url, "--max-timeout", "5s", "--concurrency", "2"]);
    const producer = start(["batch", join(dir, "jobs.jsonl"), "--queue", redis.url, "-o", join(dir, "out.jsonl")]);
    assert.equal(await producer.exit, 1, producer.stderr()); // one job did not run
    const lines = readFileSync(join(dir, "out.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Line);
    const byId = Object.fromEntries(lines.map((l) => [l.id, l]));
    assert.equal(lines.length, 4);
    assert.equal(byId.long!.status, "failed");
    assert.deepEqual(byId.long!.error, { code: "OVER_WORKER_LIMIT", message: "timeoutMs 20000 is over this worker's --max-timeout (5000 ms)" });
    assert.equal(byId.long!.line, 1);
    assert.equal(byId.fine!.stdout, "2\n");
    assert.equal(byId.raises!.status, "error");
    assert.equal(byId.spins!.status, "timeout");
    assert.equal(w.stderr().match(/"long": failed/g)?.length, 1, "tried once");
    const tree = descendants(w.child.pid!);
    trees.push(...tree);
    w.child.kill("SIGTERM");
    assert.equal(await w.exit, 143);
    await waitUntil(() => tree.every((p) => !alive(p)), "the worker's executors to exit");
  });
});
