import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { startHttpServer } from "../dist/http/http-server.js";
import { Sandbox as BuiltSandbox } from "../dist/index.js";
import { Sandbox, WasmboxError } from "../src/index.js";
import { addPackages, readWheelhouse } from "../src/packages/wheelhouse.js";
import { makeWheelFile, testWheelhouse } from "./helpers/wheels.js";
import { BIN, wasmbox } from "./helpers/cli.js";
import { PRELUDE } from "./helpers/guest.js";

const SCIENCE = ["sympy", "networkx", "python-dateutil", "tabulate"];
describe("packages: what models import, from the wheelhouse", () => {
  let wheelhouse: string;
  let sandbox: Sandbox;
  before(async () => {
    wheelhouse = await testWheelhouse();
    sandbox = await Sandbox.create({ poolSize: 1, wheelhouse, packages: SCIENCE });
  });
  after(() => sandbox?.close());

  it("imports pure-Python packages a run names: sympy solves, networkx finds a path, dateutil parses, tabulate formats", async () => {
    const result = await sandbox.run({
      code: [
        "import sympy, networkx as nx, tabulate",
        "from dateutil import parser",
        "x = sympy.Symbol('x')",
        "g = nx.Graph([(1, 2), (2, 3), (3, 4), (1, 5), (5, 4)])",
        "[str(s) for s in sympy.solve(x**2 - 4)], nx.shortest_path(g, 1, 4), parser.parse('2024-03-05T10:00').day, tabulate.tabulate([[1, 2]], headers=['a', 'b'])",
      ].join("\n"),
    });
    assert.equal(result.status, "ok", result.error?.traceback);
    assert.deepEqual(result.value, [["-2", "2"], [1, 5, 4], 5, "  a    b\n---  ---\n  1    2"]);
  });

  it("has the packages already imported when the run starts (they are in the environment's snapshot)", async () => {
    const result = await sandbox.run({ code: "import sys\n[m in sys.modules for m in ('sympy', 'networkx', 'tabulate')]" });
    assert.deepEqual(result.value, [true, true, true]);
  });

  it("imports native Pyodide wheels: pydantic validates and rejects, msgspec round-trips JSON", async () => {
    const result = await sandbox.run({
      packages: ["pydantic", "msgspec"],
      code: [
        "import pydantic, msgspec",
        "class User(pydantic.BaseModel):",
        "    name: str",
        "    age: int",
        "ok = User(name='ada', age='36').age",
        "try:",
        "    User(name='bob', age='old')",
        "    rejected = None",
        "except pydantic.ValidationError as e:",
        "    rejected = e.errors()[0]['loc']",
        "ok, list(rejected), msgspec.json.decode(msgspec.json.encode({'a': [1, 2.5, None]}))",
      ].join("\n"),
    });
    assert.equal(result.status, "ok", result.error?.traceback);
    assert.deepEqual(result.value, [36, ["age"], { a: [1, 2.5, null] }]);
  });

  it("has bytecode compiled once for what executors import at start and for modules a run imports lazily", async () => {
    const result = await sandbox.run({
      packages: ["pydantic"],
      code: [
        "import importlib.util, os, sys, pydantic.main",
        "lazy = 'sympy.physics.mechanics' not in sys.modules",
        "has = lambda m: os.path.exists(importlib.util.cache_from_source(importlib.util.find_spec(m).origin))",
        "lazy, has('pydantic.main'), has('sympy.physics.mechanics'), has('sympy')",
      ].join("\n"),
    });
    assert.equal(result.status, "ok", result.error?.traceback);
    // sympy itself is in the snapshot's memory: it needs no bytecode.
    assert.deepEqual(result.value, [true, true, true, false]);
  });

  it("gives a pygal chart back as an SVG rich result (issue 16 with a real charting package)", async () => {
    const result = await sandbox.run({
      packages: ["pygal"],
      code: "import pygal\nchart = pygal.Bar(title='runs per day')\nchart.add('ok', [3, 5, 2])\nchart",
    });
    assert.equal(result.status, "ok", result.error?.traceback);
    assert.equal(result.results.length, 1);
    const [chart] = result.results;
    assert.equal(chart!.isMainResult, true);
    assert.match(String(chart!.data["image/svg+xml"]), /<svg[\s\S]*runs per day[\s\S]*<\/svg>/);
  });

  it("answers zoneinfo with the IANA data with no package named", async () => {
    await using plain = await Sandbox.create({ poolSize: 0, wheelhouse });
    const result = await plain.run({
      code: "from zoneinfo import ZoneInfo\nfrom datetime import datetime\nstr(datetime(2024, 7, 1, 12, tzinfo=ZoneInfo('Europe/Paris')).utcoffset())",
    });
    assert.equal(result.status, "ok", result.error?.traceback);
    assert.equal(result.value, "2:00:00");
  });

  it("refuses a package the wheelhouse lacks before any executor starts, naming the command that adds it", async () => {
    const started = sandbox.stats.executorsStarted;
    await assert.rejects(sandbox.run({ code: "1", packages: ["no-such-package-wasmbox"] }), (error: unknown) => {
      assert.ok(error instanceof WasmboxError);
      assert.equal(error.code, "PACKAGE_NOT_FOUND");
      assert.match(error.message, /no-such-package-wasmbox/);
      assert.match(error.message, /wasmbox packages add no-such-package-wasmbox/);
      return true;
    });
    assert.equal(sandbox.stats.executorsStarted, started);
  });

  it("keeps site-packages read-only: a run cannot change a package for later runs", async () => {
    const attack = await sandbox.run({
      code: [
        "import tabulate, os",
        "errors = []",
        "for action in (lambda: open(tabulate.__file__, 'w'), lambda: os.remove(tabulate.__file__), lambda: open(os.path.dirname(tabulate.__file__) + '/evil.py', 'w')):",
        "    try:",
        "        action()",
        "        errors.append(None)",
        "    except OSError as e:",
        "        errors.append(e.errno)",
        "errors",
      ].join("\n"),
    });
    assert.equal(attack.status, "ok", attack.error?.traceback);
    assert.ok((attack.value as (number | null)[]).every((errno) => typeof errno === "number"), `writes went through: ${JSON.stringify(attack.value)}`);
  });

  for (const isolation of ["interpreter", "isolate"] as const) {
    it(`works in "${isolation}" isolation, and a run's change to a package module does not reach the next run`, async () => {
      await using reused = await Sandbox.create({ poolSize: 1, wheelhouse, packages: ["tabulate"], isolation });
      const first = await reused.run({ code: "import tabulate\ntabulate.tabulate = lambda *a, **k: 'poisoned'\ntabulate.tabulate([[1]])" });
      assert.equal(first.value, "poisoned");
      const second = await reused.run({ code: "import tabulate\ntabulate.tabulate([[1]])" });
      assert.equal(second.status, "ok", second.error?.traceback);
      assert.equal(second.value, "-\n1\n-");
    });
  }

  it("keeps a warm pool for at most four package sets besides its own, closing the least recently used", async () => {
    await using small = await Sandbox.create({ poolSize: 1, wheelhouse, packages: ["tabulate"] });
    for (const name of ["msgspec", "python-dateutil", "pygal", "networkx", "pydantic"]) {
      assert.equal((await small.run({ code: "1", packages: [name] })).status, "ok", name);
    }
    // Let the pools refill, then count: the sandbox's own pool and the four most recent sets.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const { warm, starting } = small.stats;
    assert.ok(warm + starting <= 5, `warm ${warm}, starting ${starting}`);
    assert.ok(warm + starting >= 2, `warm ${warm}, starting ${starting}: the pools keep executors`);
  });

  it("refuses guest JavaScript that writes a package's bundle, and a later run reads the package unchanged", async () => {
    await using reused = await Sandbox.create({ poolSize: 1, wheelhouse, packages: ["tabulate"], isolation: "isolate" });
    const attack = await reused.run({
      code: PRELUDE + [
        "import tabulate",
        // Every path the worker may read (its arguments: the bundle among them), written over.
        "attempt('write bundle', 'Deno.args.concat([\"/wasmbox/packages.bundle\"]).map((p) => { try { Deno.writeFileSync(p, new Uint8Array(8)); return \"WROTE \" + p; } catch (e) { return e.name; } }).join(\",\")')",
        "attempt('truncate', 'Deno.truncateSync(\"/wasmbox/packages.bundle\", 0)')",
      ].join("\n"),
    });
    assert.equal(attack.status, "ok", attack.error?.traceback);
    assert.doesNotMatch(attack.stdout, /WROTE|truncate: ALLOWED/, attack.stdout);
    assert.match(attack.stdout, /write bundle: ALLOWED NotCapable/, "the attempts reached Deno and were refused by its permissions");
    const after = await reused.run({ code: "import tabulate, inspect\n'def tabulate(' in inspect.getsource(tabulate), tabulate.tabulate([[1]])" });
    assert.equal(after.status, "ok", after.error?.traceback);
    assert.deepEqual(after.value, [true, "-\n1\n-"]);
  });

  it("gives a session its packages when it opens, and refuses a call naming others", async () => {
    await using session = await sandbox.session({ packages: ["msgspec"] });
    assert.equal((await session.run({ code: "import msgspec\nm = msgspec.json.encode([1])" })).status, "ok");
    assert.equal((await session.run({ code: "m.decode()", packages: ["msgspec"] })).value, "[1]");
    await assert.rejects(session.run({ code: "1", packages: ["pydantic"] }), /opened without pydantic/);
  });
});

