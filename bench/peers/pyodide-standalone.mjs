// Pyodide without wasmbox, for the peers that load it directly. Plain JavaScript (not TypeScript)
// so that Node and Deno run the very same file with no loader in front: a loader would add its
// own start-up time to the "load Pyodide per run" numbers.
//
//   <node|deno run --allow-read=…> pyodide-standalone.mjs PYODIDE_DIR per-run N CODE_B64
//       loads Pyodide afresh for each of N runs (the naive design); prints {"samples": [ms…], "stdout"}
//   … PYODIDE_DIR make-snapshot OUT
//       writes a memory snapshot with the modules the CPU suite imports already imported
//   … PYODIDE_DIR cpu SNAPSHOT|- WARM CODE_B64
//       loads Pyodide (from the snapshot when given), prints {"t":"ready","loadMs"}, then runs the
//       code 1 + WARM times in the same interpreter, printing {"t":"sample","out": <its last line>,
//       "runMs": <runPython's wall time>}
import { writeFile, readFile } from "node:fs/promises";

const [dirArg, mode, ...rest] = (globalThis.Deno ? globalThis.Deno.args : process.argv.slice(2));
const dir = dirArg.endsWith("/") ? dirArg : dirArg + "/";
const { loadPyodide } = await import(new URL(`file://${dir}pyodide.mjs`).href);
const decode = (b64) => new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
const emit = (obj) => console.log(JSON.stringify(obj));

if (mode === "per-run") {
  const n = Number(rest[0]);
  const code = decode(rest[1]);
  const samples = [];
  let stdout = "";
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    let out = "";
    const py = await loadPyodide({ indexURL: dir, stdout: (line) => { out += line + "\n"; }, stderr: () => {} });
    py.runPython(code);
    samples.push(performance.now() - started);
    stdout = out;
  }
  emit({ samples, stdout });
} else if (mode === "make-snapshot") {
  const py = await loadPyodide({ indexURL: dir, _makeSnapshot: true, stdout: () => {}, stderr: () => {} });
  py.runPython("import json, re, time, math");
  const bytes = py.makeMemorySnapshot();
  await writeFile(rest[0], bytes);
  emit({ t: "snapshot", bytes: bytes.length });
} else if (mode === "cpu") {
  const [snapshotPath, warmArg, codeB64] = rest;
  const code = decode(codeB64);
  const started = performance.now();
  const options = { indexURL: dir, stdout: () => {}, stderr: () => {} };
  if (snapshotPath !== "-") options._loadSnapshot = await readFile(snapshotPath);
  const py = await loadPyodide(options);
  emit({ t: "ready", loadMs: performance.now() - started });
  for (let i = 0; i <= Number(warmArg); i++) {
    const lines = [];
    py.setStdout({ batched: (line) => lines.push(line) });
    const globals = py.toPy({});
    const runStarted = performance.now();
    py.runPython(code, { globals });
    emit({ t: "sample", out: lines[lines.length - 1] ?? "", runMs: performance.now() - runStarted });
  }
} else {
  console.error(`unknown mode ${mode}`);
  (globalThis.Deno ? globalThis.Deno.exit : process.exit)(2);
}
