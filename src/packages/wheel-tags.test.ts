import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { bestWheel, isSdistFilename, parseWheelFilename, wheelFit } from "./wheel-tags.js";
import { sandboxTarget, targetFromLockInfo } from "./sandbox-target.js";

const target = targetFromLockInfo({ python: "3.14.2", abi_version: "2026_0", arch: "wasm32" }, "test");
const fit = (filename: string) => wheelFit(parseWheelFilename(filename)!, target);

describe("wheel file names", () => {
  test("parse into normalized name, version, optional build tag and compressed tag sets", () => {
    assert.deepEqual(parseWheelFilename("python_dateutil-2.9.0.post0-py2.py3-none-any.whl"), {
      name: "python-dateutil",
      version: "2.9.0.post0",
      build: null,
      pythonTags: ["py2", "py3"],
      abiTags: ["none"],
      platformTags: ["any"],
    });
    assert.equal(parseWheelFilename("foo-1.0-2-py3-none-any.whl")?.build, "2");
    assert.equal(parseWheelFilename("foo-1.0.tar.gz"), null);
    assert.equal(parseWheelFilename("foo-1.0-py3-none.whl"), null);
    assert.equal(parseWheelFilename("foo-1.0-x-py3-none-any.whl"), null);
  });

  test("a file name with a path in it is not a wheel (an index's filename becomes a path in the wheelhouse)", () => {
    for (const name of ["../../tabulate-0.10.0-py3-none-any.whl", "a/b-1.0-py3-none-any.whl", "..\\x-1.0-py3-none-any.whl", ".hidden-1.0-py3-none-any.whl", "x-1.0-py3-none-any.whl\u0000"]) {
      assert.equal(parseWheelFilename(name), null, name);
    }
    assert.ok(parseWheelFilename("tabulate-0.10.0-py3-none-any.whl"));
  });

  test("the sandbox target comes from the installed pyodide's lock file", () => {
    const installed = sandboxTarget();
    assert.equal(installed.platformTag, `pyemscripten_${installed.abiVersion}_${installed.arch}`);
    assert.equal(`${installed.pythonMajor}.${installed.pythonMinor}`, "3.14");
  });

  test("sdists are recognized, and never a wheel that runs", () => {
    assert.ok(isSdistFilename("numpy-2.3.0.tar.gz"));
    assert.ok(isSdistFilename("old-1.0.zip"));
    assert.ok(!isSdistFilename("six-1.17.0-py2.py3-none-any.whl"));
  });
});

describe("which wheels run in the sandbox", () => {
  test("pure wheels for Python 3 run: py3, py2.py3, py3N and cp3N with N <= 14", () => {
    assert.equal(fit("six-1.17.0-py2.py3-none-any.whl"), "pure");
    assert.equal(fit("a-1.0-py3-none-any.whl"), "pure");
    assert.equal(fit("a-1.0-py310-none-any.whl"), "pure");
    assert.equal(fit("a-1.0-cp314-none-any.whl"), "pure");
    assert.equal(fit("a-1.0-cp315-none-any.whl"), null);
    assert.equal(fit("a-1.0-py2-none-any.whl"), null);
  });

  test("native wheels run only when built for this Pyodide ABI: cp314-cp314 or abi3", () => {
    assert.equal(fit("pydantic_core-2.41.5-cp314-cp314-pyemscripten_2026_0_wasm32.whl"), "native");
    assert.equal(fit("x-1.0-cp312-abi3-pyemscripten_2026_0_wasm32.whl"), "abi3");
    assert.equal(fit("x-1.0-cp313-cp313-pyemscripten_2026_0_wasm32.whl"), null);
    assert.equal(fit("x-1.0-cp314-cp314-pyemscripten_2025_0_wasm32.whl"), null);
    assert.equal(fit("numpy-2.3.0-cp314-cp314-manylinux_2_28_x86_64.whl"), null);
    assert.equal(fit("numpy-2.3.0-cp314-cp314-win_amd64.whl"), null);
    assert.equal(fit("x-1.0-cp315-abi3-pyemscripten_2026_0_wasm32.whl"), null);
  });

  test("bestWheel prefers the native Pyodide wheel over pure Python, and refuses a version with only sdists", () => {
    const files = [
      { filename: "x-1.0.tar.gz" },
      { filename: "x-1.0-py3-none-any.whl" },
      { filename: "x-1.0-cp314-cp314-pyemscripten_2026_0_wasm32.whl" },
      { filename: "x-1.0-cp314-cp314-manylinux_2_17_x86_64.whl" },
    ];
    assert.equal(bestWheel(files, target)?.file.filename, "x-1.0-cp314-cp314-pyemscripten_2026_0_wasm32.whl");
    assert.equal(bestWheel(files.slice(0, 2), target)?.fit, "pure");
    assert.equal(bestWheel([{ filename: "x-1.0.tar.gz" }, files[3]!], target), null);
  });

  test("a higher build tag wins between equally good wheels", () => {
    const files = [{ filename: "x-1.0-1-py3-none-any.whl" }, { filename: "x-1.0-2-py3-none-any.whl" }, { filename: "x-1.0-py3-none-any.whl" }];
    assert.equal(bestWheel(files, target)?.file.filename, "x-1.0-2-py3-none-any.whl");
  });
});
