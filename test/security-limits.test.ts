/**
 * Security corpus, part two: limits that must hold outside "a run is active" (issue 11). Each test
 * attacks from guest code, through the open route to JavaScript (helpers/guest.ts), and ends by
 * checking that the host is alive and the next run is clean.
 *
 * - between session calls: background work a call leaves behind (a nested Worker allocating, a
 *   timer spinning) never runs unwatched;
 * - Deno's own writes (the Web Cache API): capped, in RAM inside bubblewrap, measured on the host's
 *   disk without it, and gone when the executor is;
 * - WebGPU: no adapter, in the executor's worker or in a worker the guest starts;
 * - the host's layout: no host path in argv, execPath, the working directory or stack traces;
 * - PHP's process functions fail at once.
 */
import assert from "node:assert/strict";
import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { homedir, tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Sandbox, WasmboxError, type RunResult } from "../dist/index.js";
import { attempt, attemptAsync, cacheFlood, guest, inNestedWorker, js, verdicts } from "./helpers/guest.js";
import { descendants, waitUntil, type Proc } from "./helpers/processes.js";

const J = JSON.stringify;
const MiB = 1024 * 1024;
const repoDir = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const cacheDir = process.env.WASMBOX_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "wasmbox");
/** The budget of Deno's own writes per executor (PRIVATE_STORAGE_BUDGET_BYTES). */
const STORAGE_BUDGET_BYTES = 16 * MiB;

