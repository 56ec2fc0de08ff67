import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Sandbox, WasmboxError } from "../src/index.js";

describe("sessions", () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await Sandbox.create({ poolSize: 2 });
  });
  after(() => sandbox.close());

  it("keeps globals, imports and files between calls", async () => {
    await using session = await sandbox.session();
    await session.run({ code: "import json\ncounter = 1\nopen('state.txt', 'w').write('kept')" });
    const second = await session.run({ code: "counter += 1\njson.dumps({'c': counter, 'f': open('state.txt').read()})" });
    assert.equal(second.status, "ok");
    assert.equal(second.value, '{"c": 2, "f": "kept"}');
  });

  it("never lets two sessions see each other's state", async () => {
    await using a = await sandbox.session();
    await using b = await sandbox.session();
    await a.run({ code: "secret = 'a-only'\nopen('a.txt','w').write('a')" });
    const seen = await b.run({ code: "import os\n('secret' in globals(), os.path.exists('a.txt'))" });
    assert.deepEqual(seen.value, [false, false]);
  });

  it("gives each call exactly its own environment, whatever an earlier call did to os.environ", async () => {
    await using session = await sandbox.session();
    await session.run({ code: "import os\nos.environ['LEFT'] = '1'\ndel os.environ['A']", env: { A: "b" } });
    assert.deepEqual((await session.run({ code: "import os\ndict(os.environ)", env: { A: "b" } })).value, { A: "b" });
    assert.deepEqual((await session.run({ code: "import os\ndict(os.environ)" })).value, {});
  });

  it("lists only the files a call created or changed", async () => {
    await using session = await sandbox.session();
    await session.run({ code: "open('one.txt','w').write('1')" });
    const second = await session.run({ code: "open('two.txt','w').write('2')" });
    assert.deepEqual(second.files.map((f) => f.path), ["two.txt"]);
  });

  it("survives a timeout whose KeyboardInterrupt the guest caught", async () => {
    await using session = await sandbox.session();
    await session.run({ code: "x = 42" });
    const timed = await session.run({ code: "try:\n    while True: pass\nexcept KeyboardInterrupt:\n    print('caught')", timeoutMs: 300 });
    assert.equal(timed.status, "timeout");
    assert.equal(timed.stdout, "caught\n");
    assert.equal(session.state, "open");
    assert.equal((await session.run({ code: "x" })).value, 42);
  });

  it("survives a MemoryError and keeps its state", async () => {
    await using session = await sandbox.session();
    await session.run({ code: "x = 7", memoryLimitBytes: 96 * 1024 * 1024 });
    const bomb = await session.run({ code: "big = bytearray(400 * 1024 * 1024)", memoryLimitBytes: 96 * 1024 * 1024 });
    assert.equal(bomb.status, "memory_limit");
    assert.equal(bomb.error?.type, "MemoryError");
    assert.equal((await session.run({ code: "x", memoryLimitBytes: 96 * 1024 * 1024 })).value, 7);
  });

  it("reports SESSION_DEAD on the next call when a call had to be killed", async () => {
    const session = await sandbox.session();
    const killed = await session.run({ code: "while True:\n    try:\n        while True: pass\n    except BaseException: pass", timeoutMs: 300 });
    assert.equal(killed.status, "timeout");
    assert.equal(session.state, "dead");
    await assert.rejects(session.run({ code: "1" }), (e: unknown) => e instanceof WasmboxError && e.code === "SESSION_DEAD");
    await session.close();
  });

  it("reaps an idle session, which then answers SESSION_CLOSED", async () => {
    const session = await sandbox.session({ idleTimeoutMs: 200 });
    await session.run({ code: "1" });
    while (session.state === "open") await new Promise((r) => setTimeout(r, 50));
    assert.equal(session.state, "closed");
    await assert.rejects(session.run({ code: "1" }), (e: unknown) => e instanceof WasmboxError && e.code === "SESSION_CLOSED");
  });

  it("rejects calls after close() with SESSION_CLOSED", async () => {
    const session = await sandbox.session();
    await session.close();
    await session.close(); // idempotent
    await assert.rejects(session.run({ code: "1" }), (e: unknown) => e instanceof WasmboxError && e.code === "SESSION_CLOSED");
  });

  it("reads, writes and lists session files between calls without running code", async () => {
    await using session = await sandbox.session();
    await session.files.write("in/data.bin", new Uint8Array([1, 2, 255]));
    const r = await session.run({ code: "d = open('in/data.bin','rb').read()\nopen('out.txt','w').write(str(list(d)))" });
    assert.equal(r.status, "ok");
    assert.equal(new TextDecoder().decode(await session.files.read("out.txt")), "[1, 2, 255]");
    assert.deepEqual((await session.files.list()).map((e) => e.path).sort(), ["in/data.bin", "out.txt"]);
    await assert.rejects(session.files.read("../etc/passwd"), (e: unknown) => e instanceof WasmboxError && e.code === "INVALID_PATH");
    await assert.rejects(session.files.read("missing.txt"), (e: unknown) => e instanceof WasmboxError && e.code === "INVALID_PATH");
  });

  it("refuses a burst of opens past maxSessions with TOO_MANY_SESSIONS, starting no executor for them", async () => {
    const small = await Sandbox.create({ poolSize: 0, maxSessions: 2 });
    try {
      const outcomes = await Promise.allSettled(Array.from({ length: 40 }, () => small.session()));
      const opened = outcomes.filter((o) => o.status === "fulfilled");
      const refused = outcomes.filter((o) => o.status === "rejected");
      assert.equal(opened.length, 2);
      for (const o of refused) assert.equal(((o as PromiseRejectedResult).reason as WasmboxError).code, "TOO_MANY_SESSIONS");
      assert.equal(small.stats.executorsStarted, 2, "executors were started for refused sessions");
    } finally {
      await small.close();
    }
  });
});

