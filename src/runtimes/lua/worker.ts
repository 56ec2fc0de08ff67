/**
 * Runs INSIDE the executor, in a Deno worker: language "lua", Lua 5.4 compiled to wasm by
 * emscripten (the glue.wasm of the wasmoon package). wasmoon's own JavaScript is not used: this
 * worker gives glue.wasm the few imports it needs itself — file syscalls and stdio go to wasmbox's
 * WASI host and in-memory files, heap growth is capped at the run's memory limit, and setjmp/longjmp
 * (Lua's error handling) is emscripten's invoke_/throw_longjmp pair.
 *
 * The program is a chunk: `...` and the global `arg` hold argv; the values it returns are the run's
 * value. A count hook checks for the host's interrupt every few thousand instructions and raises a
 * Lua error ("interrupted"), so a timeout stops a loop cooperatively; os.exit(n) ends the run with n.
 */
import { WasiInterrupted } from "../../vfs/wasi-host.js";
import { Errno } from "../../vfs/wasi-memfs.js";
import { PREOPENS, wasiHostFor } from "../wasi/run-wasi.js";
import { readAsset, serveRuntime, setGrowCap, type RunContext, type RunOutcome } from "../worker-kit.js";

let module: WebAssembly.Module;
let luaVersion = "5.4";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Thrown by emscripten's longjmp; caught by the invoke_ wrapper around the matching setjmp. */
const LONGJMP = Symbol("longjmp");

class LuaExit extends Error {
  constructor(readonly code: number) {
    super(`exit(${code})`);
  }
}

/** Emscripten's libc numbers errno as WASI does: a syscall returns the WASI errno, negated. */
const linux = (wasiErrno: number) => -wasiErrno;

/** The Lua side of a run: calls the chunk with argv and reports how it ended as JSON. */
const RUNNER = String.raw`
local main = __wasmbox_main
__wasmbox_main = nil
local function str(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local map = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
    return map[c] or string.format('\\u%04x', c:byte())
  end) .. '"'
end
local function json(v, depth)
  local t = type(v)
  if t == "nil" then return "null"
  elseif t == "boolean" then return tostring(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return math.type(v) == "integer" and string.format("%d", v) or string.format("%.17g", v)
  elseif t == "string" then return str(v)
  elseif t == "table" and (depth or 0) < 20 then
    local n = #v
    local count = 0
    for _ in pairs(v) do count = count + 1 end
    local parts = {}
    if count == n and n > 0 then
      for i = 1, n do parts[i] = json(v[i], (depth or 0) + 1) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, x in pairs(v) do parts[#parts + 1] = str(tostring(k)) .. ":" .. json(x, (depth or 0) + 1) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end
local function repr(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end
local function clean(tb)
  local lines = {}
  for line in tb:gmatch("[^\n]+") do
    if not line:find("<wasmbox>", 1, true) and not line:find("'xpcall'", 1, true) then
      lines[#lines + 1] = (line:gsub("in upvalue 'main'", "in main chunk"))
    end
  end
  return table.concat(lines, "\n")
end
local results
local ok, failure = xpcall(function() results = table.pack(main(table.unpack(arg, 1, #arg))) end, function(e)
  return { message = tostring(e), traceback = clean(debug.traceback(tostring(e), 2)) }
end)
if not ok and type(failure) ~= "table" then
  -- the handler itself failed (out of memory while building the traceback)
  failure = { message = tostring(failure), traceback = tostring(failure) }
end
io.stdout:flush()
if ok then
  local value = results.n > 0 and results[1] or nil
  __wasmbox_result = '{"status":"ok","exitCode":0,"error":null,"valueJson":' .. str(json(value)) ..
    ',"valueRepr":' .. (value == nil and "null" or str(repr(value))) .. '}'
else
  local oom = failure.message:find("not enough memory", 1, true) ~= nil
  io.stderr:write("lua: " .. failure.traceback:gsub("\n%s*%[C%]: in %?$", "") .. "\n")
  __wasmbox_result = '{"status":' .. (oom and '"memory_limit"' or '"error"') .. ',"exitCode":' .. (oom and "null" or "1") ..
    ',"error":{"type":' .. (oom and '"MemoryError"' or '"LuaError"') .. ',"message":' .. str(failure.message) ..
    ',"traceback":' .. str(failure.traceback) .. '}}'
end
`;

