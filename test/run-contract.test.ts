/**
 * The RunResult wire contract, field by field and status by status, against the real thing:
 * real Deno executors running real Pyodide. One Sandbox is shared by the whole file so the suite
 * stays cheap; every run still gets its own fresh executor.
 *
 * Imports come from dist/ (run `npm run build` first): the host starts the executor from the
 * compiled dist/executor/main.js next to the host code it was loaded from.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  fileBytes,
  run,
  RUN_STATUSES,
  Sandbox,
  WasmboxError,
  decodeLosslessValue,
  type RunRequest,
  type RunResult,
  type WasmboxErrorCode,
} from "../dist/index.js";

const RESULT_KEYS = ["cpuTimeMs", "durationMs", "error", "exitCode", "files", "results", "status", "stderr", "stdout", "value", "valueLossless", "valueRepr"];
/** Spellings of internal frames that must never reach a user's traceback. */
const INTERNAL_MARKERS = ["_pyodide", "pyodide", "<wasmbox>", "_wasmbox_runner"];

let sandbox: Sandbox;

before(async () => {
  sandbox = await Sandbox.create({ poolSize: 2, maxConcurrency: 2 });
});

after(async () => {
  await sandbox?.close();
});

/** Checks the shape every result has, whatever its status; returns it for chaining. */
function checkShape(result: RunResult): RunResult {
  const shown = JSON.stringify(result);
  assert.deepEqual(Object.keys(result).sort(), RESULT_KEYS, shown);
  assert.ok(RUN_STATUSES.includes(result.status), shown);
  assert.ok(result.exitCode === null || Number.isInteger(result.exitCode), shown);
  assert.equal(typeof result.stdout, "string", shown);
  assert.equal(typeof result.stderr, "string", shown);
  assert.ok(result.valueRepr === null || typeof result.valueRepr === "string", shown);
  assert.ok(result.cpuTimeMs === null || (Number.isInteger(result.cpuTimeMs) && result.cpuTimeMs >= 0), shown);
  if (result.error !== null) {
    assert.deepEqual(Object.keys(result.error).sort(), ["message", "traceback", "type"], shown);
    for (const key of ["type", "message", "traceback"] as const) assert.equal(typeof result.error[key], "string", shown);
  }
  assert.ok(Array.isArray(result.files), shown);
  for (const file of result.files) {
    assert.deepEqual(Object.keys(file).sort(), ["content", "encoding", "path", "size"], shown);
    assert.ok(file.encoding === "utf8" || file.encoding === "base64", shown);
    assert.equal(fileBytes(file).length, file.size, shown);
  }
  assert.equal(typeof result.durationMs, "number", shown);
  assert.ok(Number.isFinite(result.durationMs) && result.durationMs >= 0, shown);
  // The result is the wire contract: it survives JSON unchanged.
  assert.deepEqual(JSON.parse(JSON.stringify(result)), result, shown);
  return result;
}

async function runPy(request: RunRequest, options?: Parameters<Sandbox["run"]>[1]): Promise<RunResult> {
  return checkShape(await sandbox.run(request, options));
}

function assertStatus(result: RunResult, status: RunResult["status"]): void {
  assert.equal(result.status, status, JSON.stringify(result, null, 2));
}

