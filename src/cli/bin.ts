#!/usr/bin/env node
import { main } from "./main.js";

// A reader that goes away (`wasmbox languages | head -1`) is not an error to report with a stack:
// stop quietly, as `cat` does. Not for the servers: their client going away is a shutdown, which
// stops the executors first (src/cli/shutdown-signals.ts).
const command = process.argv[2];
if (command !== "serve" && command !== "mcp") {
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    process.exit(0);
  });
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything is answered and closed by now. Under Deno a pending stdin read keeps the process
// alive after `serve --stdio` is done; this timer does not hold the process open itself.
setTimeout(() => process.exit(code), 250).unref();
