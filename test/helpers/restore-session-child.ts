/**
 * A separate host process for test/session-save.test.ts: restores the saved session in the blob
 * file argv[2] (host function `add` bound again), runs the code in argv[3] and prints the result as
 * one JSON line.
 */
import { readFileSync } from "node:fs";
import { Sandbox } from "../../src/index.js";

const [blobPath, code] = process.argv.slice(2);
const sandbox = await Sandbox.create({ poolSize: 0 });
try {
  const session = await sandbox.session({
    restore: new Uint8Array(readFileSync(blobPath!)),
    tools: { add: ({ a, b }: Record<string, unknown>) => (a as number) + (b as number) },
  });
  const result = await session.run({ code: code! });
  process.stdout.write(JSON.stringify({ status: result.status, value: result.value, error: result.error, pid: process.pid }) + "\n");
  await session.close();
} finally {
  await sandbox.close();
}
