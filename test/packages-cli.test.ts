/**
 * `wasmbox packages` through the real CLI entry point (run from sources with tsx): help, exit
 * codes, and list/remove on a wheelhouse made from a local wheel (no network).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { makeWheel } from "./helpers/zip-writer.js";
import { wasmbox as run } from "./helpers/cli.js";

const CLI = fileURLToPath(new URL("../src/cli/bin.ts", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "packages-cli-test-"));
after(() => rmSync(root, { recursive: true, force: true }));

const wasmbox = (args: string[]) => run(args, { entry: CLI, env: { ...process.env, WASMBOX_WHEELHOUSE: join(root, "default-house") } });

describe("wasmbox packages", () => {
  test("--help of add, list and remove prints each one's usage and exits 0", async () => {
    for (const sub of ["add", "list", "remove"]) {
      const r = await wasmbox(["packages", sub, "--help"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^usage: wasmbox packages ${sub} `));
    }
    const top = await wasmbox(["packages", "--help"]);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /wasmbox packages add SPEC/);
  });

  test("wasmbox --help lists the packages command, and wasmbox packages --help its three commands with their options", async () => {
    assert.match((await wasmbox(["--help"])).stdout, /^ {2}packages +\S/m);
    const r = await wasmbox(["packages", "--help"]);
    assert.match(r.stdout, /wasmbox packages list \[--json\] \[--wheelhouse DIR\]/);
    for (const flag of ["--wheelhouse", "--index-url", "--pyodide-dist", "--json"]) assert.match(r.stdout, new RegExp(`^ {2}${flag} `, "m"));
  });

  test("bad arguments exit 2 naming the problem: no command, unknown command, unknown option, missing value, no names", async () => {
    for (const [args, pattern] of [
      [["packages"], /packages needs a command/],
      [["packages", "frob"], /unknown packages command frob/],
      [["packages", "list", "--frob"], /unknown option --frob/],
      [["packages", "add", "six", "--index-url"], /--index-url needs a value/],
      [["packages", "remove"], /name at least one package/],
    ] as const) {
      const r = await wasmbox([...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
  });

  test("package errors exit 1 with `wasmbox: <message>`", async () => {
    const r = await wasmbox(["packages", "remove", "nothing-here"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^wasmbox: package "nothing-here" is not in the wheelhouse/);
  });

  test("add a local wheel, list it (directory first, then the package; --json too), remove it", async () => {
    const house = join(root, "house");
    const wheel = join(root, "demo_pkg-1.0-py3-none-any.whl");
    writeFileSync(wheel, makeWheel("demo-pkg", "1.0", { "demo_pkg/__init__.py": "" }));
    const added = await wasmbox(["packages", "add", wheel, "--wheelhouse", house]);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stderr, /added 1 package \(demo-pkg 1\.0\)/);
    const listed = await wasmbox(["packages", "list", "--wheelhouse", house]);
    assert.equal(listed.code, 0);
    const lines = listed.stdout.trimEnd().split("\n");
    assert.equal(lines[0], house);
    assert.match(lines[1]!, /^demo-pkg\s+1\.0\s+pure\s+\d+ kB\s+demo_pkg$/);
    const json = JSON.parse((await wasmbox(["packages", "list", "--json", "--wheelhouse", house])).stdout);
    assert.equal(json.dir, house);
    assert.equal(json.packages[0].name, "demo-pkg");
    const removed = await wasmbox(["packages", "remove", "demo_pkg", "--wheelhouse", house]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match((await wasmbox(["packages", "list", "--wheelhouse", house])).stdout, /\(empty\)/);
  });

  test("list without --wheelhouse uses $WASMBOX_WHEELHOUSE", async () => {
    const r = await wasmbox(["packages", "list"]);
    assert.equal(r.stdout, `${join(root, "default-house")} (empty)\n`);
  });
});
