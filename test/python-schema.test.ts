import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { pythonRequestSchemaText } from "../src/protocol/python-schema.js";

describe("the Python client's copy of the request schema", () => {
  it("is exactly what the schema in src/protocol/ generates (run `npm run gen:python-schema` after editing it)", () => {
    const committed = readFileSync(new URL("../python/src/wasmbox/_request_schema.json", import.meta.url), "utf8");
    assert.equal(committed, pythonRequestSchemaText(), "python/src/wasmbox/_request_schema.json is stale: run `npm run gen:python-schema`");
  });

  it("names every run field and the session options", () => {
    const document = JSON.parse(pythonRequestSchemaText());
    assert.ok(["code", "wasm", "files", "timeoutMs", "maxOutputFilesTotalBytes"].every((name) => name in document.run.properties));
    assert.ok(["idleTimeoutMs", "maxLifetimeMs", "tools"].every((name) => name in document.session.properties));
  });
});