describe("packages: bad input gets a clear error and the host goes on", () => {
  let wheelhouse: string;
  let scratch: string;
  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), "wasmbox-bad-packages-"));
    wheelhouse = join(scratch, "wheelhouse");
    const shared = await testWheelhouse();
    // A wheelhouse of its own with tabulate (copied, no network) and hand-made wheels.
    for (const name of ["tabulate", "msgspec"]) {
      const entry = readWheelhouse(shared).packages.get(name)!;
      copyFileSync(join(shared, entry.file), join(scratch, entry.file.split("/").at(-1)!));
      await addPackages(wheelhouse, [join(scratch, entry.file.split("/").at(-1)!)], {});
    }
    await addPackages(wheelhouse, [makeWheelFile(scratch, "boom", "1.0", { "boom/__init__.py": "raise RuntimeError('boom at import')\n" })], {});
    await addPackages(wheelhouse, [makeWheelFile(scratch, "clash_a", "1.0", { "clash/__init__.py": "A = 1\n" })], {});
    await addPackages(wheelhouse, [makeWheelFile(scratch, "clash_b", "1.0", { "clash/__init__.py": "B = 1\n" })], {});
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it("reports a package that raises on import as PACKAGE_INVALID naming it", async () => {
    await using sandbox = await Sandbox.create({ poolSize: 0, wheelhouse });
    await assert.rejects(sandbox.run({ code: "1", packages: ["boom"] }), (error: unknown) => {
      assert.ok(error instanceof WasmboxError);
      assert.equal(error.code, "PACKAGE_INVALID");
      assert.match(error.message, /boom/);
      assert.match(error.message, /boom at import/);
      return true;
    });
    assert.equal((await sandbox.run({ code: "1 + 1" })).value, 2);
  });

  it("finds a pure package that loads a WebAssembly library while imported, and imports it at executor start instead of in the snapshot", async () => {
    // sneaky declares no dependency but imports msgspec (a native wheel) and prints while imported.
    const wheel = makeWheelFile(join(scratch, "sneaky"), "sneaky", "1.0", { "sneaky/__init__.py": `import msgspec\nprint("imported", ${Date.now()})\nDECODED = msgspec.json.decode(b"[7]")\n` });
    await addPackages(wheelhouse, [wheel], {});
    await using sandbox = await Sandbox.create({ poolSize: 0, wheelhouse });
    const result = await sandbox.run({ code: "import sneaky\nsneaky.DECODED", packages: ["sneaky", "msgspec"] });
    assert.equal(result.status, "ok", result.error?.traceback);
    assert.deepEqual(result.value, [7]);
    assert.equal(result.stdout, "", "what a package printed while imported is not the run's output");
  });

  it("refuses two packages that install the same file", async () => {
    await using sandbox = await Sandbox.create({ poolSize: 0, wheelhouse });
    await assert.rejects(sandbox.run({ code: "1", packages: ["clash-a", "clash-b"] }), /both install .*clash\/__init__\.py/);
    assert.equal((await sandbox.run({ code: "import clash\nclash.A", packages: ["clash-a"] })).value, 1);
  });

  it("refuses a wheel that changed after it was added (its sha256) when it builds an environment with it", async () => {
    // A set never built before (a fresh wheel each time): its bundle reads every wheel again.
    await addPackages(wheelhouse, [makeWheelFile(join(scratch, "fresh"), "fresh", "1.0", { "fresh.py": `STAMP = ${Date.now()}\n` })], {});
    const entry = readWheelhouse(wheelhouse).packages.get("tabulate")!;
    const path = join(wheelhouse, entry.file);
    const original = readFileSync(path);
    const corrupted = Buffer.from(original);
    corrupted[Math.floor(corrupted.length / 2)] ^= 0xff;
    writeFileSync(path, corrupted);
    try {
      await using sandbox = await Sandbox.create({ poolSize: 0, wheelhouse });
      await assert.rejects(sandbox.run({ code: "1", packages: ["fresh", "tabulate"] }), /does not match its recorded sha256/);
      assert.equal((await sandbox.run({ code: "2" })).value, 2);
    } finally {
      writeFileSync(path, original);
    }
  });

  it("refuses packages on a language other than Python", async () => {
    await using sandbox = await Sandbox.create({ poolSize: 0, wheelhouse, languages: ["python"] });
    await assert.rejects(sandbox.run({ code: "1", language: "javascript", packages: ["tabulate"] }), /packages are for language "python"/);
  });
});

