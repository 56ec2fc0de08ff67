/**
 * Saving, restoring and forking sessions through the servers (issue 19): the `serve --stdio` ops,
 * the HTTP routes over a real loopback socket, and `--save-idle-sessions DIR` on spawned servers —
 * an idle session saved to disk and restored by its next call under the same id, every open session
 * saved at SIGTERM and restored by a new server process, a lifetime that ran out on disk, a damaged
 * file in the directory. Needs `npm run build` first.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { startHttpServer, type HttpServer } from "../dist/http/http-server.js";
import { Sandbox } from "../dist/index.js";
import { waitUntil } from "./helpers/processes.js";

const BIN = fileURLToPath(new URL("../dist/cli/bin.js", import.meta.url));
const json = { "content-type": "application/json" };

/** A `serve --stdio` process and a request/answer helper (events are skipped). */
function stdioServer(args: string[] = []) {
  const child = spawn(process.execPath, [BIN, "serve", "--stdio", "--pool", "1", ...args], { stdio: ["pipe", "pipe", "pipe"] }) as ChildProcessWithoutNullStreams;
  const waiting = new Map<number, (reply: Record<string, unknown>) => void>();
  createInterface({ input: child.stdout }).on("line", (line) => {
    const reply = JSON.parse(line) as Record<string, unknown>;
    if (reply.event === undefined) waiting.get(reply.id as number)?.(reply);
  });
  let next = 1;
  const ask = (request: Record<string, unknown>) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const id = next++;
      waiting.set(id, resolve);
      child.stdin.write(JSON.stringify({ id, ...request }) + "\n");
    });
  const stop = async () => {
    child.stdin.end();
    await new Promise((resolve) => child.once("exit", resolve));
  };
  return { ask, stop };
}

/** A spawned `serve --http` on a free port, and its base URL once it listens. */
async function httpServer(args: string[]): Promise<{ base: string; child: ChildProcessWithoutNullStreams; stop(signal?: NodeJS.Signals): Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, "serve", "--http", "0", "--pool", "1", ...args], { stdio: ["pipe", "pipe", "pipe"] }) as ChildProcessWithoutNullStreams;
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  await waitUntil(() => /listening on (http:\/\/\S+)/.test(stderr), "the server to listen");
  const base = /listening on (http:\/\/\S+)/.exec(stderr)![1]!;
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill(signal);
    return exited;
  };
  return { base, child, stop };
}

async function openSession(base: string, options: object = {}): Promise<string> {
  const response = await fetch(`${base}/v1/sessions`, { method: "POST", headers: json, body: JSON.stringify(options) });
  assert.equal(response.status, 201);
  return ((await response.json()) as { sessionId: string }).sessionId;
}

/** Runs code in a session over HTTP, streamed (a session with host functions must be), and returns the result. */
async function runIn(base: string, id: string, code: string): Promise<{ status: string; stdout: string; value: unknown; error: unknown }> {
  const response = await fetch(`${base}/v1/sessions/${id}/run`, { method: "POST", headers: { ...json, accept: "application/x-ndjson" }, body: JSON.stringify({ code }) });
  const text = await response.text();
  if (response.status !== 200) return { status: `http ${response.status}`, stdout: "", value: null, error: JSON.parse(text).error };
  const events = text.trim().split("\n").map((line) => JSON.parse(line) as { event: string; result?: { status: string; stdout: string; value: unknown; error: unknown } });
  return events.find((event) => event.event === "result")!.result!;
}

