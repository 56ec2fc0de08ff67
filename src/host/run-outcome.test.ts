import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { normalizeRunRequest } from "../protocol/run-request.js";
import { assembleResult, judgeOutcome, validateOutcome, type RunRecord } from "./run-outcome.js";

const run = normalizeRunRequest({ code: "1", maxOutputBytes: 1000, maxOutputFileBytes: 10, maxOutputFilesTotalBytes: 15 });
const honest = { status: "ok", exitCode: 0, value: 42, valueLossless: 42, valueRepr: "42", error: null, files: [] };
const record = (over: Partial<RunRecord> = {}): RunRecord => ({ run, startedAt: performance.now(), chunks: [], interrupted: false, crashMessage: null, timeLimit: null, cpuTimeMs: null, ...over });

describe("validateOutcome", () => {
  test("keeps an honest outcome", () => {
    assert.deepEqual(validateOutcome(honest, run), { ...honest, filesOverLimit: [] });
  });

  test("refuses what guest code could forge: another status, a climbing path, files that are not bytes", () => {
    for (const forged of [
      { ...honest, status: "timeout" },
      { ...honest, exitCode: "0" },
      { ...honest, files: [{ path: "../../etc/passwd", data: new Uint8Array(1) }] },
      { ...honest, files: [{ path: "a.txt", data: "text" }] },
      { ...honest, error: { type: 1, message: "m", traceback: "" } },
      null,
      "ok",
    ]) {
      assert.equal(validateOutcome(forged, run), null, JSON.stringify(forged));
    }
  });

  test("passes on a well-formed lossless value and drops a malformed one guest JavaScript could forge", () => {
    for (const bad of [{ $int: 5 }, { $int: "5", extra: 1 }, { $bytes: "not base64!" }, { $nope: 1 }, { $dict: [[1]] }, { $timedelta: [1, 2] }, [Number.NaN]]) {
      assert.equal(validateOutcome({ ...honest, valueLossless: bad }, run)?.valueLossless, null, JSON.stringify(bad));
    }
    const good = [{ $int: "5" }, { $dict: [[{ $tuple: [1] }, "a"]] }, { k: [1.5, { $float: "nan" }] }];
    assert.deepEqual(validateOutcome({ ...honest, valueLossless: good }, run)?.valueLossless, good);
  });

  test("applies the output caps again, drops a value too large for the output cap, and cuts a huge repr", () => {
    const outcome = validateOutcome(
      {
        ...honest,
        value: "x".repeat(2000),
        valueRepr: "y".repeat(100_000),
        files: [{ path: "a.txt", data: new Uint8Array(8) }, { path: "big.bin", data: new Uint8Array(11) }, { path: "b.txt", data: new Uint8Array(8) }],
      },
      run,
    )!;
    assert.equal(outcome.value, null);
    assert.equal(outcome.valueRepr!.length, 65_537);
    assert.deepEqual(outcome.files.map((f) => f.path), ["a.txt"]);
    assert.deepEqual(outcome.filesOverLimit!.map((f) => [f.path, f.cap]), [["big.bin", "maxOutputFileBytes"], ["b.txt", "maxOutputFilesTotalBytes"]]);
  });
});

describe("the CPU-time limit in the result", () => {
  const cpuRun = normalizeRunRequest({ code: "1", cpuTimeMs: 300 });
  const stopped = (over: Partial<RunRecord> = {}) => record({ run: cpuRun, interrupted: true, timeLimit: "cpu", cpuAtLimitMs: 310, cpuTimeMs: 350, ...over });

  test("a run the host killed at cpuTimeMs is a timeout whose error is CpuTimeLimit, naming the limit and the CPU used", () => {
    const result = assembleResult("timeout", null, stopped());
    assert.equal(result.status, "timeout");
    assert.deepEqual(result.error, { type: "CpuTimeLimit", message: "run exceeded its CPU-time limit of 300 ms (cpuTimeMs): it had used 310 ms of CPU", traceback: "" });
    assert.equal(result.cpuTimeMs, 350);
  });

  test("a guest that answered the interrupt at cpuTimeMs gets the same error, with its traceback kept", () => {
    const outcome = validateOutcome({ ...honest, status: "error", exitCode: 1, error: { type: "KeyboardInterrupt", message: "", traceback: "Traceback ...\nKeyboardInterrupt\n" } }, cpuRun)!;
    const status = judgeOutcome(outcome, stopped());
    assert.equal(status, "timeout");
    assert.equal(outcome.error?.type, "CpuTimeLimit");
    assert.equal(outcome.error?.traceback, "Traceback ...\nKeyboardInterrupt\n");
  });

  test("the wall clock's timeout keeps its own error", () => {
    assert.equal(assembleResult("timeout", null, stopped({ timeLimit: "wall" })).error?.type, "Timeout");
  });
});

