/**
 * `wasmbox mcp` driven by the official MCP SDK client, over stdio (a real child process) and over
 * streamable HTTP (a real loopback port): tools, results, errors, cancellation, session state
 * (kept per MCP session, isolated between clients, reaped with the session), shutdown.
 * Needs `npm run build` first (the servers run dist/cli/bin.js).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { listLanguages } from "../dist/sandbox/languages.js";
import { alive, descendants, waitUntil } from "./helpers/processes.js";

const BIN = fileURLToPath(new URL("../dist/cli/bin.js", import.meta.url));
// One run at a time: a call that follows a cancelled one can only run once the cancelled run has
// really stopped and given its slot back.
const SERVER_FLAGS = ["--pool", "1", "--max-concurrency", "1"];

function text(result: CallToolResult): string {
  return result.content.filter((c) => c.type === "text").map((c) => (c as { text: string }).text).join("\n");
}

/** The checks both transports must pass, against a connected client. */
function sharedSuite(client: () => Client, serverPid: () => number) {
  test("lists run_code and session_reset, with descriptions that tell a model what is installed, how results and files come back, and sessions", async () => {
    const { tools } = await client().listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    assert.deepEqual([...byName.keys()].sort(), ["run_code", "session_reset"]);
    const run = byName.get("run_code")!;
    assert.deepEqual(run.inputSchema.required, ["code"]);
    const properties = run.inputSchema.properties as Record<string, { enum?: string[]; default?: unknown; type?: string }>;
    assert.deepEqual(Object.keys(properties).sort(), ["code", "files", "language", "session", "stdin", "timeoutMs"]);
    assert.equal(properties.language!.default, "python");
    assert.equal(properties.session!.type, "boolean");
    for (const phrase of ["standard library", "network", "last expression", "print()", "/sandbox", "resources", "images", "session", "30 s", "256 MiB"]) {
      assert.ok(run.description!.includes(phrase), `run_code's description mentions ${phrase}`);
    }
    for (const phrase of ["persistent", "notebook", "variables"]) {
      assert.ok(JSON.stringify(properties.session).includes(phrase), `the session parameter mentions ${phrase}`);
    }
    assert.match(byName.get("session_reset")!.description!, /session/);
  });

  test("the whole tool list is at most 2048 bytes of JSON, the instructions at most 512, and they name every installed language", async () => {
    const { tools } = await client().listTools();
    const json = JSON.stringify(tools);
    assert.ok(Buffer.byteLength(json) <= 2048, `tools/list is ${Buffer.byteLength(json)} bytes`);
    const instructions = client().getInstructions() ?? "";
    assert.ok(Buffer.byteLength(instructions) <= 512, `the instructions are ${Buffer.byteLength(instructions)} bytes`);
    assert.match(instructions, /run_code/);
    // Every language this installation has (this repo's dev dependencies install them all), but
    // "wasi", which needs a module the tool does not take.
    const installed = listLanguages().filter((l) => l.installed && l.name !== "wasi").map((l) => l.name);
    assert.ok(installed.length >= 8, `every optional language is installed here: ${installed.join(", ")}`);
    const run = tools.find((t) => t.name === "run_code")!;
    assert.deepEqual((run.inputSchema.properties?.language as { enum: string[] }).enum, installed);
    const named = run.description!.slice(run.description!.indexOf("Installed:")).toLowerCase();
    for (const language of installed) assert.match(named, new RegExp(`\\b${language}\\b`), `the description names ${language}`);
    assert.match(run.description!, /CPython 3\.14/);
  });

  test("run_code answers stdout, the last value and produced files, with the whole result as structuredContent", async () => {
    const result = (await client().callTool({
      name: "run_code",
      arguments: {
        code: "import sys\nname = sys.stdin.read().strip()\nprint('hello', name)\nopen('out/answer.txt', 'w').write(open('in.txt').read().upper())\n6 * 7",
        files: { "in.txt": "shout", "out/.keep": "" },
        stdin: "wasm\n",
      },
    })) as CallToolResult;
    assert.equal(result.isError, false);
    const body = text(result);
    assert.match(body, /status: ok/);
    assert.match(body, /hello wasm/);
    assert.match(body, /--- value \(last expression\) ---\n42/);
    const structured = result.structuredContent as { status: string; stdout: string; value: unknown; files: { path: string }[] };
    assert.equal(structured.status, "ok");
    assert.equal(structured.stdout, "hello wasm\n");
    assert.equal(structured.value, 42);
    assert.deepEqual(structured.files.map((f) => f.path), ["out/answer.txt"]);
    const resource = result.content.find((c) => c.type === "resource") as { resource: { uri: string; text: string; mimeType: string } };
    assert.equal(resource.resource.uri, "file:///sandbox/out/answer.txt");
    assert.equal(resource.resource.text, "SHOUT");
    assert.equal(resource.resource.mimeType, "text/plain");
  });

  test("a Python exception is a tool result with isError true and the traceback in its text", async () => {
    const result = (await client().callTool({ name: "run_code", arguments: { language: "python", code: "def f():\n    return 1 / 0\nf()" } })) as CallToolResult;
    assert.equal(result.isError, true);
    const body = text(result);
    assert.match(body, /status: error/);
    assert.match(body, /Traceback \(most recent call last\):/);
    assert.match(body, /line 2, in f/);
    assert.match(body, /ZeroDivisionError: division by zero/);
    assert.equal((result.structuredContent as { error: { type: string } }).error.type, "ZeroDivisionError");
  });

  test("bad input comes back as a tool error the model can read: a climbing path, an unknown language, a session in another language", async () => {
    const path = (await client().callTool({ name: "run_code", arguments: { code: "1", files: { "../etc/passwd": "x" } } })) as CallToolResult;
    assert.equal(path.isError, true);
    assert.match(text(path), /INVALID_PATH/);
    const language = (await client().callTool({ name: "run_code", arguments: { language: "cobol", code: "1" } })) as CallToolResult;
    assert.equal(language.isError, true);
    assert.match(text(language), /language/);
    const session = (await client().callTool({ name: "run_code", arguments: { language: "javascript", code: "1", session: true } })) as CallToolResult;
    assert.equal(session.isError, true);
    assert.match(text(session), /session: true is for Python only/);
  });

  test("a binary input file goes in as base64 and a binary output file comes back as a blob resource", async () => {
    const result = (await client().callTool({
      name: "run_code",
      arguments: { code: "data = open('in.bin', 'rb').read()\nopen('out.bin', 'wb').write(bytes(reversed(data)))\nlist(data)", files: { "in.bin": { encoding: "base64", content: Buffer.from([0, 255, 7]).toString("base64") } } },
    })) as CallToolResult;
    assert.equal(result.isError, false, text(result));
    assert.deepEqual((result.structuredContent as { value: unknown }).value, [0, 255, 7]);
    const resource = result.content.find((c) => c.type === "resource") as { resource: { uri: string; blob: string } };
    assert.equal(resource.resource.uri, "file:///sandbox/out.bin");
    assert.deepEqual([...Buffer.from(resource.resource.blob, "base64")], [7, 255, 0]);
  });

  test("aborting a call on the client stops the run, and the server keeps serving", async () => {
    const before = descendants(serverPid());
    const controller = new AbortController();
    const call = client().callTool(
      { name: "run_code", arguments: { code: "print('started', flush=True)\nwhile True:\n    pass", timeoutMs: 3_600_000 } },
      undefined,
      {
        signal: controller.signal,
        // Output arrives as progress notifications; abort once the guest is really running.
        onprogress: (progress) => {
          if (progress.message?.includes("started")) controller.abort();
        },
      },
    );
    await assert.rejects(call, (error: Error) => error.name === "AbortError" || /abort/i.test(error.message));
    // With one slot, this call runs only after the cancelled run has ended and freed it.
    const next = (await client().callTool({ name: "run_code", arguments: { code: "'still here'" } })) as CallToolResult;
    assert.equal(next.isError, false);
    assert.match(text(next), /'still here'/);
    // The executor that ran the endless loop is gone (it was killed, not left spinning).
    const running = before.filter((p) => p.cmd.includes("deno"));
    await waitUntil(() => running.every((p) => !alive(p)), "the cancelled run's executor to exit");
  });

  // Leaves this client's session open: the shutdown tests below check that it is reaped.
  test("session: true keeps variables, imports and files between calls like notebook cells, while a run without it starts fresh", async () => {
    const first = (await client().callTool({ name: "run_code", arguments: { session: true, code: "import json\ncounter = 1\nopen('notes.txt', 'w').write('kept')" } })) as CallToolResult;
    assert.equal(first.isError, false, text(first));
    const second = (await client().callTool({ name: "run_code", arguments: { session: true, code: "counter += 1\n[counter, open('notes.txt').read(), json.dumps({})]" } })) as CallToolResult;
    assert.equal(second.isError, false, text(second));
    assert.deepEqual((second.structuredContent as { value: unknown }).value, [2, "kept", "{}"]);
    const fresh = (await client().callTool({ name: "run_code", arguments: { code: "counter" } })) as CallToolResult;
    assert.equal(fresh.isError, true);
    assert.match(text(fresh), /NameError/);
  });

  // After the cancellation test, which expects every executor it saw to exit: these leave warm executors of their languages.
  test("run_code runs the other installed languages: JavaScript's last expression and a C program's output", async () => {
    const js = (await client().callTool({ name: "run_code", arguments: { language: "javascript", code: "const xs = [1, 2, 3];\nxs.map((x) => x * 2)" } })) as CallToolResult;
    assert.equal(js.isError, false, text(js));
    assert.deepEqual((js.structuredContent as { value: unknown }).value, [2, 4, 6]);
    const c = (await client().callTool({ name: "run_code", arguments: { language: "c", code: '#include <stdio.h>\nint main(void) { printf("%d\\n", 6 * 7); return 0; }' } })) as CallToolResult;
    assert.equal(c.isError, false, text(c));
    assert.equal((c.structuredContent as { stdout: string }).stdout, "42\n");
  });
}

