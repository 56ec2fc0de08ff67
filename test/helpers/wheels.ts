/**
 * Wheels for the package tests: real ones from PyPI, fetched once into a wheelhouse shared by the
 * test files of one machine (WASMBOX_TEST_WHEELHOUSE, default under the OS temp dir), and small
 * hand-made ones (a package that raises on import, two that install the same file).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addPackages } from "../../src/packages/wheelhouse.js";
import { makeWheel } from "./zip-writer.js";

/** Pure Python (sympy, networkx, dateutil, tabulate, pygal) and native Pyodide-ABI (pydantic-core, msgspec). */
export const TEST_PACKAGES = ["sympy", "networkx", "python-dateutil", "tabulate", "pygal", "pydantic", "msgspec"];

let shared: Promise<string> | null = null;

/** A wheelhouse holding TEST_PACKAGES, downloaded from PyPI on first use and reused after. */
export function testWheelhouse(): Promise<string> {
  shared ??= (async () => {
    const dir = process.env.WASMBOX_TEST_WHEELHOUSE ?? join(tmpdir(), "wasmbox-test-wheelhouse");
    mkdirSync(dir, { recursive: true });
    await addPackages(dir, TEST_PACKAGES, {});
    return dir;
  })();
  return shared;
}

/**
 * Writes a pure-Python wheel `name-version-py3-none-any.whl` into `dir` with `files` (path in the
 * wheel -> text) plus its dist-info, and returns its path.
 */
export function makeWheelFile(dir: string, name: string, version: string, files: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}-${version}-py3-none-any.whl`);
  writeFileSync(path, makeWheel(name, version, files));
  return path;
}
