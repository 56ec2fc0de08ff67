/**
 * Building blocks for guest programs in the security corpus.
 *
 * Every guest starts from the route that stays open after the JS-realm hardening: any proxied JS
 * object leads to the worker realm's Function constructor (`to_js({}).constructor.constructor`),
 * so guest Python can run arbitrary JavaScript in the executor's worker. The corpus attacks through
 * it on purpose: the walls under test are Deno's permissions, the clean environment, bubblewrap
 * and the host's watchdog, not the hardening.
 *
 * JS sources are embedded with JSON.stringify, which is also a valid Python string literal, so a
 * test never fights two layers of escaping.
 */

const J = JSON.stringify;

/**
 * Python prelude. `attempt(label, expr)` evaluates a JS expression synchronously and prints
 * `label: ALLOWED <value>` or `label: DENIED <ErrorName>: <message>`.
 *
 * `attempt_async(label, body, timeout_ms)` runs an async JS function body. Guest code cannot block on
 * a promise (no JSPI here), and the executor ends as soon as the worker posts its result, so the
 * attack wraps the worker's `self.postMessage` and holds the result message back until the attack
 * settles: the same power any guest has over its own worker realm.
 */
export const PRELUDE = String.raw`
from pyodide.ffi import to_js as _wb_to_js
_WB_F = _wb_to_js({}).constructor.constructor
def js(src):
    return _WB_F(src)()
_WB_ATTEMPT = _WB_F("expr", r'''
  try { return "ALLOWED " + String((new Function("return (" + expr + ");"))()).slice(0, 400); }
  catch (e) { return "DENIED " + (e && e.name) + ": " + (e && e.message); }
''')
def attempt(label, expr):
    print(label + ": " + _WB_ATTEMPT(expr), flush=True)
_WB_ATTEMPT_ASYNC = _WB_F("label", "body", "timeoutMs", r'''
  const previous = self.postMessage;
  const post = previous.bind(self);
  const enc = new TextEncoder();
  const say = (s) => post({ t: "out", fd: 1, data: enc.encode(label + ": " + s + "\n") });
  const AsyncFunction = (async () => {}).constructor;
  const attack = Promise.resolve().then(() => AsyncFunction(body)());
  const timer = new Promise((_, reject) => setTimeout(() => reject(new Error("attack did not settle")), timeoutMs));
  const settled = Promise.race([attack, timer]).then(
    (v) => say("ALLOWED " + String(v).slice(0, 400)),
    (e) => say("DENIED " + (e && e.name) + ": " + (e && e.message)));
  self.postMessage = (msg, transfer) => {
    if (msg && msg.t === "result") settled.finally(() => previous.call(self, msg, transfer));
    else previous.call(self, msg, transfer);
  };
''')
def attempt_async(label, body, timeout_ms=4000):
    _WB_ATTEMPT_ASYNC(label, body, timeout_ms)
`;

/** A guest program: the prelude, then the given Python lines. */
export function guest(...lines: string[]): string {
  return PRELUDE + lines.join("\n") + "\n";
}

/** Python statement: run a JS function body in the worker realm (its return value is discarded). */
export function js(body: string): string {
  return `js(${J(body)})`;
}

/** Python statement: try a synchronous JS expression and print its verdict under `label`. */
export function attempt(label: string, expression: string): string {
  return `attempt(${J(label)}, ${J(expression)})`;
}

/** Python statement: try an async JS function body and print its verdict under `label`. */
export function attemptAsync(label: string, body: string, timeoutMs = 4000): string {
  return `attempt_async(${J(label)}, ${J(body)}, ${timeoutMs})`;
}

/** Parses `label: VERDICT …` lines from guest stdout. */
export function verdicts(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const match = /^([\w.-]+): ((?:ALLOWED|DENIED) .*)$/.exec(line);
    if (match) out.set(match[1]!, match[2]!);
  }
  return out;
}

