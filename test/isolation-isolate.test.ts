/**
 * "isolate" isolation: one executor process serves many runs, each in a worker (V8 isolate, wasm
 * instance, shared buffers) that no other run touched. Every test attacks it from guest JavaScript,
 * which any guest can run (test/helpers/guest.ts): a run patches its realm, wraps the worker's
 * messaging, grabs shared memory, leaves workers and timers running; the runs after it, on the same
 * executor process (stats.executorsStarted), must see exactly what a run on a fresh process sees
 * and nothing of the runs before them. What the process cannot contain (a worker that outlives its
 * end) must cost the process, never reach the next run.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { Sandbox, type RunRequest } from "../src/index.js";
import { attemptAsync, cacheFlood, guest, js, verdicts } from "./helpers/guest.js";
import { descendants, waitUntil } from "./helpers/processes.js";

/** What a run can observe of its interpreter and its JS realm. */
const PROBE = guest(
  "import builtins, json, os, sys",
  "open('/tmp/probe', 'w').close()",
  `view = json.dumps([sorted(sys.modules), sorted(k for k in globals() if not k.startswith('_')), os.getcwd(), sorted(os.listdir('.')),`,
  `  sys.argv, dict(os.environ), len([1, 2, 3]), print is builtins.print, sorted(os.listdir('/tmp')), os.stat('/tmp/probe').st_ino,`,
  `  str(js(${JSON.stringify(`return JSON.stringify({
      names: Object.getOwnPropertyNames(globalThis).sort(),
      left: typeof globalThis.__wb_left, proto: typeof [].__wb_proto, seen: globalThis.__wb_seen ?? null,
      captured: globalThis.__wb_captured ?? null, sabs: globalThis.__wb_sabs ? globalThis.__wb_sabs.size : 0,
      runs: (globalThis.__wb_runs = (globalThis.__wb_runs ?? 0) + 1),
      parse: String(JSON.parse), load: String(Atomics.load), post: String(self.postMessage), onmessage: String(self.onmessage).slice(0, 300),
    })`)}))])`,
  "view",
);

/** A run that tries to stay: patches the realm, wraps the worker's messaging, collects shared memory. */
const REALM_ATTACK = guest(
  js(`
    globalThis.__wb_left = "left behind";
    Array.prototype.__wb_proto = "polluted";
    const parse = JSON.parse;
    JSON.parse = (text, reviver) => { globalThis.__wb_seen = (globalThis.__wb_seen ?? "") + String(text).slice(0, 2000); return parse(text, reviver); };
    const post = self.postMessage.bind(self);
    self.postMessage = (message, transfer) => post(message && message.t === "retire" ? { t: "ready" } : message, transfer);
    const previous = self.onmessage;
    const text = (value) => JSON.stringify(value, (k, v) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : v));
    self.onmessage = (event) => { (globalThis.__wb_captured ??= []).push(text(event.data)); return previous.call(self, event); };
    const load = Atomics.load;
    Atomics.load = function (array, index) { (globalThis.__wb_sabs ??= new Set()).add(array.buffer); return load(array, index); };
    const store = Atomics.store;
    Atomics.store = function (array, index, value) { (globalThis.__wb_sabs ??= new Set()).add(array.buffer); return store(array, index, value); };
    setInterval(() => {
      for (const buffer of globalThis.__wb_sabs ?? []) (globalThis.__wb_ring ??= []).push(new TextDecoder().decode(new Uint8Array(buffer).slice(0, 4096)));
    }, 1);
  `),
  "print('attacked')",
);

/** A benign run whose code, stdin, environment and files an attacker wants. */
const VICTIM: RunRequest = {
  code: "import os\nprint('SECRET-OUT-' + input() + os.environ['SECRET_ENV'] + open('secret.txt').read())\nopen('made.txt', 'w').write('SECRET-MADE')\n# SECRET-CODE",
  stdin: "SECRET-STDIN\n",
  env: { SECRET_ENV: "SECRET-ENV" },
  files: { "secret.txt": "SECRET-FILE" },
};

function executorPids(): number[] {
  return descendants(process.pid)
    .filter((p) => p.cmd.includes("executor/main.js"))
    .map((p) => p.pid);
}

