/**
 * Rich results (issue 16): what a guest displays comes back as Jupyter-style bundles on every
 * interface: the library, `serve --stdio`, HTTP, MCP (images as image content) and the CLI's --out.
 * Real executors running real Pyodide; the Python client's side is python/tests/test_rich_results.py.
 * Needs `npm run build` first.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { startHttpServer } from "../dist/http/http-server.js";
import { resultImages, richResult, richResultFormats, Sandbox, type RunResult } from "../dist/index.js";
import { wasmbox } from "./helpers/cli.js";

const BIN = fileURLToPath(new URL("../dist/cli/bin.js", import.meta.url));

/** A 2x2 red PNG made in the guest with zlib and struct, displayed, then an HTML table as the last expression (shared with the Python client's test). */
const CHART = readFileSync(new URL("./fixtures/rich-chart.py", import.meta.url), "utf8");
const TABLE_HTML = "<table><tr><td>a</td><td>1</td></tr><tr><td>b</td><td>2</td></tr></table>";

/** What every interface must give for CHART: a PNG, then the table as the main result. */
function checkChart(result: Pick<RunResult, "status" | "stdout" | "results">): void {
  assert.equal(result.status, "ok");
  assert.equal(result.stdout, "drawn\n");
  assert.equal(result.results.length, 2);
  const [chart, table] = result.results;
  assert.deepEqual(richResultFormats(chart!), ["image/png", "text/plain"]);
  assert.equal(chart!.isMainResult, false);
  assert.equal(richResult.text(chart!), "Chart()");
  const png = richResult.png(chart!)!;
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.deepEqual(table, { data: { "text/html": TABLE_HTML, "text/plain": "Table([('a', 1), ('b', 2)])" }, isMainResult: true, error: null });
}

let sandbox: Sandbox;
before(async () => {
  sandbox = await Sandbox.create({ poolSize: 1, maxConcurrency: 2 });
});
after(async () => {
  await sandbox?.close();
});