describe("judgeOutcome and assembleResult", () => {
  test("a file past a cap ends the run as output_limit, naming the file and the cap", () => {
    const outcome = validateOutcome({ ...honest, files: [{ path: "big.bin", data: new Uint8Array(11) }] }, run)!;
    assert.equal(judgeOutcome(outcome, record()), "output_limit");
    assert.match(outcome.error!.message, /output file "big.bin" is 11 bytes, over maxOutputFileBytes \(10 bytes\)/);
  });

  test("a result after the interrupt is a timeout; the host's own endings carry its error", () => {
    assert.equal(judgeOutcome(validateOutcome(honest, run)!, record({ interrupted: true })), "timeout");
    const crashed = assembleResult("crash", null, record({ crashMessage: "executor exited (SIGKILL)", chunks: [{ fd: 1, bytes: new TextEncoder().encode("partial") }] }));
    assert.equal(crashed.stdout, "partial");
    assert.deepEqual(crashed.error, { type: "Crash", message: "executor exited (SIGKILL)", traceback: "" });
    assert.equal(assembleResult("memory_limit", null, record({ limitDetail: "its resident memory reached 1 bytes" })).error!.message, `run exceeded its memory limit of ${run.memoryLimitBytes} bytes: its resident memory reached 1 bytes`);
  });
});

describe("rich results in an outcome", () => {
  const png = { data: { "image/png": "iVBORw0KGgo=", "text/plain": "<Red>" }, isMainResult: false, error: null };

  test("validateOutcome keeps well-formed rich results and refuses forged ones", () => {
    const json = { data: { "application/json": { a: [1] }, "text/html": "<b>x</b>" }, isMainResult: true, error: "_repr_png_: ValueError" };
    assert.deepEqual(validateOutcome({ ...honest, results: [png, json] }, run)?.results, [png, json]);
    for (const bad of [
      "results",
      [{ data: { "image/png": new Uint8Array(1) }, isMainResult: false, error: null }],
      [{ data: { "not a mime": "x" }, isMainResult: false, error: null }],
      [{ data: { "text/html": "x" }, isMainResult: "yes", error: null }],
      [{ data: { "text/html": "x" }, isMainResult: false, error: 3 }],
      [{ data: { "application/json": "x".repeat(2000) }, isMainResult: false, error: null }],
    ]) {
      assert.equal(validateOutcome({ ...honest, results: bad }, run), null, JSON.stringify(bad).slice(0, 200));
    }
  });

  test("an outcome without rich results (another runtime) gives an empty list in the result", () => {
    const outcome = validateOutcome(honest, run)!;
    assert.deepEqual(assembleResult(judgeOutcome(outcome, record()), outcome, record()).results, []);
  });

  test("rich results past the output cap with stdout end the run as output_limit and keep those that fit", () => {
    const big = { data: { "text/html": "h".repeat(600) }, isMainResult: false, error: null };
    const outcome = validateOutcome({ ...honest, results: [png, big] }, run)!;
    const chunks = [{ fd: 1 as const, bytes: new Uint8Array(300) }];
    assert.equal(judgeOutcome(outcome, record({ chunks })), "output_limit");
    assert.deepEqual(outcome.results, [png]);
    assert.match(outcome.error!.message, /rich results .* past maxOutputBytes \(1000 bytes; stdout and stderr 300/);
  });

  test("the runner's own over-the-cap mark ends the run as output_limit", () => {
    const outcome = validateOutcome({ ...honest, results: [png], resultsOverLimit: 5000 }, run)!;
    assert.equal(judgeOutcome(outcome, record()), "output_limit");
    assert.deepEqual(outcome.results, [png]);
  });
});