describe("isolate isolation", () => {
  let sandbox: Sandbox;
  let freshView: unknown;

  before(async () => {
    sandbox = await Sandbox.create({ isolation: "isolate", poolSize: 1, maxConcurrency: 1 });
    const first = await sandbox.run({ code: PROBE });
    assert.equal(first.status, "ok", first.error?.message);
    freshView = first.value;
  });
  after(() => sandbox.close());

  it("serves consecutive runs from one executor process, each in a worker no run touched", async () => {
    const started = sandbox.stats.executorsStarted;
    for (let i = 0; i < 4; i++) {
      const probe = await sandbox.run({ code: PROBE });
      assert.equal(probe.status, "ok", probe.error?.message);
      assert.deepEqual(probe.value, freshView, "each run counts itself as its realm's first");
    }
    assert.equal(sandbox.stats.executorsStarted, started);
    assert.equal(sandbox.stats.isolation, "isolate");
  });

  it("gives the run after an attack on its realm, messaging and shared memory a fresh realm, and nothing of the run between", async () => {
    const started = sandbox.stats.executorsStarted;
    const attacked = await sandbox.run({ code: REALM_ATTACK });
    assert.equal(attacked.stdout, "attacked\n", attacked.error?.message);
    const victim = await sandbox.run(VICTIM);
    assert.equal(victim.stdout, "SECRET-OUT-SECRET-STDINSECRET-ENVSECRET-FILE\n", victim.error?.message);
    const probe = await sandbox.run({ code: PROBE });
    assert.equal(probe.status, "ok", probe.error?.message);
    assert.deepEqual(probe.value, freshView);
    assert.doesNotMatch(JSON.stringify(probe), /SECRET/);
    assert.equal(sandbox.stats.executorsStarted, started, "all three ran on one executor process");
  });

  it("does not let a run read a later run's output through the output ring it grabbed", async () => {
    const grab = guest(
      js(`
        const load = Atomics.load;
        Atomics.load = function (array, index) { (globalThis.__wb_sabs ??= new Set()).add(array.buffer); return load(array, index); };
      `),
      "print('grabbing')",
      // A later run's output would land in the same ring if it were reused: read it back here.
      js(`setTimeout(() => { for (const b of globalThis.__wb_sabs ?? []) globalThis.__wb_found = new TextDecoder().decode(new Uint8Array(b)); }, 200)`),
    );
    await sandbox.run({ code: grab });
    await sandbox.run({ code: "print('SECRET-LATER-OUTPUT')" });
    const probe = await sandbox.run({ code: guest(`print(str(js("return String(globalThis.__wb_found)")))`) });
    assert.equal(probe.stdout, "undefined\n");
  });

  it("ends the executor process when a run leaves a nested worker running, and the next run is clean", async () => {
    const [pid] = executorPids();
    assert.ok(pid, "one executor process");
    const leave = guest(
      js(`
        const source = "const a = new Int32Array(new SharedArrayBuffer(4)); for (;;) Atomics.add(a, 0, 1);";
        new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })), { type: "module" });
      `),
      "import time",
      "time.sleep(0.3)",
      "print('left a worker')",
    );
    const attacked = await sandbox.run({ code: leave });
    assert.equal(attacked.stdout, "left a worker\n", attacked.error?.message);
    await waitUntil(() => !existsPid(pid), "the executor that holds the leftover worker to be killed");
    const probe = await sandbox.run({ code: PROBE });
    assert.deepEqual(probe.value, freshView);
  });

  it("ends the executor process when a run's worker spins after its result and ignores termination", async () => {
    await sandbox.run({ code: "print(1)" });
    const [pid] = executorPids();
    assert.ok(pid);
    // The worker posts its result, then spins in the same task: termination arrives mid-loop.
    const spin = guest(
      js(`
        const post = self.postMessage.bind(self);
        self.postMessage = (message, transfer) => { post(message, transfer); if (message && message.t === "result") for (;;) {} };
      `),
      "print('spinning next')",
    );
    const attacked = await sandbox.run({ code: spin });
    assert.equal(attacked.stdout, "spinning next\n");
    await waitUntil(() => !existsPid(pid), "the executor with the spinning worker to be killed");
    assert.equal((await sandbox.run({ code: "print('after')" })).stdout, "after\n");
  });

  it("does not let a run's pending read of stdin, or of the host's frame channel, take the frames of the runs after it", async () => {
    // Frames used to come on the executor's stdin, which every worker can read: a read left pending
    // took a later run's frame. Now the channel is a FIFO only the main
    // isolate may open (workers are started without read permission for it); stdin carries nothing.
    const paths = ["/wasmbox/frames", ...Array.from({ length: 16 }, (_, i) => `/proc/self/fd/${i + 3}`)];
    const steal = guest(
      js("globalThis.__pending = Deno.stdin.read(new Uint8Array(1 << 20))"),
      attemptAsync("stdin", "return await globalThis.__pending", 500),
      attemptAsync("channel", `const found = []; for (const path of ${JSON.stringify(paths)}) { try { await Deno.open(path, { read: true }); found.push(path); } catch {} } if (found.length) return found.join(","); throw new Error("none opened");`),
      attemptAsync("fds", `const fs = await import("node:fs"); const read = []; for (let fd = 3; fd < 20; fd++) { try { fs.readSync(fd, new Uint8Array(1)); read.push(fd); } catch {} } if (read.length) return read.join(","); throw new Error("none read");`),
    );
    const attacked = await sandbox.run({ code: steal });
    assert.equal(attacked.status, "ok", attacked.error?.message);
    const seen = verdicts(attacked.stdout);
    assert.doesNotMatch(seen.get("stdin") ?? "", /^ALLOWED \d/, "stdin carries nothing to read");
    assert.match(seen.get("channel") ?? "", /^DENIED/);
    assert.match(seen.get("fds") ?? "", /^DENIED/);
    for (let i = 0; i < 3; i++) {
      const next = await sandbox.run({ code: "print('next')", timeoutMs: 10_000 });
      assert.equal(next.status, "ok", next.error?.message);
      assert.equal(next.stdout, "next\n");
    }
  });

  it("keeps every limit, ends the executor process after each, and the run after each is clean", async () => {
    const limited: [RunRequest, string][] = [
      [{ code: "while True: pass", timeoutMs: 500 }, "timeout"],
      [{ code: "x = bytearray(400 * 1024 * 1024)", memoryLimitBytes: 64 * 1024 * 1024 }, "memory_limit"],
      [{ code: "print('x' * 100000)", maxOutputBytes: 1000 }, "output_limit"],
    ];
    for (const [request, status] of limited) {
      const before = executorPids();
      assert.equal((await sandbox.run(request)).status, status);
      await waitUntil(() => before.every((pid) => !existsPid(pid)), `the executor process to end after ${status}`);
      const probe = await sandbox.run({ code: PROBE });
      assert.deepEqual(probe.value, freshView);
    }
  });

  it("catches memory guest JavaScript holds outside the wasm heap, beyond what the next worker's load is allowed", async () => {
    // ArrayBuffers are outside both the wasm cap and V8's heap limit: only the host's resident-memory watch sees them.
    const hog = guest(js("globalThis.__hold = []; for (let i = 0; i < 48; i++) globalThis.__hold.push(new Uint8Array(32 * 1024 * 1024).fill(1)); return globalThis.__hold.length"), "print('held')");
    const result = await sandbox.run({ code: hog, memoryLimitBytes: 64 * 1024 * 1024, timeoutMs: 60_000 });
    assert.equal(result.status, "memory_limit", `${result.status}: ${result.error?.message}`);
    assert.match(result.error!.message, /resident memory reached/);
    assert.deepEqual((await sandbox.run({ code: PROBE })).value, freshView);
  });

  it("ends the executor process when a run makes Deno write more than loading a worker does to its caches", async () => {
    const started = sandbox.stats.executorsStarted;
    // ~200 distinct data: modules, ~20 KB of cache entries each: past the allowance, within the budget.
    const flood = await sandbox.run({ code: cacheFlood(30, 200), memoryLimitBytes: 512 * 1024 * 1024, timeoutMs: 60_000 });
    assert.equal(flood.status, "ok", flood.error?.message);
    assert.match(flood.stdout, /flood: done 200/);
    const probe = await sandbox.run({ code: PROBE });
    assert.deepEqual(probe.value, freshView);
    assert.ok(sandbox.stats.executorsStarted > started, "the executor whose caches the run filled was reused");
  });

  it("still gives sessions an interpreter that keeps its state", async () => {
    const session = await sandbox.session();
    try {
      await session.run({ code: "x = 41" });
      assert.equal((await session.run({ code: "x + 1" })).value, 42);
    } finally {
      await session.close();
    }
    assert.deepEqual((await sandbox.run({ code: PROBE })).value, freshView);
  });
});

