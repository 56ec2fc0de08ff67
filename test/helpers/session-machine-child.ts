/**
 * One "machine" for test/session-machines.test.ts: a host process whose snapshot cache and seed
 * come from its environment (WASMBOX_CACHE_DIR, WASMBOX_SNAPSHOT_SEED).
 *   save FILE CODE     opens a session, runs CODE, writes the saved session to FILE
 *   restore FILE CODE  restores FILE, runs CODE
 * Prints one JSON line: {status, value} or {error: code, message}.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { Sandbox, WasmboxError } from "../../src/index.js";

const [mode, file, code] = process.argv.slice(2);
const sandbox = await Sandbox.create({ poolSize: 0 });
try {
  if (mode === "save") {
    const session = await sandbox.session();
    const result = await session.run({ code: code! });
    writeFileSync(file!, await session.save());
    process.stdout.write(JSON.stringify({ status: result.status, value: result.value }) + "\n");
  } else {
    const session = await sandbox.session({ restore: new Uint8Array(readFileSync(file!)) });
    const result = await session.run({ code: code! });
    process.stdout.write(JSON.stringify({ status: result.status, value: result.value, error: result.error }) + "\n");
  }
} catch (error) {
  if (!(error instanceof WasmboxError)) throw error;
  process.stdout.write(JSON.stringify({ error: error.code, message: error.message }) + "\n");
} finally {
  await sandbox.close();
}
