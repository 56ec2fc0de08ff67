/**
 * The wheelhouse against the real things: PyPI over the network, a Pyodide-shaped distribution
 * directory, a hostile PEP 691 index on a loopback socket, and concurrent `wasmbox packages add`
 * processes. Downloads stay small (no sympy or networkx here).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { WasmboxError } from "../src/core/errors.js";
import { packagesCommand } from "../src/cli/packages-command.js";
import { addPackages, readWheelhouse, removePackages, resolvePackageSet } from "../src/packages/wheelhouse.js";
import { makeWheel, makeZip } from "./helpers/zip-writer.js";

const root = mkdtempSync(join(tmpdir(), "wheelhouse-test-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `house-${n++}`);
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const LOCK = JSON.parse(readFileSync(fileURLToPath(import.meta.resolve("pyodide/pyodide-lock.json")), "utf8")) as { info: Record<string, string> };

/** The wheelhouse's manifest and file names, to compare before and after a failed add. */
function snapshot(dir: string): string {
  const manifest = existsSync(join(dir, "wheelhouse.json")) ? readFileSync(join(dir, "wheelhouse.json"), "utf8") : "(none)";
  const files = existsSync(join(dir, "wheels")) ? readdirSync(join(dir, "wheels")).sort().join(",") : "(none)";
  return `${manifest}\n${files}`;
}

function capture(): { stream: NodeJS.WritableStream; text: () => string } {
  let text = "";
  const stream = { write: (chunk: string) => ((text += chunk), true) } as unknown as NodeJS.WritableStream;
  return { stream, text: () => text };
}

const isError = (code: string, pattern: RegExp) => (e: unknown) => e instanceof WasmboxError && e.code === code && pattern.test(e.message);

