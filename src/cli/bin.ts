#!/usr/bin/env node
import { main } from "./main.js";

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything is answered and closed by now. Under Deno a pending stdin read keeps the process
// alive after `serve --stdio` is done; this timer does not hold the process open itself.
setTimeout(() => process.exit(code), 250).unref();
