/**
 * JavaScript evaluated INSIDE the QuickJS guest before the user's code: a small Node-like surface
 * (console, process, require("fs"), timers) over the few host functions the worker gives it. It
 * takes those functions out of the global object first, so guest code sees only what is built here.
 * Everything here is guest-side: a guest may replace any of it, and can reach nothing more by doing so.
 */
export const GUEST_PRELUDE = String.raw`
(() => {
  "use strict";
  const host = globalThis.__wasmbox_host;
  delete globalThis.__wasmbox_host;
  const hostWrite = host.write, hostFs = host.fs, hostExit = host.exit;
  const config = JSON.parse(host.config);

  // -- formatting, close to Node's util.inspect for the common cases --------------------------
  function inspect(value, depth, seen) {
    depth = depth === undefined ? 0 : depth;
    seen = seen || [];
    switch (typeof value) {
      case "string": return depth === 0 ? value : JSON.stringify(value).replace(/^"|"$/g, "'").replace(/\\"/g, '"');
      case "number": return Object.is(value, -0) ? "-0" : String(value);
      case "bigint": return value + "n";
      case "undefined": return "undefined";
      case "symbol": return value.toString();
      case "function": return value.name ? "[Function: " + value.name + "]" : "[Function (anonymous)]";
      case "boolean": return String(value);
    }
    if (value === null) return "null";
    if (seen.includes(value)) return "[Circular *]";
    if (value instanceof Error) return value.stack ? value.name + ": " + value.message + "\n" + value.stack.replace(/\n$/, "") : value.name + ": " + value.message;
    if (depth > 2) return Array.isArray(value) ? "[Array]" : "[Object]";
    const next = seen.concat([value]);
    const inner = (v) => inspect(v, depth + 1, next);
    let parts, open, close;
    if (Array.isArray(value)) {
      parts = value.slice(0, 100).map(inner);
      if (value.length > 100) parts.push("... " + (value.length - 100) + " more items");
      open = "["; close = "]";
    } else if (value instanceof Map) {
      parts = [...value].map(([k, v]) => inner(k) + " => " + inner(v));
      open = "Map(" + value.size + ") {"; close = "}";
    } else if (value instanceof Set) {
      parts = [...value].map(inner);
      open = "Set(" + value.size + ") {"; close = "}";
    } else if (value instanceof Date) {
      return isNaN(value) ? "Invalid Date" : value.toISOString();
    } else if (value instanceof RegExp) {
      return String(value);
    } else if (ArrayBuffer.isView(value)) {
      parts = Array.from(value.slice(0, 100), String);
      open = value.constructor.name + "(" + value.length + ") ["; close = "]";
    } else {
      parts = Object.keys(value).map((k) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)) + ": " + inner(value[k]));
      const name = value.constructor && value.constructor !== Object && value.constructor.name;
      open = (name ? name + " " : "") + "{"; close = "}";
      if (parts.length === 0) return open + "}";
    }
    if (parts.length === 0) return open + close;
    const flat = open + " " + parts.join(", ") + " " + close;
    if (flat.length <= 72) return flat;
    const pad = "  ".repeat(depth + 1);
    return open + "\n" + pad + parts.join(",\n" + pad) + "\n" + "  ".repeat(depth) + close;
  }

  function format(args) {
    if (typeof args[0] === "string" && /%[sdifjoO%]/.test(args[0])) {
      let i = 1;
      const first = args[0].replace(/%([sdifjoO%])/g, (m, c) => {
        if (c === "%") return "%";
        if (i >= args.length) return m;
        const v = args[i++];
        if (c === "s") return typeof v === "string" ? v : inspect(v, 1);
        if (c === "d" || c === "i") return String(c === "i" ? parseInt(v) : Number(v));
        if (c === "f") return String(parseFloat(v));
        if (c === "j") return JSON.stringify(v);
        return inspect(v, 1);
      });
      return [first].concat(args.slice(i).map((a) => inspect(a, 0))).join(" ");
    }
    return args.map((a) => inspect(a, 0)).join(" ");
  }

  const out = (fd) => (...args) => hostWrite(fd, format(args) + "\n");
  const counts = new Map(), times = new Map();
  globalThis.console = {
    log: out(1), info: out(1), debug: out(1), trace: out(2),
    error: out(2), warn: out(2),
    dir: (v) => hostWrite(1, inspect(v, 1) + "\n"),
    table: (v) => hostWrite(1, inspect(v, 1) + "\n"),
    assert: (ok, ...args) => { if (!ok) hostWrite(2, "Assertion failed" + (args.length ? ": " + format(args) : "") + "\n"); },
    count: (label = "default") => { counts.set(label, (counts.get(label) || 0) + 1); hostWrite(1, label + ": " + counts.get(label) + "\n"); },
    time: (label = "default") => { times.set(label, Date.now()); },
    timeEnd: (label = "default") => { hostWrite(1, label + ": " + (Date.now() - (times.get(label) || Date.now())) + "ms\n"); },
    group: () => {}, groupEnd: () => {},
  };

  // -- files: Node's synchronous fs API over the sandbox's in-memory files ---------------------
  class SystemError extends Error {}
  const MESSAGES = { ENOENT: "no such file or directory", EISDIR: "illegal operation on a directory", ENOTDIR: "not a directory",
    EEXIST: "file already exists", ENOTEMPTY: "directory not empty", ENOSPC: "no space left on device", EINVAL: "invalid argument",
    ENOTCAPABLE: "operation not permitted", EBADF: "bad file descriptor" };
  function call(op, syscall, path, a, b) {
    const reply = hostFs(op, String(path), a, b);
    if (typeof reply === "string") {
      const r = JSON.parse(reply);
      if (r.ok) return r.value;
      const e = new SystemError(r.code + ": " + (MESSAGES[r.code] || "error") + ", " + syscall + " '" + path + "'");
      e.name = "Error"; e.code = r.code; e.syscall = syscall; e.path = String(path);
      throw e;
    }
    return reply; // an ArrayBuffer
  }
  function encoding(options) { return typeof options === "string" ? options : options && options.encoding; }
  function decodeBytes(buffer, enc) {
    const bytes = new Uint8Array(buffer);
    if (!enc || enc === "buffer") return bytes;
    if (enc === "utf8" || enc === "utf-8") return host.decode(buffer);
    if (enc === "latin1" || enc === "binary") return String.fromCharCode(...bytes);
    if (enc === "hex") return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    if (enc === "base64") { let s = ""; for (const b of bytes) s += String.fromCharCode(b); return btoaLike(s); }
    throw new TypeError("unsupported encoding " + enc);
  }
  function btoaLike(s) {
    const A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"; let o = "";
    for (let i = 0; i < s.length; i += 3) {
      const n = (s.charCodeAt(i) << 16) | ((s.charCodeAt(i + 1) || 0) << 8) | (s.charCodeAt(i + 2) || 0);
      o += A[(n >> 18) & 63] + A[(n >> 12) & 63] + (i + 1 < s.length ? A[(n >> 6) & 63] : "=") + (i + 2 < s.length ? A[n & 63] : "=");
    }
    return o;
  }
  function toData(data) {
    if (typeof data === "string") return data;
    if (data instanceof ArrayBuffer) return data;
    if (ArrayBuffer.isView(data)) return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    return String(data);
  }
  const fs = {
    readFileSync(path, options) { return decodeBytes(call("read", "open", path), encoding(options)); },
    writeFileSync(path, data, options) { call("write", "open", path, toData(data), !!(options && options.flag === "a")); },
    appendFileSync(path, data) { call("write", "open", path, toData(data), true); },
    existsSync(path) { try { return call("exists", "access", path); } catch { return false; } },
    readdirSync(path) { return call("readdir", "scandir", path === undefined ? "." : path); },
    mkdirSync(path, options) { call("mkdir", "mkdir", path, !!(options && options.recursive)); },
    rmSync(path, options) { call("rm", "rm", path, !!(options && options.recursive), !!(options && options.force)); },
    unlinkSync(path) { call("unlink", "unlink", path); },
    rmdirSync(path) { call("rmdir", "rmdir", path); },
    renameSync(from, to) { call("rename", "rename", from, String(to)); },
    copyFileSync(from, to) { fs.writeFileSync(to, fs.readFileSync(from)); },
    statSync(path) {
      const s = call("stat", "stat", path);
      return { size: s.size, mtimeMs: s.mtimeMs, mtime: new Date(s.mtimeMs), isFile: () => s.file, isDirectory: () => !s.file };
    },
  };
  fs.promises = Object.fromEntries(Object.entries(fs).filter(([, f]) => typeof f === "function").map(([k, f]) =>
    [k.replace(/Sync$/, ""), (...args) => new Promise((resolve) => resolve(f(...args)))]));

  // -- process ----------------------------------------------------------------------------------
  class ExitSignal extends Error {}
  const process = {
    argv: ["quickjs", config.filename].concat(config.argv),
    env: Object.assign(Object.create(null), config.env),
    platform: "wasi", version: "v0.0.0-quickjs", versions: { quickjs: config.quickjs },
    exitCode: undefined,
    exit(code) {
      const n = code === undefined ? (process.exitCode || 0) : Number(code) | 0;
      hostExit(n);
      throw new ExitSignal("process.exit(" + n + ")");
    },
    cwd: () => "/sandbox",
    stdout: { write: (s) => { hostWrite(1, typeof s === "string" ? s : host.decode(toData(s))); return true; }, isTTY: false },
    stderr: { write: (s) => { hostWrite(2, typeof s === "string" ? s : host.decode(toData(s))); return true; }, isTTY: false },
    nextTick: (fn, ...args) => Promise.resolve().then(() => fn(...args)),
    hrtime: Object.assign(() => { const ms = Date.now(); return [Math.floor(ms / 1000), (ms % 1000) * 1e6]; }, { bigint: () => BigInt(Date.now()) * 1000000n }),
    memoryUsage: () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0 }),
  };
  globalThis.process = process;

  // -- timers: run after the script, in due order; the worker sleeps between them ---------------
  let timerSeq = 0;
  const timers = new Map();
  function addTimer(fn, ms, args, repeat) {
    if (typeof fn !== "function") throw new TypeError("callback must be a function");
    const id = ++timerSeq;
    const delay = Math.max(0, Number(ms) || 0);
    timers.set(id, { id, fn, args, due: Date.now() + delay, delay, repeat });
    return id;
  }
  globalThis.setTimeout = (fn, ms, ...args) => addTimer(fn, ms, args, false);
  globalThis.setInterval = (fn, ms, ...args) => addTimer(fn, ms, args, true);
  globalThis.setImmediate = (fn, ...args) => addTimer(fn, 0, args, false);
  globalThis.clearTimeout = globalThis.clearInterval = globalThis.clearImmediate = (id) => { timers.delete(id); };
  globalThis.queueMicrotask = (fn) => { Promise.resolve().then(fn); };
  const nextTimer = () => {
    let best = null;
    for (const t of timers.values()) if (!best || t.due < best.due || (t.due === best.due && t.id < best.id)) best = t;
    return best;
  };
  Object.defineProperty(globalThis, "__wasmbox_timers", { configurable: true, value: Object.freeze({
    wait() { const t = nextTimer(); return t ? Math.max(0, t.due - Date.now()) : -1; },
    fire() {
      const t = nextTimer();
      if (!t) return;
      if (t.repeat) t.due = Date.now() + Math.max(1, t.delay); else timers.delete(t.id);
      t.fn(...t.args);
    },
  }) });

  // -- require ----------------------------------------------------------------------------------
  const modules = { fs, "fs/promises": fs.promises, process, path: makePath(), util: { inspect: (v) => inspect(v, 1), format: (...a) => format(a) } };
  function makePath() {
    const normalize = (p) => {
      const abs = p.startsWith("/"), out = [];
      for (const part of p.split("/")) { if (!part || part === ".") continue; if (part === "..") out.pop(); else out.push(part); }
      return (abs ? "/" : "") + out.join("/") || (abs ? "/" : ".");
    };
    return {
      sep: "/", normalize,
      join: (...parts) => normalize(parts.join("/")),
      resolve: (...parts) => normalize(["/sandbox"].concat(parts).reduce((a, p) => (p.startsWith("/") ? p : a + "/" + p))),
      basename: (p, ext) => { const b = p.replace(/\/+$/, "").split("/").pop(); return ext && b.endsWith(ext) ? b.slice(0, -ext.length) : b; },
      dirname: (p) => { const i = p.replace(/\/+$/, "").lastIndexOf("/"); return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i); },
      extname: (p) => { const b = p.split("/").pop(); const i = b.lastIndexOf("."); return i <= 0 ? "" : b.slice(i); },
    };
  }
  globalThis.require = (name) => {
    const key = String(name).replace(/^node:/, "");
    if (Object.prototype.hasOwnProperty.call(modules, key)) return modules[key];
    const e = new Error("Cannot find module '" + name + "' (the sandbox provides fs, fs/promises, path, process, util)");
    e.code = "MODULE_NOT_FOUND";
    throw e;
  };
  globalThis.module = { exports: {} };
  globalThis.exports = globalThis.module.exports;

  // Used by the worker after the run: the last value as JSON and as a repr.
  Object.defineProperty(globalThis, "__wasmbox_describe", { configurable: true, value: (v) => {
    let json;
    try { json = JSON.stringify(v); } catch { json = undefined; }
    return JSON.stringify({ json: json === undefined || typeof v === "function" ? null : json, repr: inspect(v, 1) });
  } });
  Object.defineProperty(globalThis, "__wasmbox_exitCode", { configurable: true, value: () => process.exitCode });
})();
`;
