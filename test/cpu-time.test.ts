/**
 * The CPU-time limit (`cpuTimeMs`, issue 18): measured by the host from the executor's CPU time in
 * /proc (every thread, counted from the run's start), so the verdict is the same on an idle and on
 * a loaded machine. Real executors; the tests assert on statuses and errors, never on wall-clock
 * timings.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { after, before, describe, test } from "node:test";
import { Sandbox, WasmboxError, type RunResult } from "../dist/index.js";
import { refuseUnmeasurableCpuLimit } from "../dist/sandbox/run-options.js";
import { guest, js } from "./helpers/guest.js";

const J = JSON.stringify;

function describeResult(result: RunResult): string {
  return `status ${result.status}; error ${result.error?.type}: ${result.error?.message}; cpuTimeMs ${result.cpuTimeMs}; stdout ${J(result.stdout.slice(0, 500))}; stderr ${J(result.stderr.slice(-500))}`;
}

/** Asserts the run was stopped by its CPU-time limit: status "timeout", error naming cpuTimeMs. */
function assertCpuLimited(result: RunResult, limitMs: number): void {
  assert.equal(result.status, "timeout", describeResult(result));
  assert.equal(result.error?.type, "CpuTimeLimit", describeResult(result));
  assert.match(result.error!.message, new RegExp(`CPU-time limit of ${limitMs} ms \\(cpuTimeMs\\)`));
  assert.ok(result.cpuTimeMs !== null && result.cpuTimeMs >= limitMs, `the result says it used ${result.cpuTimeMs} ms of CPU`);
}

/** A Python loop that swallows every interrupt: only the kill ends it. */
const STUBBORN = "while True:\n    try:\n        while True: pass\n    except BaseException: pass";
/** A fixed amount of work: ~0.1 s of CPU here, however long it takes on the wall clock. */
const BOUNDED_WORK = "n = 0\nfor i in range(1_000_000): n += 1\nn";

describe("cpuTimeMs: a CPU-time limit read by the host", () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await Sandbox.create({ poolSize: 1 });
  });
  after(async () => {
    await sandbox?.close();
  });

  test('a busy loop with cpuTimeMs 300 and timeoutMs 30000 ends as "timeout" naming the CPU-time limit', async () => {
    const result = await sandbox.run({ code: "print('spinning', flush=True)\nwhile True: pass", cpuTimeMs: 300, timeoutMs: 30_000 });
    assertCpuLimited(result, 300);
    assert.equal(result.stdout, "spinning\n");
    assert.match(result.error!.traceback, /KeyboardInterrupt/, "the interrupt's traceback is kept");
  });

  test("a loop that swallows every interrupt is killed at the CPU-time limit", async () => {
    const result = await sandbox.run({ code: STUBBORN, cpuTimeMs: 300, timeoutMs: 30_000 });
    assertCpuLimited(result, 300);
    assert.equal(result.exitCode, null, "the executor was killed");
  });

  test('time.sleep(2) with cpuTimeMs 300 ends "ok": sleeping uses no CPU', async () => {
    const result = await sandbox.run({ code: "import time\ntime.sleep(2)\n'rested'", cpuTimeMs: 300 });
    assert.equal(result.status, "ok", describeResult(result));
    assert.equal(result.value, "rested");
    assert.ok(result.cpuTimeMs !== null && result.cpuTimeMs < 300, `it used ${result.cpuTimeMs} ms of CPU`);
  });

  test("a busy loop in guest JavaScript (the Function constructor) is stopped at the CPU-time limit", async () => {
    const result = await sandbox.run({ code: guest("print('into js', flush=True)", js("while (true) {}")), cpuTimeMs: 300, timeoutMs: 30_000 });
    assertCpuLimited(result, 300);
    assert.equal(result.stdout, "into js\n");
  });

  test("CPU a Worker the guest starts uses counts, while the guest itself sleeps", async () => {
    const spin = "while (true) {}";
    const code = guest(
      js(`globalThis.wasmbox_spinner = new Worker(URL.createObjectURL(new Blob([${J(spin)}], { type: "text/javascript" })), { type: "module" });`),
      "import time",
      "time.sleep(20)",
    );
    const result = await sandbox.run({ code, cpuTimeMs: 400, timeoutMs: 30_000 });
    assertCpuLimited(result, 400);
  });

  test("a run without cpuTimeMs is not limited by CPU and still reports the CPU it used", async () => {
    const result = await sandbox.run({ code: BOUNDED_WORK });
    assert.equal(result.status, "ok", describeResult(result));
    assert.equal(typeof result.cpuTimeMs, "number");
    assert.ok(result.cpuTimeMs! > 0, describeResult(result));
  });

  test("the wall clock still applies with a CPU-time limit, and its error stays the wall clock's", async () => {
    const result = await sandbox.run({ code: "import time\nwhile True: time.sleep(0.01)", cpuTimeMs: 10_000, timeoutMs: 500 });
    assert.equal(result.status, "timeout", describeResult(result));
    assert.notEqual(result.error?.type, "CpuTimeLimit", describeResult(result));
  });

  test("where the host cannot read CPU time (no /proc, macOS) a run with cpuTimeMs is refused with NOT_IMPLEMENTED", () => {
    assert.throws(
      () => refuseUnmeasurableCpuLimit({ cpuTimeMs: 300 }, false),
      (error: unknown) => error instanceof WasmboxError && error.code === "NOT_IMPLEMENTED" && /cpuTimeMs/.test(error.message),
    );
    refuseUnmeasurableCpuLimit({ cpuTimeMs: null }, false);
    refuseUnmeasurableCpuLimit({ cpuTimeMs: 300 }, true);
  });
});

