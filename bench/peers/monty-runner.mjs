// Runs code in @pydantic/monty (a Python subset interpreter written in Rust, in-process through
// N-API), in a child process of the bench so its memory and failures stay out of the harness.
//
//   node monty-runner.mjs latency N CODE_B64 PEERS_DIR  -> {"samples": [ms…], "stdout"}   (parse + run per sample)
//   node monty-runner.mjs cpu REPS CODE_B64    -> {"samples": [ms…], "check"}    (run() timed by the host:
//                                                  Monty has no `time` module, so the guest cannot time itself)
//   node monty-runner.mjs probe 0 JSON_B64     -> {"probe": {name: null | "error"}} for {name: code} programs
// On a failure: {"error": "ExceptionType: message"}.
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [mode, countArg, codeB64, peersDir] = process.argv.slice(2);
// The package lives in bench/.peers (installed there by monty.ts), not in the repository's node_modules.
const entry = createRequire(join(peersDir, "package.json")).resolve("@pydantic/monty");
const { Monty } = await import(pathToFileURL(entry).href);
const code = Buffer.from(codeB64, "base64").toString("utf8");
const n = Number(countArg);
const emit = (obj) => console.log(JSON.stringify(obj));

try {
  const samples = [];
  if (mode === "probe") {
    const probe = {};
    for (const [name, program] of Object.entries(JSON.parse(code))) {
      try {
        new Monty(program).run({ printCallback: () => {} });
        probe[name] = null;
      } catch (error) {
        probe[name] = String(error?.message ?? error).split("\n")[0].slice(0, 200);
      }
    }
    emit({ probe });
  } else if (mode === "latency") {
    let stdout = "";
    for (let i = 0; i < n; i++) {
      let out = "";
      const started = performance.now();
      new Monty(code).run({ printCallback: (_stream, text) => { out += text; } });
      samples.push(performance.now() - started);
      stdout = out;
    }
    emit({ samples, stdout });
  } else {
    let check = null;
    for (let i = 0; i < n; i++) {
      const monty = new Monty(code);
      const started = performance.now();
      check = monty.run({ printCallback: () => {} });
      samples.push(performance.now() - started);
    }
    emit({ samples, check });
  }
} catch (error) {
  const message = String(error?.message ?? error).split("\n")[0];
  emit({ error: message.slice(0, 300) });
}