describe("wheelhouse against PyPI", () => {
  const dir = freshDir();

  test("adds tabulate and python-dateutil 2.9.0.post0 with six, records them, lists and removes them", async () => {
    const lines: string[] = [];
    const added = await addPackages(dir, ["tabulate", "python-dateutil==2.9.0.post0"], { onProgress: (l) => lines.push(l) });
    assert.deepEqual(added.map((p) => p.name), ["python-dateutil", "six", "tabulate"]);
    assert.ok(lines.some((l) => /^fetching six \S+ \(\d+ kB\) from https:\/\//.test(l)), lines.join("\n"));
    const house = readWheelhouse(dir);
    const dateutil = house.packages.get("python-dateutil")!;
    assert.equal(dateutil.version, "2.9.0.post0");
    assert.deepEqual(dateutil.requires, ["six"]);
    assert.deepEqual(dateutil.imports, ["dateutil"]);
    assert.equal(dateutil.native, false);
    assert.equal(dateutil.kind, "package");
    assert.equal(dateutil.source, "pypi:https://pypi.org/simple");
    for (const p of house.packages.values()) assert.equal(sha256(readFileSync(join(dir, p.file))), p.sha256);
    assert.deepEqual(resolvePackageSet(dir, ["python-dateutil"]).map((p) => p.name), ["python-dateutil", "six"]);

    const out = capture();
    assert.equal(await packagesCommand(["list", "--wheelhouse", dir], out.stream, capture().stream), 0);
    const listed = out.text().split("\n");
    assert.equal(listed[0], dir);
    assert.match(listed.find((l) => l.startsWith("tabulate"))!, /^tabulate\s+\S+\s+pure\s+\d+ kB\s+tabulate$/);

    assert.deepEqual(removePackages(dir, ["tabulate"]), ["tabulate"]);
    assert.deepEqual([...readWheelhouse(dir).packages.keys()], ["python-dateutil", "six"]);
  });

  test("adding again what is present uses no network", async () => {
    const again = await addPackages(dir, ["python-dateutil"], { indexUrl: "http://127.0.0.1:9/simple" });
    assert.deepEqual(again.map((p) => p.name), ["python-dateutil", "six"]);
  });

  test("a name PyPI does not know is PACKAGE_NOT_FOUND, and the wheelhouse is unchanged", async () => {
    const before = snapshot(dir);
    await assert.rejects(addPackages(dir, ["tabulate", "wasmbox-no-such-package-zq7x"]), isError("PACKAGE_NOT_FOUND", /no package named "wasmbox-no-such-package-zq7x" on https:\/\/pypi\.org\/simple/));
    assert.equal(snapshot(dir), before);
  });

  test("numpy has no wheel for the sandbox on PyPI: the error names it and suggests --pyodide-dist", async () => {
    const before = snapshot(dir);
    await assert.rejects(addPackages(dir, ["numpy"]), isError("PACKAGE_NOT_FOUND", /"numpy" has no wheel that runs in the sandbox.*--pyodide-dist/s));
    assert.equal(snapshot(dir), before);
  });

  test("pydantic brings pydantic-core as its native pyemscripten wheel, and its pure dependencies", async () => {
    const house = freshDir();
    const added = await addPackages(house, ["pydantic"]);
    assert.deepEqual(added.map((p) => p.name), ["annotated-types", "pydantic", "pydantic-core", "typing-extensions", "typing-inspection"]);
    const core = added.find((p) => p.name === "pydantic-core")!;
    assert.equal(core.native, true);
    assert.match(core.file, new RegExp(`^wheels/pydantic_core-[^-]+-cp314-cp314-pyemscripten_${LOCK.info.abi_version}_wasm32\\.whl$`));
    assert.deepEqual(core.imports, ["pydantic_core"]);
    assert.ok(added.find((p) => p.name === "pydantic")!.requires.includes("pydantic-core"));
  });

  describe("a Pyodide distribution directory as the source", () => {
    const dist = join(root, "pyodide-dist");
    const lib = makeZip([{ path: "libfoo.so", data: "\0asm fake shared library" }]);
    const writeLock = (overrides: { sixSha?: string; info?: Record<string, string> } = {}) => {
      const house = readWheelhouse(dir).packages;
      const entry = (name: string, depends: string[], imports: string[]) => {
        const p = house.get(name)!;
        const file = p.file.split("/").pop()!;
        copyFileSync(join(dir, p.file), join(dist, file));
        return { name, version: p.version, file_name: file, install_dir: "site", package_type: "package", sha256: name === "six" && overrides.sixSha ? overrides.sixSha : p.sha256, depends, imports };
      };
      writeFileSync(join(dist, "libfoo-1.0.zip"), lib);
      writeFileSync(
        join(dist, "pyodide-lock.json"),
        JSON.stringify({
          info: overrides.info ?? LOCK.info,
          packages: {
            "python-dateutil": entry("python-dateutil", ["six"], ["dateutil"]),
            six: entry("six", [], ["six"]),
            libfoo: { name: "libfoo", version: "1.0", file_name: "libfoo-1.0.zip", install_dir: "dynlib", package_type: "shared_library", sha256: sha256(lib), depends: [], imports: [] },
          },
        }),
      );
    };
    before(() => mkdirSync(dist, { recursive: true }));

    test("takes the packages its lock holds from it (no index needed), shared libraries included", async () => {
      writeLock();
      const house = freshDir();
      const added = await addPackages(house, ["python-dateutil", "libfoo"], { pyodideDist: dist, indexUrl: "http://127.0.0.1:9/simple" });
      assert.deepEqual(added.map((p) => `${p.name}:${p.kind}:${p.source}`), [`libfoo:shared_library:pyodide:${dist}`, `python-dateutil:package:pyodide:${dist}`, `six:package:pyodide:${dist}`]);
      assert.equal(added[0]!.file, "wheels/libfoo-1.0.zip");
      assert.equal(added[0]!.native, true);
      assert.deepEqual(added[1]!.requires, ["six"]);
    });

    test("a file whose sha256 differs from the lock's is refused, and the wheelhouse is unchanged", async () => {
      writeLock({ sixSha: "0".repeat(64) });
      const house = freshDir();
      await assert.rejects(addPackages(house, ["python-dateutil"], { pyodideDist: dist, indexUrl: "http://127.0.0.1:9/simple" }), isError("PACKAGE_INVALID", /six-.*sha256.*pyodide-lock\.json says 0000/));
      assert.equal(snapshot(house), "(none)\n(none)");
    });

    test("a distribution for another Python or ABI is refused, naming both", async () => {
      writeLock({ info: { ...LOCK.info, abi_version: "2025_0", python: "3.13.2" } });
      await assert.rejects(addPackages(freshDir(), ["six"], { pyodideDist: dist }), isError("PACKAGE_INVALID", /Python 3\.13\.2, ABI pyemscripten_2025_0_wasm32.*sandbox runs Python 3\.14/));
    });
  });
});

describe("wheelhouse against a hostile index on loopback", () => {
  let server: Server;
  let indexUrl: string;
  const files = new Map<string, Uint8Array>();
  const projects = new Map<string, { filename: string; sha256: string; requires?: string[] }[]>();
  const publish = (name: string, version: string, wheel: Uint8Array, options: { sha256?: string } = {}) => {
    const filename = `${name}-${version}-py3-none-any.whl`;
    files.set(filename, wheel);
    projects.set(name, [...(projects.get(name) ?? []), { filename, sha256: options.sha256 ?? sha256(wheel) }]);
  };

  before(async () => {
    publish("good", "1.0", makeWheel("good", "1.0", { "good/__init__.py": "" }));
    publish("other", "2.0", makeWheel("other", "2.0", { "other.py": "" }));
    publish("badhash", "1.0", makeWheel("badhash", "1.0", { "badhash.py": "" }), { sha256: "f".repeat(64) });
    const bomb = makeZip([
      { path: "bomb/__init__.py", data: "" },
      { path: "bomb/payload.bin", data: new Uint8Array(4 * 1024 * 1024), declaredSize: 1000 },
      ...[...readZipSpecs("bomb", "1.0")],
    ]);
    publish("bomb", "1.0", bomb);
    const whole = makeWheel("trunc", "1.0", { "trunc.py": "x = 1\n".repeat(1000) });
    publish("trunc", "1.0", whole.subarray(0, whole.length - 40));
    publish("needsbad", "1.0", makeWheel("needsbad", "1.0", { "needsbad.py": "" }, { requiresDist: ["badhash"] }));
    // A file name that would climb out of the wheelhouse were it used as a path.
    const climber = makeWheel("climber", "1.0", { "climber.py": "" });
    files.set("climber-1.0-py3-none-any.whl", climber);
    projects.set("climber", [{ filename: "../../../climber-1.0-py3-none-any.whl", sha256: sha256(climber) }]);
    server = createServer((req, res) => {
      const url = new URL(req.url!, "http://x");
      const project = /^\/simple\/([^/]+)\/$/.exec(url.pathname);
      if (project && projects.has(project[1]!)) {
        res.setHeader("content-type", "application/vnd.pypi.simple.v1+json");
        res.end(JSON.stringify({ meta: { "api-version": "1.1" }, name: project[1], files: projects.get(project[1]!)!.map((f) => ({ filename: f.filename, url: `../../files/${f.filename}`, hashes: { sha256: f.sha256 } })) }));
        return;
      }
      const file = /^\/files\/(.+)$/.exec(url.pathname);
      if (file && files.has(file[1]!)) return void res.end(files.get(file[1]!));
      res.statusCode = 404;
      res.end("not found");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    indexUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/simple`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("a wheel whose sha256 does not match the index is PACKAGE_INVALID; nothing lands, not even the good package", async () => {
    const house = freshDir();
    await assert.rejects(addPackages(house, ["good", "needsbad"], { indexUrl }), isError("PACKAGE_INVALID", /badhash-1\.0-py3-none-any\.whl .*has sha256 .* but the index says ffff/));
    assert.equal(snapshot(house), "(none)\n(none)");
  });

  test("a zip bomb (an entry that inflates past its declared size) is PACKAGE_INVALID, the wheelhouse unchanged", async () => {
    const house = freshDir();
    await addPackages(house, ["good"], { indexUrl });
    const before = snapshot(house);
    await assert.rejects(addPackages(house, ["bomb"], { indexUrl }), isError("PACKAGE_INVALID", /bomb-1\.0-py3-none-any\.whl.*inflates past its declared size/));
    assert.equal(snapshot(house), before);
    assert.deepEqual(readdirSync(house).filter((f) => f.startsWith(".staging")), []);
  });

  test("an index file name with a path in it is never a wheel: nothing is written outside (or inside) the wheelhouse", async () => {
    const house = freshDir();
    const parent = join(house, "..");
    const before = readdirSync(parent).sort();
    await assert.rejects(addPackages(house, ["climber"], { indexUrl }), (e: unknown) => e instanceof WasmboxError && /climber/.test(e.message));
    assert.deepEqual(readdirSync(parent).sort(), before);
    assert.equal(snapshot(house), "(none)\n(none)");
  });

  test("a truncated wheel is PACKAGE_INVALID, the wheelhouse unchanged", async () => {
    const house = freshDir();
    await assert.rejects(addPackages(house, ["trunc"], { indexUrl }), isError("PACKAGE_INVALID", /trunc-1\.0-py3-none-any\.whl/));
    assert.equal(snapshot(house), "(none)\n(none)");
  });

  test("an index answering an error status is PACKAGE_DOWNLOAD_FAILED naming the URL and status", async () => {
    const broken = createServer((_req, res) => ((res.statusCode = 503), res.end("down")));
    await new Promise<void>((resolve) => broken.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(broken.address() as AddressInfo).port}/simple`;
      await assert.rejects(addPackages(freshDir(), ["good"], { indexUrl: url }), isError("PACKAGE_DOWNLOAD_FAILED", new RegExp(`GET ${url}/good/ failed: HTTP 503`)));
    } finally {
      await new Promise<void>((resolve) => broken.close(() => resolve()));
    }
  });

  test("two `wasmbox packages add` processes into one wheelhouse at once both land", async () => {
    const house = freshDir();
    const cli = fileURLToPath(new URL("../src/cli/bin.ts", import.meta.url));
    const run = (name: string) =>
      new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", "tsx", cli, "packages", "add", name, "--wheelhouse", house, "--index-url", indexUrl], { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code, stderr }));
      });
    const results = await Promise.all([run("good"), run("other")]);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([...readWheelhouse(house).packages.keys()].sort(), ["good", "other"]);
    assert.ok(!existsSync(join(house, "wheelhouse.lock")));
  });

  test("two addPackages calls in one process at once both land", async () => {
    const house = freshDir();
    await Promise.all([addPackages(house, ["good"], { indexUrl }), addPackages(house, ["other"], { indexUrl })]);
    assert.deepEqual([...readWheelhouse(house).packages.keys()].sort(), ["good", "other"]);
  });
});

/** The dist-info entries of a minimal wheel, to build a malicious one around. */
function* readZipSpecs(name: string, version: string) {
  yield { path: `${name}-${version}.dist-info/METADATA`, data: `Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\n` };
  yield { path: `${name}-${version}.dist-info/WHEEL`, data: "Wheel-Version: 1.0\nTag: py3-none-any\n" };
  yield { path: `${name}-${version}.dist-info/RECORD`, data: "" };
}