describe("rich results through the library", () => {
  test("a PNG made in the guest with zlib and struct comes back through display(), and an HTML table as the main result", async () => {
    const result = await sandbox.run({ code: CHART });
    checkChart(result);
    assert.equal(resultImages(result).length, 1);
    assert.equal(resultImages(result)[0]!.mimeType, "image/png");
  });

  test("an object with several _repr_*_ methods gives each format, and _repr_mimebundle_ honours include and exclude", async () => {
    const result = await sandbox.run({
      code: `
class Many:
    def _repr_svg_(self): return '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
    def _repr_markdown_(self): return "**bold**"
    def _repr_latex_(self): return r"$\\alpha$"
    def _repr_json_(self): return {"n": [1, 2]}
class Bundle:
    def _repr_mimebundle_(self, include=None, exclude=None):
        data = {"text/html": "<i>b</i>", "text/markdown": "*b*"}
        return {m: v for m, v in data.items() if (include is None or m in include) and m not in (exclude or ())}
display(Many())
display(Bundle(), include={"text/html"})
display(Bundle(), exclude={"text/html"})
`,
    });
    assert.equal(result.status, "ok", JSON.stringify(result.error));
    const [many, included, excluded] = result.results;
    assert.deepEqual(richResultFormats(many!), ["image/svg+xml", "text/markdown", "text/latex", "application/json", "text/plain"]);
    assert.match(richResult.svg(many!)!, /^<svg /);
    assert.equal(richResult.markdown(many!), "**bold**");
    assert.equal(richResult.latex(many!), "$\\alpha$");
    assert.deepEqual(richResult.json(many!), { n: [1, 2] });
    assert.deepEqual(included!.data, { "text/html": "<i>b</i>" });
    assert.deepEqual(Object.keys(excluded!.data), ["text/markdown", "text/plain"]);
  });

  test("a _repr_*_ that raises, returns the wrong type or is huge is an error entry, and the run is ok", async () => {
    const result = await sandbox.run({
      code: `
class Bad:
    def _repr_html_(self): raise ValueError("broken html")
    def _repr_png_(self): return "not bytes"
    def _repr_svg_(self): return "<svg>" + "x" * 5000 + "</svg>"
    def _repr_markdown_(self): return "still here"
display(Bad())
"done"`,
      maxOutputBytes: 4000,
    });
    assert.equal(result.status, "ok");
    assert.equal(result.value, "done");
    const [bad] = result.results;
    assert.deepEqual(Object.keys(bad!.data), ["text/markdown", "text/plain"]);
    assert.match(bad!.error!, /_repr_html_: ValueError: broken html/);
    assert.match(bad!.error!, /_repr_png_ returned str, expected bytes/);
    assert.match(bad!.error!, /_repr_svg_: image\/svg\+xml is 5011 bytes, over the run's output cap \(4000 bytes\)/);
  });

  test("rich results count against maxOutputBytes: past it the run ends as output_limit and keeps those that fit", async () => {
    const result = await sandbox.run({
      code: "class H:\n    def _repr_html_(self): return 'h' * 3000\nfor i in range(10):\n    display(H())\nprint('not reached')",
      maxOutputBytes: 10_000,
    });
    assert.equal(result.status, "output_limit");
    assert.equal(result.stdout, "");
    assert.equal(result.results.length, 3);
    assert.match(result.error!.message, /rich results \(display\(\) and the last expression\) take the run's output past maxOutputBytes \(10000 bytes/);
  });

  test("a session's calls each return their own rich results", async () => {
    const session = await sandbox.session();
    try {
      const first = await session.run({ code: "class T:\n    def _repr_html_(self): return '<p>1</p>'\ndisplay(T())" });
      const second = await session.run({ code: "T()" });
      assert.deepEqual(first.results.map((r) => [r.data["text/html"], r.isMainResult]), [["<p>1</p>", false]]);
      assert.deepEqual(second.results.map((r) => [r.data["text/html"], r.isMainResult]), [["<p>1</p>", true]]);
    } finally {
      await session.close();
    }
  });

  test("another runtime's result has an empty results list", async () => {
    const result = await sandbox.run({ language: "javascript", code: "1 + 1" });
    assert.deepEqual(result.results, []);
  });
});

describe("rich results on every interface", () => {
  let reference: RunResult;
  before(async () => {
    reference = await sandbox.run({ code: CHART });
  });

  test("serve --stdio passes them through, the same as the library", async () => {
    const child = spawn(process.execPath, [BIN, "serve", "--stdio", "--pool", "1"], { stdio: ["pipe", "pipe", "inherit"] });
    try {
      let out = "";
      const line = new Promise<Record<string, unknown>>((resolve) =>
        child.stdout.on("data", (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes("\n")) resolve(JSON.parse(out.slice(0, out.indexOf("\n"))));
        }),
      );
      child.stdin.write(JSON.stringify({ id: 1, code: CHART }) + "\n");
      const reply = (await line) as unknown as RunResult;
      checkChart(reply);
      assert.deepEqual(reply.results, reference.results);
    } finally {
      child.stdin.end();
      await new Promise((resolve) => child.once("close", resolve));
    }
  });

  test("HTTP passes them through, and its OpenAPI document describes them", async () => {
    const server = await startHttpServer(sandbox, { version: "test" });
    try {
      const response = await fetch(server.url + "/v1/run", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ code: CHART }) });
      const body = (await response.json()) as RunResult;
      checkChart(body);
      assert.deepEqual(body.results, reference.results);
      const doc = JSON.stringify(await (await fetch(server.url + "/openapi.json")).json());
      assert.match(doc, /"isMainResult"/);
    } finally {
      await server.close({ graceMs: 0 });
    }
  });

  test("MCP gives the PNG as image content a model can see, the HTML as text, and the whole result as structuredContent", async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, "mcp", "--pool", "1"], stderr: "ignore" });
    const client = new Client({ name: "wasmbox-test", version: "1.0.0" });
    await client.connect(transport);
    try {
      const result = (await client.callTool({ name: "run_code", arguments: { code: CHART } })) as CallToolResult;
      assert.equal(result.isError, false);
      const image = result.content.find((c) => c.type === "image");
      assert.deepEqual(image, { type: "image", mimeType: "image/png", data: reference.results[0]!.data["image/png"] });
      const html = result.content.find((c) => c.type === "text" && c.text.includes("<table>"));
      assert.equal(html && html.type === "text" && html.text, `--- rich result 2 (last expression): text/html ---\n${TABLE_HTML}`);
      assert.deepEqual((result.structuredContent as unknown as RunResult).results, reference.results);
    } finally {
      await client.close();
    }
  });

  test("the CLI's --json includes them and --out writes each image and HTML output as a file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wasmbox-rich-"));
    try {
      const done = await wasmbox(["run", "--json", "--out", dir, "-c", CHART]);
      assert.equal(done.code, 0, done.stderr);
      const result = JSON.parse(done.stdout) as RunResult;
      checkChart(result);
      assert.deepEqual(result.results, reference.results);
      assert.deepEqual(readdirSync(dir).sort(), ["output-1.png", "output-2.html"]);
      assert.deepEqual(readFileSync(join(dir, "output-1.png")), Buffer.from(richResult.png(reference.results[0]!)!));
      assert.equal(readFileSync(join(dir, "output-2.html"), "utf8"), TABLE_HTML);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
