/**
 * Writes python/src/wasmbox/_request_schema.json: the run request and session options as JSON
 * Schema, from the one zod schema in src/protocol/. The Python client encodes requests from it, so
 * a field added to the schema reaches Python without a second hand-written copy.
 * `npm run gen:python-schema` after editing the schema; test/python-schema.test.ts fails until then.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { pythonRequestSchemaText } from "../src/protocol/python-schema.js";

const target = fileURLToPath(new URL("../python/src/wasmbox/_request_schema.json", import.meta.url));
writeFileSync(target, pythonRequestSchemaText());
console.log(`wrote ${target}`);
