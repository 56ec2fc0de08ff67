import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { WasmboxError } from "../core/errors.js";
import { formatSpecifierSet } from "./pep440.js";
import { evaluateMarker, normalizeName, parseMarker, parseRequirement, requirementApplies, sandboxEnvironment } from "./requirement.js";
import { sandboxTarget } from "./sandbox-target.js";

const env = sandboxEnvironment();
const holds = (marker: string, extra = "") => evaluateMarker(parseMarker(marker), { ...env, extra });

describe("PEP 508 requirements", () => {
  test("names are normalized per PEP 503", () => {
    assert.equal(normalizeName("Foo.Bar__baz-QUX"), "foo-bar-baz-qux");
    assert.equal(parseRequirement("Pydantic_Core>=2").name, "pydantic-core");
  });

  test("parses name, extras, parenthesized specifiers and a marker", () => {
    const r = parseRequirement('requests[socks, Security] (>=2.0,<3) ; python_version >= "3.8"');
    assert.equal(r.name, "requests");
    assert.deepEqual(r.extras, ["security", "socks"]);
    assert.equal(formatSpecifierSet(r.specifier), ">=2.0,<3");
    assert.ok(r.marker);
  });

  test("a bare name has no specifiers and no marker", () => {
    const r = parseRequirement("  six ");
    assert.deepEqual(r, { name: "six", extras: [], specifier: { specifiers: [] }, marker: null, text: "six" });
  });

  test("the URL form is refused with a message saying it is not supported", () => {
    assert.throws(() => parseRequirement("pkg @ https://example.com/pkg.whl"), (e: unknown) => e instanceof WasmboxError && /not supported/.test(e.message));
  });

  test("malformed requirements throw INVALID_REQUEST naming the text", () => {
    for (const bad of ["", ">=1.0", "pkg[", "pkg >=1.0 ;", "pkg ; os_name ==", 'pkg ; unknown_var == "x"', 'pkg ; (os_name == "posix"']) {
      assert.throws(() => parseRequirement(bad), (e: unknown) => e instanceof WasmboxError && e.code === "INVALID_REQUEST", bad);
    }
  });
});

describe("markers, evaluated for the sandbox", () => {
  test("the sandbox environment is CPython 3.14 on Emscripten wasm32, from pyodide-lock.json", () => {
    assert.equal(env.python_version, "3.14");
    assert.equal(env.python_full_version, sandboxTarget().pythonFullVersion);
    assert.match(env.python_full_version!, /^3\.14\.\d+$/);
    assert.equal(env.sys_platform, "emscripten");
    assert.equal(env.platform_system, "Emscripten");
    assert.equal(env.platform_machine, "wasm32");
    assert.equal(env.os_name, "posix");
  });

  test("python_version compares as a version, not a string (3.14 > 3.9)", () => {
    assert.ok(holds('python_version >= "3.9"'));
    assert.ok(!holds('python_version < "3.9"'));
    assert.ok(holds('python_version > "3.8" and python_full_version >= "3.14.0"'));
    assert.ok(!holds('python_version < "3.11"')); // e.g. the tomli and exceptiongroup backports
    assert.ok(holds('"3.9" <= python_version'));
  });

  test("host platforms do not match: win32, darwin, linux, x86_64, PyPy", () => {
    assert.ok(!holds('sys_platform == "win32"'));
    assert.ok(!holds('sys_platform == "darwin" or platform_system == "Linux"'));
    assert.ok(!holds('platform_machine == "x86_64"'));
    assert.ok(!holds('implementation_name == "pypy"'));
    assert.ok(holds('sys_platform != "win32" and implementation_name == "cpython"'));
  });

  test("and binds tighter than or; parentheses regroup", () => {
    assert.ok(holds('os_name == "nt" and os_name == "nt" or os_name == "posix"'));
    assert.ok(!holds('os_name == "nt" and (os_name == "nt" or os_name == "posix")'));
  });

  test("in and not in test substrings", () => {
    assert.ok(holds('"ems" in sys_platform'));
    assert.ok(holds('sys_platform not in "win32 cygwin"'));
  });

  test("extra matches only when requested, normalized", () => {
    const r = parseRequirement('email-validator>=2.0 ; extra == "Email_Check"');
    assert.equal(requirementApplies(r, []), false);
    assert.equal(requirementApplies(r, ["email-check"]), true);
    assert.equal(requirementApplies(parseRequirement('six ; python_version >= "3"'), []), true);
  });
});
