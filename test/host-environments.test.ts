import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { denoBinary, pyodideDir } from "../src/host/runtime-paths.js";

const BIN = fileURLToPath(new URL("../dist/cli/bin.js", import.meta.url));

function cli(command: string, args: string[], env: NodeJS.ProcessEnv = {}, input = "") {
  return spawnSync(command, args, { encoding: "utf8", input, env: { ...process.env, ...env }, timeout: 120_000 });
}

describe("the host under Deno", () => {
  it("runs a program when the host itself runs on the deno binary (as the Python client drives it)", () => {
    const r = cli(denoBinary(), ["run", "-A", BIN, "run", "--json", "--os-sandbox", "require", "-c", "import sys; print(sys.version_info[:2])\n6 * 7"], {
      WASMBOX_PYODIDE_DIR: pyodideDir(),
    });
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.stdout, "(3, 14)\n");
    assert.equal(result.value, 42);
  });

  it("answers serve --stdio requests when the host runs on Deno", () => {
    const r = cli(denoBinary(), ["run", "-A", BIN, "serve", "--stdio", "--pool", "1"], { WASMBOX_PYODIDE_DIR: pyodideDir() }, '{"id": 1, "code": "1 + 1"}\n');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).value, 2);
  });
});

describe("without bubblewrap", () => {
  it("still runs, and says once on stderr which layers are active and that bubblewrap is not", () => {
    const r = cli(process.execPath, [BIN, "run", "-c", "print('still works')"], { WASMBOX_BWRAP: "/nonexistent/bwrap" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "still works\n");
    // Besides the first start's preparation lines (the compile cache for executors outside bubblewrap is made once per machine).
    const lines = r.stderr.trim().split("\n").filter((line) => !/\(once per machine\)…$|: done in \d/.test(line));
    assert.match(lines[0]!, /^wasmbox: active layers: Deno executor with every permission denied.*Not active: bubblewrap/);
    assert.equal(lines.length, 1, r.stderr);
  });

  it("refuses to run with --os-sandbox require, naming the missing layer", () => {
    const r = cli(process.execPath, [BIN, "run", "--os-sandbox", "require", "-c", "print(1)"], { WASMBOX_BWRAP: "/nonexistent/bwrap" });
    assert.equal(r.status, 70);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /osSandbox "require": bwrap cannot start executors here.*\[SANDBOX_LAYER_MISSING\]/);
  });

  it("keeps the Deno permission wall when bubblewrap is turned off", () => {
    const r = cli(process.execPath, [BIN, "run", "--os-sandbox", "off", "-c", [
      "from pyodide.ffi import to_js",
      "F = to_js({}).constructor.constructor",
      "print(F('try { Deno.readTextFileSync(\"/etc/hostname\"); return \"read\" } catch (e) { return e.name }')())",
    ].join("\n")]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "NotCapable\n");
  });
});

describe("serve --stdio under Deno", () => {
  it("answers a run in flight as cancelled and exits 143 on SIGTERM", async () => {
    const { spawn } = await import("node:child_process");
    const child = spawn(denoBinary(), ["run", "-A", BIN, "serve", "--stdio", "--pool", "1"], {
      env: { ...process.env, WASMBOX_PYODIDE_DIR: pyodideDir() },
      stdio: ["pipe", "pipe", "ignore"],
    });
    const closed = new Promise<number | null>((resolve) => child.on("close", resolve));
    let out = "";
    const started = new Promise<void>((resolve) =>
      child.stdout.on("data", (d: Buffer) => {
        out += d;
        if (out.includes('"event":"stdout"')) resolve();
      }),
    );
    child.stdin.write(JSON.stringify({ id: 1, stream: true, code: "print('up', flush=True)\nwhile True: pass" }) + "\n");
    await started;
    child.kill("SIGTERM");
    assert.equal(await closed, 143);
    const result = out.trim().split("\n").map((l) => JSON.parse(l)).find((l) => l.id === 1 && !l.event);
    assert.equal(result?.status, "cancelled");
  });
});
