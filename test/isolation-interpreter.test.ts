/**
 * "interpreter" isolation: one executor serves many runs and restores its warm state after each.
 * Every test here attacks that reset from Python: a run tries to leave something behind, and the
 * next run, on the same executor (checked through stats.executorsStarted), must not see it.
 * src/runtimes/python/pristine-state.test.ts checks the wasm memory itself, byte for byte.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { readFileSync } from "node:fs";
import { Sandbox, type RunRequest, type RunResult } from "../src/index.js";
import { descendants, waitUntil } from "./helpers/processes.js";

/** What a run can observe of its interpreter: equal to a fresh executor's view after any attack. */
const PROBE = `
import builtins, json, os, sys
(
    sorted(sys.modules),
    sorted(k for k in globals() if not k.startswith('__')),
    os.getcwd(),
    sorted(os.listdir('.')),
    sys.argv,
    dict(os.environ),
    sys.path,
    len([1, 2, 3]),
    json.dumps({'a': 1}),
    print is builtins.print,
    sorted(os.listdir('/tmp')),
    sorted(os.listdir('/home/pyodide')),
    sorted(os.listdir('/lib')),
    oct(os.stat('/lib/python314.zip').st_mode),
    os.stat('/lib/python314.zip').st_size,
    sorted(os.listdir('/proc/self/fd')),
)
`;