describe("session save, restore and fork over serve --stdio", () => {
  it("saves a session as base64, opens another from it, forks it, and answers bad blobs with typed errors", async () => {
    const server = stdioServer();
    try {
      const { sessionId } = await server.ask({ op: "session.open" });
      assert.equal((await server.ask({ op: "session.run", sessionId, code: "class A:\n    pass\na = A()\na.n = 41" })).status, "ok");
      const saved = await server.ask({ op: "session.save", sessionId });
      assert.equal(saved.encoding, "base64");
      assert.equal(Buffer.from(saved.blob as string, "base64").length, saved.bytes);
      const restored = await server.ask({ op: "session.open", restore: saved.blob });
      assert.equal(typeof restored.sessionId, "string");
      assert.equal((await server.ask({ op: "session.run", sessionId: restored.sessionId, code: "a.n + 1" })).value, 42);

      const forked = await server.ask({ op: "session.fork", sessionId, count: 2 });
      const [one, two] = forked.sessionIds as string[];
      await server.ask({ op: "session.run", sessionId: one, code: "a.n = 0" });
      assert.equal((await server.ask({ op: "session.run", sessionId: two, code: "a.n" })).value, 41);
      assert.equal((await server.ask({ op: "session.run", sessionId, code: "a.n" })).value, 41);

      const notBase64 = await server.ask({ op: "session.open", restore: "not base64!" });
      assert.equal((notBase64.error as { code: string }).code, "INVALID_REQUEST");
      const garbage = await server.ask({ op: "session.open", restore: Buffer.from("garbage".repeat(20)).toString("base64") });
      assert.equal((garbage.error as { code: string }).code, "INVALID_SESSION_BLOB");
      const truncated = await server.ask({ op: "session.open", restore: Buffer.from(saved.blob as string, "base64").subarray(0, 5000).toString("base64") });
      assert.equal((truncated.error as { code: string }).code, "INVALID_SESSION_BLOB");
      assert.match((truncated.error as { message: string }).message, /truncated/);
      const badCount = await server.ask({ op: "session.fork", sessionId, count: 0 });
      assert.equal((badCount.error as { code: string }).code, "INVALID_REQUEST");
      const unknown = await server.ask({ op: "session.save", sessionId: "nope" });
      assert.equal((unknown.error as { code: string }).code, "SESSION_NOT_FOUND");
    } finally {
      await server.stop();
    }
  });
});

describe("session save, restore and fork over HTTP", () => {
  let sandbox: Sandbox;
  let server: HttpServer;
  before(async () => {
    sandbox = await Sandbox.create({ poolSize: 1 });
    server = await startHttpServer(sandbox, { port: 0, maxSessionBlobBytes: 64 * 1024 * 1024 });
  });
  after(async () => {
    await server.close();
    await sandbox.close();
  });

  it("downloads a saved session, opens one from the upload with its host functions named, and forks it", async () => {
    const id = await openSession(server.url, { tools: ["double"] });
    assert.equal((await runIn(server.url, id, "import fractions\nq = fractions.Fraction(1, 3)\nopen('kept.txt', 'w').write('yes')")).status, "ok");
    const download = await fetch(`${server.url}/v1/sessions/${id}/saved`);
    assert.equal(download.status, 200);
    assert.equal(download.headers.get("content-type"), "application/octet-stream");
    const blob = new Uint8Array(await download.arrayBuffer());

    // The saved session named a host function: restoring it without that name is refused.
    const withoutTools = await fetch(`${server.url}/v1/sessions`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: blob });
    assert.equal(withoutTools.status, 400);
    assert.match(((await withoutTools.json()) as { error: { message: string } }).error.message, /double/);

    const opened = await fetch(`${server.url}/v1/sessions?tools=double&idleTimeoutMs=60000`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: blob });
    assert.equal(opened.status, 201);
    const restored = ((await opened.json()) as { sessionId: string }).sessionId;
    const result = await runIn(server.url, restored, "str(q * 3) + open('kept.txt').read()");
    assert.equal(result.value, "1yes");

    const fork = await fetch(`${server.url}/v1/sessions/${id}/fork`, { method: "POST", headers: json, body: JSON.stringify({ count: 1 }) });
    assert.equal(fork.status, 201);
    const [forkId] = ((await fork.json()) as { sessionIds: string[] }).sessionIds;
    assert.equal((await runIn(server.url, forkId!, "str(q)")).value, "1/3");
  });

  it("answers a damaged, truncated or oversized upload and bad options with clear errors, opening nothing", async () => {
    const id = await openSession(server.url);
    const blob = new Uint8Array(await (await fetch(`${server.url}/v1/sessions/${id}/saved`)).arrayBuffer());
    const before = sandbox.sessionCount;
    const upload = (body: Uint8Array, query = "") => fetch(`${server.url}/v1/sessions${query}`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body });

    const damaged = blob.slice();
    damaged[damaged.length >> 1] ^= 0xff;
    let response = await upload(damaged);
    assert.equal(response.status, 422);
    assert.equal(((await response.json()) as { error: { code: string } }).error.code, "INVALID_SESSION_BLOB");

    response = await upload(blob.subarray(0, blob.length - 100));
    assert.equal(response.status, 422);
    assert.match(((await response.json()) as { error: { message: string } }).error.message, /truncated|damaged/);

    response = await upload(new Uint8Array(65 * 1024 * 1024));
    assert.equal(response.status, 413);

    response = await upload(blob, "?colour=blue");
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as { error: { message: string } }).error.message, /colour/);

    response = await fetch(`${server.url}/v1/sessions/${id}/fork`, { method: "POST", headers: json, body: JSON.stringify({ count: "many" }) });
    assert.equal(response.status, 400);
    assert.equal(sandbox.sessionCount, before);
    assert.equal((await fetch(`${server.url}/v1/sessions/nope/saved`)).status, 404);
  });

  it("answers 409 SESSION_NOT_SAVEABLE for a session holding a JavaScript object, which stays open", async () => {
    const id = await openSession(server.url);
    await runIn(server.url, id, "from pyodide.ffi import to_js\nheld = to_js({'a': 1})");
    const response = await fetch(`${server.url}/v1/sessions/${id}/saved`);
    assert.equal(response.status, 409);
    const error = ((await response.json()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, "SESSION_NOT_SAVEABLE");
    assert.match(error.message, /JavaScript object/);
    assert.equal((await runIn(server.url, id, "1 + 1")).value, 2);
  });
});

