/**
 * The first start on a machine, as a newcomer meets it: an empty cache (the snapshot is made, and
 * the CLI says so), three commands started together (one build between them), and a cache
 * directory that cannot be written (a private temporary one, with one warning).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { BIN, wasmbox } from "./helpers/cli.js";

const root = mkdtempSync(join(tmpdir(), "wasmbox-first-run-"));
after(() => rmSync(root, { recursive: true, force: true }));

const SNAPSHOT_LINE = /^wasmbox: making the memory snapshot for Python \(once per machine\)…$/m;

describe("the first start on a machine", () => {
  test("a run on an empty cache says on stderr that it makes the snapshot and when it is done, and the next run says nothing", async () => {
    const env = { ...process.env, WASMBOX_CACHE_DIR: join(root, "cache-a") };
    const first = await wasmbox(["run", "-c", "print('hello')"], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, "hello\n");
    assert.match(first.stderr, SNAPSHOT_LINE);
    assert.match(first.stderr, /^wasmbox: making the memory snapshot for Python: done in \d+\.\d s$/m);
    const second = await wasmbox(["run", "-c", "print('again')"], { env });
    assert.equal(second.stdout, "again\n");
    assert.doesNotMatch(second.stderr, /snapshot/);
  });

  test("three commands started together on an empty cache make one snapshot between them", async () => {
    const cache = join(root, "cache-b");
    const env = { ...process.env, WASMBOX_CACHE_DIR: cache };
    const runs = await Promise.all([1, 2, 3].map((n) => wasmbox(["run", "-c", `print(${n})`], { env })));
    runs.forEach((run, i) => assert.equal(run.stdout, `${i + 1}\n`, run.stderr));
    const builders = runs.filter((run) => SNAPSHOT_LINE.test(run.stderr));
    assert.equal(builders.length, 1, runs.map((r) => r.stderr).join("\n---\n"));
    // The others either waited for it (and said whose build they waited for) or started after it.
    for (const run of runs.filter((r) => r !== builders[0])) {
      assert.doesNotMatch(run.stderr, SNAPSHOT_LINE);
    }
    assert.equal(readdirSync(cache).filter((f) => f.endsWith(".snapshot")).length, 1);
    assert.deepEqual(readdirSync(cache).filter((f) => f.includes(".lock") || f.includes(".tmp-")), []);
  });

  test("a cache directory that cannot be written falls back to a private temporary one, with one warning naming WASMBOX_CACHE_DIR", async () => {
    const temp = mkdtempSync(join(root, "tmp-"));
    // A path through a regular file: mkdir fails (ENOTDIR) even for root.
    const env = { ...process.env, WASMBOX_CACHE_DIR: join(BIN, "cache"), TMPDIR: temp };
    const run = await wasmbox(["run", "-c", "print(6 * 7)"], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "42\n");
    const warnings = run.stderr.split("\n").filter((line) => line.includes("WASMBOX_CACHE_DIR"));
    assert.equal(warnings.length, 1, run.stderr);
    assert.match(warnings[0]!, /^wasmbox: cannot write the cache directory .*\/cache \(a path component is not a directory\); using .*wasmbox-cache-\d+ instead/);
    assert.doesNotMatch(run.stderr, /ENOTDIR|EACCES|at [\w.]+ \(/, "no raw errno, no stack");
    const fallback = readdirSync(temp).find((name) => name.startsWith("wasmbox-cache-"));
    assert.ok(fallback && readdirSync(join(temp, fallback)).some((f) => f.endsWith(".snapshot")), "the snapshot went to the fallback");
  });

  const asNobody = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"];
  // Needs root (to become nobody), setpriv, and a checkout nobody can read (a clone under a 0700
  // temp dir or /root is not).
  const nobodyCanRun =
    process.getuid?.() === 0 &&
    existsSync("/usr/bin/setpriv") &&
    spawnSync("setpriv", [...asNobody, process.execPath, "-e", `require("fs").readFileSync(${JSON.stringify(BIN)})`]).status === 0;
  test("a user whose HOME does not exist (a service account) gets a working run and the warning", { skip: !nobodyCanRun && "needs root, setpriv, and a checkout the user nobody can read" }, () => {
    const temp = mkdtempSync(join(root, "nobody-"));
    chmodSync(root, 0o755); // mkdtemp makes it 0700: nobody could not reach its own temp dir
    chmodSync(temp, 0o777);
    const run = spawnSync(
      "setpriv",
      [...asNobody, "env", "-i", `PATH=${process.env.PATH}`, "HOME=/nonexistent", `TMPDIR=${temp}`, process.execPath, BIN, "run", "-c", "print('as nobody')"],
      { cwd: temp, encoding: "utf8" },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, "as nobody\n");
    assert.match(run.stderr, /^wasmbox: cannot write the cache directory \/nonexistent\/\.cache\/wasmbox \(permission denied\); using .* instead\. Set WASMBOX_CACHE_DIR/m);
  });
});

describe("the first start under MCP", () => {
  test("a tool call that waits for the snapshot sends progress notifications saying what is made and when it is done", async () => {
    const { Client } = await import("@modelcontextprotocol/sdk/client/index.js");
    const { StdioClientTransport } = await import("@modelcontextprotocol/sdk/client/stdio.js");
    const client = new Client({ name: "first-run-test", version: "1.0.0" });
    // --pool 0: nothing starts before the call, so the call is what waits for the snapshot.
    const env = { ...process.env, WASMBOX_CACHE_DIR: join(root, "cache-mcp") } as Record<string, string>;
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [BIN, "mcp", "--pool", "0"], env, stderr: "ignore" }));
    try {
      const messages: string[] = [];
      const result = await client.callTool({ name: "run_code", arguments: { code: "print('after the snapshot')" } }, undefined, {
        onprogress: (progress) => messages.push(progress.message ?? ""),
      });
      assert.equal(result.isError ?? false, false, JSON.stringify(result));
      const text = messages.join("");
      assert.match(text, /wasmbox: making the memory snapshot for Python \(once per machine\)/);
      assert.match(text, /wasmbox: done in \d+\.\d s/);
      // The run's output is in the result. As progress it is sent too, but the SDK's client drops a
      // last notification read together with the response (modelcontextprotocol/typescript-sdk#2580),
      // so the progress text is not asserted to hold it.
      assert.match(JSON.stringify(result.content), /after the snapshot/);
    } finally {
      await client.close();
    }
  });
});
