/**
 * The wheelhouse without network: local wheel files as the source, hand-written manifests.
 * test/wheelhouse.test.ts covers PyPI, a Pyodide distribution and a hostile index on loopback.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { WasmboxError } from "../core/errors.js";
import { makeWheel } from "../../test/helpers/zip-writer.js";
import { addPackages, readWheelhouse, removePackages, resolvePackageSet, wheelhouseDir } from "./wheelhouse.js";

const root = mkdtempSync(join(tmpdir(), "wheelhouse-unit-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `house-${n++}`);

/** Writes wheels into a folder and returns their paths. */
function wheels(specs: { name: string; version: string; requires?: string[]; files?: Record<string, string> }[]): string[] {
  const dir = join(root, `src-${n++}`);
  mkdirSync(dir, { recursive: true });
  return specs.map((s) => {
    const path = join(dir, `${s.name.replace(/-/g, "_")}-${s.version}-py3-none-any.whl`);
    writeFileSync(path, makeWheel(s.name, s.version, s.files ?? { [`${s.name.replace(/-/g, "_")}/__init__.py`]: "" }, { requiresDist: s.requires }));
    return path;
  });
}

const notFound = (pattern: RegExp) => (e: unknown) => e instanceof WasmboxError && e.code === "PACKAGE_NOT_FOUND" && pattern.test(e.message);