/**
 * Hand-assembled wasm module: a memory (1 page, max 65536) exported as `m`, and `g(pages)` that runs
 * the `memory.grow` instruction. Growing from inside wasm never calls the JS
 * `WebAssembly.Memory.prototype.grow`, so it sidesteps the worker's JS-level cap.
 */
export const GROW_MODULE_BYTES = [
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // type: (i32) -> i32
  0x03, 0x02, 0x01, 0x00, // function 0 has type 0
  0x05, 0x06, 0x01, 0x01, 0x01, 0x80, 0x80, 0x04, // memory: min 1, max 65536 pages
  0x07, 0x09, 0x02, 0x01, 0x6d, 0x02, 0x00, 0x01, 0x67, 0x00, 0x00, // export "m" memory 0, "g" func 0
  0x0a, 0x08, 0x01, 0x06, 0x00, 0x20, 0x00, 0x40, 0x00, 0x0b, // g: local.get 0; memory.grow 0; end
];

/**
 * An async JS function body that runs `body` (itself an async function body) in a Worker the guest
 * starts, and returns what it returns. A nested worker gets a fresh global: whatever the executor
 * removed from its own worker's global (`caches`, `navigator.gpu`) is back there, so attacks on the
 * walls behind those removals go through one.
 */
export function inNestedWorker(body: string): string {
  const source = `const f = async () => { ${body} }; f().then((v) => postMessage({ ok: String(v) }), (e) => postMessage({ err: (e && e.name) + ": " + (e && e.message) }));`;
  return [
    `const url = URL.createObjectURL(new Blob([${J(source)}], { type: "text/javascript" }));`,
    `const w = new Worker(url, { type: "module" });`,
    `const reply = await new Promise((resolve, reject) => { w.onmessage = (e) => resolve(e.data); w.onerror = (e) => { e.preventDefault(); reject(new Error("nested worker failed: " + e.message)); }; });`,
    `w.terminate();`,
    `if (reply.err) { const [name, ...rest] = reply.err.split(": "); const error = new Error(rest.join(": ")); error.name = name; throw error; }`,
    `return reply.ok;`,
  ].join(" ");
}

/**
 * Guest program: makes Deno write into the executor's private storage by importing distinct data:
 * modules (each adds module analysis and V8 code cache entries, ~20 KB) for up to `seconds`, or
 * `modules` imports. The imports run in a nested Worker, which progresses while Python blocks this
 * worker's thread, and report through shared memory.
 */
export function cacheFlood(seconds: number, modules = 1_000_000): string {
  const worker = `onmessage = async (e) => {
    const st = new Int32Array(e.data);
    for (let i = 0; i < ${modules}; i++) {
      const body = "export const x = " + i + "; export function f() { return '" + "y".repeat(2000) + "' + x; } // " + Math.random();
      try { await import("data:text/javascript," + encodeURIComponent(body)); } catch { Atomics.store(st, 1, 2); return; }
      Atomics.store(st, 0, i + 1);
    }
    Atomics.store(st, 1, 1);
  };`;
  return guest(
    `import time`,
    js(`
      const st = new Int32Array(new SharedArrayBuffer(8));
      const w = new Worker(URL.createObjectURL(new Blob([${J(worker)}], { type: "text/javascript" })), { type: "module" });
      w.postMessage(st.buffer);
      globalThis.wasmbox_flood = { w, st };
    `),
    `t = time.time()`,
    `while time.time() - t < ${seconds} and ${js(`return Atomics.load(globalThis.wasmbox_flood.st, 1) === 0`)}:`,
    `    time.sleep(0.05)`,
    `print("flood:", ${js(`const st = globalThis.wasmbox_flood.st; return ["running", "done", "refused"][Atomics.load(st, 1)] + " " + Atomics.load(st, 0)`)})`,
    js(`globalThis.wasmbox_flood.w.terminate()`),
  );
}