function rejectsWith(code: WasmboxErrorCode) {
  return (error: unknown) => {
    assert.ok(error instanceof WasmboxError, `expected a WasmboxError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

/** `File "<name>", line N, in fn` frames of a traceback, in order. */
function frames(traceback: string): [string, number, string][] {
  return [...traceback.matchAll(/^ {2}File "([^"]+)", line (\d+), in (\S+)$/gm)].map((m) => [m[1], Number(m[2]), m[3]]);
}

function assertNoInternalFrames(traceback: string): void {
  for (const marker of INTERNAL_MARKERS) assert.ok(!traceback.includes(marker), `"${marker}" in traceback:\n${traceback}`);
}

describe("status ok, stdout and the value of the last expression", () => {
  test('run() returns status "ok", exitCode 0, the stdout and nothing else for a program that prints', async () => {
    const result = await runPy({ code: "print('hello')\nprint('world')" });
    const { durationMs, cpuTimeMs, ...rest } = result;
    assert.deepEqual(rest, {
      status: "ok",
      exitCode: 0,
      stdout: "hello\nworld\n",
      stderr: "",
      value: null,
      valueLossless: null,
      valueRepr: null,
      error: null,
      files: [],
      results: [],
    });
    assert.ok(durationMs >= 0);
    assert.ok(cpuTimeMs !== null && cpuTimeMs >= 0, "the CPU the run used, read from /proc on Linux");
  });

  test("value is the last expression as JSON and valueRepr its repr, for ints, strings, lists and dicts", async () => {
    const cases: [string, unknown, string][] = [
      ["x = 6\nx * 7", 42, "42"],
      ["'h\u00e9llo' + ' w\u00f6rld'", "h\u00e9llo w\u00f6rld", "'h\u00e9llo w\u00f6rld'"],
      ["[1, 'two', 3.5, True, None, (4, 5)]", [1, "two", 3.5, true, null, [4, 5]], "[1, 'two', 3.5, True, None, (4, 5)]"],
      ["{'a': {'b': [1, 2]}, 'n': None}", { a: { b: [1, 2] }, n: null }, "{'a': {'b': [1, 2]}, 'n': None}"],
    ];
    const results = await Promise.all(cases.map(([code]) => runPy({ code })));
    cases.forEach(([code, value, repr], i) => {
      assertStatus(results[i], "ok");
      assert.deepEqual(results[i].value, value, code);
      assert.equal(results[i].valueRepr, repr, code);
    });
  });

  test("value is null and valueRepr is set when the last expression does not convert to JSON", async () => {
    const [set, object] = await Promise.all([
      runPy({ code: "{3, 1, 2}" }),
      runPy({ code: "class Point:\n    def __repr__(self):\n        return 'Point(1, 2)'\nPoint()" }),
    ]);
    assertStatus(set, "ok");
    assert.equal(set.value, null);
    assert.equal(set.valueRepr, "{1, 2, 3}");
    assertStatus(object, "ok");
    assert.equal(object.value, null);
    assert.equal(object.valueRepr, "Point(1, 2)");
  });

  test('value is null for float("nan") while valueRepr is "nan"', async () => {
    const result = await runPy({ code: "float('nan')" });
    assertStatus(result, "ok");
    assert.equal(result.value, null);
    assert.equal(result.valueRepr, "nan");
  });

  test("value and valueRepr are both null when the last expression is None or the program ends in a statement", async () => {
    const [none, statement] = await Promise.all([runPy({ code: "x = 1\nNone" }), runPy({ code: "x = 1" })]);
    for (const result of [none, statement]) {
      assertStatus(result, "ok");
      assert.equal(result.value, null);
      assert.equal(result.valueRepr, null);
    }
  });
});

describe("errors and tracebacks", () => {
  test('an uncaught exception gives status "error", exitCode 1 and a traceback pointing at the user\'s line', async () => {
    const code = ["# a comment", "", "x = 1", "y = None", "y.attr"].join("\n");
    const result = await runPy({ code });
    assertStatus(result, "error");
    assert.equal(result.exitCode, 1);
    assert.equal(result.error?.type, "AttributeError");
    assert.equal(result.error?.message, "'NoneType' object has no attribute 'attr'");
    const traceback = result.error!.traceback;
    assert.ok(traceback.startsWith("Traceback (most recent call last):\n"), traceback);
    assert.deepEqual(frames(traceback), [["<string>", 5, "<module>"]]);
    assert.ok(traceback.includes('  File "<string>", line 5, in <module>\n    y.attr\n'), traceback);
    assert.ok(traceback.endsWith("AttributeError: 'NoneType' object has no attribute 'attr'\n"), traceback);
    assertNoInternalFrames(traceback);
    assert.equal(result.stderr, traceback, "the traceback is also what the program wrote to stderr");
    assert.equal(result.value, null);
    assert.equal(result.valueRepr, null);
  });

  test("an exception in a nested function lists every user frame, outermost first, with its line", async () => {
    const code = [
      "def inner(n):",
      "    return 10 / n",
      "",
      "def middle(n):",
      "    return inner(n - 1)",
      "",
      "def outer():",
      "    return middle(1)",
      "",
      "print('before')",
      "outer()",
      "print('never')",
    ].join("\n");
    const result = await runPy({ code });
    assertStatus(result, "error");
    assert.equal(result.exitCode, 1);
    assert.equal(result.stdout, "before\n");
    assert.equal(result.error?.type, "ZeroDivisionError");
    assert.equal(result.error?.message, "division by zero");
    assert.deepEqual(frames(result.error!.traceback), [
      ["<string>", 11, "<module>"],
      ["<string>", 8, "outer"],
      ["<string>", 5, "middle"],
      ["<string>", 2, "inner"],
    ]);
    assertNoInternalFrames(result.error!.traceback);
  });

  test('a SyntaxError is status "error" naming the offending line, with no internal frames', async () => {
    const result = await runPy({ code: "x = 1\nif x\n    pass\n" });
    assertStatus(result, "error");
    assert.equal(result.exitCode, 1);
    assert.equal(result.error?.type, "SyntaxError");
    const traceback = result.error!.traceback;
    assert.ok(traceback.includes('File "<string>", line 2'), traceback);
    assert.ok(traceback.includes("    if x\n"), traceback);
    assert.ok(traceback.trimEnd().endsWith("SyntaxError: expected ':'"), traceback);
    assertNoInternalFrames(traceback);
    assert.ok(result.stderr.includes("SyntaxError"), result.stderr);
  });

  test("a traceback of a program run via entryPath names the entry path and the imported module's line", async () => {
    const result = await runPy({
      entryPath: "app/main.py",
      files: {
        "app/main.py": "import helper\n\nhelper.check(-1)\n",
        "app/helper.py": "def check(n):\n    if n < 0:\n        raise ValueError(f'negative: {n}')\n",
      },
    });
    assertStatus(result, "error");
    assert.equal(result.error?.type, "ValueError");
    assert.equal(result.error?.message, "negative: -1");
    const found = frames(result.error!.traceback);
    assert.equal(found.length, 2, result.error!.traceback);
    assert.deepEqual(found[0], ["app/main.py", 3, "<module>"]);
    assert.ok(found[1][0].endsWith("app/helper.py"), result.error!.traceback);
    assert.deepEqual(found[1].slice(1), [3, "check"]);
    assertNoInternalFrames(result.error!.traceback);
  });
});

describe("sys.exit", () => {
  test('sys.exit(0) is status "ok" with exitCode 0 and keeps the output before it', async () => {
    const result = await runPy({ code: "import sys\nprint('done')\nsys.exit(0)\nprint('never')" });
    assertStatus(result, "ok");
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, "done\n");
    assert.equal(result.error, null);
  });

  test('sys.exit(3) is status "error" with exitCode 3 and error.type "SystemExit"', async () => {
    const result = await runPy({ code: "import sys\nsys.exit(3)" });
    assertStatus(result, "error");
    assert.equal(result.exitCode, 3);
    assert.equal(result.error?.type, "SystemExit");
    assert.equal(result.error?.message, "3");
  });

  test('sys.exit("msg") is status "error" with exitCode 1 and the message on stderr and in error.message', async () => {
    const result = await runPy({ code: "import sys\nsys.exit('bad config')" });
    assertStatus(result, "error");
    assert.equal(result.exitCode, 1);
    assert.equal(result.error?.type, "SystemExit");
    assert.equal(result.error?.message, "bad config");
    assert.equal(result.stderr, "bad config\n");
  });
});

describe("stdout and stderr", () => {
  test("stdout and stderr are captured separately and invalid UTF-8 bytes are replaced", async () => {
    const code = [
      "import sys",
      "print('out 1')",
      "print('err 1', file=sys.stderr)",
      "sys.stdout.flush()",
      "sys.stdout.buffer.write(b'a\\xffb\\n')",
      "sys.stdout.buffer.flush()",
      "sys.stderr.buffer.write(b'\\xc3(\\n')",
      "sys.stderr.buffer.flush()",
      "print('caf\u00e9')",
    ].join("\n");
    const result = await runPy({ code });
    assertStatus(result, "ok");
    assert.equal(result.stdout, "out 1\na\uFFFDb\ncaf\u00e9\n");
    assert.equal(result.stderr, "err 1\n\uFFFD(\n");
  });
});

describe("files in and out", () => {
  const binary = Uint8Array.from({ length: 256 }, (_, i) => i);

  test("input files given as text, bytes and base64 reach the guest unchanged, binary included", async () => {
    const result = await runPy({
      code: [
        "import hashlib",
        "text = open('notes/a.txt', encoding='utf-8').read()",
        "raw = open('data.bin', 'rb').read()",
        "b64 = open('b64.bin', 'rb').read()",
        "{'text': text, 'raw': list(raw) == list(range(256)), 'b64': list(b64)}",
      ].join("\n"),
      files: {
        "notes/a.txt": "h\u00e9llo\n",
        "data.bin": binary,
        "b64.bin": { encoding: "base64", content: Buffer.from([0, 255, 128]).toString("base64") },
      },
    });
    assertStatus(result, "ok");
    assert.deepEqual(result.value, { text: "h\u00e9llo\n", raw: true, b64: [0, 255, 128] });
    assert.deepEqual(result.files, [], "files read but not changed are not listed");
  });

  test("a binary file round-trips: bytes in, changed by the guest, base64 out", async () => {
    const result = await runPy({
      code: "data = open('blob.bin', 'rb').read()\nopen('blob.bin', 'wb').write(data[::-1])",
      files: { "blob.bin": binary },
    });
    assertStatus(result, "ok");
    assert.equal(result.files.length, 1);
    const [file] = result.files;
    assert.equal(file.path, "blob.bin");
    assert.equal(file.encoding, "base64");
    assert.equal(file.size, 256);
    assert.deepEqual([...fileBytes(file)], [...binary].reverse());
  });

  test("files lists created and changed files, in nested directories too, and leaves out unchanged ones", async () => {
    const result = await runPy({
      code: [
        "import os",
        "open('changed.txt', 'a').write(' more')",
        "open('same.txt', 'w').write('same')  # rewritten with identical content",
        "os.makedirs('out/deep/er', exist_ok=True)",
        "open('out/deep/er/new.txt', 'w').write('new \u00fc')",
        "open('out/blob.bin', 'wb').write(bytes([0, 159, 146, 150]))",
        "os.makedirs('empty/dir')",
        "open('gone.txt', 'w').write('x')",
        "os.remove('gone.txt')",
      ].join("\n"),
      files: { "changed.txt": "start", "same.txt": "same", "untouched.bin": binary },
    });
    assertStatus(result, "ok");
    assert.deepEqual(
      result.files.map((f) => f.path).sort(),
      ["changed.txt", "out/blob.bin", "out/deep/er/new.txt"],
    );
    const byPath = new Map(result.files.map((f) => [f.path, f]));
    assert.deepEqual(byPath.get("changed.txt"), { path: "changed.txt", size: 10, encoding: "utf8", content: "start more" });
    assert.deepEqual(byPath.get("out/deep/er/new.txt"), {
      path: "out/deep/er/new.txt",
      size: 6,
      encoding: "utf8",
      content: "new \u00fc",
    });
    const blob = byPath.get("out/blob.bin")!;
    assert.equal(blob.encoding, "base64");
    assert.equal(blob.size, 4);
    assert.deepEqual([...fileBytes(blob)], [0, 159, 146, 150]);
  });
});

describe("stdin, argv and env", () => {
  test('stdin given as text is read to EOF: sys.stdin.read() returns all of it, then "" again', async () => {
    const result = await runPy({
      code: "import sys\nfirst = sys.stdin.read()\nsecond = sys.stdin.read()\n[first, second]",
      stdin: "line 1\nline 2\nno newline at end",
    });
    assertStatus(result, "ok");
    assert.deepEqual(result.value, ["line 1\nline 2\nno newline at end", ""]);
  });

  test("stdin given as bytes reaches sys.stdin.buffer unchanged", async () => {
    const result = await runPy({
      code: "import sys\nlist(sys.stdin.buffer.read())",
      stdin: new Uint8Array([0, 255, 10, 65, 128]),
    });
    assertStatus(result, "ok");
    assert.deepEqual(result.value, [0, 255, 10, 65, 128]);
  });

  test("input() reads stdin line by line and raises EOFError once stdin is exhausted", async () => {
    const result = await runPy({
      code: [
        "lines = [input(), input()]",
        "try:",
        "    input()",
        "except EOFError:",
        "    lines.append('EOF')",
        "lines",
      ].join("\n"),
      stdin: "first\nsecond\n",
    });
    assertStatus(result, "ok");
    assert.deepEqual(result.value, ["first", "second", "EOF"]);
    const uncaught = await runPy({ code: "input()" });
    assertStatus(uncaught, "error");
    assert.equal(uncaught.error?.type, "EOFError");
  });

  test('argv becomes sys.argv[1:], after "-c" for code and after the entry path for entryPath', async () => {
    const [code, entry] = await Promise.all([
      runPy({ code: "import sys\nsys.argv", argv: ["one", "two words", ""] }),
      runPy({ entryPath: "bin/tool.py", files: { "bin/tool.py": "import sys\nsys.argv" }, argv: ["--flag"] }),
    ]);
    assertStatus(code, "ok");
    assert.deepEqual(code.value, ["-c", "one", "two words", ""]);
    assertStatus(entry, "ok");
    assert.deepEqual(entry.value, ["bin/tool.py", "--flag"]);
  });

  test("env is exactly what the caller passed: os.environ holds nothing else", async () => {
    const [given, none] = await Promise.all([
      runPy({ code: "import os\ndict(os.environ)", env: { GREETING: "hello world", EMPTY: "" } }),
      runPy({ code: "import os\ndict(os.environ)" }),
    ]);
    assertStatus(given, "ok");
    assert.deepEqual(given.value, { GREETING: "hello world", EMPTY: "" });
    assertStatus(none, "ok");
    assert.deepEqual(none.value, {});
  });
});

describe("limits: time, memory and output", () => {
  test('run() returns status "timeout" and keeps the partial stdout when the guest runs past timeoutMs', async () => {
    const result = await runPy({
      code: "import time\nprint('started', flush=True)\nwhile True:\n    time.sleep(0.01)\n",
      timeoutMs: 1000,
    });
    assertStatus(result, "timeout");
    assert.equal(result.stdout, "started\n");
    assert.ok(result.error, "a timeout has an error");
    assertNoInternalFrames(result.error.traceback);
  });

  test("the soft interrupt at timeout is a KeyboardInterrupt the guest can catch to clean up", async () => {
    const result = await runPy({
      code: [
        "import time",
        "try:",
        "    while True:",
        "        time.sleep(0.01)",
        "except KeyboardInterrupt:",
        "    print('cleaned up')",
      ].join("\n"),
      timeoutMs: 500,
    });
    assertStatus(result, "timeout");
    assert.equal(result.stdout, "cleaned up\n");
  });

  test('run() returns status "timeout" when the guest ignores KeyboardInterrupt', async () => {
    const result = await runPy({
      code: [
        "import time",
        "print('stubborn', flush=True)",
        "while True:",
        "    try:",
        "        while True:",
        "            time.sleep(0.01)",
        "    except KeyboardInterrupt:",
        "        pass",
      ].join("\n"),
      timeoutMs: 500,
    });
    assertStatus(result, "timeout");
    assert.equal(result.exitCode, null, "the executor was killed, so there is no exit code");
    assert.equal(result.stdout, "stubborn\n");
    assert.equal(result.error?.type, "Timeout");
  });

  test('an uncaught MemoryError under a small memoryLimitBytes gives status "memory_limit"', async () => {
    const result = await runPy({
      code: "print('allocating', flush=True)\nblob = bytearray(512 * 1024 * 1024)",
      memoryLimitBytes: 64 * 1024 * 1024,
    });
    assertStatus(result, "memory_limit");
    assert.equal(result.stdout, "allocating\n");
    assert.ok(result.error && ["MemoryError", "MemoryLimit"].includes(result.error.type), JSON.stringify(result.error));
  });

  test('a MemoryError the guest catches is not a limit: the run is "ok"', async () => {
    const result = await runPy({
      code: "try:\n    blob = bytearray(512 * 1024 * 1024)\nexcept MemoryError:\n    blob = None\n'survived'",
      memoryLimitBytes: 64 * 1024 * 1024,
    });
    assertStatus(result, "ok");
    assert.equal(result.value, "survived");
  });

  test('output past maxOutputBytes gives status "output_limit" with stdout kept up to the cap exactly', async () => {
    const result = await runPy({ code: "print('x' * 100)\nprint('never')", maxOutputBytes: 10 });
    assertStatus(result, "output_limit");
    assert.equal(result.stdout, "x".repeat(10));
    assert.equal(result.exitCode, null);
    assert.equal(result.error?.type, "OutputLimit");
  });

  test("maxOutputBytes caps stdout and stderr together, and output exactly at the cap is still ok", async () => {
    const [over, exact] = await Promise.all([
      runPy({
        code: "import sys\nsys.stdout.write('a' * 6)\nsys.stdout.flush()\nsys.stderr.write('b' * 6)\nsys.stderr.flush()",
        maxOutputBytes: 8,
      }),
      runPy({
        code: "import sys\nsys.stdout.write('a' * 6)\nsys.stdout.flush()\nsys.stderr.write('b' * 2)\nsys.stderr.flush()",
        maxOutputBytes: 8,
      }),
    ]);
    assertStatus(over, "output_limit");
    assert.equal(over.stdout, "aaaaaa");
    assert.equal(over.stderr, "bb");
    assertStatus(exact, "ok");
    assert.equal(exact.stdout, "aaaaaa");
    assert.equal(exact.stderr, "bb");
  });

  test('a guest that traps the interpreter (a deliberate segfault) gives status "crash" with no exit code, and no stack dump in stdout', async () => {
    // os.abort() used to be the example; it now ends the program like a process would (below).
    const result = await runPy({ code: "import faulthandler\nprint('before', flush=True)\nfaulthandler._sigsegv()" });
    assertStatus(result, "crash");
    assert.equal(result.exitCode, null);
    assert.equal(result.error?.type, "Crash");
    assert.equal(result.stdout, "before\n");
    assertNoInternalFrames(result.stdout + result.stderr);
  });

  test("os.abort() ends the program with SIGABRT's exit status 134, its output kept, as error (not an executor crash)", async () => {
    const result = await runPy({ code: "import os\nprint('bye')\nos.abort()\nprint('never')" });
    assertStatus(result, "error");
    assert.equal(result.exitCode, 134);
    assert.equal(result.stdout, "bye\n");
    assert.equal(result.error?.type, "Aborted");
    assertNoInternalFrames(result.stdout + result.stderr);
  });

  test(
    "os._exit(n) ends the run with exitCode n like CPython, not as a crash",
    async () => {
      const result = await runPy({ code: "import os\nprint('bye', flush=True)\nos._exit(5)" });
      assertStatus(result, "error");
      assert.equal(result.exitCode, 5);
      assert.equal(result.stdout, "bye\n");
    },
  );
});

describe("cancellation", () => {
  test('aborting the signal mid-run ends the run with status "cancelled" and keeps the output so far', async () => {
    const controller = new AbortController();
    const streamed: string[] = [];
    const result = await runPy(
      { code: "import time\nprint('working', flush=True)\ntime.sleep(30)\nprint('never')" },
      {
        signal: controller.signal,
        onStdout: (chunk) => {
          streamed.push(chunk);
          controller.abort();
        },
      },
    );
    assertStatus(result, "cancelled");
    assert.equal(result.exitCode, null);
    assert.equal(result.stdout, "working\n");
    assert.deepEqual(streamed, ["working\n"]);
    assert.equal(result.error?.type, "Cancelled");
  });

  test('a signal aborted before the run starts gives status "cancelled" without running the guest', async () => {
    const controller = new AbortController();
    controller.abort();
    const result = await runPy({ code: "print('should not run')" }, { signal: controller.signal });
    assertStatus(result, "cancelled");
    assert.equal(result.exitCode, null);
    assert.equal(result.stdout, "");
    assert.deepEqual(result.files, []);
  });
});

describe("isolation and concurrency", () => {
  test("each run's random generator is seeded afresh, not from the snapshot", async () => {
    const draw = { code: "import random\nrandom.random()" };
    const [a, b] = [await runPy(draw), await runPy(draw)];
    assert.equal(typeof a.value, "number");
    assert.notEqual(a.value, b.value);
  });

  test("six concurrent runs with maxConcurrency 2 each get their own correct result", async () => {
    const ids = [0, 1, 2, 3, 4, 5];
    const results = await Promise.all(
      ids.map((i) =>
        runPy({
          code: [
            "import os, sys",
            "n = int(sys.stdin.read())",
            "print(f'run {n}')",
            "open(f'out-{n}.txt', 'w').write(os.environ['RUN'])",
            "n * n",
          ].join("\n"),
          stdin: String(i),
          env: { RUN: `env-${i}` },
        }),
      ),
    );
    results.forEach((result, i) => {
      assertStatus(result, "ok");
      assert.equal(result.value, i * i);
      assert.equal(result.stdout, `run ${i}\n`);
      assert.deepEqual(result.files, [{ path: `out-${i}.txt`, size: 5, encoding: "utf8", content: `env-${i}` }]);
    });
  });

  test("every run gets a fresh interpreter: globals, modules, builtins, files and env do not carry over", async () => {
    const first = await runPy({
      code: [
        "import builtins, os, sys, types",
        "LEAKED_GLOBAL = 1",
        "builtins.LEAKED_BUILTIN = 1",
        "sys.modules['leaked_module'] = types.ModuleType('leaked_module')",
        "os.environ['LEAKED_ENV'] = '1'",
        "open('leaked.txt', 'w').write('x')",
        "import json; json.dumps = None",
      ].join("\n"),
    });
    assertStatus(first, "ok");
    const second = await runPy({
      code: [
        "import builtins, json, os, sys",
        "{",
        "    'global': 'LEAKED_GLOBAL' in globals(),",
        "    'builtin': hasattr(builtins, 'LEAKED_BUILTIN'),",
        "    'module': 'leaked_module' in sys.modules,",
        "    'env': 'LEAKED_ENV' in os.environ,",
        "    'file': os.path.exists('leaked.txt'),",
        "    'patched stdlib': json.dumps is None,",
        "}",
      ].join("\n"),
    });
    assertStatus(second, "ok");
    assert.deepEqual(second.value, {
      global: false,
      builtin: false,
      module: false,
      env: false,
      file: false,
      "patched stdlib": false,
    });
  });
});

describe("lifecycle", () => {
  test("the one-shot run() export runs a program in a sandbox of its own and closes it", async () => {
    const result = checkShape(await run({ code: "print('one shot')\n6 * 7" }));
    assertStatus(result, "ok");
    assert.equal(result.stdout, "one shot\n");
    assert.equal(result.value, 42);
  });

  test("await using disposes the sandbox, after which run() rejects with SANDBOX_CLOSED", async () => {
    let escaped: Sandbox;
    {
      await using scoped = await Sandbox.create({ poolSize: 0 });
      escaped = scoped;
    }
    await assert.rejects(escaped.run({ code: "1" }), rejectsWith("SANDBOX_CLOSED"));
  });

  test("a run on a closed sandbox rejects with WasmboxError SANDBOX_CLOSED, and close() is idempotent", async () => {
    const closed = await Sandbox.create({ poolSize: 0 });
    await closed.close();
    await closed.close();
    await assert.rejects(closed.run({ code: "1" }), rejectsWith("SANDBOX_CLOSED"));
  });
});

describe("invalid requests", () => {
  test("invalid requests reject with WasmboxError INVALID_REQUEST before any guest code runs", async () => {
    const bad: unknown[] = [
      { code: 5 },
      { code: "1", unknownField: true },
      { code: "1", timeout: 1000 },
      {},
      { files: { "main.py": "1" } },
      { code: "1", entryPath: "main.py", files: { "main.py": "1" } },
      { entryPath: "missing.py" },
      { code: "1", stdin: { encoding: "base64", content: "not base64!" } },
      { code: "1", files: { "a.bin": { encoding: "base64", content: "@@@@" } } },
      { code: "1", argv: "a b" },
      { code: "1", env: { A: 1 } },
      { code: "1", timeoutMs: "1000" },
      { code: "1", memoryLimitBytes: 1024 },
      { code: "1", maxOutputBytes: -1 },
    ];
    for (const request of bad) {
      await assert.rejects(sandbox.run(request as RunRequest), rejectsWith("INVALID_REQUEST"), JSON.stringify(request));
    }
  });

  test("an unsupported language rejects with WasmboxError UNSUPPORTED_LANGUAGE", async () => {
    await assert.rejects(
      sandbox.run({ code: "DISPLAY 1", language: "cobol" } as unknown as RunRequest),
      rejectsWith("UNSUPPORTED_LANGUAGE"),
    );
  });

  test("absolute or climbing file paths reject with WasmboxError INVALID_PATH", async () => {
    const bad: RunRequest[] = [
      { code: "1", files: { "/etc/passwd": "x" } },
      { code: "1", files: { "../escape.txt": "x" } },
      { code: "1", files: { "a/../../escape.txt": "x" } },
      { entryPath: "../main.py", files: { "main.py": "1" } },
    ];
    for (const request of bad) {
      await assert.rejects(sandbox.run(request), rejectsWith("INVALID_PATH"), JSON.stringify(request));
    }
  });
});

describe("values that do not convert exactly", () => {
  test("an integer beyond 2**53 gives value null and keeps the exact digits in valueRepr", async () => {
    await using sandbox = await Sandbox.create({ poolSize: 0 });
    const result = await sandbox.run({ code: "[1, 2**70]" });
    assert.equal(result.value, null);
    assert.equal(result.valueRepr, "[1, 1180591620717411303424]");
  });
});

describe("values keep their Python types in valueLossless", () => {
  test("ints of any size, integral and non-finite floats, tuples, other keys, bytes, sets, dates and decimals come back tagged, and decode", async () => {
    await using sandbox = await Sandbox.create({ poolSize: 0 });
    const code = [
      "import datetime, decimal, fractions, uuid",
      "[2.0, 2**70, -0.0, float('nan'), float('inf'), (1, 'a'), {1: 'a', '$x': 2}, {'k': 1.5}, b'\\x00\\xff', bytearray(b'a'),",
      " {3, 1, 2}, frozenset(), 1+2j, datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc),",
      " datetime.date(2024, 1, 2), datetime.timedelta(days=1, microseconds=5), decimal.Decimal('1.10'), fractions.Fraction(1, 3),",
      " uuid.UUID(int=1), None, True, 'text']",
    ].join("\n");
    const result = await sandbox.run({ code });
    assert.equal(result.status, "ok", result.stderr);
    assert.equal(result.value, null, "nan has no JSON form");
    assert.deepEqual(result.valueLossless, [
      { $float: "2.0" }, { $int: "1180591620717411303424" }, { $float: "-0.0" }, { $float: "nan" }, { $float: "inf" },
      { $tuple: [1, "a"] }, { $dict: [[1, "a"], ["$x", 2]] }, { k: 1.5 }, { $bytes: "AP8=" }, { $bytearray: "YQ==" },
      { $set: [1, 2, 3] }, { $frozenset: [] }, { $complex: [{ $float: "1.0" }, { $float: "2.0" }] },
      { $datetime: "2024-05-06T07:08:09.123456+00:00" }, { $date: "2024-01-02" }, { $timedelta: [1, 0, 5] },
      { $decimal: "1.10" }, { $fraction: [1, 3] }, { $uuid: "00000000-0000-0000-0000-000000000001" }, null, true, "text",
    ]);
    const decoded = decodeLosslessValue(result.valueLossless) as unknown[];
    assert.equal(decoded[1], 2n ** 70n);
    assert.ok(Object.is(decoded[2], -0) && Number.isNaN(decoded[3]) && decoded[4] === Infinity);
    assert.deepEqual(decoded[6], new Map<unknown, unknown>([[1, "a"], ["$x", 2]]));
    assert.deepEqual(decoded[8], new Uint8Array([0, 255]));
    assert.deepEqual(decoded[10], new Set([1, 2, 3]));
  });

  test("a value with a part the form cannot carry gives null there, and valueRepr still shows it", async () => {
    await using sandbox = await Sandbox.create({ poolSize: 0 });
    const result = await sandbox.run({ code: "class P:\n    def __repr__(self):\n        return 'P()'\n[1, P()]" });
    assert.equal(result.valueLossless, null);
    assert.equal(result.valueRepr, "[1, P()]");
  });
});
