import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { durationText, parseDurationMs, parseOsSandbox, parsePackageNames, parseSizeBytes, sizeText } from "./parse-units.js";

const MiB = 1024 * 1024;

describe("parseDurationMs", () => {
  test("parseDurationMs() reads a bare number as seconds", () => {
    assert.equal(parseDurationMs("2"), 2000);
    assert.equal(parseDurationMs("0.25"), 250);
  });

  test("parseDurationMs() reads ms, s and m suffixes in any case, with spaces around", () => {
    assert.equal(parseDurationMs("500ms"), 500);
    assert.equal(parseDurationMs("1.5s"), 1500);
    assert.equal(parseDurationMs("2m"), 120_000);
    assert.equal(parseDurationMs(" 3 S "), 3000);
    assert.equal(parseDurationMs("10MS"), 10);
  });

  test("parseDurationMs() rounds to whole milliseconds", () => {
    assert.equal(parseDurationMs("1.0004s"), 1000);
    assert.equal(parseDurationMs("1.5ms"), 2);
  });

  test("parseDurationMs() returns null for durations under one millisecond", () => {
    assert.equal(parseDurationMs("0"), null);
    assert.equal(parseDurationMs("0ms"), null);
    assert.equal(parseDurationMs("0.5ms"), null);
    assert.equal(parseDurationMs("0.0001s"), null);
  });

  test("parseDurationMs() returns null for text it cannot read", () => {
    for (const text of ["", "abc", "-1", "1h", "1e3", "1.2.3s", "s", "1 2", "Infinity"]) {
      assert.equal(parseDurationMs(text), null, JSON.stringify(text));
    }
  });
});

describe("parseSizeBytes", () => {
  test("parseSizeBytes() reads a bare number as MiB by default and as bytes when asked", () => {
    assert.equal(parseSizeBytes("512"), 512 * MiB);
    assert.equal(parseSizeBytes("100", "b"), 100);
  });

  test("parseSizeBytes() reads k, m, g and b suffixes as binary units, with optional i and b", () => {
    assert.equal(parseSizeBytes("64k"), 64 * 1024);
    assert.equal(parseSizeBytes("300m"), 300 * MiB);
    assert.equal(parseSizeBytes("1g"), 1024 * MiB);
    assert.equal(parseSizeBytes("1048576b"), 1048576);
    assert.equal(parseSizeBytes("1GiB"), 1024 * MiB);
    assert.equal(parseSizeBytes("2MB"), 2 * MiB);
    assert.equal(parseSizeBytes("8 KiB"), 8 * 1024);
    assert.equal(parseSizeBytes(" 3Mi "), 3 * MiB);
  });

  test("parseSizeBytes() accepts fractions and rounds to whole bytes", () => {
    assert.equal(parseSizeBytes("1.5k"), 1536);
    assert.equal(parseSizeBytes("0.5"), MiB / 2);
    assert.equal(parseSizeBytes("1.5b"), 2);
  });

  test("parseSizeBytes() accepts zero", () => {
    assert.equal(parseSizeBytes("0"), 0);
    assert.equal(parseSizeBytes("0b"), 0);
  });

  test("parseSizeBytes() returns null for text it cannot read", () => {
    for (const text of ["", "x", "-1", "1t", "1e6", "k", "1 2m", "1kk", "Infinity"]) {
      assert.equal(parseSizeBytes(text), null, JSON.stringify(text));
    }
  });
});

describe("sizeText and durationText", () => {
  test("sizeText() and durationText() write defaults the way the flags read them back", () => {
    for (const bytes of [1024, 64 * 1024, MiB, 8 * MiB, 1024 * MiB, 1000]) assert.equal(parseSizeBytes(sizeText(bytes), "b"), bytes);
    for (const ms of [500, 1000, 10_000, 60_000, 90_000, 1500]) assert.equal(parseDurationMs(durationText(ms)), ms);
    assert.equal(sizeText(8 * MiB), "8m");
    assert.equal(durationText(30_000), "30s");
  });
});

describe("parsePackageNames and parseOsSandbox", () => {
  test("parsePackageNames() splits on commas, trims, and drops empty names", () => {
    assert.deepEqual(parsePackageNames("sympy"), ["sympy"]);
    assert.deepEqual(parsePackageNames(" sympy , pydantic>=2,, "), ["sympy", "pydantic>=2"]);
    assert.deepEqual(parsePackageNames(" , "), []);
  });

  test("parseOsSandbox() reads auto, require and off, and nothing else", () => {
    for (const mode of ["auto", "require", "off"] as const) assert.equal(parseOsSandbox(mode), mode);
    for (const text of ["", "AUTO", "on", " off", "required"]) assert.equal(parseOsSandbox(text), null, JSON.stringify(text));
  });
});