describe("streaming output", () => {
  it("calls onStdout and onStderr in order while the run is in progress, and the result keeps the full output", async () => {
    await using sandbox = await Sandbox.create({ poolSize: 1 });
    const events: string[] = [];
    let resolved = false;
    const result = await sandbox.run(
      { code: "import sys, time\nfor i in range(3):\n    print(i)\n    time.sleep(0.05)\nprint('err', file=sys.stderr)" },
      {
        onStdout: (chunk) => events.push(`out:${chunk}${resolved ? " (late)" : ""}`),
        onStderr: (chunk) => events.push(`err:${chunk}${resolved ? " (late)" : ""}`),
      },
    );
    resolved = true;
    assert.deepEqual(events, ["out:0\n", "out:1\n", "out:2\n", "err:err\n"]);
    assert.equal(result.stdout, "0\n1\n2\n");
    assert.equal(result.stderr, "err\n");
  });
});

describe("host functions", () => {
  let sandbox: Sandbox;
  const calls: unknown[] = [];
  const tools = {
    add: ({ a, b }: Record<string, unknown>) => (a as number) + (b as number),
    search: async ({ q }: Record<string, unknown>) => ({ hits: [`${q}-1`, `${q}-2`], nested: { ok: true } }),
    fail: () => {
      throw new Error("the host says no");
    },
    record: (args: Record<string, unknown>) => {
      calls.push(args);
      return null;
    },
    hang: () => new Promise(() => {}),
  };
  before(async () => {
    sandbox = await Sandbox.create({ poolSize: 2 });
  });
  after(() => sandbox.close());

  it("are called synchronously with keyword arguments, also nested inside loops", async () => {
    const r = await sandbox.run(
      { code: "from wasmbox import tools\ntotal = 0\nfor i in range(10):\n    for j in range(3):\n        total = tools.add(a=total, b=tools.add(a=i, b=j))\n[total, tools.search(q='x')]" },
      { tools },
    );
    assert.equal(r.status, "ok", r.stderr);
    assert.deepEqual(r.value, [165, { hits: ["x-1", "x-2"], nested: { ok: true } }]);
  });

  it("surface a host error in Python as wasmbox.ToolError with the message", async () => {
    const r = await sandbox.run({ code: "from wasmbox import tools, ToolError\ntry:\n    tools.fail()\nexcept ToolError as e:\n    print('caught:', e)" }, { tools });
    assert.equal(r.stdout, "caught: the host says no\n");
  });

  it("fail the run with a traceback when the guest does not catch the host's error", async () => {
    const r = await sandbox.run({ code: "from wasmbox import tools\ntools.fail()" }, { tools });
    assert.equal(r.status, "error");
    assert.equal(r.error?.type, "ToolError");
    assert.match(r.error!.traceback, /File "<string>", line 2/);
  });

  it("reject names that were not registered for the run, including inherited ones", async () => {
    const r = await sandbox.run(
      { code: "from wasmbox import tools\nout = []\nfor name in ['nope', 'constructor', 'toString', '__proto__']:\n    try:\n        getattr(tools, name)()\n    except AttributeError as e:\n        out.append(name)\nout" },
      { tools: { add: tools.add } },
    );
    assert.deepEqual(r.value, ["nope", "constructor", "toString", "__proto__"]);
  });

  it("refuse a forged call to an unregistered name at the host, even when the guest bypasses the Python module", async () => {
    const r = await sandbox.run(
      { code: "import _wasmbox_runner, json\njson.loads(_wasmbox_runner._host_call('constructor', '{}'))" },
      { tools: { add: tools.add } },
    );
    assert.equal(r.status, "ok");
    assert.deepEqual(r.value, { ok: false, error: 'no host function named "constructor" is registered for this run' });
  });

  it("pass only JSON values: non-serialisable arguments raise TypeError in the guest", async () => {
    const r = await sandbox.run({ code: "from wasmbox import tools\ntry:\n    tools.record(x={1, 2})\nexcept TypeError as e:\n    print('TypeError')\ntools.record(x=[1, 'two', None, {'k': 1.5}])" }, { tools });
    assert.equal(r.stdout, "TypeError\n");
    assert.deepEqual(calls.at(-1), { x: [1, "two", null, { k: 1.5 }] });
  });

  it("count against the run's timeout: a host function that never answers ends as timeout and the host stays usable", async () => {
    const r = await sandbox.run({ code: "from wasmbox import tools\ntools.hang()", timeoutMs: 400 }, { tools });
    assert.equal(r.status, "timeout");
    assert.equal((await sandbox.run({ code: "1 + 1" })).value, 2);
  });

  it("are scoped to the session that registered them", async () => {
    await using session = await sandbox.session({ tools: { add: tools.add } });
    assert.equal((await session.run({ code: "from wasmbox import tools\ntools.add(a=2, b=3)" })).value, 5);
    const plain = await sandbox.run({ code: "from wasmbox import tools\ntools.add(a=2, b=3)" });
    assert.equal(plain.error?.type, "AttributeError");
  });

  it("refuse host function names that are not Python identifiers", async () => {
    await assert.rejects(sandbox.run({ code: "1" }, { tools: { "bad-name": () => 1 } }), TypeError);
    await assert.rejects(sandbox.run({ code: "1" }, { tools: { __init__: () => 1 } }), TypeError);
  });
});