describe("cpuTimeMs on a loaded machine", () => {
  let sandbox: Sandbox;
  const hogs: ChildProcess[] = [];
  before(async () => {
    sandbox = await Sandbox.create({ poolSize: 1 });
    // One CPU hog per core, at the same priority as the executors: runs get a fraction of a core.
    for (let i = 0; i < availableParallelism(); i++) {
      hogs.push(spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
    }
  });
  after(async () => {
    for (const hog of hogs) if (hog.pid !== undefined && hog.exitCode === null) process.kill(hog.pid, "SIGKILL");
    await Promise.all(hogs.map((hog) => (hog.exitCode !== null || hog.signalCode !== null ? null : new Promise((resolve) => hog.once("exit", resolve)))));
    await sandbox?.close();
  });

  test("the verdicts are those of an idle machine: fixed work within its CPU limit ends ok, a busy loop ends at the limit", async () => {
    const [work, spin, rest] = await Promise.all([
      sandbox.run({ code: BOUNDED_WORK, cpuTimeMs: 1_500, timeoutMs: 120_000 }),
      sandbox.run({ code: "while True: pass", cpuTimeMs: 300, timeoutMs: 120_000 }),
      sandbox.run({ code: "import time\ntime.sleep(1)\n'rested'", cpuTimeMs: 300, timeoutMs: 120_000 }),
    ]);
    assert.equal(work.status, "ok", describeResult(work));
    assert.equal(work.value, 1_000_000);
    assertCpuLimited(spin, 300);
    assert.equal(rest.status, "ok", describeResult(rest));
  });
});

for (const isolation of ["interpreter", "isolate"] as const) {
  describe(`cpuTimeMs with isolation "${isolation}"`, () => {
    let sandbox: Sandbox;
    before(async () => {
      sandbox = await Sandbox.create({ poolSize: 1, isolation });
    });
    after(async () => {
      await sandbox?.close();
    });

    test("each run's CPU is counted from its own start, on an executor that served runs before", async () => {
      for (let i = 0; i < 3; i++) {
        const result = await sandbox.run({ code: BOUNDED_WORK, cpuTimeMs: 1_500 });
        assert.equal(result.status, "ok", `run ${i}: ${describeResult(result)}`);
      }
    });

    test("a run past its CPU-time limit ends as timeout, its executor is replaced, and the next run is clean", async () => {
      const before = sandbox.stats.executorsStarted;
      const spun = await sandbox.run({ code: "import builtins\nbuiltins.wasmbox_left = 1\nwhile True: pass", cpuTimeMs: 300, timeoutMs: 30_000 });
      assertCpuLimited(spun, 300);
      const killed = await sandbox.run({ code: STUBBORN, cpuTimeMs: 300, timeoutMs: 30_000 });
      assertCpuLimited(killed, 300);
      const next = await sandbox.run({ code: "import builtins\nhasattr(builtins, 'wasmbox_left')", cpuTimeMs: 1_500 });
      assert.equal(next.status, "ok", describeResult(next));
      assert.equal(next.value, false);
      assert.ok(sandbox.stats.executorsStarted > before, "the executors stopped by the limit were not replaced");
    });
  });
}

describe("cpuTimeMs in a session", () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await Sandbox.create({ poolSize: 0 });
  });
  after(async () => {
    await sandbox?.close();
  });

  test("each call's CPU is its own: calls under the limit pass however much the session used before", async () => {
    await using session = await sandbox.session();
    for (let i = 0; i < 3; i++) {
      const result = await session.run({ code: BOUNDED_WORK, cpuTimeMs: 1_500 });
      assert.equal(result.status, "ok", `call ${i}: ${describeResult(result)}`);
    }
  });

  test("a call stopped by its CPU-time limit whose guest caught the KeyboardInterrupt leaves the session open, as a timeout does", async () => {
    await using session = await sandbox.session();
    await session.run({ code: "x = 42" });
    const timed = await session.run({ code: "try:\n    while True: pass\nexcept KeyboardInterrupt:\n    print('caught')", cpuTimeMs: 300, timeoutMs: 30_000 });
    assertCpuLimited(timed, 300);
    assert.equal(timed.stdout, "caught\n");
    assert.equal(session.state, "open");
    assert.equal((await session.run({ code: "x" })).value, 42);
  });

  test("a call killed at its CPU-time limit leaves the session dead, and the next call says so", async () => {
    const session = await sandbox.session();
    try {
      const killed = await session.run({ code: STUBBORN, cpuTimeMs: 300, timeoutMs: 30_000 });
      assertCpuLimited(killed, 300);
      assert.equal(session.state, "dead");
      await assert.rejects(session.run({ code: "1" }), (e: unknown) => e instanceof WasmboxError && e.code === "SESSION_DEAD");
    } finally {
      await session.close();
    }
  });
});