describe("--save-idle-sessions DIR", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "wasmbox-saved-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("saves an idle session to disk instead of closing it, and its next call restores it under the same id", async () => {
    const server = await httpServer(["--save-idle-sessions", dir]);
    try {
      const id = await openSession(server.base, { idleTimeoutMs: 500 });
      await runIn(server.base, id, "import collections\ncounts = collections.Counter('abracadabra')\nopen('/tmp/scratch', 'w').write('t')");
      await waitUntil(() => existsSync(join(dir, `${id}.session`)) && existsSync(join(dir, `${id}.json`)), "the idle session saved to disk");
      const result = await runIn(server.base, id, "counts['a'], open('/tmp/scratch').read()");
      assert.equal(result.status, "ok");
      assert.deepEqual(result.value, [5, "t"]);
      // Restored: its files in the directory are gone until it is idle again.
      assert.equal(existsSync(join(dir, `${id}.session`)), false);
    } finally {
      await server.stop();
    }
  });

  it("saves every open session at SIGTERM, and a new server on the same directory restores them", async () => {
    const first = await httpServer(["--save-idle-sessions", dir]);
    const id = await openSession(first.base);
    await runIn(first.base, id, "import random\nrandom.seed(7)\nclass Box:\n    pass\nbox = Box()\nbox.items = [1, 2]");
    const expected = (await runIn(first.base, id, "import copy\nstate = random.getstate()\nnext_draw = random.random()\nrandom.setstate(state)\nnext_draw")).value;
    assert.equal(await first.stop("SIGTERM"), 143);
    assert.ok(existsSync(join(dir, `${id}.session`)));

    const second = await httpServer(["--save-idle-sessions", dir]);
    try {
      const result = await runIn(second.base, id, "box.items.append(3)\n(box.items, random.random())");
      assert.equal(result.status, "ok");
      assert.deepEqual(result.value, [[1, 2, 3], expected]);
    } finally {
      await second.stop();
    }
  });

  it("closes a saved session whose lifetime ran out on disk, and says so for a damaged saved file", async () => {
    const first = await httpServer(["--save-idle-sessions", dir]);
    const shortLived = await openSession(first.base, { maxLifetimeMs: 3000 });
    const damagedId = await openSession(first.base);
    await first.stop("SIGTERM");
    // Damage one saved session; leave a file that is not ours.
    writeFileSync(join(dir, `${damagedId}.session`), "not a session");
    writeFileSync(join(dir, "notes.txt"), "mine");
    await new Promise((resolve) => setTimeout(resolve, 3200));

    const second = await httpServer(["--save-idle-sessions", dir]);
    try {
      // Past its lifetime when the server started: its files are gone, the id unknown.
      const gone = await fetch(`${second.base}/v1/sessions/${shortLived}/run`, { method: "POST", headers: json, body: JSON.stringify({ code: "1" }) });
      assert.equal(gone.status, 404);
      assert.equal(existsSync(join(dir, `${shortLived}.session`)), false);
      const damaged = await fetch(`${second.base}/v1/sessions/${damagedId}/run`, { method: "POST", headers: json, body: JSON.stringify({ code: "1" }) });
      assert.equal(damaged.status, 410);
      const error = ((await damaged.json()) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, "SESSION_DEAD");
      assert.match(error.message, /could not be restored: .*not a usable saved session/);
      assert.ok(readdirSync(dir).includes("notes.txt"));
      // The server is fine: a new session works.
      const fresh = await openSession(second.base);
      assert.equal((await runIn(second.base, fresh, "6 * 7")).value, 42);
    } finally {
      await second.stop();
    }
  });
});
