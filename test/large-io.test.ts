/**
 * Large inputs and outputs (issue 20): big stdin and files reach the guest intact, big output files
 * come back byte-exact and cheaply encoded, caps are refused up front with an error naming them on
 * every interface, time spent before the guest starts is never the guest's timeout, temporary
 * directories never outlive their host, and the HTTP server cuts off slow or surplus clients.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { fileBytes, Sandbox, WasmboxError, type RunResult } from "../dist/index.js";
import { alive, descendants, waitUntil } from "./helpers/processes.js";

const MiB = 1024 * 1024;
const BIN = fileURLToPath(new URL("../dist/cli/bin.js", import.meta.url));
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

function shown(result: RunResult): string {
  return `status ${result.status}; error ${result.error?.type}: ${result.error?.message}; stdout ${JSON.stringify(result.stdout.slice(0, 500))}`;
}

describe("large inputs and outputs", () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await Sandbox.create({ poolSize: 1 });
  });
  after(async () => {
    await sandbox?.close();
  });

  test("a 100 MiB stdin reaches the guest intact", async () => {
    const stdin = randomBytes(100 * MiB);
    const result = await sandbox.run({
      code: "import sys, hashlib\ndata = sys.stdin.buffer.read()\nprint(len(data), hashlib.sha256(data).hexdigest())",
      stdin,
      maxStdinBytes: 128 * MiB,
      memoryLimitBytes: 512 * MiB,
      timeoutMs: 120_000,
    });
    assert.equal(result.status, "ok", shown(result));
    assert.equal(result.stdout, `${stdin.length} ${sha256(stdin)}\n`);
  });

  test("three 50 MiB files reach the guest intact", async () => {
    const files = { "a.bin": randomBytes(50 * MiB), "b.bin": randomBytes(50 * MiB), "deep/c.bin": randomBytes(50 * MiB) };
    const result = await sandbox.run({
      code: "import hashlib\nfor p in ['a.bin', 'b.bin', 'deep/c.bin']:\n    print(p, hashlib.sha256(open(p, 'rb').read()).hexdigest())",
      files,
      maxInputBytes: 160 * MiB,
      memoryLimitBytes: 512 * MiB,
      timeoutMs: 120_000,
    });
    assert.equal(result.status, "ok", shown(result));
    assert.equal(result.stdout, Object.entries(files).map(([path, bytes]) => `${path} ${sha256(bytes)}\n`).join(""));
    assert.deepEqual(result.files, [], "unchanged inputs are not given back");
  });

  test("a zero-filled and a random 50 MiB output file come back byte-exact, as base64 rather than escaped text", async () => {
    const result = await sandbox.run({
      code: "import hashlib, os\nr = os.urandom(50 * 1024 * 1024)\nopen('random.bin', 'wb').write(r)\nopen('zeros.bin', 'wb').write(bytes(50 * 1024 * 1024))\nprint(hashlib.sha256(r).hexdigest())",
      memoryLimitBytes: 512 * MiB,
      timeoutMs: 120_000,
    });
    assert.equal(result.status, "ok", shown(result));
    const [random, zeros] = result.files;
    assert.equal(random?.path, "random.bin");
    assert.equal(sha256(fileBytes(random!)), result.stdout.trim());
    assert.equal(zeros?.path, "zeros.bin");
    assert.equal(zeros.encoding, "base64", "NUL bytes are valid UTF-8 but six times larger as JSON escapes");
    assert.deepEqual(fileBytes(zeros), new Uint8Array(50 * MiB));
    // On the wire the result is about the size of its base64, not six times the data.
    assert.ok(JSON.stringify(result).length < 2 * 4 / 3 * 50 * MiB + MiB);
  });

  test("text output files stay text, also when they hold a few control characters", async () => {
    const result = await sandbox.run({ code: "open('t.txt', 'w').write('line\\tone\\n' * 1000 + '\\x00')\nopen('u.txt', 'w').write('héllo ✓')" });
    assert.equal(result.status, "ok", shown(result));
    assert.deepEqual(result.files.map((f) => [f.path, f.encoding]), [["t.txt", "utf8"], ["u.txt", "utf8"]]);
    assert.equal(result.files[1]!.content, "héllo ✓");
  });

  test("an output file past maxOutputFileBytes is left out and ends the run as output_limit naming it; the files within the caps come back", async () => {
    const result = await sandbox.run({
      code: "open('big.bin', 'wb').write(bytes(3000))\nopen('small.txt', 'w').write('kept')\nprint('done')",
      maxOutputFileBytes: 2000,
    });
    assert.equal(result.status, "output_limit", shown(result));
    assert.equal(result.error?.type, "OutputLimit");
    assert.match(result.error!.message, /output file "big\.bin" is 3000 bytes, over maxOutputFileBytes \(2000 bytes\)/);
    assert.deepEqual(result.files.map((f) => f.path), ["small.txt"]);
    assert.equal(result.stdout, "done\n");
    const total = await sandbox.run({
      code: "for n in 'abc':\n    open(n + '.txt', 'w').write(n * 600)",
      maxOutputFilesTotalBytes: 1500,
    });
    assert.equal(total.status, "output_limit", shown(total));
    assert.match(total.error!.message, /"c\.txt" .* over maxOutputFilesTotalBytes \(1500 bytes\)/);
    assert.deepEqual(total.files.map((f) => f.path), ["a.txt", "b.txt"]);
  });

  test("stdin, a file or the whole input past its cap is refused before any executor sees it, with REQUEST_TOO_LARGE naming the cap", async () => {
    const refused = (cap: string) => (error: unknown) => {
      assert.ok(error instanceof WasmboxError, String(error));
      assert.equal(error.code, "REQUEST_TOO_LARGE");
      assert.match(error.message, new RegExp(`over ${cap} `));
      return true;
    };
    const started = sandbox.stats.executorsStarted;
    await assert.rejects(sandbox.run({ code: "1", stdin: new Uint8Array(64 * MiB + 1) }), refused("maxStdinBytes"));
    await assert.rejects(sandbox.run({ code: "1", files: { "a.bin": new Uint8Array(65 * MiB) } }), refused("maxInputFileBytes"));
    await assert.rejects(sandbox.run({ code: "1", files: { "a.bin": new Uint8Array(60 * MiB), "b.bin": new Uint8Array(60 * MiB), "c.bin": new Uint8Array(10 * MiB) } }), refused("maxInputBytes"));
    assert.equal(sandbox.stats.executorsStarted, started, "a refused request reached an executor");
  });

  test("time spent sending a large input is not the guest's: 64 MiB of stdin and a 50 ms timeout end ok", async () => {
    const result = await sandbox.run({ code: "'started'", stdin: new Uint8Array(64 * MiB), timeoutMs: 50 });
    assert.equal(result.status, "ok", shown(result));
    assert.equal(result.value, "started");
  });

  test("an executor that is stuck before the run starts ends it as crash saying so, never as the guest's timeout", async () => {
    const own = await Sandbox.create({ poolSize: 1 });
    try {
      await own.run({ code: "1" }); // the pool has started its next, warm executor
      await waitUntil(() => own.stats.warm === 1, "a warm executor");
      const executors = descendants(process.pid).filter((p) => p.cmd.includes("executor/main.js") && !p.cmd.includes("make-snapshot"));
      const before = new Set(executors.map((p) => p.pid));
      for (const p of executors) process.kill(p.pid, "SIGSTOP"); // the warm one, never paused by the host
      const result = await own.run({ code: "print('never')", timeoutMs: 500 });
      assert.equal(result.status, "crash", shown(result));
      assert.match(result.error!.message, /did not take the run within \d+ ms .*no guest code ran/);
      assert.equal(result.stdout, "");
      for (const pid of before) {
        try {
          process.kill(pid, "SIGCONT");
        } catch {
          // killed by the host already
        }
      }
      const next = await own.run({ code: "'fine'" });
      assert.equal(next.value, "fine", shown(next));
    } finally {
      await own.close();
    }
  });
});

describe("large inputs and caps on the other interfaces", () => {
  test("serve --stdio carries a 20 MiB file both ways and refuses a stdin past its cap, naming it", async () => {
    const child = spawn(process.execPath, [BIN, "serve", "--stdio", "--pool", "1", "--max-request-bytes", "64m"], { stdio: ["pipe", "pipe", "ignore"] });
    try {
      const replies: Record<string, unknown>[] = [];
      let pending = "";
      const waiters: (() => void)[] = [];
      child.stdout.on("data", (chunk: Buffer) => {
        pending += chunk.toString("utf8");
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          replies.push(JSON.parse(pending.slice(0, nl)));
          pending = pending.slice(nl + 1);
        }
        for (const w of waiters.splice(0)) w();
      });
      const reply = async (id: string) => {
        for (;;) {
          const found = replies.find((r) => r.id === id);
          if (found) return found;
          await new Promise<void>((resolve) => waiters.push(resolve));
        }
      };
      const data = randomBytes(20 * MiB);
      child.stdin.write(JSON.stringify({
        id: "big",
        code: "import hashlib\nd = open('in.bin', 'rb').read()\nopen('out.bin', 'wb').write(d[::-1])\nhashlib.sha256(d).hexdigest()",
        files: { "in.bin": { encoding: "base64", content: data.toString("base64") } },
        memoryLimitBytes: 512 * MiB,
      }) + "\n");
      const big = (await reply("big")) as unknown as RunResult;
      assert.equal(big.status, "ok", shown(big));
      assert.equal(big.value, sha256(data));
      assert.deepEqual(Buffer.from(fileBytes(big.files[0]!)), Buffer.from(data).reverse());
      child.stdin.write(JSON.stringify({ id: "over", code: "1", stdin: "x".repeat(2000), maxStdinBytes: 1000 }) + "\n");
      const over = (await reply("over")) as { error: { code: string; message: string } };
      assert.equal(over.error.code, "REQUEST_TOO_LARGE");
      assert.match(over.error.message, /stdin is 2000 bytes, over maxStdinBytes \(1000 bytes\)/);
    } finally {
      child.stdin.end();
      await new Promise((resolve) => child.once("close", resolve));
    }
  });

  test("wasmbox run refuses an input file past --max-input-file with exit 2 and the cap's name, and names an output file past --max-output-file", () => {
    const thisFile = fileURLToPath(import.meta.url);
    const big = spawnSync(process.execPath, [BIN, "run", "--max-input-file", "1k", "--file", `${thisFile}:t.ts`, "-c", "1"], { encoding: "utf8", timeout: 120_000 });
    assert.equal(big.status, 2, big.stderr);
    assert.match(big.stderr, /input file "t\.ts" is \d+ bytes, over maxInputFileBytes \(1024 bytes\)/);
    const out = spawnSync(process.execPath, [BIN, "run", "--max-output-file", "10", "-c", "open('o.txt', 'w').write('x' * 20)"], { encoding: "utf8", timeout: 120_000 });
    assert.equal(out.status, 125, out.stderr);
    assert.match(out.stderr, /output file "o\.txt" is 20 bytes, over maxOutputFileBytes \(10 bytes\)/);
  });
});

/** The executors' private directories and frame-channel directories of host `pid` in the OS temp dir (named by owner: host-temp.ts). */
function dirsOf(pid: number): string[] {
  return readdirSync(tmpdir()).filter((name) => name.startsWith(`wasmbox-deno-${pid}.`) || name.startsWith(`wasmbox-chan-${pid}.`));
}

