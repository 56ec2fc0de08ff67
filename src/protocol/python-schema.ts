/**
 * The request schemas the Python client encodes from (python/src/wasmbox/_request_schema.json,
 * written by scripts/gen-python-schema.ts and checked against this by test/python-schema.test.ts).
 */
import { runRequestJsonSchemaDocument } from "./run-request.js";
import { sessionOptionsJsonSchema } from "./session-request.js";

/** The file's exact text: stable key order, two-space indent, a final newline. */
export function pythonRequestSchemaText(): string {
  const document = {
    $comment: "Generated from src/protocol/ by scripts/gen-python-schema.ts (npm run gen:python-schema). Do not edit.",
    run: runRequestJsonSchemaDocument(),
    session: sessionOptionsJsonSchema(),
  };
  return JSON.stringify(document, null, 2) + "\n";
}