describe("wasmbox mcp over stdio", () => {
  let client: Client;
  let transport: StdioClientTransport;
  let stderr = "";

  before(async () => {
    transport = new StdioClientTransport({ command: process.execPath, args: [BIN, "mcp", ...SERVER_FLAGS], stderr: "pipe" });
    transport.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    client = new Client({ name: "wasmbox-test", version: "1.0.0" });
    await client.connect(transport);
  });

  after(async () => {
    await client?.close();
  });

  sharedSuite(() => client, () => transport.pid!);

  test("closing the client ends the server on end of input, leaving no executor behind", async () => {
    const pid = transport.pid!;
    const tree = descendants(pid);
    assert.ok(tree.some((p) => p.cmd.includes("deno")), "the server had executors running");
    await client.close();
    await waitUntil(() => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z "), "the server to exit");
    assert.match(stderr, /input ended: stopping/);
    await waitUntil(() => tree.every((p) => !alive(p)), "every executor to exit");
  });
});

describe("wasmbox mcp --http", () => {
  let server: ChildProcess;
  let url: URL;
  let client: Client;
  let stderr = "";
  let exit: Promise<number | null>;

  before(async () => {
    server = spawn(process.execPath, [BIN, "mcp", "--http", "0", "--grace", "200ms", ...SERVER_FLAGS], { stdio: ["ignore", "ignore", "pipe"] });
    exit = new Promise((resolve) => server.once("exit", (code) => resolve(code)));
    url = await new Promise<URL>((resolve, reject) => {
      server.stderr!.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
        const match = /MCP endpoint (http:\/\/\S+)/.exec(stderr);
        if (match) resolve(new URL(match[1]!));
      });
      server.once("exit", () => reject(new Error(`server exited: ${stderr}`)));
    });
    client = new Client({ name: "wasmbox-test", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(url));
  });

  after(async () => {
    await client?.close().catch(() => {});
    if (server.exitCode === null) server.kill("SIGKILL");
  });

  sharedSuite(() => client, () => server.pid!);

  test("a foreign Host header is refused, so a web page cannot reach the server by DNS rebinding", async () => {
    const { request } = await import("node:http");
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path: "/mcp", method: "POST", headers: { host: "evil.example", "content-type": "application/json" } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.once("error", reject);
      req.end("{}");
    });
    assert.equal(status, 403);
  });

  test("a second MCP client gets its own session state, session_reset starts over, and ending an MCP session reaps its interpreter", async () => {
    const health = async () => (await (await fetch(new URL("/healthz", url))).json()) as { sessions: number; interpreters: number };
    assert.equal((await health()).interpreters, 1, "the first client's session interpreter");

    const otherTransport = new StreamableHTTPClientTransport(url);
    const other = new Client({ name: "wasmbox-test-2", version: "1.0.0" });
    await other.connect(otherTransport);
    try {
      const unseen = (await other.callTool({ name: "run_code", arguments: { session: true, code: "counter" } })) as CallToolResult;
      assert.equal(unseen.isError, true);
      assert.match(text(unseen), /NameError/);
      assert.equal((await health()).interpreters, 2);
      const mine = (await client.callTool({ name: "run_code", arguments: { session: true, code: "counter" } })) as CallToolResult;
      assert.equal((mine.structuredContent as { value: unknown }).value, 2, "the first client's state is untouched");

      // DELETE of the MCP session (what a client sends when it ends the session) reaps its interpreter.
      await otherTransport.terminateSession();
    } finally {
      await other.close();
    }
    await waitUntil(async () => (await health()).interpreters === 1, "the second client's interpreter to be reaped");

    const reset = (await client.callTool({ name: "session_reset", arguments: {} })) as CallToolResult;
    assert.match(text(reset), /session reset/);
    assert.equal((await health()).interpreters, 0);
    const after = (await client.callTool({ name: "run_code", arguments: { session: true, code: "counter" } })) as CallToolResult;
    assert.equal(after.isError, true);
    assert.match(text(after), /NameError/);
  });

  test("SIGTERM ends sessions and the process (exit 143), leaving no executor behind", async () => {
    const tree = descendants(server.pid!);
    assert.ok(tree.some((p) => p.cmd.includes("deno")), "the server had executors running");
    server.kill("SIGTERM");
    assert.equal(await exit, 143);
    await waitUntil(() => tree.every((p) => !alive(p)), "every executor to exit");
  });
});