describe("temporary directories never outlive their host", () => {
  test("a host killed with SIGKILL leaves no executor running, and directories that the next host removes, and a live host's are kept", async () => {
    const victim = spawn(process.execPath, [BIN, "serve", "--stdio", "--pool", "2", "--os-sandbox", "off"], { stdio: ["pipe", "pipe", "ignore"] });
    const survivor = spawn(process.execPath, [BIN, "serve", "--stdio", "--pool", "1", "--os-sandbox", "off"], { stdio: ["pipe", "pipe", "ignore"] });
    try {
      // The executors are read once, in the check that sees them: a short-lived child of the host (a
      // probe) can satisfy a first look and be gone at a second one.
      let executors: ReturnType<typeof descendants> = [];
      await waitUntil(() => {
        executors = descendants(victim.pid!).filter((proc) => / run .*executor/.test(proc.cmd) || /deno/.test(proc.cmd));
        return dirsOf(victim.pid!).length >= 2 && dirsOf(survivor.pid!).length >= 1 && executors.length >= 1;
      }, "both hosts' executors to start");
      assert.ok(executors.length >= 1, "the victim started no executor: the test shows nothing");
      victim.kill("SIGKILL");
      await new Promise((resolve) => victim.once("close", resolve));
      // An executor learns its host is gone from the end of its stdin, also while it still waits
      // for the host to open the frame channel.
      await waitUntil(() => executors.every((proc) => !alive(proc)), "the dead host's executors to exit");
      assert.ok(dirsOf(victim.pid!).length >= 1, "nothing was left behind: the test shows nothing");
      const next = spawnSync(process.execPath, [BIN, "run", "--os-sandbox", "off", "-c", "print('swept')"], { encoding: "utf8", timeout: 120_000 });
      assert.equal(next.stdout, "swept\n", next.stderr);
      assert.deepEqual(dirsOf(victim.pid!), [], "the next start did not remove the dead host's directories");
      assert.ok(dirsOf(survivor.pid!).length >= 1, "the next start removed a live host's directory");
    } finally {
      victim.kill("SIGKILL");
      survivor.stdin.end();
      await new Promise((resolve) => (survivor.exitCode === null ? survivor.once("close", resolve) : resolve(null)));
    }
    assert.deepEqual(dirsOf(survivor.pid!), [], "a host that ended normally left directories");
  });

  test("serve --http stopped by SIGTERM while its executors start leaves no directory", async () => {
    const server = spawn(process.execPath, [BIN, "serve", "--http", "0", "--pool", "2", "--os-sandbox", "off"], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    server.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    await waitUntil(() => /listening on/.test(stderr) || server.exitCode !== null, "the server to listen");
    server.kill("SIGTERM");
    await new Promise((resolve) => (server.exitCode === null ? server.once("close", resolve) : resolve(null)));
    assert.deepEqual(dirsOf(server.pid!), [], `serve --http left directories: ${stderr}`);
  });
});

describe("serve --http connection limits", () => {
  let server: ReturnType<typeof spawn>;
  let port = 0;
  before(async () => {
    server = spawn(process.execPath, [BIN, "serve", "--http", "0", "--pool", "0", "--header-timeout", "2s", "--max-connections", "4"], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    server.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    await waitUntil(() => /listening on http:\/\/[^:]+:(\d+)/.test(stderr), "the server to listen");
    port = Number(/listening on http:\/\/[^:]+:(\d+)/.exec(stderr)![1]);
  });
  after(async () => {
    server.kill("SIGTERM");
    await new Promise((resolve) => (server.exitCode === null ? server.once("close", resolve) : resolve(null)));
  });

  test("an input past its cap is answered 413 REQUEST_TOO_LARGE naming the cap", async () => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/run`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code: "1", files: { "a.txt": "x".repeat(3000) }, maxInputFileBytes: 2048 }),
    });
    assert.equal(response.status, 413);
    const body = (await response.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, "REQUEST_TOO_LARGE");
    assert.match(body.error.message, /input file "a\.txt" is 3000 bytes, over maxInputFileBytes \(2048 bytes\)/);
  });

  test("a client that sends its headers slower than --header-timeout is cut off before it finishes", async () => {
    const socket = connect(port, "127.0.0.1");
    let closed = false;
    socket.on("close", () => (closed = true));
    socket.on("error", () => {});
    socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    // One header line a second for 30 s: far longer than the 2 s the server allows.
    for (let i = 0; i < 30 && !closed; i++) {
      socket.write(`X-Slow-${i}: y\r\n`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    assert.equal(closed, true, "the server kept a slow-header connection open for 30 s");
    socket.destroy();
  });

  test("connections past --max-connections are closed, and the server keeps answering", async () => {
    const held = Array.from({ length: 4 }, () => connect(port, "127.0.0.1").on("error", () => {}));
    await Promise.all(held.map((s) => new Promise((resolve) => s.once("connect", resolve))));
    const extra = connect(port, "127.0.0.1");
    extra.on("error", () => {});
    extra.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const answered = await new Promise<string>((resolve) => {
      let data = "";
      extra.on("data", (chunk: Buffer) => (data += chunk.toString()));
      extra.on("close", () => resolve(data));
    });
    assert.equal(answered, "", "a connection past the limit was served");
    for (const s of held) s.destroy();
    await waitUntil(async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
      } catch {
        return false;
      }
    }, "the server to answer again");
  });
});