interface LuaExports {
  memory: WebAssembly.Memory;
  __indirect_function_table: WebAssembly.Table;
  __wasm_call_ctors(): void;
  emscripten_stack_init?(): void;
  malloc(size: number): number;
  free(ptr: number): void;
  fflush(stream: number): number;
  stackSave(): number;
  stackRestore(sp: number): void;
  setThrew(threw: number, value: number): void;
  luaL_newstate(): number;
  luaL_openlibs(L: number): void;
  luaL_loadbufferx(L: number, buf: number, size: number, name: number, mode: number): number;
  lua_pcallk(L: number, nargs: number, nresults: number, msgh: number, ctx: number, k: number): number;
  lua_setglobal(L: number, name: number): void;
  lua_getglobal(L: number, name: number): number;
  lua_tolstring(L: number, index: number, len: number): number;
  lua_settop(L: number, index: number): void;
  lua_sethook(L: number, fn: number, mask: number, count: number): void;
  lua_pushstring(L: number, s: number): number;
  lua_error(L: number): number;
  lua_createtable(L: number, narr: number, nrec: number): void;
  lua_rawseti(L: number, index: number, n: bigint): void;
}

/** A wasm function that calls `fn`: a funcref of type (i32, i32) -> () for Lua's hook slot. */
function wasmFunction(fn: (a: number, b: number) => void): WebAssembly.ExportValue {
  // (module (import "e" "f" (func (param i32 i32))) (export "f" (func 0)))
  const bytes = new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x00, 0x02, 0x07, 0x01, 0x01,
    0x65, 0x01, 0x66, 0x00, 0x00, 0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00,
  ]);
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), { e: { f: fn } }).exports.f!;
}

function writeTm(memory: WebAssembly.Memory, ptr: number, date: Date): void {
  const view = new DataView(memory.buffer);
  const start = Date.UTC(date.getUTCFullYear(), 0, 1);
  const fields = [
    date.getUTCSeconds(), date.getUTCMinutes(), date.getUTCHours(), date.getUTCDate(), date.getUTCMonth(),
    date.getUTCFullYear() - 1900, date.getUTCDay(), Math.floor((date.getTime() - start) / 86_400_000), 0, 0,
  ];
  fields.forEach((value, i) => view.setInt32(ptr + i * 4, value, true));
  view.setInt32(ptr + 40, 0, true); // tm_zone: none
}

function readTm(memory: WebAssembly.Memory, ptr: number): Date {
  const view = new DataView(memory.buffer);
  const f = (i: number) => view.getInt32(ptr + i * 4, true);
  return new Date(Date.UTC(f(5) + 1900, f(4), f(3), f(2), f(1), f(0)));
}

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/** strftime for the conversions os.date uses, in UTC (the sandbox has no time zone). */
function strftime(format: string, d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const day = Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
  const map: Record<string, () => string> = {
    a: () => DAYS[d.getUTCDay()]!.slice(0, 3), A: () => DAYS[d.getUTCDay()]!,
    b: () => MONTHS[d.getUTCMonth()]!.slice(0, 3), B: () => MONTHS[d.getUTCMonth()]!, h: () => MONTHS[d.getUTCMonth()]!.slice(0, 3),
    c: () => `${map.a!()} ${map.b!()} ${String(d.getUTCDate()).padStart(2)} ${map.X!()} ${d.getUTCFullYear()}`,
    d: () => p(d.getUTCDate()), e: () => String(d.getUTCDate()).padStart(2), D: () => `${map.m!()}/${map.d!()}/${map.y!()}`,
    F: () => `${d.getUTCFullYear()}-${map.m!()}-${map.d!()}`, H: () => p(d.getUTCHours()), I: () => p(d.getUTCHours() % 12 || 12),
    j: () => p(day, 3), m: () => p(d.getUTCMonth() + 1), M: () => p(d.getUTCMinutes()), n: () => "\n", t: () => "\t",
    p: () => (d.getUTCHours() < 12 ? "AM" : "PM"), S: () => p(d.getUTCSeconds()), T: () => map.X!(), u: () => String(d.getUTCDay() || 7),
    w: () => String(d.getUTCDay()), x: () => map.D!(), X: () => `${map.H!()}:${map.M!()}:${map.S!()}`, y: () => p(d.getUTCFullYear() % 100),
    Y: () => String(d.getUTCFullYear()), z: () => "+0000", Z: () => "UTC", "%": () => "%",
  };
  return format.replace(/%([a-zA-Z%])/g, (m, c: string) => map[c]?.() ?? m);
}

