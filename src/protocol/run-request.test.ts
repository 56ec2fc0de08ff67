import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { WasmboxError, type WasmboxErrorCode } from "../core/errors.js";
import {
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_MAX_OUTPUT_FILE_BYTES,
  DEFAULT_MAX_OUTPUT_FILES_TOTAL_BYTES,
  DEFAULT_MEMORY_LIMIT_BYTES,
  DEFAULT_TIMEOUT_MS,
  MAX_TIMEOUT_MS,
} from "../core/limits.js";
import { openApiDocument } from "../http/openapi.js";
import { runInputShape } from "../mcp/tool-schemas.js";
import { contentBytes, normalizeRunRequest, RUN_REQUEST_FIELDS, validateRunRequest, ValidRun } from "./run-request.js";

function withCode(code: WasmboxErrorCode) {
  return (error: unknown) => {
    assert.ok(error instanceof WasmboxError, `expected a WasmboxError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe("normalizeRunRequest", () => {
  test("normalizeRunRequest() applies the documented defaults to a request with only code", () => {
    const run = normalizeRunRequest({ code: "print(1)" });
    assert.deepEqual(run, {
      language: "python",
      code: "print(1)",
      filename: "<string>",
      files: new Map(),
      stdin: new Uint8Array(0),
      argv: [],
      env: {},
      packages: [],
      timeoutMs: DEFAULT_TIMEOUT_MS,
      cpuTimeMs: null,
      memoryLimitBytes: DEFAULT_MEMORY_LIMIT_BYTES,
      maxOutputBytes: DEFAULT_MAX_OUTPUT_BYTES,
      maxOutputFileBytes: DEFAULT_MAX_OUTPUT_FILE_BYTES,
      maxOutputFilesTotalBytes: DEFAULT_MAX_OUTPUT_FILES_TOTAL_BYTES,
      inputBytes: 8,
    });
    assert.equal(DEFAULT_MAX_OUTPUT_FILE_BYTES, 64 * 1024 * 1024);
    assert.equal(DEFAULT_MAX_OUTPUT_FILES_TOTAL_BYTES, 128 * 1024 * 1024);
    assert.equal(DEFAULT_TIMEOUT_MS, 30_000);
    assert.equal(DEFAULT_MEMORY_LIMIT_BYTES, 256 * 1024 * 1024);
    assert.equal(DEFAULT_MAX_OUTPUT_BYTES, 1024 * 1024);
  });

  test("normalizeRunRequest() treats null fields as absent", () => {
    const run = normalizeRunRequest({
      code: "1", entryPath: null, files: null, stdin: null, argv: null, env: null,
      timeoutMs: null, memoryLimitBytes: null, maxOutputBytes: null,
    });
    assert.equal(run.timeoutMs, DEFAULT_TIMEOUT_MS);
    assert.equal(run.files.size, 0);
    assert.deepEqual(run.argv, []);
  });

  test("normalizeRunRequest() leaves cpuTimeMs out (null) unless given, and keeps it when given", () => {
    assert.equal(normalizeRunRequest({ code: "1" }).cpuTimeMs, null);
    assert.equal(normalizeRunRequest({ code: "1", cpuTimeMs: null }).cpuTimeMs, null);
    assert.equal(normalizeRunRequest({ code: "1", cpuTimeMs: 300 }).cpuTimeMs, 300);
    assert.throws(() => normalizeRunRequest({ code: "1", cpuTimeMs: 0 }), (e: Error) => e.message === `cpuTimeMs must be between 1 and ${MAX_TIMEOUT_MS}, got 0`);
  });

  test("normalizeRunRequest() keeps the limits, argv and env a caller gives", () => {
    const argv = ["a", "b c"];
    const run = normalizeRunRequest({
      code: "1", argv, env: { A: "1", EMPTY: "" }, timeoutMs: 1, memoryLimitBytes: 48 * 1024 * 1024, maxOutputBytes: 0,
    });
    assert.deepEqual(run.argv, ["a", "b c"]);
    assert.notEqual(run.argv, argv, "argv is copied, so later changes by the caller do not leak in");
    assert.deepEqual(run.env, { A: "1", EMPTY: "" });
    assert.equal(run.timeoutMs, 1);
    assert.equal(run.memoryLimitBytes, 48 * 1024 * 1024);
    assert.equal(run.maxOutputBytes, 0);
  });

  test("normalizeRunRequest() turns file contents given as text, bytes, utf8 and base64 into bytes under normalised paths", () => {
    const run = normalizeRunRequest({
      code: "1",
      files: {
        "./notes//a.txt": "héllo",
        "raw.bin": new Uint8Array([0, 255, 7]),
        "b64.bin": { encoding: "base64", content: "AP8H" },
        "u.txt": { encoding: "utf8", content: "ü" },
        "plain.txt": { content: "no encoding means utf8" },
      },
    });
    assert.deepEqual([...run.files.keys()], ["notes/a.txt", "raw.bin", "b64.bin", "u.txt", "plain.txt"]);
    assert.equal(text(run.files.get("notes/a.txt")!), "héllo");
    assert.deepEqual([...run.files.get("raw.bin")!], [0, 255, 7]);
    assert.deepEqual([...run.files.get("b64.bin")!], [0, 255, 7]);
    assert.equal(text(run.files.get("u.txt")!), "ü");
    assert.equal(text(run.files.get("plain.txt")!), "no encoding means utf8");
  });

  test("normalizeRunRequest() takes stdin as text, bytes or base64", () => {
    assert.equal(text(normalizeRunRequest({ code: "1", stdin: "line\n" }).stdin), "line\n");
    assert.deepEqual([...normalizeRunRequest({ code: "1", stdin: new Uint8Array([1, 2]) }).stdin], [1, 2]);
    assert.equal(text(normalizeRunRequest({ code: "1", stdin: { encoding: "base64", content: "aGk=" } }).stdin), "hi");
  });

  test("normalizeRunRequest() runs the entry file when given entryPath, naming it in tracebacks", () => {
    const run = normalizeRunRequest({ entryPath: "./app//main.py", files: { "app/main.py": "print('hi')\n" } });
    assert.equal(run.code, "print('hi')\n");
    assert.equal(run.filename, "app/main.py");
  });

  test("normalizeRunRequest() refuses an entryPath that is not among files", () => {
    assert.throws(() => normalizeRunRequest({ entryPath: "main.py" }), withCode("INVALID_REQUEST"));
    assert.throws(
      () => normalizeRunRequest({ entryPath: "main.py", files: { "other.py": "" } }),
      withCode("INVALID_REQUEST"),
    );
  });

  test("normalizeRunRequest() refuses a request with both code and entryPath, or with neither", () => {
    assert.throws(
      () => normalizeRunRequest({ code: "1", entryPath: "m.py", files: { "m.py": "1" } }),
      withCode("INVALID_REQUEST"),
    );
    assert.throws(() => normalizeRunRequest({}), withCode("INVALID_REQUEST"));
    assert.throws(() => normalizeRunRequest({ files: { "m.py": "1" } }), withCode("INVALID_REQUEST"));
  });

  test("normalizeRunRequest() refuses a request that is not a plain object", () => {
    for (const input of [null, undefined, "print(1)", 5, [], new Uint8Array(1)]) {
      assert.throws(() => normalizeRunRequest(input), withCode("INVALID_REQUEST"), String(input));
    }
  });

  test("normalizeRunRequest() refuses unknown fields unless the edge allows them", () => {
    assert.throws(() => normalizeRunRequest({ code: "1", timeout: 5 }), withCode("INVALID_REQUEST"));
    assert.throws(() => normalizeRunRequest({ code: "1", id: 7 }), withCode("INVALID_REQUEST"));
    assert.equal(normalizeRunRequest({ code: "1", id: 7 }, { allowExtraFields: ["id"] }).code, "1");
  });

  test("normalizeRunRequest() refuses fields of the wrong type with INVALID_REQUEST", () => {
    const bad: Record<string, unknown>[] = [
      { code: 5 },
      { code: ["print(1)"] },
      { code: "1", files: [["a.txt", "x"]] },
      { code: "1", files: "a.txt" },
      { code: "1", files: { "a.txt": 5 } },
      { code: "1", files: { "a.txt": null } },
      { code: "1", stdin: 5 },
      { code: "1", stdin: { encoding: "utf8" } },
      { code: "1", argv: "a b" },
      { code: "1", argv: ["a", 1] },
      { code: "1", env: ["A=1"] },
      { code: "1", env: { A: 1 } },
      { code: "1", timeoutMs: "100" },
      { code: "1", timeoutMs: 1.5 },
      { code: "1", timeoutMs: Number.NaN },
      { code: "1", timeoutMs: Number.POSITIVE_INFINITY },
      { code: "1", cpuTimeMs: "300ms" },
      { code: "1", cpuTimeMs: 0.5 },
      { code: "1", memoryLimitBytes: "64m" },
      { code: "1", maxOutputBytes: true },
    ];
    for (const input of bad) {
      assert.throws(() => normalizeRunRequest(input), withCode("INVALID_REQUEST"), JSON.stringify(input));
    }
  });

  test("normalizeRunRequest() refuses limits outside their bounds", () => {
    const bad: Record<string, unknown>[] = [
      { code: "1", timeoutMs: 0 },
      { code: "1", timeoutMs: -1 },
      { code: "1", timeoutMs: 24 * 60 * 60 * 1000 + 1 },
      { code: "1", cpuTimeMs: 0 },
      { code: "1", cpuTimeMs: 24 * 60 * 60 * 1000 + 1 },
      { code: "1", memoryLimitBytes: 48 * 1024 * 1024 - 1 },
      { code: "1", memoryLimitBytes: 4 * 1024 * 1024 * 1024 + 1 },
      { code: "1", maxOutputBytes: -1 },
      { code: "1", maxOutputBytes: 256 * 1024 * 1024 + 1 },
    ];
    for (const input of bad) {
      assert.throws(() => normalizeRunRequest(input), withCode("INVALID_REQUEST"), JSON.stringify(input));
    }
  });

  test("normalizeRunRequest() refuses environment names that cannot be variables", () => {
    for (const env of [{ "": "x" }, { "A=B": "x" }, { "A\0": "x" }, { A: "x\0y" }]) {
      assert.throws(() => normalizeRunRequest({ code: "1", env }), withCode("INVALID_REQUEST"), JSON.stringify(env));
    }
  });

  test("normalizeRunRequest() refuses absolute and climbing paths in files and entryPath with INVALID_PATH", () => {
    for (const path of ["/etc/passwd", "../x.py", "a/../../x.py", "a\\b.py"]) {
      assert.throws(() => normalizeRunRequest({ code: "1", files: { [path]: "x" } }), withCode("INVALID_PATH"), path);
      assert.throws(() => normalizeRunRequest({ entryPath: path, files: { "x.py": "1" } }), withCode("INVALID_PATH"), path);
    }
  });

  test("normalizeRunRequest() refuses two file names that normalise to the same path", () => {
    assert.throws(
      () => normalizeRunRequest({ code: "1", files: { "a/b.txt": "1", "./a//b.txt": "2" } }),
      withCode("INVALID_REQUEST"),
    );
  });

  test("normalizeRunRequest() refuses an unsupported language with UNSUPPORTED_LANGUAGE", () => {
    for (const language of ["cobol", "Python", "", 5]) {
      assert.throws(
        () => normalizeRunRequest({ code: "1", language }),
        withCode("UNSUPPORTED_LANGUAGE"),
        JSON.stringify(language),
      );
    }
    assert.equal(normalizeRunRequest({ code: "1", language: "python" }).language, "python");
  });
});

describe("contentBytes", () => {
  test("contentBytes() decodes base64 with or without padding and ignores whitespace", () => {
    assert.equal(text(contentBytes({ encoding: "base64", content: "aGVsbG8=" }, "x")), "hello");
    assert.equal(text(contentBytes({ encoding: "base64", content: "aGVs\nbG8=" }, "x")), "hello");
    assert.equal(text(contentBytes({ encoding: "base64", content: "aGk" }, "x")), "hi");
    assert.equal(contentBytes({ encoding: "base64", content: "" }, "x").length, 0);
  });

  test("contentBytes() refuses text that is not base64 with INVALID_REQUEST", () => {
    for (const content of ["@@@@", "aGk=x", "a", "aG==k", "aGVsbG8==="]) {
      assert.throws(() => contentBytes({ encoding: "base64", content }, "stdin"), withCode("INVALID_REQUEST"), content);
    }
  });

  test("contentBytes() refuses an unknown encoding with INVALID_REQUEST", () => {
    assert.throws(() => contentBytes({ encoding: "hex", content: "00" }, "stdin"), withCode("INVALID_REQUEST"));
  });

  test("normalizeRunRequest() refuses stdin, a file or the whole input past its cap with REQUEST_TOO_LARGE naming the cap", () => {
    const MiB = 1024 * 1024;
    const tooLarge = (cap: string) => (error: unknown) => {
      withCode("REQUEST_TOO_LARGE")(error);
      assert.match((error as Error).message, new RegExp(`over ${cap} \\(`));
      return true;
    };
    assert.throws(() => normalizeRunRequest({ code: "1", stdin: new Uint8Array(64 * MiB + 1) }), tooLarge("maxStdinBytes"));
    assert.throws(() => normalizeRunRequest({ code: "1", stdin: "abc", maxStdinBytes: 2 }), tooLarge("maxStdinBytes"));
    assert.throws(() => normalizeRunRequest({ code: "1", files: { "a.bin": new Uint8Array(11) }, maxInputFileBytes: 10 }), tooLarge("maxInputFileBytes"));
    assert.throws(
      () => normalizeRunRequest({ code: "1", files: { "a.bin": new Uint8Array(6), "b.bin": new Uint8Array(6) }, maxInputBytes: 12 }),
      tooLarge("maxInputBytes"),
    );
    const ok = normalizeRunRequest({ code: "1", stdin: new Uint8Array(100), maxStdinBytes: 100, files: { "a.bin": new Uint8Array(10) }, maxInputFileBytes: 10 });
    assert.equal(ok.inputBytes, 111);
    assert.throws(() => normalizeRunRequest({ code: "1", maxStdinBytes: 2 ** 31 }), withCode("INVALID_REQUEST"));
    assert.throws(() => normalizeRunRequest({ code: "1", maxOutputFileBytes: -1 }), withCode("INVALID_REQUEST"));
  });

  test("contentBytes() decodes base64 strictly and fast, and refuses what is not base64", () => {
    assert.deepEqual(contentBytes({ encoding: "base64", content: "aGVs\nbG8=" }, "x"), new TextEncoder().encode("hello"));
    assert.throws(() => contentBytes({ encoding: "base64", content: "aGVsbG8" + "!" }, "x"), withCode("INVALID_REQUEST"));
    assert.throws(() => contentBytes({ encoding: "base64", content: "a" }, "x"), withCode("INVALID_REQUEST"));
    const big = new Uint8Array(8 * 1024 * 1024).map((_, i) => i % 251);
    assert.deepEqual(contentBytes({ encoding: "base64", content: Buffer.from(big).toString("base64") }, "x"), big);
  });
});

describe("the run request schema", () => {
  type Property = { type?: string; minimum?: number; maximum?: number; default?: unknown };
  const document = () =>
    (openApiDocument("0", { auth: false }) as { components: { schemas: { RunRequest: { properties: Record<string, Property>; additionalProperties: boolean } } } })
      .components.schemas.RunRequest;

  test("the OpenAPI document lists exactly the fields the validator accepts, and refuses others", () => {
    const runRequest = document();
    // Over HTTP a run also names the host functions its caller answers (`tools`).
    assert.deepEqual(Object.keys(runRequest.properties).sort(), [...RUN_REQUEST_FIELDS, "tools"].sort());
    assert.equal(runRequest.additionalProperties, false);
    assert.ok("wasm" in runRequest.properties, "the wasm field (language wasi) is documented");
  });

  test("each limit's bounds and default in the document are the ones the validator applies", () => {
    const integers = Object.entries(document().properties).filter(([, p]) => p.type === "integer");
    assert.ok(integers.length >= 8, integers.map(([n]) => n).join(", "));
    for (const [name, p] of integers) {
      const applied = normalizeRunRequest({ code: "1" }) as unknown as Record<string, unknown>;
      // A limit without a default (cpuTimeMs) is null in the run: it does not apply.
      if (name in applied) assert.equal(applied[name], p.default ?? null, `${name}'s default`);
      assert.throws(
        () => normalizeRunRequest({ code: "1", [name]: p.minimum! - 1 }),
        (error: Error) => withCode("INVALID_REQUEST")(error) && error.message === `${name} must be between ${p.minimum} and ${p.maximum}, got ${p.minimum! - 1}`,
      );
      assert.throws(() => normalizeRunRequest({ code: "1", [name]: p.maximum! + 1 }), withCode("INVALID_REQUEST"), name);
      normalizeRunRequest({ code: "1", [name]: p.maximum });
    }
  });

  test("the MCP run tool takes fields of the run request (and session), with its bounds, and what it accepts the request accepts", () => {
    const shape = runInputShape(["python", "javascript"], "closed after 30 min idle or 1 h");
    for (const name of Object.keys(shape)) assert.ok(name === "session" || (RUN_REQUEST_FIELDS as readonly string[]).includes(name), name);
    assert.equal(shape.timeoutMs.safeParse(0).success, false);
    assert.equal(shape.timeoutMs.safeParse(MAX_TIMEOUT_MS + 1).success, false);
    assert.equal(shape.timeoutMs.safeParse(DEFAULT_TIMEOUT_MS).success, true);
    const files = { "a.txt": "text", "b.bin": { encoding: "base64", content: "AP8=" } };
    assert.ok(shape.files.safeParse(files).success);
    const run = validateRunRequest({ code: "1", language: "javascript", files, stdin: "in", timeoutMs: 5 }).run;
    assert.deepEqual([...run.files.get("b.bin")!], [0, 255]);
  });

  test("validateRunRequest() gives a frozen ValidRun, and a session's language for a request that names none", () => {
    const valid = validateRunRequest({ code: "console.log(1)" }, { defaultLanguage: "javascript" });
    assert.ok(valid instanceof ValidRun);
    assert.ok(Object.isFrozen(valid));
    assert.equal(valid.run.language, "javascript");
    assert.equal(validateRunRequest({ code: "1", language: "python" }, { defaultLanguage: "javascript" }).run.language, "python");
  });

  test("packages are names with optional extras and version specifiers, for Python only", () => {
    assert.deepEqual(normalizeRunRequest({ code: "1", packages: ["sympy", " pydantic>=2,<3 ", "sympy", "msgspec[yaml]==0.23"] }).packages, [
      "sympy",
      "pydantic>=2,<3",
      "msgspec[yaml]==0.23",
    ]);
    for (const bad of ["", "sympy; os_name=='nt'", "pkg @ https://example.com/x.whl", "../etc", "a b", "-e ."]) {
      assert.throws(() => normalizeRunRequest({ code: "1", packages: [bad] }), withCode("INVALID_REQUEST"), bad);
    }
    assert.throws(() => normalizeRunRequest({ code: "1", packages: "sympy" }), /packages must be an array of package names/);
    assert.throws(() => normalizeRunRequest({ code: "1", packages: Array.from({ length: 101 }, (_, i) => `p${i}`) }), withCode("INVALID_REQUEST"));
    assert.throws(() => normalizeRunRequest({ code: "1", language: "javascript", packages: ["sympy"] }), /packages are for language "python"/);
  });

  test("a field of the wrong type is named in the words clients match", () => {
    const message = (input: Record<string, unknown>) => {
      try {
        normalizeRunRequest(input);
      } catch (error) {
        return (error as Error).message;
      }
      return "accepted";
    };
    assert.equal(message({ code: "1", timeoutMs: "soon" }), 'timeoutMs must be an integer, got "soon"');
    assert.equal(message({ code: "1", timeout: 5 }), 'unknown field "timeout"');
    assert.equal(message({ code: 5 }), "code must be a string");
    assert.equal(message({ code: "1", argv: ["a", 1] }), "argv must be an array of strings");
    assert.equal(message({ code: "1", env: { A: 1 } }), 'env["A"] must be a string');
    assert.match(message({ code: "1", files: { "a.txt": 5 } }), /^files\["a\.txt"\] must be a string, bytes, or/);
    assert.match(message({ code: "1", stdin: 5 }), /^stdin must be a string, bytes, or/);
  });
});

describe("large inputs through the schema", () => {
  test("a large stdin, file and module as bytes are validated without walking their bytes", () => {
    const big = new Uint8Array(256 * 1024 * 1024);
    const run = normalizeRunRequest({ code: "1", stdin: big, files: { "a.bin": big }, maxStdinBytes: big.length, maxInputFileBytes: big.length, maxInputBytes: 1024 * 1024 * 1024 });
    assert.equal(run.stdin, big);
    assert.equal(run.files.get("a.bin"), big);
  });

  test("another typed array is refused at once, naming the field", () => {
    const big = new Int8Array(64 * 1024 * 1024);
    assert.throws(() => normalizeRunRequest({ code: "1", stdin: big }), /stdin must be a Uint8Array \(bytes\), not a Int8Array/);
    assert.throws(() => normalizeRunRequest({ code: "1", files: { "a.bin": new Float64Array(8) } }), withCode("INVALID_REQUEST"));
    assert.throws(() => normalizeRunRequest({ code: "1", stdin: new ArrayBuffer(8) }), withCode("INVALID_REQUEST"));
  });
});