function describeResult(result: RunResult): string {
  return `status ${result.status}; error ${result.error?.type}: ${result.error?.message}; stdout ${J(result.stdout.slice(0, 2000))}; stderr ${J(result.stderr.slice(-1000))}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Executor processes (bwrap and Deno) below this test process. */
function executors(): Proc[] {
  return descendants(process.pid).filter((p) => p.cmd.includes("executor/main.js"));
}

/** State letter, resident bytes and CPU ticks of a process, from /proc. */
function procStat(pid: number): { state: string; residentBytes: number; cpuTicks: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const resident = Number(readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]) * 4096;
    return { state: fields[0]!, residentBytes: resident, cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

/** A clean run: the host still runs guests and the interpreter is fresh. */
async function assertNextRunClean(sandbox: Sandbox): Promise<void> {
  const result = await sandbox.run({
    code: guest(`import builtins`, `print(hasattr(builtins, "wasmbox_pwned"), ${js(`return "wasmbox_pwned" in globalThis`)})`),
    timeoutMs: 20_000,
  });
  assert.equal(result.status, "ok", describeResult(result));
  assert.equal(result.stdout, "False False\n", describeResult(result));
}

/**
 * Guest program: a nested Worker that allocates 128 MiB every 100 ms (typed arrays, outside V8's
 * heap cap) and a timer in the guest's own worker that keeps a core busy, both outliving the call.
 */
const BACKGROUND_ATTACK = guest(
  js(`
    const src = "const keep = []; setInterval(() => { for (let i = 0; i < 8; i++) { const b = new ArrayBuffer(16 << 20); new Uint8Array(b).fill(1); keep.push(b); } }, 100);";
    globalThis.wasmbox_pwned_worker = new Worker(URL.createObjectURL(new Blob([src], { type: "text/javascript" })), { type: "module" });
    globalThis.wasmbox_pwned_spin = setInterval(() => { const t = Date.now(); while (Date.now() - t < 20) {} }, 1);
  `),
  `print("armed")`,
);

describe("security corpus: limits between session calls", () => {
  let sandbox: Sandbox;
  before(async () => {
    // No pool: the only executor below this process is the one the test opens.
    sandbox = await Sandbox.create({ poolSize: 0 });
  });
  after(async () => {
    await sandbox?.close();
  });

  test("background work a session call leaves behind does not run between calls, and the next call ends it and says why", async () => {
    const session = await sandbox.session();
    try {
      const armed = await session.run({ code: BACKGROUND_ATTACK, memoryLimitBytes: 64 * MiB, timeoutMs: 10_000 });
      assert.equal(armed.status, "ok", describeResult(armed));
      const procs = executors();
      assert.ok(procs.length > 0, "the session's executor is not below this process");
      await sleep(300); // the host stops it at the result; give the stop time to reach every thread
      const before = procs.map((p) => procStat(p.pid));
      await sleep(1500);
      const later = procs.map((p) => procStat(p.pid));
      for (let i = 0; i < procs.length; i++) {
        assert.ok(before[i] && later[i], `executor process ${procs[i]!.pid} is gone: ${session.state}`);
        assert.equal(later[i]!.state, "T", `executor process ${procs[i]!.pid} is not stopped between calls`);
        assert.equal(later[i]!.cpuTicks, before[i]!.cpuTicks, "an executor used CPU between calls");
        assert.equal(later[i]!.residentBytes, before[i]!.residentBytes, "an executor's memory grew between calls");
      }
      // The next call lets it run again, under that call's limits: the allocation ends it.
      const next = await session.run({ code: "import time\ntime.sleep(5)\nprint('survived')", memoryLimitBytes: 64 * MiB, timeoutMs: 10_000 });
      assert.equal(next.status, "memory_limit", describeResult(next));
      await assert.rejects(session.run({ code: "1" }), (error: unknown) => {
        assert.ok(error instanceof WasmboxError);
        assert.equal(error.code, "SESSION_DEAD");
        assert.match(error.message, /memory_limit/);
        return true;
      });
    } finally {
      await session.close();
    }
    assert.deepEqual(executors(), [], "the dead session's executor is still running");
    await assertNextRunClean(sandbox);
  });

  test("a session executor that runs while it should be stopped is killed, and the next call says why", async () => {
    const session = await sandbox.session();
    try {
      const armed = await session.run({ code: BACKGROUND_ATTACK, memoryLimitBytes: 1024 * MiB, timeoutMs: 10_000 });
      assert.equal(armed.status, "ok", describeResult(armed));
      await sleep(1200); // the host has checked it stopped at least once
      // Stands in for anything that continues a stopped process behind the host's back.
      for (const p of executors()) process.kill(p.pid, "SIGCONT");
      for (let i = 0; i < 100 && session.state === "open"; i++) await sleep(50);
      assert.equal(session.state, "dead", "the host did not notice its stopped executor running");
      await assert.rejects(session.run({ code: "1" }), (error: unknown) => {
        assert.ok(error instanceof WasmboxError);
        assert.equal(error.code, "SESSION_DEAD");
        assert.match(error.message, /kept running while it should have been stopped|between calls/);
        return true;
      });
    } finally {
      await session.close();
    }
    assert.deepEqual(executors(), []);
    await assertNextRunClean(sandbox);
  });

  test("a session's files can be read and written between calls while its executor is stopped", async () => {
    const session = await sandbox.session();
    try {
      await session.run({ code: "open('a.txt', 'w').write('from a call')" });
      assert.equal(new TextDecoder().decode(await session.files.read("a.txt")), "from a call");
      await session.files.write("b.txt", "from the host");
      assert.deepEqual((await session.files.list()).map((f) => f.path).sort(), ["a.txt", "b.txt"]);
      await waitUntil(() => executors().every((p) => procStat(p.pid)?.state === "T"), "the executor to be stopped again after a file operation");
      const read = await session.run({ code: "open('b.txt').read()" });
      assert.equal(read.value, "from the host");
    } finally {
      await session.close();
    }
  });
});

/** Bytes under the host temp directory's wasmbox-deno-* entries not in `ignore` (executors' DENO_DIRs without bubblewrap). */
function hostExecutorDirBytes(ignore: string[] = []): { dirs: string[]; bytes: number } {
  const dirs = readdirSync(tmpdir()).filter((n) => n.startsWith("wasmbox-deno-") && !ignore.includes(n));
  let bytes = 0;
  for (const dir of dirs) {
    for (const file of readdirSync(join(tmpdir(), dir), { recursive: true, encoding: "utf8" })) {
      try {
        const stat = lstatSync(join(tmpdir(), dir, file)); // not statSync: Deno's node_compat_bin/node links to its binary
        if (stat.isFile()) bytes += stat.size;
      } catch {
        // removed while we looked
      }
    }
  }
  return { dirs, bytes };
}

for (const osSandbox of ["auto", "off"] as const) {
  describe(`security corpus: Deno's own writes are capped (osSandbox ${osSandbox})`, () => {
    let sandbox: Sandbox;
    let before0: string[];
    before(async () => {
      sandbox = await Sandbox.create({ poolSize: 0, osSandbox });
      before0 = hostExecutorDirBytes().dirs;
    });
    after(async () => {
      await sandbox?.close();
    });

    test("the Web Cache API is refused at once, also in a worker the guest starts", async () => {
      const result = await sandbox.run({
        code: guest(
          attempt("global", `typeof caches`),
          attemptAsync("nested_open", inNestedWorker(`await caches.open("flood"); return "opened"`)),
        ),
        timeoutMs: 20_000,
      });
      assert.equal(result.status, "ok", describeResult(result));
      const v = verdicts(result.stdout);
      assert.equal(v.get("global"), "ALLOWED undefined", result.stdout);
      assert.match(v.get("nested_open") ?? "", /^DENIED \w+: Failed to create cache storage directory/, result.stdout);
      assert.ok(!result.stdout.includes(repoDir) && !result.stdout.includes(tmpdir() + "/wasmbox-deno") || osSandbox === "off", result.stdout);
      await assertNextRunClean(sandbox);
    });

    test("a run that makes Deno fill its caches ends as memory_limit naming the storage, and the host's disk never holds more than the budget", async () => {
      let peak = 0;
      let sawDir = false;
      const watch = setInterval(() => {
        const now = hostExecutorDirBytes(before0);
        if (now.dirs.length > 0) sawDir = true;
        peak = Math.max(peak, now.bytes);
      }, 10);
      let result: RunResult;
      try {
        result = await sandbox.run({ code: cacheFlood(20), memoryLimitBytes: 512 * MiB, timeoutMs: 30_000 });
      } finally {
        clearInterval(watch);
      }
      assert.equal(result.status, "memory_limit", describeResult(result));
      assert.match(result.error!.message, /private storage/, describeResult(result));
      if (osSandbox === "auto" && sandbox.osSandboxed) {
        // Inside bubblewrap Deno's DENO_DIR is a tmpfs: nothing of it is on the host's disk.
        assert.equal(sawDir, false, "an executor inside bubblewrap made a directory on the host");
      } else {
        assert.ok(sawDir, "the watch never saw the executor's directory: it measured nothing");
        // The copy of the compile cache (a few MiB), the budget, and what one poll interval lets through.
        assert.ok(peak < STORAGE_BUDGET_BYTES + 24 * MiB, `the executor's directory reached ${peak} bytes`);
      }
      assert.deepEqual(hostExecutorDirBytes().dirs.filter((d) => !before0.includes(d)), [], "the executor's directory outlived it");
      await assertNextRunClean(sandbox);
    });

    test("a session that makes Deno fill its caches over several calls is stopped at the budget", async () => {
      const session = await sandbox.session();
      try {
        const first = await session.run({ code: cacheFlood(50, 250), memoryLimitBytes: 512 * MiB, timeoutMs: 60_000 });
        assert.equal(first.status, "ok", describeResult(first));
        assert.match(first.stdout, /flood: done/, describeResult(first));
        let ended: RunResult | null = null;
        for (let call = 0; call < 8 && !ended; call++) {
          const more = await session.run({ code: cacheFlood(50, 250), memoryLimitBytes: 512 * MiB, timeoutMs: 60_000 }).catch((error: unknown) => error);
          if (more instanceof WasmboxError) {
            assert.equal(more.code, "SESSION_DEAD");
            assert.match(more.message, /private storage/);
            break;
          }
          if ((more as RunResult).status !== "ok") ended = more as RunResult;
        }
        assert.ok(ended, "the session kept writing past its storage budget");
        assert.equal(ended.status, "memory_limit", describeResult(ended));
        assert.match(ended.error!.message, /private storage/);
      } finally {
        await session.close();
      }
      assert.deepEqual(hostExecutorDirBytes().dirs.filter((d) => !before0.includes(d)), []);
      await assertNextRunClean(sandbox);
    });

    test("guest code finds no GPU: navigator.gpu is gone and a nested worker's adapter request resolves null", async () => {
      const result = await sandbox.run({
        code: guest(
          attempt("worker_gpu", `typeof navigator.gpu + "/" + typeof caches`),
          attemptAsync("nested_adapter", inNestedWorker(`return String(await navigator.gpu.requestAdapter())`)),
        ),
        timeoutMs: 20_000,
      });
      assert.equal(result.status, "ok", describeResult(result));
      const v = verdicts(result.stdout);
      assert.equal(v.get("worker_gpu"), "ALLOWED undefined/undefined", result.stdout);
      assert.equal(v.get("nested_adapter"), "ALLOWED null", result.stdout);
      await assertNextRunClean(sandbox);
    });

    test(osSandbox === "auto" ? "inside bubblewrap, argv, execPath, the working directory and stack traces show no host path" : "without bubblewrap, the active layers say that host paths are visible", async () => {
      if (osSandbox === "off") {
        assert.match(sandbox.layers, /guest code can see the host paths/);
        return;
      }
      assert.equal(sandbox.osSandboxed, true, "bubblewrap is installed on this machine but not in use");
      const result = await sandbox.run({
        code: guest(
          attempt("exec_path", `Deno.execPath()`),
          attempt("args", `JSON.stringify(Deno.args)`),
          attempt("main_module", `Deno.mainModule`),
          attempt("cwd", `Deno.cwd()`),
          attempt("stack", `new Error("where").stack`),
          attemptAsync("nested_stack", inNestedWorker(`return new Error("where").stack + " " + self.location`)),
          `import sys, traceback`,
          `print("sys_path:", sys.path)`,
          `print("py_stack:", "".join(traceback.format_stack()))`,
          `open("/no/such/file")`,
        ),
        timeoutMs: 20_000,
      });
      assert.equal(result.status, "error", describeResult(result));
      const everything = JSON.stringify(result);
      const user = userInfo().username;
      for (const hostPath of [repoDir, homedir(), cacheDir, tmpdir() === "/tmp" ? null : tmpdir(), "node_modules", "/root", `/home/${user}`]) {
        if (hostPath) assert.ok(!everything.includes(hostPath), `the guest saw ${hostPath}: ${everything.slice(0, 3000)}`);
      }
      assert.ok(!/python-\d[\w.]*-[0-9a-f]{16}\.snapshot/.test(everything), "the guest saw the snapshot's cache file name");
      assert.match(verdicts(result.stdout).get("exec_path") ?? "", /^ALLOWED \/wasmbox\//);
      await assertNextRunClean(sandbox);
    });
  });
}

