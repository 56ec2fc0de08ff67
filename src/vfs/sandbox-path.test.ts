import assert from "node:assert/strict";
import { resolve, sep } from "node:path";
import { describe, test } from "node:test";
import { WasmboxError, type WasmboxErrorCode } from "../core/errors.js";
import { containedHostPath, normalizeSandboxPath } from "./sandbox-path.js";

function withCode(code: WasmboxErrorCode) {
  return (error: unknown) => {
    assert.ok(error instanceof WasmboxError, `expected a WasmboxError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

describe("normalizeSandboxPath", () => {
  test("normalizeSandboxPath() keeps a plain relative path as it is", () => {
    assert.equal(normalizeSandboxPath("main.py"), "main.py");
    assert.equal(normalizeSandboxPath("pkg/sub/mod.py"), "pkg/sub/mod.py");
  });

  test("normalizeSandboxPath() drops '.' segments, repeated slashes and a trailing slash", () => {
    assert.equal(normalizeSandboxPath("./a//b/./c.txt"), "a/b/c.txt");
    assert.equal(normalizeSandboxPath("dir/"), "dir");
  });

  test("normalizeSandboxPath() accepts names that merely start with dots", () => {
    assert.equal(normalizeSandboxPath(".hidden"), ".hidden");
    assert.equal(normalizeSandboxPath("..a/...b"), "..a/...b");
    assert.equal(normalizeSandboxPath("with space/ünïcode.txt"), "with space/ünïcode.txt");
  });

  test("normalizeSandboxPath() refuses absolute paths with INVALID_PATH", () => {
    assert.throws(() => normalizeSandboxPath("/etc/passwd"), withCode("INVALID_PATH"));
    assert.throws(() => normalizeSandboxPath("/sandbox/a.txt"), withCode("INVALID_PATH"));
    assert.throws(() => normalizeSandboxPath("//a"), withCode("INVALID_PATH"));
  });

  test("normalizeSandboxPath() refuses any '..' segment, even one that would stay inside", () => {
    for (const path of ["..", "../x", "a/../../x", "a/../b", "a/.."]) {
      assert.throws(() => normalizeSandboxPath(path), withCode("INVALID_PATH"), path);
    }
  });

  test("normalizeSandboxPath() refuses empty paths and paths that name no file", () => {
    for (const path of ["", ".", "./", "./."]) {
      assert.throws(() => normalizeSandboxPath(path), withCode("INVALID_PATH"), JSON.stringify(path));
    }
  });

  test("normalizeSandboxPath() refuses NUL bytes and backslashes", () => {
    assert.throws(() => normalizeSandboxPath("a\0b"), withCode("INVALID_PATH"));
    assert.throws(() => normalizeSandboxPath("a\\b"), withCode("INVALID_PATH"));
    assert.throws(() => normalizeSandboxPath("..\\x"), withCode("INVALID_PATH"));
  });

  test("normalizeSandboxPath() refuses paths longer than 4096 characters", () => {
    assert.equal(normalizeSandboxPath("a".repeat(4096)), "a".repeat(4096));
    assert.throws(() => normalizeSandboxPath("a".repeat(4097)), withCode("INVALID_PATH"));
  });

  test("normalizeSandboxPath() refuses values that are not strings", () => {
    for (const value of [5, null, undefined, {}, ["a"]]) {
      assert.throws(() => normalizeSandboxPath(value), withCode("INVALID_PATH"), String(value));
    }
  });
});

describe("containedHostPath", () => {
  const root = resolve("/tmp/wasmbox-out");

  test("containedHostPath() joins a result path under the host directory", () => {
    assert.equal(containedHostPath(root, "a/b.txt", resolve, sep), resolve(root, "a", "b.txt"));
    assert.equal(containedHostPath(root, "./x//y", resolve, sep), resolve(root, "x", "y"));
  });

  test("containedHostPath() refuses result paths that are absolute or climb out", () => {
    for (const path of ["../escape.txt", "a/../../escape.txt", "/etc/passwd", ""]) {
      assert.throws(() => containedHostPath(root, path, resolve, sep), withCode("INVALID_PATH"), path);
    }
  });

  test("containedHostPath() does not mistake a sibling directory with the same prefix for the root", () => {
    // "/tmp/wasmbox-out-evil" starts with "/tmp/wasmbox-out"; a resolve that ignored the separator would let it through.
    const fakeResolve = (...parts: string[]) => (parts.length === 1 ? parts[0] : `${parts[0]}-evil/x`);
    assert.throws(() => containedHostPath(root, "x", fakeResolve, sep), withCode("INVALID_PATH"));
  });
});
