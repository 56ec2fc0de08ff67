/**
 * `wasmbox serve --http` over a real loopback socket: every route, auth, limits (413, 429), the
 * queue and /metrics moving, streaming, cancellation by disconnect, sessions (state kept, isolated,
 * deleted, dead), and SIGTERM with a run in flight in a spawned server. Needs `npm run build` first (executors run dist/executor).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { request as httpRequest } from "node:http";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { startHttpServer, type HttpServer } from "../dist/http/http-server.js";
import { Sandbox } from "../dist/index.js";
import { alive, descendants, waitUntil } from "./helpers/processes.js";

const BIN = fileURLToPath(new URL("../dist/cli/bin.js", import.meta.url));
const TOKEN = "s3cret-token";
const ENDLESS = "print('started', flush=True)\nwhile True:\n    pass";

const json = { "content-type": "application/json" };

function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return fetch(base + path, { method: "POST", headers: { ...json, ...headers }, body: typeof body === "string" ? body : JSON.stringify(body), signal });
}

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  assert.match(response.headers.get("content-type") ?? "", /application\/json/);
  const body = (await response.json()) as { error: { code: string; message: string } };
  assert.equal(typeof body.error.message, "string");
  return body.error;
}

/** Reads a streaming answer line by line, calling `onLine` with each complete line. */
async function readLines(response: Response, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true });
    let newline;
    while ((newline = pending.indexOf("\n")) >= 0) {
      onLine(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
  }
}

/** Opens an NDJSON run and resolves once the guest has printed "started"; `done` has every event. */
async function startStreamingRun(base: string, body: object, headers: Record<string, string> = {}, signal?: AbortSignal) {
  const response = await post(base, "/v1/run", body, { accept: "application/x-ndjson", ...headers }, signal);
  assert.equal(response.status, 200);
  const events: { event: string; data?: string; result?: { status: string } }[] = [];
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const done = readLines(response, (line) => {
    const event = JSON.parse(line);
    events.push(event);
    if (event.event === "stdout" && event.data.includes("started")) started();
  })
    .catch(() => {})
    .then(() => events);
  await Promise.race([running, done]);
  return { done };
}

