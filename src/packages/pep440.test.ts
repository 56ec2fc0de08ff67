import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { WasmboxError } from "../core/errors.js";
import {
  compareVersions,
  filterVersions,
  formatVersion,
  isPrerelease,
  parseSpecifierSet,
  parseVersion,
  specifierSetContains,
  tryParseVersion,
} from "./pep440.js";

const v = parseVersion;
const contains = (spec: string, version: string, prereleases?: boolean) =>
  specifierSetContains(parseSpecifierSet(spec), v(version), { prereleases });

describe("PEP 440 versions", () => {
  test("normalizes spellings: v prefix, alpha/beta/c, -N post-releases, separators, case", () => {
    assert.equal(formatVersion(v("v1.0")), "1.0");
    assert.equal(formatVersion(v("1.0-ALPHA.1")), "1.0a1");
    assert.equal(formatVersion(v("1.0beta")), "1.0b0");
    assert.equal(formatVersion(v("1.0c2")), "1.0rc2");
    assert.equal(formatVersion(v("1.0-2")), "1.0.post2");
    assert.equal(formatVersion(v("1.0.rev3")), "1.0.post3");
    assert.equal(formatVersion(v("1!2.0.dev4+Ubuntu-1")), "1!2.0.dev4+ubuntu.1");
  });

  test("rejects text that is not a version, with WasmboxError INVALID_REQUEST naming it", () => {
    assert.equal(tryParseVersion("1.0-foo"), null);
    assert.equal(tryParseVersion(""), null);
    assert.throws(() => v("latest"), (e: unknown) => e instanceof WasmboxError && e.code === "INVALID_REQUEST" && e.message.includes('"latest"'));
  });

  test("orders dev < alpha < beta < rc < final < post, epochs first, trailing zeros ignored", () => {
    const ordered = ["1.0.dev0", "1.0a1.dev1", "1.0a1", "1.0a2", "1.0b1", "1.0rc1", "1.0", "1.0+local", "1.0.post1.dev0", "1.0.post1", "1.1.dev0", "1.1", "2!0.1"];
    for (let i = 0; i + 1 < ordered.length; i++) {
      assert.ok(compareVersions(v(ordered[i]!), v(ordered[i + 1]!)) < 0, `${ordered[i]} < ${ordered[i + 1]}`);
    }
    assert.equal(compareVersions(v("1.0"), v("1.0.0")), 0);
    assert.ok(compareVersions(v("1.10"), v("1.9")) > 0);
  });

  test("orders local labels: numeric segments above alphanumeric ones, longer above shorter", () => {
    assert.ok(compareVersions(v("1.0+abc"), v("1.0+1")) < 0);
    assert.ok(compareVersions(v("1.0+1"), v("1.0+1.1")) < 0);
    assert.ok(compareVersions(v("1.0+2"), v("1.0+10")) < 0);
  });

  test("counts dev and pre releases as pre-releases, not post releases", () => {
    assert.equal(isPrerelease(v("1.0rc1")), true);
    assert.equal(isPrerelease(v("1.0.dev1")), true);
    assert.equal(isPrerelease(v("1.0.post1")), false);
  });
});

describe("PEP 440 specifiers", () => {
  test("== matches equal versions ignoring trailing zeros and the candidate's local label", () => {
    assert.ok(contains("==1.0", "1.0.0"));
    assert.ok(contains("==1.0", "1.0+cpu"));
    assert.ok(!contains("==1.0+cpu", "1.0+gpu"));
    assert.ok(!contains("==1.0", "1.0.1"));
  });

  test("==X.* and !=X.* match by prefix", () => {
    assert.ok(contains("==1.2.*", "1.2"));
    assert.ok(contains("==1.2.*", "1.2.9"));
    assert.ok(contains("==1.2.*", "1.2.post1"));
    assert.ok(!contains("==1.2.*", "1.3"));
    assert.ok(!contains("!=1.*", "1.5"));
    assert.ok(contains("!=1.*", "2.0"));
  });

  test("~= is >= the version and == its prefix", () => {
    assert.ok(contains("~=2.2", "2.9"));
    assert.ok(!contains("~=2.2", "3.0"));
    assert.ok(contains("~=1.4.5", "1.4.9"));
    assert.ok(!contains("~=1.4.5", "1.5.0"));
    assert.ok(!contains("~=1.4.5", "1.4.4"));
    assert.throws(() => parseSpecifierSet("~=1"), /two release segments/);
  });

  test("< excludes pre-releases of the bound, > excludes its post-releases and local versions", () => {
    assert.ok(!contains("<3.1", "3.1.0a1", true));
    assert.ok(contains("<3.1", "3.0.9"));
    assert.ok(contains("<3.1rc1", "3.1.0a1"));
    assert.ok(!contains(">3.1", "3.1.post1"));
    assert.ok(!contains(">3.1", "3.1+local"));
    assert.ok(contains(">3.1", "3.1.1"));
    assert.ok(contains(">3.1.post1", "3.1.post2"));
  });

  test("<= and >= compare public versions; === compares strings", () => {
    assert.ok(contains(">=1.0,<=2.0", "2.0+local"));
    assert.ok(contains(" >= 1.0 , < 2 ", "1.5"));
    assert.ok(contains("===1.0", "1.0"));
    assert.ok(!contains("===1.0", "1.0.0"));
  });

  test("an empty set matches every final version", () => {
    assert.ok(contains("", "0.0.1"));
    assert.ok(!contains("", "1.0a1"));
  });

  test("rejects malformed specifiers: no operator, .* with >=, local with >=", () => {
    assert.throws(() => parseSpecifierSet("1.0"), WasmboxError);
    assert.throws(() => parseSpecifierSet(">=1.*"), /only with == and !=/);
    assert.throws(() => parseSpecifierSet(">=1.0+local"), /local version/);
  });

  test("filterVersions leaves pre-releases out unless the set asks for one or they are the only matches", () => {
    const versions = ["1.0", "1.1", "2.0b1"];
    const pick = (spec: string) => filterVersions(parseSpecifierSet(spec), versions, v);
    assert.deepEqual(pick(""), ["1.0", "1.1"]);
    assert.deepEqual(pick(">=2.0b1"), ["2.0b1"]);
    assert.deepEqual(pick(">1.5"), ["2.0b1"]); // the only match
    assert.deepEqual(filterVersions(parseSpecifierSet(">1.5"), versions, v, { prereleases: false }), []);
    assert.deepEqual(filterVersions(parseSpecifierSet(""), versions, v, { prereleases: true }), versions);
  });
});