describe("wheelhouse (offline)", () => {
  test("wheelhouseDir: the option, else WASMBOX_WHEELHOUSE, else <cacheDir>/wheelhouse", () => {
    assert.equal(wheelhouseDir({ wheelhouse: "/x/y" }, {}), "/x/y");
    assert.equal(wheelhouseDir({}, { WASMBOX_WHEELHOUSE: "/w" }), "/w");
    assert.equal(wheelhouseDir({}, { WASMBOX_CACHE_DIR: "/c" }), "/c/wheelhouse");
  });

  test("a missing directory or manifest reads as an empty wheelhouse", () => {
    assert.equal(readWheelhouse(join(root, "nowhere")).packages.size, 0);
  });

  test("a corrupted manifest is PACKAGE_INVALID saying so, and a fixed one is read again (the cache follows the file)", () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "wheelhouse.json"), "{not json");
    assert.throws(() => readWheelhouse(dir), (e: unknown) => e instanceof WasmboxError && e.code === "PACKAGE_INVALID" && /corrupted/.test(e.message));
    writeFileSync(join(dir, "wheelhouse.json"), JSON.stringify({ version: 1, packages: { a: { name: "a", version: "1", file: "../../etc/passwd", sha256: "0".repeat(64), requires: [], imports: [], native: false, kind: "package", source: "x" } } }));
    assert.throws(() => readWheelhouse(dir), /unsafe or missing file path/);
    writeFileSync(join(dir, "wheelhouse.json"), JSON.stringify({ version: 1, packages: {} }));
    utimesSync(join(dir, "wheelhouse.json"), new Date(), new Date(Date.now() + 5000));
    assert.equal(readWheelhouse(dir).packages.size, 0);
  });

  test("adds local wheels with their dependencies from other local wheels, and resolvePackageSet returns the closure sorted", async () => {
    const dir = freshDir();
    const [app, lib, base] = wheels([
      { name: "app", version: "1.0", requires: ["lib>=2", 'win-only ; sys_platform == "win32"', 'extra-dep ; extra == "fancy"'] },
      { name: "lib", version: "2.1", requires: ["base"] },
      { name: "base", version: "0.3" },
    ]);
    const added = await addPackages(dir, [app!, lib!, base!], { indexUrl: "http://127.0.0.1:9/simple" });
    assert.deepEqual(added.map((p) => `${p.name} ${p.version}`), ["app 1.0", "base 0.3", "lib 2.1"]);
    const house = readWheelhouse(dir);
    assert.deepEqual(house.packages.get("app")!.requires, ["lib"]);
    assert.equal(house.packages.get("app")!.source, `file:${app}`);
    assert.deepEqual(house.packages.get("app")!.imports, ["app"]);
    assert.match(house.packages.get("lib")!.file, /^wheels\/lib-2\.1-py3-none-any\.whl$/);
    assert.deepEqual(resolvePackageSet(dir, ["App"]).map((p) => p.name), ["app", "base", "lib"]);
    assert.deepEqual(resolvePackageSet(dir, ["lib>=2", "base==0.3"]).map((p) => p.name), ["base", "lib"]);
  });

  test("resolvePackageSet names the package and the command that adds it: missing, wrong version, missing dependency", async () => {
    const dir = freshDir();
    const [lone] = wheels([{ name: "lone", version: "1.0", requires: ["gone"] }, { name: "gone", version: "1.0" }]);
    const [gone] = wheels([{ name: "gone", version: "1.0" }]);
    await addPackages(dir, [lone!, gone!], { indexUrl: "http://127.0.0.1:9/simple" });
    assert.throws(() => resolvePackageSet(dir, ["sympy"]), notFound(new RegExp(`package "sympy" is not in the wheelhouse \\(${dir}\\): add it with \`wasmbox packages add sympy --wheelhouse ${dir}\``)));
    assert.throws(() => resolvePackageSet(dir, ["lone==2.0"]), notFound(/which has lone 1\.0: add it with `wasmbox packages add 'lone==2\.0'/));
    // A manifest whose dependency entry vanished (edited by hand).
    const manifest = JSON.parse(readFileSync(join(dir, "wheelhouse.json"), "utf8"));
    delete manifest.packages.gone;
    writeFileSync(join(dir, "wheelhouse.json"), JSON.stringify(manifest));
    assert.throws(() => resolvePackageSet(dir, ["lone"]), notFound(/package "gone" \(required by lone\) is not in the wheelhouse/));
  });

  test("a local wheel that does not run in the sandbox is refused, and nothing is written", async () => {
    const dir = freshDir();
    const path = join(root, "native-1.0-cp314-cp314-manylinux_2_17_x86_64.whl");
    writeFileSync(path, makeWheel("native", "1.0", { "native.so": "ELF" }));
    await assert.rejects(addPackages(dir, [path]), (e: unknown) => e instanceof WasmboxError && e.code === "PACKAGE_INVALID" && /does not run in the sandbox/.test(e.message));
    assert.equal(readWheelhouse(dir).packages.size, 0);
  });

  test("removePackages removes entries and files, keeps dependencies, refuses to orphan a dependent, and names unknown packages", async () => {
    const dir = freshDir();
    const paths = wheels([{ name: "top", version: "1.0", requires: ["dep"] }, { name: "dep", version: "1.0" }]);
    await addPackages(dir, paths, { indexUrl: "http://127.0.0.1:9/simple" });
    assert.throws(() => removePackages(dir, ["dep"]), (e: unknown) => e instanceof WasmboxError && /top requires it; remove them together: wasmbox packages remove dep top/.test(e.message));
    assert.throws(() => removePackages(dir, ["nope"]), notFound(/package "nope" is not in the wheelhouse/));
    const file = join(dir, readWheelhouse(dir).packages.get("top")!.file);
    assert.deepEqual(removePackages(dir, ["Top"]), ["top"]);
    assert.throws(() => statSync(file));
    assert.deepEqual([...readWheelhouse(dir).packages.keys()], ["dep"]);
    assert.deepEqual(removePackages(dir, ["dep"]), ["dep"]);
    assert.equal(readWheelhouse(dir).packages.size, 0);
  });

  test("a stale lock left by a dead process is taken over", async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "wheelhouse.lock"), JSON.stringify({ pid: 2 ** 22 + 12345 }));
    const [one] = wheels([{ name: "one", version: "1.0" }]);
    await addPackages(dir, [one!]);
    assert.deepEqual([...readWheelhouse(dir).packages.keys()], ["one"]);
    assert.throws(() => statSync(join(dir, "wheelhouse.lock")));
  });

  test("a staging directory left by a killed add is swept by the next add", async () => {
    const dir = freshDir();
    mkdirSync(join(dir, ".staging-4199999-abcdef"), { recursive: true });
    writeFileSync(join(dir, ".staging-4199999-abcdef", "half.whl"), "partial");
    const [two] = wheels([{ name: "two", version: "1.0" }]);
    await addPackages(dir, [two!]);
    assert.throws(() => statSync(join(dir, ".staging-4199999-abcdef")));
  });
});