function metricValue(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe("wasmbox serve --http, in process", () => {
  let sandbox: Sandbox;
  let open: HttpServer;
  let guarded: HttpServer;
  const maxBodyBytes = 64 * 1024;

  before(async () => {
    // Tiny limits: one run at a time, one waiting; a third gets 429.
    sandbox = await Sandbox.create({ poolSize: 1, maxConcurrency: 1 });
    open = await startHttpServer(sandbox, { maxQueue: 1, maxBodyBytes, version: "test" });
    guarded = await startHttpServer(sandbox, { maxQueue: 1, token: TOKEN });
  });

  after(async () => {
    await open?.close({ graceMs: 0 });
    await guarded?.close({ graceMs: 0 });
    await sandbox?.close();
  });

  test("binds 127.0.0.1 by default, answers /healthz, and serves an OpenAPI document naming every route", async () => {
    assert.equal(open.host, "127.0.0.1");
    const health = await fetch(open.url + "/healthz");
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: "ok" });
    const doc = (await (await fetch(open.url + "/openapi.json")).json()) as { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    assert.equal(doc.openapi, "3.1.0");
    const routes = ["/v1/run", "/v1/sessions", "/v1/sessions/{sessionId}/run", "/v1/sessions/{sessionId}", "/v1/sessions/{sessionId}/files", "/v1/sessions/{sessionId}/files/{path}", "/v1/calls/{callId}"];
    for (const path of [...routes, "/healthz", "/metrics", "/openapi.json"]) {
      assert.ok(doc.paths[path], `documents ${path}`);
    }
    assert.ok(doc.paths["/v1/sessions"]!.post!.responses["201"]);
    assert.ok(doc.paths["/v1/sessions/{sessionId}/run"]!.post!.responses["404"]);
    assert.ok(doc.paths["/v1/sessions/{sessionId}/run"]!.post!.responses["410"]);
    assert.ok(doc.paths["/v1/sessions/{sessionId}"]!.delete!.responses["200"]);
    assert.ok(doc.paths["/v1/run"]!.post!.responses["429"]);
  });

  test("cpuTimeMs round-trips over HTTP: documented in the OpenAPI request and result, a busy loop is a 200 timeout naming it, in a session too", async () => {
    type Schemas = Record<string, { properties: Record<string, { type?: unknown; minimum?: number; maximum?: number; default?: unknown }> }>;
    const doc = (await (await fetch(open.url + "/openapi.json")).json()) as { components: { schemas: Schemas } };
    const requestField = doc.components.schemas.RunRequest!.properties.cpuTimeMs!;
    assert.equal(requestField.type, "integer");
    assert.equal(requestField.minimum, 1);
    assert.equal(requestField.default, undefined, "no default: only the wall clock applies without it");
    assert.ok(doc.components.schemas.RunResult!.properties.cpuTimeMs, "the result documents cpuTimeMs");

    const spun = await post(open.url, "/v1/run", { code: "while True: pass", cpuTimeMs: 300, timeoutMs: 30_000 });
    assert.equal(spun.status, 200);
    const result = (await spun.json()) as { status: string; error: { type: string; message: string }; cpuTimeMs: number };
    assert.equal(result.status, "timeout");
    assert.equal(result.error.type, "CpuTimeLimit");
    assert.match(result.error.message, /cpuTimeMs/);
    assert.ok(result.cpuTimeMs >= 300);

    const bad = await post(open.url, "/v1/run", { code: "1", cpuTimeMs: 0 });
    assert.equal(bad.status, 400);
    assert.equal((await errorOf(bad)).code, "INVALID_REQUEST");

    const created = await post(open.url, "/v1/sessions", {});
    const { sessionId } = (await created.json()) as { sessionId: string };
    try {
      const slept = await post(open.url, `/v1/sessions/${sessionId}/run`, { code: "import time\ntime.sleep(1)\n'rested'", cpuTimeMs: 300 });
      const sleptResult = (await slept.json()) as { status: string; value: string; cpuTimeMs: number };
      assert.equal(sleptResult.status, "ok");
      assert.equal(typeof sleptResult.cpuTimeMs, "number");
      const sessionSpun = await post(open.url, `/v1/sessions/${sessionId}/run`, { code: "while True: pass", cpuTimeMs: 300, timeoutMs: 30_000 });
      assert.equal(((await sessionSpun.json()) as { error: { type: string } }).error.type, "CpuTimeLimit");
    } finally {
      await fetch(`${open.url}/v1/sessions/${sessionId}`, { method: "DELETE" });
    }
  });

  test("POST /v1/run answers the result; an exception and a guest timeout are 200s whose body says so", async () => {
    const ok = await post(open.url, "/v1/run", { code: "print('hi')\nopen('o.txt','w').write('x')\n6 * 7" });
    assert.equal(ok.status, 200);
    const result = (await ok.json()) as { status: string; stdout: string; value: number; files: { path: string }[] };
    assert.equal(result.status, "ok");
    assert.equal(result.stdout, "hi\n");
    assert.equal(result.value, 42);
    assert.deepEqual(result.files.map((f) => f.path), ["o.txt"]);

    const error = await post(open.url, "/v1/run", { code: "1/0" });
    assert.equal(error.status, 200);
    const failed = (await error.json()) as { status: string; error: { type: string; traceback: string } };
    assert.equal(failed.status, "error");
    assert.equal(failed.error.type, "ZeroDivisionError");
    assert.match(failed.error.traceback, /Traceback/);

    const timeout = await post(open.url, "/v1/run", { code: "while True:\n    pass", timeoutMs: 300 });
    assert.equal(timeout.status, 200);
    assert.equal(((await timeout.json()) as { status: string }).status, "timeout");
  });

  test("bad requests answer typed error bodies: malformed JSON, bad fields, a climbing path, a wrong media type, unknown routes", async () => {
    let response = await post(open.url, "/v1/run", "{not json");
    assert.equal(response.status, 400);
    assert.equal((await errorOf(response)).code, "INVALID_REQUEST");

    response = await post(open.url, "/v1/run", { code: "1", colour: "blue" });
    assert.equal(response.status, 400);
    assert.match((await errorOf(response)).message, /colour/);

    response = await post(open.url, "/v1/run", { code: "1", files: { "../x": "y" } });
    assert.equal(response.status, 400);
    assert.equal((await errorOf(response)).code, "INVALID_PATH");

    response = await post(open.url, "/v1/run", { code: "1", language: "cobol" });
    assert.equal(response.status, 400);
    assert.equal((await errorOf(response)).code, "UNSUPPORTED_LANGUAGE");

    response = await fetch(open.url + "/v1/run", { method: "POST", body: JSON.stringify({ code: "1" }) }); // text/plain
    assert.equal(response.status, 415);
    assert.equal((await errorOf(response)).code, "UNSUPPORTED_MEDIA_TYPE");

    response = await fetch(open.url + "/v1/run");
    assert.equal(response.status, 405);
    assert.equal(response.headers.get("allow"), "POST");
    assert.equal((await errorOf(response)).code, "METHOD_NOT_ALLOWED");

    response = await fetch(open.url + "/v2/nothing");
    assert.equal(response.status, 404);
    assert.equal((await errorOf(response)).code, "NOT_FOUND");
  });

  test("a session keeps globals and files between runs, streams like /v1/run, and once deleted answers 410 SESSION_CLOSED", async () => {
    const created = await post(open.url, "/v1/sessions", { idleTimeoutMs: 60_000 });
    assert.equal(created.status, 201);
    const { sessionId } = (await created.json()) as { sessionId: string };
    assert.equal(created.headers.get("location"), `/v1/sessions/${sessionId}`);
    const runIn = (body: object, headers: Record<string, string> = {}) => post(open.url, `/v1/sessions/${sessionId}/run`, body, headers);

    const first = await runIn({ code: "import math\nradius = 2\nopen('notes.txt', 'w').write('kept')" });
    assert.equal(first.status, 200);
    assert.equal(((await first.json()) as { status: string }).status, "ok");

    const second = await runIn({ code: "print(open('notes.txt').read(), flush=True)\nround(math.pi * radius ** 2, 2)" }, { accept: "application/x-ndjson" });
    assert.equal(second.status, 200);
    const lines = (await second.text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.filter((l) => l.event === "stdout").map((l) => l.data).join(""), "kept\n");
    assert.equal(lines.at(-1).event, "result");
    assert.equal(lines.at(-1).result.value, 12.57);

    const wrongLanguage = await runIn({ code: "1", language: "javascript" });
    assert.equal(wrongLanguage.status, 400);
    // INVALID_REQUEST where JavaScript is a language (not this session's), UNSUPPORTED_LANGUAGE where it is not one.
    assert.ok(["INVALID_REQUEST", "UNSUPPORTED_LANGUAGE"].includes((await errorOf(wrongLanguage)).code));

    const deleted = await fetch(`${open.url}/v1/sessions/${sessionId}`, { method: "DELETE" });
    assert.equal(deleted.status, 200);
    assert.deepEqual(await deleted.json(), { closed: true });
    assert.equal((await fetch(`${open.url}/v1/sessions/${sessionId}`, { method: "DELETE" })).status, 200, "DELETE is idempotent");

    const afterDelete = await runIn({ code: "radius" });
    assert.equal(afterDelete.status, 410);
    assert.equal((await errorOf(afterDelete)).code, "SESSION_CLOSED");

    const unknown = await post(open.url, "/v1/sessions/no-such-session/run", { code: "1" });
    assert.equal(unknown.status, 404);
    assert.equal((await errorOf(unknown)).code, "SESSION_NOT_FOUND");
    assert.equal((await fetch(`${open.url}/v1/sessions/no-such-session`, { method: "DELETE" })).status, 404);

    const badOptions = await post(open.url, "/v1/sessions", { idleTimeoutMs: 0 });
    assert.equal(badOptions.status, 400);
    assert.match((await errorOf(badOptions)).message, /idleTimeoutMs/);
  });

  test("two sessions do not see each other's state, /metrics counts them, and a killed call leaves its session 410 SESSION_DEAD", async () => {
    const metrics = async () => (await fetch(open.url + "/metrics")).text();
    const before = await metrics();
    // No body at all takes the defaults.
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const created = await fetch(open.url + "/v1/sessions", { method: "POST" });
      assert.equal(created.status, 201);
      ids.push(((await created.json()) as { sessionId: string }).sessionId);
    }
    const [a, b] = ids as [string, string];
    const runIn = async (id: string, body: object) => {
      const response = await post(open.url, `/v1/sessions/${id}/run`, body);
      return { status: response.status, body: (await response.json()) as { status: string; value: unknown; error: { type: string; code?: string } | null } };
    };
    assert.equal((await runIn(a, { code: "secret = 'only in a'" })).body.status, "ok");
    const other = await runIn(b, { code: "secret" });
    assert.equal(other.body.status, "error");
    assert.equal(other.body.error!.type, "NameError");
    assert.equal((await runIn(a, { code: "secret" })).body.value, "only in a");

    const during = await metrics();
    assert.equal(metricValue(during, "wasmbox_sessions_open"), 2);
    assert.equal(metricValue(during, "wasmbox_sessions_opened_total") - metricValue(before, "wasmbox_sessions_opened_total"), 2);
    assert.match(during, /^wasmbox_pool_warm \d+$/m);
    assert.match(during, /^wasmbox_pool_starting \d+$/m);
    assert.match(during, /^wasmbox_executors_started_total [1-9]\d*$/m);

    // A loop that swallows the KeyboardInterrupt is killed at the end of the grace: the interpreter goes with it.
    const stubborn = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass";
    assert.equal((await runIn(b, { code: stubborn, timeoutMs: 200 })).body.status, "timeout");
    const dead = await post(open.url, `/v1/sessions/${b}/run`, { code: "1" });
    assert.equal(dead.status, 410);
    assert.equal((await errorOf(dead)).code, "SESSION_DEAD");

    for (const id of ids) assert.equal((await fetch(`${open.url}/v1/sessions/${id}`, { method: "DELETE" })).status, 200);
    assert.equal(metricValue(await metrics(), "wasmbox_sessions_open"), 0);
  });

  test("host functions over HTTP: calls are events on the run's stream, answered at POST /v1/calls/{callId}, with results and errors reaching the guest", async () => {
    const code = [
      "from wasmbox import tools, ToolError",
      "print(tools.add(a=2, b=3))",
      "try:",
      "    tools.add(a='x', b=1)",
      "except ToolError as e:",
      "    print('refused:', e)",
    ].join("\n");
    for (const accept of ["application/x-ndjson", "text/event-stream"]) {
      const response = await post(open.url, "/v1/run", { code, tools: ["add"] }, { accept });
      assert.equal(response.status, 200);
      const calls: { callId: string; name: string; args: { a: unknown; b: unknown } }[] = [];
      let result: { status: string; stdout: string } | null = null;
      let sseEvent = "";
      const answer = async (call: { callId: string; name: string; args: { a: unknown; b: unknown } }) => {
        calls.push(call);
        const { a, b } = call.args;
        const body = typeof a === "number" && typeof b === "number" ? { result: a + b } : { error: "add takes numbers" };
        const answered = await post(open.url, `/v1/calls/${encodeURIComponent(call.callId)}`, body);
        assert.equal(answered.status, 200, await answered.clone().text());
      };
      const pending: Promise<void>[] = [];
      await readLines(response, (line) => {
        if (accept === "text/event-stream") {
          if (line.startsWith("event: ")) sseEvent = line.slice(7);
          else if (line.startsWith("data: ")) {
            const data = JSON.parse(line.slice(6));
            if (sseEvent === "call") pending.push(answer(data));
            if (sseEvent === "result") result = data;
          }
          return;
        }
        const event = JSON.parse(line);
        if (event.event === "call") pending.push(answer(event));
        if (event.event === "result") result = event.result;
      });
      await Promise.all(pending);
      assert.deepEqual(calls.map((c) => [c.name, c.args]), [["add", { a: 2, b: 3 }], ["add", { a: "x", b: 1 }]], accept);
      assert.ok(calls.every((c) => /^c-[0-9a-f-]{36}$/.test(c.callId)), "call ids are unguessable");
      assert.equal(result!.status, "ok", accept);
      assert.equal(result!.stdout, "5\nrefused: add takes numbers\n", accept);
    }
  });

  test("host functions need a streamed answer, and a call answer must name a waiting call", async () => {
    const plain = await post(open.url, "/v1/run", { code: "1", tools: ["add"] });
    assert.equal(plain.status, 400);
    assert.match((await errorOf(plain)).message, /streamed answer/);
    const badName = await post(open.url, "/v1/run", { code: "1", tools: ["__import__"] }, { accept: "application/x-ndjson" });
    assert.equal(badName.status, 400);
    assert.match((await errorOf(badName)).message, /must be a Python identifier/);
    const unknown = await post(open.url, "/v1/calls/c-nothing", { result: 1 });
    assert.equal(unknown.status, 400);
    assert.equal((await errorOf(unknown)).code, "INVALID_REQUEST");
  });

  test("a session's files are listed, read and written between calls, as raw bytes; a session's tools are offered to each of its runs", async () => {
    const opened = await post(open.url, "/v1/sessions", { tools: ["now"] });
    assert.equal(opened.status, 201);
    const { sessionId } = (await opened.json()) as { sessionId: string };
    const base = `${open.url}/v1/sessions/${sessionId}`;
    try {
      const bytes = new Uint8Array([0, 1, 2, 250, 255]);
      const put = await fetch(`${base}/files/data/in.bin`, { method: "PUT", body: bytes });
      assert.equal(put.status, 200, await put.clone().text());
      const run = await post(base, "/run", { code: "from wasmbox import tools\nd = open('data/in.bin', 'rb').read()\nopen('out.txt', 'w').write(str(list(d)) + tools.now())" }, { accept: "application/x-ndjson" });
      let status = "";
      await readLines(run, (line) => {
        const event = JSON.parse(line);
        if (event.event === "call") void post(open.url, `/v1/calls/${event.callId}`, { result: "!" });
        if (event.event === "result") status = event.result.status;
      });
      assert.equal(status, "ok");
      const listed = await fetch(`${base}/files`);
      assert.equal(listed.status, 200);
      const { files } = (await listed.json()) as { files: { path: string; size: number }[] };
      assert.deepEqual(files.map((f) => f.path).sort(), ["data/in.bin", "out.txt"]);
      const read = await fetch(`${base}/files/out.txt`);
      assert.equal(read.headers.get("content-type"), "application/octet-stream");
      assert.equal(await read.text(), "[0, 1, 2, 250, 255]!");
      const back = new Uint8Array(await (await fetch(`${base}/files/data/in.bin`)).arrayBuffer());
      assert.deepEqual([...back], [...bytes]);
      const climbing = await fetch(`${base}/files/..%2F..%2Fetc%2Fpasswd`);
      assert.equal(climbing.status, 400);
      assert.equal((await errorOf(climbing)).code, "INVALID_PATH");
      const missing = await fetch(`${base}/files/nothing.txt`);
      assert.equal(missing.status, 400);
    } finally {
      await fetch(base, { method: "DELETE" });
    }
    const gone = await fetch(`${base}/files`);
    assert.equal(gone.status, 410);
  });

  test("a body over the limit answers 413, whether its length is declared or it arrives chunked", async () => {
    const big = JSON.stringify({ code: "#" + "x".repeat(maxBodyBytes) });
    let response = await post(open.url, "/v1/run", big);
    assert.equal(response.status, 413);
    assert.equal((await errorOf(response)).code, "REQUEST_TOO_LARGE");

    const chunks = [big.slice(0, 1000), big.slice(1000)].map((s) => new TextEncoder().encode(s));
    const stream = new ReadableStream({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    response = await fetch(open.url + "/v1/run", { method: "POST", headers: json, body: stream, duplex: "half" } as RequestInit);
    assert.equal(response.status, 413);
    assert.equal((await errorOf(response)).code, "REQUEST_TOO_LARGE");
    assert.equal((await fetch(open.url + "/healthz")).status, 200);
  });

  test("with a token, every route but /healthz and /openapi.json needs the bearer header", async () => {
    assert.equal((await fetch(guarded.url + "/healthz")).status, 200);
    assert.equal((await fetch(guarded.url + "/openapi.json")).status, 200);
    const none = await fetch(guarded.url + "/metrics");
    assert.equal(none.status, 401);
    assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
    assert.equal((await errorOf(none)).code, "UNAUTHORIZED");
    const wrong = await post(guarded.url, "/v1/run", { code: "1" }, { authorization: "Bearer nope" });
    assert.equal(wrong.status, 401);
    assert.equal((await fetch(guarded.url + "/v1/sessions", { method: "POST", headers: json, body: "{}" })).status, 401);
    const right = await post(guarded.url, "/v1/run", { code: "1 + 1" }, { authorization: `Bearer ${TOKEN}` });
    assert.equal(right.status, 200);
    assert.equal(((await right.json()) as { value: number }).value, 2);
    assert.equal((await fetch(guarded.url + "/metrics", { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    // Without a token the same routes are open.
    assert.equal((await fetch(open.url + "/metrics")).status, 200);
  });

  test("refuses to bind beyond loopback without a token, and refuses foreign Host headers on loopback", async () => {
    await assert.rejects(startHttpServer(sandbox, { host: "0.0.0.0" }), RangeError);
    const env = { ...process.env };
    delete env.WASMBOX_TOKEN;
    const cli = spawnSync(process.execPath, [BIN, "serve", "--http", "0", "--host", "0.0.0.0"], { env, encoding: "utf8" });
    assert.equal(cli.status, 2);
    assert.match(cli.stderr, /token/);

    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(open.url);
      const req = httpRequest({ host: url.hostname, port: url.port, path: "/healthz", headers: { host: "rebound.example:80" } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.once("error", reject);
      req.end();
    });
    assert.equal(status, 403);
  });

  test("streams stdout and stderr as SSE events and as NDJSON lines, followed by the result", async () => {
    const code = "import sys\nprint('out', flush=True)\nprint('err', file=sys.stderr, flush=True)\n'done'";
    const sse = await post(open.url, "/v1/run", { code }, { accept: "text/event-stream" });
    assert.equal(sse.status, 200);
    assert.match(sse.headers.get("content-type") ?? "", /text\/event-stream/);
    const events = (await sse.text()).split("\n\n").filter(Boolean).map((block) => {
      const [eventLine, dataLine] = block.split("\n");
      return { event: eventLine!.replace("event: ", ""), data: JSON.parse(dataLine!.replace("data: ", "")) };
    });
    assert.ok(events.some((e) => e.event === "stdout" && e.data.includes("out")));
    assert.ok(events.some((e) => e.event === "stderr" && e.data.includes("err")));
    assert.equal(events.at(-1)!.event, "result");
    assert.equal(events.at(-1)!.data.valueRepr, "'done'");

    const ndjson = await post(open.url, "/v1/run", { code }, { accept: "application/x-ndjson" });
    assert.match(ndjson.headers.get("content-type") ?? "", /application\/x-ndjson/);
    const lines = (await ndjson.text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.filter((l) => l.event !== "result").map((l) => l.event).sort(), ["stderr", "stdout"]);
    assert.equal(lines.at(-1).event, "result");
    assert.equal(lines.at(-1).result.status, "ok");
  });

  test("requests beyond the running one wait in the queue, one more gets 429, a dropped connection cancels its run, and /metrics follows", async () => {
    const metrics = async () => (await fetch(open.url + "/metrics")).text();
    const before = await metrics();
    const controller = new AbortController();
    const first = await startStreamingRun(open.url, { code: ENDLESS, timeoutMs: 3_600_000 }, {}, controller.signal);
    const queued = post(open.url, "/v1/run", { code: "6 * 7" });
    await waitUntil(async () => metricValue(await metrics(), "wasmbox_runs_queued") === 1, "the second run to be queued");
    const during = await metrics();
    assert.equal(metricValue(during, "wasmbox_runs_running"), 1);

    const refused = await post(open.url, "/v1/run", { code: "1" });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get("retry-after"), "1");
    assert.equal((await errorOf(refused)).code, "QUEUE_FULL");

    controller.abort(); // the client goes away: its run is cancelled and the slot freed
    await first.done;
    const second = await queued;
    assert.equal(second.status, 200);
    assert.equal(((await second.json()) as { value: number }).value, 42);

    const afterwards = await metrics();
    const delta = (series: string) => metricValue(afterwards, series) - metricValue(before, series);
    assert.equal(delta('wasmbox_runs_total{status="cancelled"}'), 1);
    assert.equal(delta('wasmbox_runs_total{status="ok"}'), 1);
    assert.equal(delta('wasmbox_http_responses_total{route="/v1/run",code="429"}'), 1);
    assert.equal(delta("wasmbox_run_duration_seconds_count"), 2);
    assert.equal(metricValue(afterwards, "wasmbox_runs_queued"), 0);
    assert.equal(metricValue(afterwards, "wasmbox_pool_size"), 1);
    assert.match(afterwards, /# TYPE wasmbox_run_duration_seconds histogram/);
  });

  test("close() lets a run in flight finish within the grace, answers it, and closes the sessions opened through the server", async () => {
    const draining = await startHttpServer(sandbox);
    const created = await fetch(draining.url + "/v1/sessions", { method: "POST" });
    assert.equal(created.status, 201);
    assert.equal(sandbox.stats.sessions, 1);
    const run = await startStreamingRun(draining.url, { code: "print('started', flush=True)\nsum(range(10**6))" });
    await draining.close({ graceMs: 3_600_000 });
    const events = await run.done;
    assert.equal(events.at(-1)!.result!.status, "ok");
    assert.equal(sandbox.stats.sessions, 0);
  });
});

/** `wasmbox serve --http 0 ARGS…` as a child process, once it says where it listens. */
async function spawnServer(args: string[]) {
  const server = spawn(process.execPath, [BIN, "serve", "--http", "0", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  const exit = new Promise<number | null>((resolve) => server.once("exit", (code) => resolve(code)));
  let stderr = "";
  const base = await new Promise<string>((resolve, reject) => {
    server.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(stderr);
      if (match) resolve(match[1]!);
    });
    server.once("exit", () => reject(new Error(`server exited: ${stderr}`)));
  });
  return { server, base, exit, stderr: () => stderr, stop: () => server.exitCode === null && server.kill("SIGKILL") };
}

describe("wasmbox serve --http, spawned", () => {
  test("--max-sessions caps open sessions with 429 TOO_MANY_SESSIONS, and --isolation interpreter still answers runs", async () => {
    const { base, stop } = await spawnServer(["--pool", "1", "--max-sessions", "1", "--isolation", "interpreter"]);
    try {
      const post = (path: string, body: object) =>
        fetch(base + path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      assert.equal((await post("/v1/sessions", {})).status, 201);
      const second = await post("/v1/sessions", {});
      assert.equal(second.status, 429);
      assert.equal(((await second.json()) as { error: { code: string } }).error.code, "TOO_MANY_SESSIONS");
      for (let i = 0; i < 3; i++) {
        const run = (await (await post("/v1/run", { code: `seen = 'x' in globals()\nx = ${i}\nseen` })).json()) as { value: unknown };
        assert.equal(run.value, false);
      }
    } finally {
      stop();
    }
  });

  test("a second SIGTERM cuts a long grace short: the run still going is cancelled and answered, and the server exits 143", async () => {
    const { server, base, exit, stderr, stop } = await spawnServer(["--pool", "1", "--grace", "60m"]);
    try {
      const run = await startStreamingRun(base, { code: ENDLESS, timeoutMs: 3_600_000 });
      server.kill("SIGTERM");
      await waitUntil(() => /draining/.test(stderr()), "the server to start draining");
      server.kill("SIGTERM");
      const events = await run.done;
      assert.equal(events.at(-1)!.result!.status, "cancelled");
      assert.equal(await exit, 143);
      assert.match(stderr(), /SIGTERM again: cancelling runs now/);
    } finally {
      stop();
    }
  });

  test("SIGTERM cancels runs still going after the grace, answers them, exits 143 and leaves no executor behind", async () => {
    const { server, base, exit, stderr, stop } = await spawnServer(["--pool", "1", "--max-concurrency", "1", "--grace", "300ms"]);
    try {
      const run = await startStreamingRun(base, { code: ENDLESS, timeoutMs: 3_600_000 });
      const tree = descendants(server.pid!);
      assert.ok(tree.some((p) => p.cmd.includes("deno")), "executors were running");

      server.kill("SIGTERM");
      const events = await run.done;
      assert.equal(events.at(-1)!.event, "result");
      assert.equal(events.at(-1)!.result!.status, "cancelled");
      assert.equal(await exit, 143);
      assert.match(stderr(), /SIGTERM: draining/);
      await waitUntil(() => tree.every((p) => !alive(p)), "every executor to exit");
    } finally {
      stop();
    }
  });
});