describe("interpreter isolation", () => {
  let sandbox: Sandbox;
  let freshView: unknown;

  before(async () => {
    sandbox = await Sandbox.create({ isolation: "interpreter", poolSize: 1, maxConcurrency: 1 });
    freshView = (await sandbox.run({ code: PROBE })).valueRepr;
  });
  after(() => sandbox.close());

  /** Runs `attack`, then the probe; asserts both ran on one executor. */
  async function afterAttack(attack: RunRequest): Promise<{ attacked: RunResult; probe: RunResult }> {
    const started = sandbox.stats.executorsStarted;
    const attacked = await sandbox.run(attack);
    const probe = await sandbox.run({ code: PROBE });
    assert.equal(sandbox.stats.executorsStarted, started, "the probe ran on the attacked executor");
    return { attacked, probe };
  }

  it("reuses one executor for consecutive runs", async () => {
    const started = sandbox.stats.executorsStarted;
    for (let i = 0; i < 5; i++) assert.equal((await sandbox.run({ code: "print(1)" })).stdout, "1\n");
    assert.equal(sandbox.stats.executorsStarted, started);
    assert.equal(sandbox.stats.isolation, "interpreter");
  });

  it("stops an executor while it waits in the pool for its next run (SIGSTOP), and continues it for the run", async () => {
    await sandbox.run({ code: "print(1)" });
    const states = () =>
      descendants(process.pid)
        .filter((p) => p.cmd.includes("executor/main.js"))
        .map((p) => readFileSync(`/proc/${p.pid}/stat`, "utf8").split(") ")[1]![0]);
    await waitUntil(() => sandbox.stats.warm === 1 && states().length > 0 && states().every((s) => s === "T"), "the waiting executor to be stopped");
    const started = sandbox.stats.executorsStarted;
    assert.equal((await sandbox.run({ code: "'continued'" })).value, "continued");
    assert.equal(sandbox.stats.executorsStarted, started, "the stopped executor took the run");
  });

  it("gives the next run a fresh interpreter's globals, modules, builtins, argv, environment and path", async () => {
    const { attacked, probe } = await afterAttack({
      code: [
        "import builtins, sys, os, json, csv",
        "secret = 'left behind'",
        "builtins.len = lambda x: 42",
        "builtins.print = lambda *a, **k: None",
        "json.dumps = None",
        "sys.path.append('/evil')",
        "os.environ['LEFT'] = '1'",
        "sys.argv.append('--evil')",
      ].join("\n"),
      argv: ["one"],
      env: { GIVEN: "x" },
    });
    assert.equal(attacked.status, "ok");
    assert.equal(probe.valueRepr, freshView);
  });

  it("puts back the file system: new files, changed stdlib, modes, directories and the working directory", async () => {
    const { attacked, probe } = await afterAttack({
      code: [
        "import os",
        "open('/tmp/left', 'w').write('x')",
        "open('/home/pyodide/left', 'w').write('x')",
        "open('out.txt', 'w').write('mine')",
        "os.makedirs('/lib/evil/deeper')",
        "os.symlink('/lib', '/tmp/link')",
        "with open('/lib/python314.zip', 'r+b') as f: f.write(b'corrupted zip header')",
        "os.chmod('/lib/python314.zip', 0)",
        "os.chdir('/tmp')",
      ].join("\n"),
    });
    assert.equal(attacked.status, "ok");
    assert.deepEqual(attacked.files.map((f) => f.path), ["out.txt"]);
    assert.equal(probe.valueRepr, freshView);
    // Modules that were not imported yet still load from the restored stdlib archive.
    const imports = await sandbox.run({ code: "import csv, email.parser, fractions\n'imported'" });
    assert.equal(imports.value, "imported");
  });

  it("closes descriptors a run left open", async () => {
    const { attacked, probe } = await afterAttack({ code: "kept = [open('/tmp/f%d' % i, 'w') for i in range(5)]" });
    assert.equal(attacked.status, "ok");
    assert.equal(probe.valueRepr, freshView);
  });

  it("discards the executor of a run that crossed into JavaScript, so nothing it set there reaches the next run", async () => {
    // Pyodide's FFI reaches the worker's JavaScript realm
    const attack = "from pyodide.ffi import to_js\nrealm = to_js([]).constructor.constructor('return globalThis')()\nrealm.wasmbox_left = 'behind'";
    const started = sandbox.stats.executorsStarted;
    assert.equal((await sandbox.run({ code: attack })).status, "ok");
    const next = await sandbox.run({ code: "from pyodide.ffi import to_js\nto_js([]).constructor.constructor('return String(globalThis.wasmbox_left)')()" });
    assert.equal(next.status, "ok", next.error?.message);
    assert.equal(next.value, "undefined");
    assert.ok(sandbox.stats.executorsStarted > started, "a new executor after the run that crossed into JavaScript");
  });

  it("lets no asyncio callback a run left scheduled fire in the next run", async () => {
    // asyncio's loop is wasmbox's own (compat.py) and lives in Python memory, which the reset puts
    // back; it used to be Pyodide's WebLoop, whose JS timers made the executor unusable.
    const attack = "import asyncio\nloop = asyncio.get_event_loop()\nfut = loop.create_future()\nloop.call_soon(fut.set_result, 5)\nloop.call_later(0.05, print, 'LEAKED')";
    assert.equal((await sandbox.run({ code: attack })).status, "ok");
    const next = await sandbox.run({
      code: "import asyncio, time\nt = time.time()\nwhile time.time() - t < 0.2: pass\nasync def main():\n    await asyncio.sleep(0.1)\nasyncio.get_event_loop().run_until_complete(main())\n'clean'",
    });
    assert.equal(next.status, "ok", next.error?.message);
    assert.equal(next.value, "clean");
    assert.equal(next.stdout, "");
  });

  it("draws different random numbers in each run", async () => {
    const draw = { code: "import random\nrandom.random()" };
    const a = await sandbox.run(draw);
    const b = await sandbox.run(draw);
    assert.equal(typeof a.value, "number");
    assert.notEqual(a.value, b.value);
  });

  it("discards the executor after a run it cannot restore from, and the next run is clean", async () => {
    for (const attack of [
      { code: "import os\nos._exit(3)" },
      { code: "big = bytearray(100 * 1024 * 1024)" }, // wasm memory grew past the smallest limit
      { code: "while True: pass", timeoutMs: 500 },
      { code: "import os\nos.dup2(os.open('/tmp/x', os.O_WRONLY | os.O_CREAT), 1)\nprint('to a file')" },
      { code: "import ctypes" }, // loads a shared library: the function table grew
    ]) {
      const started = sandbox.stats.executorsStarted;
      await sandbox.run(attack);
      const probe = await sandbox.run({ code: PROBE });
      assert.equal(probe.valueRepr, freshView, `after ${attack.code}`);
      assert.ok(sandbox.stats.executorsStarted > started, `a new executor after ${attack.code}`);
    }
  });

  it("keeps every limit: a reused executor still times out, caps memory and output", async () => {
    const timed = await sandbox.run({ code: "while True: pass", timeoutMs: 300 });
    assert.equal(timed.status, "timeout");
    const memory = await sandbox.run({ code: "x = bytearray(200 * 1024 * 1024)", memoryLimitBytes: 64 * 1024 * 1024 });
    assert.equal(memory.status, "memory_limit");
    const flood = await sandbox.run({ code: "while True: print('x' * 1000)", maxOutputBytes: 10_000 });
    assert.equal(flood.status, "output_limit");
    assert.equal((await sandbox.run({ code: "print('fine')" })).stdout, "fine\n");
  });

  it("still gives sessions an interpreter that keeps its state, apart from the runs", async () => {
    await using session = await sandbox.session();
    await session.run({ code: "kept = 41\nopen('notes.txt', 'w').write('n')" });
    const run = await sandbox.run({ code: "'kept' in globals()" });
    assert.equal(run.value, false);
    assert.deepEqual((await session.run({ code: "kept + 1, open('notes.txt').read()" })).value, [42, "n"]);
  });

  it("keeps the default safe: a sandbox without the option starts a process per run", async () => {
    await using strict = await Sandbox.create({ poolSize: 1, maxConcurrency: 1 });
    await strict.run({ code: "print(1)" });
    const started = strict.stats.executorsStarted;
    await strict.run({ code: "print(1)" });
    assert.equal(strict.stats.isolation, "process");
    assert.ok(strict.stats.executorsStarted > started);
  });
});
