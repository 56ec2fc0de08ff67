/**
 * Runs INSIDE the executor, in a Deno worker: language "wasi", a WASI preview1 command module the
 * caller supplied (as base64 in the run's `code`). The module gets only WASI: its imports are
 * checked against the host's, and it has no way to the worker's JavaScript.
 */
import { prepareModule, runCommand } from "./run-wasi.js";
import { serveRuntime } from "../worker-kit.js";

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

serveRuntime({
  async load() {},
  async run(context) {
    let prepared;
    try {
      prepared = await prepareModule(fromBase64(context.run.code));
    } catch (error) {
      const message = `invalid module: ${(error as Error).message}`;
      context.write(2, new TextEncoder().encode(`error: ${message}\n`));
      return { status: "error", exitCode: 1, value: null, valueRepr: null, error: { type: "CompileError", message, traceback: "" } };
    }
    const name = context.run.filename.split("/").pop() ?? "main.wasm";
    return runCommand(prepared, context, { programName: name });
  },
});
