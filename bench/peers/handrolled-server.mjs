// The common hand-rolled design, re-implemented for the bench: ONE long-lived Deno process with ONE
// Pyodide instance, answering JSON lines {"id", "code"} -> {"id", "status", "stdout", "result"}.
// Every request runs in the same interpreter with the same globals, so it gives NO isolation
// between runs: a request can read or break what an earlier one left behind. That is what makes it
// fast, and why wasmbox does not do it.
//
//   deno run --allow-read=PYODIDE_DIR handrolled-server.mjs PYODIDE_DIR
const dir = Deno.args[0].endsWith("/") ? Deno.args[0] : Deno.args[0] + "/";
const { loadPyodide } = await import(new URL(`file://${dir}pyodide.mjs`).href);
let out = [];
const pyodide = await loadPyodide({ indexURL: dir, stdout: (line) => out.push(line + "\n"), stderr: (line) => out.push(line + "\n") });
const encoder = new TextEncoder();
const writer = Deno.stdout.writable.getWriter();
const reply = (obj) => writer.write(encoder.encode(JSON.stringify(obj) + "\n"));
await reply({ ready: true });

const decoder = new TextDecoder();
let pending = "";
for await (const chunk of Deno.stdin.readable) {
  pending += decoder.decode(chunk, { stream: true });
  let newline;
  while ((newline = pending.indexOf("\n")) >= 0) {
    const line = pending.slice(0, newline);
    pending = pending.slice(newline + 1);
    if (!line.trim()) continue;
    const request = JSON.parse(line);
    if (request.shutdown) Deno.exit(0);
    out = [];
    try {
      // one at a time: the interpreter is shared
      const result = await pyodide.runPythonAsync(request.code);
      await reply({ id: request.id, status: "ok", stdout: out.join(""), result: result === undefined ? null : String(result) });
    } catch (error) {
      await reply({ id: request.id, status: "error", stdout: out.join(""), error: String(error).split("\n").slice(-2).join(" ") });
    }
  }
}