describe("isolate isolation, other languages", () => {
  it("gives each JavaScript run a fresh realm on one reused executor process", async () => {
    await using sandbox = await Sandbox.create({ isolation: "isolate", poolSize: 1, maxConcurrency: 1, language: "javascript" });
    const code = "globalThis.count = (globalThis.count ?? 0) + 1; Object.prototype.polluted = 1; console.log(globalThis.count, typeof ({}).polluted)";
    const first = await sandbox.run({ code, language: "javascript" });
    assert.equal(first.stdout, "1 number\n", first.error?.message);
    const started = sandbox.stats.executorsStarted;
    for (let i = 0; i < 3; i++) {
      const next = await sandbox.run({ code: "console.log(globalThis.count ?? 0, typeof ({}).polluted)", language: "javascript" });
      assert.equal(next.stdout, "0 undefined\n", next.error?.message);
    }
    assert.equal(sandbox.stats.executorsStarted, started, "the executor process was reused");
  });

  it("does not charge a C run for the next run's compiler loading beside it", async () => {
    // The next worker (a whole Clang) loads while the run executes; its memory is the executor's.
    await using sandbox = await Sandbox.create({ isolation: "isolate", poolSize: 1, maxConcurrency: 1, language: "c" });
    for (let i = 0; i < 2; i++) {
      const result = await sandbox.run({ code: '#include <stdio.h>\nint main(void) { puts("compiled"); return 0; }', language: "c" });
      assert.equal(result.status, "ok", result.error?.message);
      assert.equal(result.stdout, "compiled\n");
    }
  });
});

function existsPid(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}