describe("sessions and host functions over serve --stdio", () => {
  it("opens a session, keeps state, relays host function calls as events, reads and writes its files, closes, and answers typed errors", async () => {
    const child = spawn(process.execPath, [fileURLToPath(new URL("../dist/cli/bin.js", import.meta.url)), "serve", "--stdio", "--pool", "1"], { stdio: ["pipe", "pipe", "pipe"] });
    const lines: Record<string, unknown>[] = [];
    let wake: () => void = () => {};
    let pending = "";
    child.stdout.on("data", (chunk: Buffer) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = JSON.parse(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        // answer host function calls like a non-JS caller would
        if (line.event === "call") {
          const { a, b } = line.args as { a: number; b: number };
          const answer = line.name === "add" ? { result: a + b } : { error: "unknown tool on the client" };
          child.stdin.write(JSON.stringify({ id: line.id, callId: line.callId, ...answer }) + "\n");
        }
        lines.push(line);
        wake();
      }
    });
    const send = (o: object) => child.stdin.write(JSON.stringify(o) + "\n");
    const reply = async (id: unknown) => {
      for (;;) {
        const i = lines.findIndex((l) => l.id === id && l.event === undefined);
        if (i >= 0) return lines.splice(i, 1)[0]!;
        await new Promise<void>((r) => (wake = r));
      }
    };
    send({ id: "open", op: "session.open", tools: ["add"] });
    const { sessionId } = (await reply("open")) as { sessionId: string };
    assert.equal(typeof sessionId, "string");
    send({ id: "r1", op: "session.run", sessionId, code: "x = 10" });
    assert.equal((await reply("r1")).status, "ok");
    send({ id: "r2", op: "session.run", sessionId, code: "from wasmbox import tools\n[tools.add(a=x, b=i) for i in range(3)]" });
    assert.deepEqual((await reply("r2")).value, [10, 11, 12]);
    assert.deepEqual(lines.filter((l) => l.id === "r2" && l.event === "call").map((l) => l.args), [{ a: 10, b: 0 }, { a: 10, b: 1 }, { a: 10, b: 2 }]);
    send({ id: "r3", op: "run", code: "from wasmbox import tools, ToolError\ntry:\n    tools.other()\nexcept ToolError as e:\n    print(e)", tools: ["other"] });
    assert.equal((await reply("r3")).stdout, "unknown tool on the client\n");
    send({ id: "w", op: "session.files.write", sessionId, path: "in/data.txt", content: "from the caller" });
    assert.deepEqual(await reply("w"), { id: "w", written: true });
    send({ id: "wb", op: "session.files.write", sessionId, path: "raw.bin", content: "AP8=", encoding: "base64" });
    assert.deepEqual(await reply("wb"), { id: "wb", written: true });
    send({ id: "r-files", op: "session.run", sessionId, code: "open('out.txt', 'w').write(open('in/data.txt').read().upper())" });
    assert.equal((await reply("r-files")).status, "ok");
    send({ id: "l", op: "session.files.list", sessionId });
    assert.deepEqual(((await reply("l")).files as { path: string }[]).map((f) => f.path).sort(), ["in/data.txt", "out.txt", "raw.bin"]);
    send({ id: "rd", op: "session.files.read", sessionId, path: "out.txt" });
    assert.deepEqual(await reply("rd"), { id: "rd", path: "out.txt", encoding: "base64", content: Buffer.from("FROM THE CALLER").toString("base64") });
    send({ id: "climb", op: "session.files.read", sessionId, path: "../etc/passwd" });
    assert.equal(((await reply("climb")).error as { code: string }).code, "INVALID_PATH");
    send({ id: "no-path", op: "session.files.write", sessionId, content: "x" });
    assert.equal(((await reply("no-path")).error as { code: string }).code, "INVALID_REQUEST");
    send({ id: "c", op: "session.close", sessionId });
    assert.deepEqual(await reply("c"), { id: "c", closed: true });
    send({ id: "r4", op: "session.run", sessionId, code: "x" });
    assert.equal(((await reply("r4")).error as { code: string }).code, "SESSION_CLOSED");
    send({ id: "r5", op: "session.run", sessionId: "no-such-session", code: "x" });
    assert.equal(((await reply("r5")).error as { code: string }).code, "SESSION_NOT_FOUND");
    send({ id: "r6", callId: "c999", result: 1 });
    assert.equal(((await reply("r6")).error as { code: string }).code, "INVALID_REQUEST");
    send({ id: "bad-tools", op: "session.open", tools: ["bad-name"] });
    assert.equal(((await reply("bad-tools")).error as { code: string }).code, "INVALID_REQUEST");
    child.stdin.end();
    await new Promise((r) => child.on("close", r));
  });
});