function runLua(context: RunContext): RunOutcome {
  const { run } = context;
  setGrowCap(run.memoryLimitBytes);
  const host = wasiHostFor(context, ["lua"]);
  const wasi = host.imports as unknown as Record<string, (...args: (number | bigint)[]) => number>;
  let exports: LuaExports;
  const mem = () => exports.memory;
  const cstring = (ptr: number) => {
    const bytes = new Uint8Array(mem().buffer);
    let end = ptr;
    while (bytes[end] !== 0) end++;
    return decoder.decode(bytes.subarray(ptr, end));
  };
  const alloc = (text: string): [number, number] => {
    const bytes = encoder.encode(text + "\0");
    const ptr = exports.malloc(bytes.length);
    new Uint8Array(mem().buffer, ptr, bytes.length).set(bytes);
    return [ptr, bytes.length - 1];
  };
  /** Calls a WASI path function with a path as the guest named it: relative to /sandbox (fd 3). */
  const atPath = (pathPtr: number, body: (fd: number, ptr: number, len: number) => number): number => {
    const path = cstring(pathPtr);
    let fd = 3;
    let rest = path;
    for (const [index, [name]] of PREOPENS.entries()) {
      if (name !== "." && (path === name || path.startsWith(name + "/"))) {
        fd = 3 + index;
        rest = path.slice(name.length + 1) || ".";
      }
    }
    if (path.startsWith("/") && fd === 3) return -Errno.NOENT; // nothing outside the sandbox exists
    const [ptr, len] = alloc(rest);
    try {
      return body(fd, ptr, len);
    } finally {
      exports.free(ptr);
    }
  };
  const env: Record<string, (...args: never[]) => unknown> = {
    abort: () => {
      throw new WebAssembly.RuntimeError("abort()");
    },
    invoke_vii: (index: number, a: number, b: number) => {
      const sp = exports.stackSave();
      try {
        (exports.__indirect_function_table.get(index) as (a: number, b: number) => void)(a, b);
      } catch (error) {
        exports.stackRestore(sp);
        if (error !== LONGJMP) throw error;
        exports.setThrew(1, 0);
      }
    },
    _emscripten_throw_longjmp: () => {
      throw LONGJMP;
    },
    strftime: (s: number, max: number, format: number, tm: number) => {
      const bytes = encoder.encode(strftime(cstring(format), readTm(mem(), tm)));
      if (bytes.length + 1 > max) return 0;
      const view = new Uint8Array(mem().buffer);
      view.set(bytes, s);
      view[s + bytes.length] = 0;
      return bytes.length;
    },
    system: (command: number) => (command === 0 ? 0 : -1), // no shell
    exit: (code: number) => {
      throw new LuaExit(code);
    },
    emscripten_date_now: () => Date.now(),
    _emscripten_get_now_is_monotonic: () => 1,
    __syscall_openat: (_dirfd: number, pathPtr: number, flags: number) =>
      atPath(pathPtr, (fd, ptr, len) => {
        const access = flags & 3;
        const oflags = (flags & 0o100 ? 1 : 0) | (flags & 0o200000 ? 2 : 0) | (flags & 0o200 ? 4 : 0) | (flags & 0o1000 ? 8 : 0);
        const rights = (access !== 1 ? 2n : 0n) | (access !== 0 ? 64n : 0n);
        const out = exports.malloc(4);
        try {
          const errno = wasi.path_open!(fd, 1, ptr, len, oflags, rights, 0n, flags & 0o2000 ? 1 : 0, out);
          return errno === 0 ? new DataView(mem().buffer).getUint32(out, true) : linux(errno);
        } finally {
          exports.free(out);
        }
      }),
    __syscall_fcntl64: () => 0,
    __syscall_ioctl: () => -Errno.NOTTY, // stdio are not terminals
    __syscall_dup3: () => -Errno.NOSYS,
    __syscall_unlinkat: (_dirfd: number, pathPtr: number, flags: number) =>
      atPath(pathPtr, (fd, ptr, len) => {
        const errno = (flags & 0x200 ? wasi.path_remove_directory! : wasi.path_unlink_file!)(fd, ptr, len);
        return errno === 0 ? 0 : linux(errno);
      }),
    __syscall_rmdir: (pathPtr: number) =>
      atPath(pathPtr, (fd, ptr, len) => {
        const errno = wasi.path_remove_directory!(fd, ptr, len);
        return errno === 0 ? 0 : linux(errno);
      }),
    __syscall_renameat: (_olddir: number, oldPtr: number, _newdir: number, newPtr: number) =>
      atPath(oldPtr, (fd, ptr, len) =>
        atPath(newPtr, (fd2, ptr2, len2) => {
          const errno = wasi.path_rename!(fd, ptr, len, fd2, ptr2, len2);
          return errno === 0 ? 0 : linux(errno);
        }),
      ),
    __syscall_readlinkat: () => -Errno.INVAL,
    _mktime_js: (tm: number) => BigInt(Math.floor(readTm(mem(), tm).getTime() / 1000)),
    _localtime_js: (time: bigint, tm: number) => writeTm(mem(), tm, new Date(Number(time) * 1000)),
    _gmtime_js: (time: bigint, tm: number) => writeTm(mem(), tm, new Date(Number(time) * 1000)),
    _tzset_js: (timezone: number, daylight: number, stdName: number, dstName: number) => {
      const view = new DataView(mem().buffer);
      view.setInt32(timezone, 0, true);
      view.setInt32(daylight, 0, true);
      const bytes = new Uint8Array(mem().buffer);
      bytes.set(encoder.encode("UTC\0"), stdName);
      bytes.set(encoder.encode("UTC\0"), dstName);
    },
    emscripten_resize_heap: (requested: number) => {
      const memory = mem();
      const pages = Math.ceil((requested - memory.buffer.byteLength) / 65536);
      try {
        // Memory.prototype.grow is capped by the worker kit: past the run's limit this throws.
        memory.grow(Math.max(pages, Math.min(pages * 2, 256)));
        return 1;
      } catch {
        try {
          memory.grow(pages);
          return 1;
        } catch {
          return 0;
        }
      }
    },
  };
  const instance = new WebAssembly.Instance(module, { env: env as WebAssembly.ModuleImports, wasi_snapshot_preview1: host.imports as WebAssembly.ModuleImports });
  exports = instance.exports as unknown as LuaExports;
  host.memory = exports.memory;
  exports.emscripten_stack_init?.();
  exports.__wasm_call_ctors();

  const L = exports.luaL_newstate();
  if (!L) return { status: "memory_limit", exitCode: null, value: null, valueRepr: null, error: { type: "MemoryError", message: "not enough memory", traceback: "" } };
  exports.luaL_openlibs(L);
  const global = (name: string) => {
    const [ptr] = alloc(name);
    return ptr; // names are few and short: freed with the instance
  };
  // arg: [0] the script name, [1..] the arguments (lua.c's convention)
  const filename = run.filename === "<string>" ? "main.lua" : run.filename;
  exports.lua_createtable(L, run.argv.length, 1);
  [filename, ...run.argv].forEach((value, i) => {
    const [ptr] = alloc(value);
    exports.lua_pushstring(L, ptr);
    exports.free(ptr);
    exports.lua_rawseti(L, -2, BigInt(i));
  });
  exports.lua_setglobal(L, global("arg"));
  // Interrupt: a count hook raises a Lua error once the host asked to stop.
  const interruptMessage = global("interrupted");
  const hook = wasmFunction((state: number) => {
    if (!context.interrupted()) return;
    exports.lua_pushstring(state, interruptMessage);
    exports.lua_error(state);
  });
  const table = exports.__indirect_function_table;
  const hookIndex = table.grow(1);
  table.set(hookIndex, hook);
  exports.lua_sethook(L, hookIndex, 8 /* LUA_MASKCOUNT */, 10_000);

  const outcomeOf = (): RunOutcome => {
    const code = encoder.encode(run.code);
    const buffer = exports.malloc(code.length + 1);
    new Uint8Array(mem().buffer, buffer, code.length).set(code);
    const [chunkName] = alloc(`@${filename}`);
    const loaded = exports.luaL_loadbufferx(L, buffer, code.length, chunkName, 0);
    if (loaded !== 0) {
      const message = cstring(exports.lua_tolstring(L, -1, 0));
      context.write(2, encoder.encode(`lua: ${message}\n`));
      const oom = loaded === 4; // LUA_ERRMEM
      return {
        status: oom ? "memory_limit" : "error",
        exitCode: oom ? null : 1,
        value: null,
        valueRepr: null,
        error: { type: oom ? "MemoryError" : "SyntaxError", message, traceback: "" },
      };
    }
    exports.lua_setglobal(L, global("__wasmbox_main"));
    const [runner] = alloc(RUNNER);
    const [runnerName] = alloc("=<wasmbox>");
    const status = exports.luaL_loadbufferx(L, runner, encoder.encode(RUNNER).length, runnerName, 0) || exports.lua_pcallk(L, 0, 0, 0, 0, 0);
    exports.fflush(0);
    host.flush();
    exports.lua_getglobal(L, global("__wasmbox_result"));
    const resultPtr = exports.lua_tolstring(L, -1, 0);
    if (status !== 0 || !resultPtr) {
      const message = status !== 0 ? cstring(exports.lua_tolstring(L, -2, 0) || global("?")) : "no result";
      const oom = /not enough memory/.test(message) || status === 4;
      return { status: oom ? "memory_limit" : "error", exitCode: oom ? null : 1, value: null, valueRepr: null, error: { type: oom ? "MemoryError" : "LuaError", message, traceback: "" } };
    }
    const outcome = JSON.parse(cstring(resultPtr)) as RunOutcome & { valueJson?: string };
    let value: unknown = null;
    try {
      value = outcome.valueJson ? JSON.parse(outcome.valueJson) : null;
    } catch {
      value = null;
    }
    return { status: outcome.status, exitCode: outcome.exitCode, value, valueRepr: outcome.valueRepr ?? null, error: outcome.error };
  };

  try {
    return outcomeOf();
  } catch (error) {
    try {
      exports.fflush(0);
    } catch {
      // the instance may be unusable after a trap
    }
    host.flush();
    if (error instanceof LuaExit) {
      const code = error.code;
      return {
        status: code === 0 ? "ok" : "error",
        exitCode: code,
        value: null,
        valueRepr: null,
        error: code === 0 ? null : { type: "Exit", message: `os.exit(${code})`, traceback: "" },
      };
    }
    if (error instanceof WasiInterrupted) {
      return { status: "error", exitCode: null, value: null, valueRepr: null, error: { type: "Interrupted", message: "interrupted", traceback: "" } };
    }
    if (error instanceof WebAssembly.RuntimeError || error instanceof RangeError) {
      const message = `the Lua VM trapped: ${(error as Error).message}`;
      context.write(2, encoder.encode(message + "\n"));
      return { status: "error", exitCode: 134, value: null, valueRepr: null, error: { type: "Trap", message, traceback: "" } };
    }
    throw error;
  }
}

serveRuntime({
  async load({ init: { args } }) {
    // args: [wasmoon package dir]
    const bytes = await readAsset(`${args[0]}/dist/glue.wasm`);
    module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    const version = /Lua 5\.4\.\d+/.exec(decoder.decode(bytes));
    if (version) luaVersion = version[0];
  },
  run: runLua,
});

