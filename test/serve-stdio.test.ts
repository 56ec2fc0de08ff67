import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../dist/cli/bin.js", import.meta.url));

/** A real `wasmbox serve --stdio` child with a line reader. */
class StdioServer {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: Record<string, unknown>[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<number | null>;
  rawStdout = "";

  constructor(args: string[] = []) {
    this.child = spawn(process.execPath, [BIN, "serve", "--stdio", "--pool", "1", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let pending = "";
    this.child.stdout.on("data", (chunk: Buffer) => {
      this.rawStdout += chunk.toString();
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        this.lines.push(JSON.parse(pending.slice(0, nl)));
        pending = pending.slice(nl + 1);
        for (const w of this.waiters.splice(0)) w();
      }
    });
    this.closed = new Promise((resolve) => this.child.on("close", (code) => resolve(code)));
  }

  send(line: string | object): void {
    this.child.stdin.write((typeof line === "string" ? line : JSON.stringify(line)) + "\n");
  }

  /** Waits for the first reply matching `predicate` (replies may come out of order). */
  async next(predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    for (;;) {
      const index = this.lines.findIndex(predicate);
      if (index >= 0) return this.lines.splice(index, 1)[0]!;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  byId(id: unknown) {
    return this.next((l) => l.id === id && l.event === undefined);
  }
}

for (const isolation of ["interpreter", "isolate"]) describe(`wasmbox serve --stdio --isolation ${isolation}`, () => {
  it("answers many requests in flight, each run from a pristine interpreter", async () => {
    const server = new StdioServer(["--isolation", isolation]);
    try {
      const ids = Array.from({ length: 24 }, (_, i) => i + 1);
      for (const id of ids) server.send({ id, code: `seen = 'mark' in globals()\nmark = ${id}\nprint(seen)` });
      for (const id of ids) {
        const reply = await server.byId(id);
        assert.equal(reply.status, "ok");
        assert.equal(reply.stdout, "False\n");
      }
    } finally {
      server.child.stdin.end();
      await server.closed;
    }
  });
});

describe("wasmbox serve --stdio", () => {
  let server: StdioServer;
  before(() => {
    server = new StdioServer(["--max-request-bytes", "4096"]);
  });
  after(async () => {
    server.child.stdin.end();
    await server.closed;
  });

  it("answers the minimal protocol: {code} gives {output} with the last value", async () => {
    server.send({ code: "4 + 5" });
    assert.deepEqual(await server.next((l) => "output" in l || "error" in l), { output: 9 });
  });

  it("answers the minimal protocol's failures with an error string", async () => {
    server.send({ code: "1/0" });
    assert.deepEqual(await server.next(() => true), { error: "ZeroDivisionError: division by zero" });
  });

  it("answers a request with an id with the full result object and the same id", async () => {
    server.send({ id: "a1", code: "print('x')\n[1, 2]", timeoutMs: 10000 });
    const reply = await server.byId("a1");
    assert.equal(reply.status, "ok");
    assert.equal(reply.stdout, "x\n");
    assert.deepEqual(reply.value, [1, 2]);
    assert.equal(reply.valueRepr, "[1, 2]");
    for (const key of ["exitCode", "stderr", "error", "files", "durationMs"]) assert.ok(key in reply, key);
  });

  it("runs overlapping requests and answers each under its own id", async () => {
    server.send({ id: 1, code: "import time; time.sleep(0.3); 'slow'" });
    server.send({ id: 2, code: "'fast'" });
    const [slow, fast] = await Promise.all([server.byId(1), server.byId(2)]);
    assert.equal(slow.value, "slow");
    assert.equal(fast.value, "fast");
  });

  it("sends stdout and stderr events in order before the result when stream is true", async () => {
    server.send({ id: "s", stream: true, code: "import sys\nfor i in range(3):\n    print(i)\nprint('e', file=sys.stderr)" });
    const result = await server.byId("s");
    assert.equal(result.stdout, "0\n1\n2\n");
    // events were pushed before the result line and are still queued in arrival order
    const events = server.lines.filter((l) => l.id === "s");
    server.lines.splice(0, server.lines.length, ...server.lines.filter((l) => l.id !== "s"));
    assert.equal(events.filter((e) => e.event === "stdout").map((e) => e.data).join(""), "0\n1\n2\n");
    assert.equal(events.filter((e) => e.event === "stderr").map((e) => e.data).join(""), "e\n");
  });

  for (const [name, line, expected] of [
    ["a line that is not JSON", "{not json", { error: "request is not valid JSON" }],
    ["a JSON value that is not an object", "[1, 2]", { error: "request must be a JSON object" }],
    ["an object with neither code nor a known op", JSON.stringify({ id: 7, hello: 1 }), { id: 7, error: { code: "UNKNOWN_OP", message: "request has neither code (nor entryPath or wasm) nor a known op" } }],
    ["an unknown op", JSON.stringify({ id: 8, op: "launch" }), { id: 8, error: { code: "UNKNOWN_OP", message: 'unknown op "launch"' } }],
    ["a field of the wrong type", JSON.stringify({ id: 9, code: "1", timeoutMs: "soon" }), { id: 9, error: { code: "INVALID_REQUEST", message: 'timeoutMs must be an integer, got "soon"' } }],
    ["a path that climbs out of the sandbox", JSON.stringify({ id: 10, code: "1", files: { "../x": "y" } }), { id: 10, error: { code: "INVALID_PATH", message: 'file path "../x" climbs out of the sandbox directory with ".."' } }],
    ["an id of the wrong type", JSON.stringify({ id: { a: 1 }, code: "1" }), { error: "id must be a string or a number" }],
    ["invalid JSON whose id can still be read", '{"id": "broken", "code": ', { id: "broken", error: { code: "INVALID_REQUEST", message: "request is not valid JSON" } }],
  ] as const) {
    it(`answers ${name} with an error line and keeps going`, async () => {
      server.send(line);
      const reply = await server.next(() => true);
      assert.deepEqual(reply, expected);
      server.send({ id: `after-${name}`, code: "'alive'" });
      assert.equal((await server.byId(`after-${name}`)).value, "alive");
    });
  }

  it("answers a line larger than --max-request-bytes with REQUEST_TOO_LARGE and the id it could read", async () => {
    server.send(JSON.stringify({ id: "big", code: "x = '" + "a".repeat(10_000) + "'" }));
    assert.deepEqual(await server.next(() => true), {
      id: "big",
      error: { code: "REQUEST_TOO_LARGE", message: "request line is larger than 4096 bytes" },
    });
    server.send({ id: "after-big", code: "'alive'" });
    assert.equal((await server.byId("after-big")).value, "alive");
  });

  it("reports a guest timeout as a result, not a protocol error", async () => {
    server.send({ id: "t", code: "while True: pass", timeoutMs: 300 });
    const reply = await server.byId("t");
    assert.equal(reply.status, "timeout");
  });

  it("takes cpuTimeMs: a busy loop ends as a timeout naming the CPU-time limit, and every result carries cpuTimeMs", async () => {
    server.send({ id: "cpu", code: "while True: pass", cpuTimeMs: 300, timeoutMs: 30_000 });
    server.send({ id: "cpu-sleep", code: "import time\ntime.sleep(1)", cpuTimeMs: 300 });
    const [spun, slept] = await Promise.all([server.byId("cpu"), server.byId("cpu-sleep")]);
    assert.equal(spun.status, "timeout");
    assert.equal((spun.error as { type: string }).type, "CpuTimeLimit");
    assert.ok((spun.cpuTimeMs as number) >= 300);
    assert.equal(slept.status, "ok");
    assert.equal(typeof slept.cpuTimeMs, "number");
  });

  it("writes nothing but JSON lines on stdout", () => {
    for (const line of server.rawStdout.trim().split("\n")) assert.doesNotThrow(() => JSON.parse(line), line);
  });
});

describe("wasmbox serve --stdio shutdown", () => {
  it("finishes in-flight runs after {shutdown: true} and then exits 0", async () => {
    const server = new StdioServer();
    server.send({ id: "last", code: "import time; time.sleep(0.2); 'done'" });
    server.send({ shutdown: true });
    const reply = await server.byId("last");
    assert.equal(reply.value, "done");
    assert.equal(await server.closed, 0);
  });

  it("exits 0 when its input ends", async () => {
    const server = new StdioServer();
    server.child.stdin.end();
    assert.equal(await server.closed, 0);
  });
});

describe("wasmbox serve --stdio cancellation", () => {
  it("cancels a run in flight on {op: cancel, id} and keeps serving", async () => {
    const server = new StdioServer();
    server.send({ id: "loop", stream: true, code: "print('started', flush=True)\nwhile True: pass" });
    await server.next((l) => l.id === "loop" && l.event === "stdout");
    server.send({ op: "cancel", id: "loop" });
    const reply = await server.byId("loop");
    assert.equal(reply.status, "cancelled");
    server.send({ op: "cancel", id: "nothing-running" });
    assert.equal(((await server.byId("nothing-running")).error as { code: string }).code, "NOT_FOUND");
    server.send({ id: "after", code: "'alive'" });
    assert.equal((await server.byId("after")).value, "alive");
    server.child.stdin.end();
    assert.equal(await server.closed, 0);
  });

  it("cancels runs in flight and exits 143 on SIGTERM", async () => {
    const server = new StdioServer();
    server.send({ id: "loop", stream: true, code: "print('started', flush=True)\nwhile True: pass" });
    await server.next((l) => l.id === "loop" && l.event === "stdout");
    server.child.kill("SIGTERM");
    assert.equal((await server.byId("loop")).status, "cancelled");
    assert.equal(await server.closed, 143);
  });
});
