import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { WasmboxError } from "../core/errors.js";
import { makeWheel, makeZip } from "../../test/helpers/zip-writer.js";
import { openWheel, parseCoreMetadata, wheelMetadata } from "./wheel-zip.js";

function refused(bytes: Uint8Array, pattern: RegExp, readAll = false): void {
  assert.throws(
    () => {
      const wheel = openWheel(bytes, "evil-1.0-py3-none-any.whl");
      if (readAll) for (const e of wheel.entries) wheel.read(e);
    },
    (e: unknown) => e instanceof WasmboxError && e.code === "PACKAGE_INVALID" && e.message.includes("evil-1.0-py3-none-any.whl") && pattern.test(e.message),
  );
}

describe("openWheel", () => {
  test("lists entries and reads stored and deflated files back byte for byte", () => {
    const big = "x".repeat(10_000);
    const wheel = openWheel(makeZip([{ path: "a/b.py", data: "print(1)\n", method: 0 }, { path: "a/c.txt", data: big }]), "t.whl");
    assert.deepEqual(wheel.entries.map((e) => [e.path, e.size, e.method]), [["a/b.py", 9, 0], ["a/c.txt", 10_000, 8]]);
    assert.equal(Buffer.from(wheel.read(wheel.entries[0]!)).toString(), "print(1)\n");
    assert.equal(Buffer.from(wheel.read(wheel.entries[1]!)).toString(), big);
  });

  test("reads a wheel written by Python's zipfile, directory entries left out", { skip: spawnSync("python3", ["-c", "1"]).status !== 0 && "no python3" }, () => {
    const dir = mkdtempSync(join(tmpdir(), "wheel-zip-"));
    try {
      const path = join(dir, "p.whl");
      const script = "import sys,zipfile\nwith zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED) as z:\n z.writestr('pkg/','')\n z.writestr('pkg/__init__.py','x=1\\n'*100)\n z.writestr('p-1.0.dist-info/METADATA','Name: p\\nVersion: 1.0\\n')";
      assert.equal(spawnSync("python3", ["-c", script, path]).status, 0);
      const wheel = openWheel(readFileSync(path), "p.whl");
      assert.deepEqual(wheel.entries.map((e) => e.path), ["pkg/__init__.py", "p-1.0.dist-info/METADATA"]);
      assert.equal(Buffer.from(wheel.read(wheel.entries[0]!)).toString(), "x=1\n".repeat(100));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("refuses paths that escape or confuse: absolute, .., backslash, NUL, drive letters, empty segments", () => {
    refused(makeZip([{ path: "/etc/passwd", data: "x" }]), /absolute path/);
    refused(makeZip([{ path: "a/../../x.py", data: "x" }]), /"\.\." segment/);
    refused(makeZip([{ path: "a\\b.py", data: "x" }]), /backslash/);
    refused(makeZip([{ path: "a\0b.py", data: "x" }]), /NUL/);
    refused(makeZip([{ path: "C:/x.py", data: "x" }]), /absolute path/);
    refused(makeZip([{ path: "a//b.py", data: "x" }]), /empty or "\." segment/);
  });

  test("refuses duplicate paths and symbolic links", () => {
    refused(makeZip([{ path: "a.py", data: "1" }, { path: "a.py", data: "2" }]), /appears twice/);
    refused(makeZip([{ path: "link", data: "/etc/passwd", unixMode: 0o120777 }]), /symbolic link/);
    refused(makeZip([{ path: "fifo", data: "", unixMode: 0o010644 }]), /not a regular file/);
  });

  test("refuses truncated archives and garbage", () => {
    const good = makeWheel("p", "1.0", { "p.py": "x = 1\n".repeat(50) });
    refused(good.subarray(0, good.length - 10), /end-of-central-directory|truncated/);
    refused(good.subarray(0, 10), /truncated/);
    refused(new Uint8Array(1000), /end-of-central-directory/);
  });

  test("refuses entries that lie about their size: more inflated data than declared, or less", () => {
    refused(makeZip([{ path: "bomb.txt", data: "A".repeat(100_000), declaredSize: 100 }]), /inflates past its declared size/, true);
    refused(makeZip([{ path: "short.txt", data: "A".repeat(100), declaredSize: 5000 }]), /inflates to 100 bytes, not the 5000 declared/, true);
  });

  test("refuses a CRC-32 mismatch", () => {
    refused(makeZip([{ path: "a.py", data: "x = 1\n", declaredCrc32: 12345 }]), /CRC-32/, true);
  });

  test("refuses zip bombs by ratio, per-file cap and total cap, before inflating anything", () => {
    refused(makeZip([{ path: "zeros", data: new Uint8Array(8 * 1024 * 1024) }]), /ratio over 200/);
    assert.throws(() => openWheel(makeZip([{ path: "a", data: "x".repeat(2000) }]), "w.whl", { maxFileBytes: 1000 }), /at most 1000 per file/);
    assert.throws(
      () => openWheel(makeZip([{ path: "a", data: "x".repeat(600) }, { path: "b", data: "y".repeat(600) }]), "w.whl", { maxUnpackedBytes: 1000 }),
      /more than 1000 bytes uncompressed/,
    );
  });

  test("refuses entries whose data overlap (the overlapping-entry zip bomb)", () => {
    const zip = Buffer.from(makeZip([{ path: "a", data: "x".repeat(100) }, { path: "b", data: "y".repeat(100) }]));
    // Point the second central entry's local header offset at the first entry.
    const cd = zip.readUInt32LE(zip.length - 22 + 16);
    const second = cd + 46 + 1;
    zip.writeUInt32LE(0, second + 42);
    refused(zip, /overlaps|disagrees/);
  });
});

describe("wheelMetadata", () => {
  test("reads Name, Version, every Requires-Dist and Requires-Python, and imports from top_level.txt", () => {
    const wheel = openWheel(
      makeWheel("Demo-Pkg", "1.2.3", { "demo/__init__.py": "" }, { requiresDist: ["six>=1.5", 'tomli ; python_version < "3.11"'], requiresPython: ">=3.8", topLevel: ["demo", "_demo_helper"] }),
      "demo.whl",
    );
    const meta = wheelMetadata(wheel);
    assert.equal(meta.name, "Demo-Pkg");
    assert.equal(meta.version, "1.2.3");
    assert.deepEqual(meta.requiresDist, ["six>=1.5", 'tomli ; python_version < "3.11"']);
    assert.equal(meta.requiresPython, ">=3.8");
    assert.deepEqual(meta.imports, ["_demo_helper", "demo"]);
    assert.equal(meta.native, false);
  });

  test("without top_level.txt, derives imports from packages and modules, skipping dist-info, data and __pycache__", () => {
    const meta = wheelMetadata(
      openWheel(
        makeWheel("x", "1.0", {
          "pkg/__init__.py": "",
          "pkg/sub/mod.py": "",
          "nspkg/inner/mod.py": "",
          "single.py": "",
          "_speedups.cpython-314-wasm32-emscripten.so": "\0asm",
          "__pycache__/single.cpython-314.pyc": "",
          "x-1.0.data/scripts/tool": "",
          "README.txt": "",
        }),
        "x.whl",
      ),
    );
    assert.deepEqual(meta.imports, ["_speedups", "nspkg", "pkg", "single"]);
    assert.equal(meta.native, true);
  });

  test("a wheel without METADATA is PACKAGE_INVALID naming it", () => {
    assert.throws(() => wheelMetadata(openWheel(makeZip([{ path: "a.py", data: "" }]), "nometa.whl")), (e: unknown) => e instanceof WasmboxError && e.code === "PACKAGE_INVALID" && /nometa\.whl/.test(e.message));
  });

  test("core metadata: continuation lines join, the body after the blank line is ignored", () => {
    const meta = parseCoreMetadata("Name: a\nVersion: 1\nRequires-Dist: b;\n  python_version >= '3'\n\nRequires-Dist: not-a-header\n", "a");
    assert.deepEqual(meta.requiresDist, ["b; python_version >= '3'"]);
  });
});