describe("packages: every interface takes them", () => {
  let wheelhouse: string;
  before(async () => {
    wheelhouse = await testWheelhouse();
  });

  it("wasmbox run --package imports it, and a missing one exits 2 naming the command that adds it", async () => {
    const ok = await wasmbox(["run", "--wheelhouse", wheelhouse, "--package", "tabulate", "-c", "import tabulate\nprint(tabulate.tabulate([[1, 2]]))"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "-  -\n1  2\n-  -\n");
    const missing = await wasmbox(["run", "--wheelhouse", wheelhouse, "--package", "not-in-the-wheelhouse", "-c", "1"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /wasmbox packages add not-in-the-wheelhouse/);
  });

  it("serve --stdio takes packages on a request and on a session, and answers a missing one with PACKAGE_NOT_FOUND", async () => {
    const lines = [
      { id: 1, code: "import tabulate\ntabulate.__name__", packages: ["tabulate"] },
      { id: 2, code: "1", packages: ["not-in-the-wheelhouse"] },
      { id: 3, op: "session.open", packages: ["msgspec"] },
    ];
    const out = await wasmbox(["serve", "--stdio", "--pool", "0", "--wheelhouse", wheelhouse], { stdin: lines.map((l) => JSON.stringify(l)).join("\n") + "\n" });
    const answers = out.stdout.trim().split("\n").map((line) => JSON.parse(line) as { id: number; value?: unknown; error?: { code: string } | null; sessionId?: string });
    const byId = new Map(answers.map((a) => [a.id, a]));
    assert.equal(byId.get(1)!.value, "tabulate");
    assert.equal(byId.get(2)!.error?.code, "PACKAGE_NOT_FOUND");
    assert.ok(byId.get(3)!.sessionId, JSON.stringify(byId.get(3)));
  });

  it("the HTTP API runs with packages and gives 422 PACKAGE_NOT_FOUND for a missing one", async () => {
    // The server and its sandbox from the same build (dist/), as `wasmbox serve --http` has them.
    await using sandbox = await BuiltSandbox.create({ poolSize: 0, wheelhouse });
    const server = await startHttpServer(sandbox, { version: "test" });
    try {
      const post = (body: unknown) => fetch(`${server.url}/v1/run`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      const ok = await post({ code: "import dateutil.parser\ndateutil.parser.parse('2024-02-29').month", packages: ["python-dateutil"] });
      assert.equal(ok.status, 200);
      assert.equal(((await ok.json()) as { value: unknown }).value, 2);
      const missing = await post({ code: "1", packages: ["not-in-the-wheelhouse"] });
      assert.equal(missing.status, 422);
      assert.equal(((await missing.json()) as { error: { code: string } }).error.code, "PACKAGE_NOT_FOUND");
    } finally {
      await server.close({ graceMs: 0 });
    }
  });

  it("wasmbox mcp --package names the packages and their versions to the model, within the tool-list budget plus the package list, and run_code imports them", async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, "mcp", "--pool", "1", "--wheelhouse", wheelhouse, "--package", "networkx", "--package", "sympy"], stderr: "pipe" });
    const client = new Client({ name: "wasmbox-test", version: "1.0.0" });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      const run = tools.find((t) => t.name === "run_code")!;
      const listed = /standard library \+ (networkx [\d.]+, sympy [\d.]+), no pip/.exec(run.description ?? "");
      assert.ok(listed, run.description);
      // The budget (test/mcp.test.ts) grows by the package list only: the server's owner chose its length.
      const bytes = Buffer.byteLength(JSON.stringify(tools));
      assert.ok(bytes <= 2048 + Buffer.byteLength(listed[1]!), `tools/list is ${bytes} bytes with the package list "${listed[1]}"`);
      const result = (await client.callTool({ name: "run_code", arguments: { code: "import networkx as nx\nnx.shortest_path(nx.path_graph(3), 0, 2)" } })) as { isError?: boolean; structuredContent?: { value: unknown } };
      assert.equal(result.isError, false);
      assert.deepEqual(result.structuredContent?.value, [0, 1, 2]);
    } finally {
      await client.close();
    }
  });
});