describe("security corpus: PHP's process functions", () => {
  let sandbox: Sandbox | null = null;
  before(async () => {
    try {
      sandbox = await Sandbox.create({ poolSize: 0, languages: ["php"] });
    } catch (error) {
      if (!(error instanceof WasmboxError && error.code === "UNSUPPORTED_LANGUAGE")) throw error;
    }
  });
  after(async () => {
    await sandbox?.close();
  });

  test("shell_exec, backticks, exec, system, passthru, popen and proc_open fail at once with a clear error", async (t) => {
    if (!sandbox) return t.skip("PHP is not installed");
    for (const call of [`shell_exec("id")`, "`id`", `exec("id")`, `system("id")`, `passthru("id")`, `popen("id", "r")`, `proc_open("id", [], $pipes)`]) {
      const started = performance.now();
      const result = await sandbox.run({ language: "php", code: `<?php var_dump(${call});`, timeoutMs: 20_000 });
      const elapsedMs = performance.now() - started;
      assert.equal(result.status, "error", `${call}: ${describeResult(result)}`);
      assert.match(result.error!.message, /Call to undefined function (shell_exec|exec|system|passthru|popen|proc_open)\(\)/, `${call}: ${describeResult(result)}`);
      // Not a timing assertion on the machine's speed: the only way to take this long is to wait for the timeout.
      assert.ok(elapsedMs < 15_000, `${call} waited for the run's timeout`);
    }
    const next = await sandbox.run({ language: "php", code: `<?php echo "clean";` });
    assert.equal(next.stdout, "clean");
  });
});
