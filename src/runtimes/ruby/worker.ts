/**
 * Runs INSIDE the executor, in a Deno worker: language "ruby", CRuby 3.4 built for WASI
 * (ruby.wasm, the ruby+stdlib reactor from @ruby/3.4-wasm-wasi, whose standard library is packed
 * inside the module). It runs on wasmbox's own WASI host: stdin, argv, env and files come from the
 * run, and the module's memory is imported with the run's limit as its maximum.
 *
 * The module also imports ruby.wasm's JavaScript bridge (rb-js-abi-host, for `require "js"`):
 * every one of those imports throws here, so Ruby code cannot reach the worker's JavaScript.
 *
 * Each run instantiates a fresh VM (ruby-init costs a few hundred milliseconds), because the
 * memory cap is fixed when the instance is made. A Ruby session keeps its files, not its globals.
 */
import { WasiExit, WasiInterrupted } from "../../vfs/wasi-host.js";
import { cappedMemory, nearMemoryCap } from "../../vfs/wasi-memory.js";
import { memoryLimit, prepareModule, wasiHostFor, type PreparedModule } from "../wasi/run-wasi.js";
import { readAsset, serveRuntime, type RunContext, type RunOutcome } from "../worker-kit.js";

let prepared: PreparedModule;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A Ruby double-quoted string literal for any text: JSON escapes, plus `#` so nothing interpolates. */
function rubyString(text: string): string {
  return JSON.stringify(text).replace(/#/g, "\\#");
}

/**
 * The Ruby that runs the user's program and reports how it ended in $__wasmbox_result (JSON).
 * Its own frames are named <wasmbox> and cut from the backtraces the user sees.
 */
function runnerSource(code: string, filename: string, argv: string[], env: Record<string, string>): string {
  return `
$__wasmbox_result = nil
begin
  $0 = ${rubyString(filename)}
  ARGV.replace(${`[${argv.map(rubyString).join(", ")}]`})
  ENV.clear
  ${Object.entries(env)
    .map(([k, v]) => `ENV[${rubyString(k)}] = ${rubyString(v)}`)
    .join("\n  ")}
  Dir.chdir("/sandbox")
  __wasmbox_clean = lambda do |lines|
    (lines || []).reject { |l| l.include?("<wasmbox>") || l.start_with?("eval:") || l.match?(/:in '(Kernel[.#]eval|BasicObject#instance_eval)'/) }
  end
  __wasmbox_error = lambda do |e|
    trace = __wasmbox_clean.call(e.backtrace)
    e.set_backtrace(trace) rescue nil
    $stderr.write(e.full_message(highlight: false))
    { "type" => e.class.name, "message" => e.message.to_s, "traceback" => trace.join("\\n") }
  end
  __wasmbox_outcome = begin
    __wasmbox_value = TOPLEVEL_BINDING.eval(${rubyString(code)}, ${rubyString(filename)}, 1)
    json = begin
      require "json"
      JSON.generate(__wasmbox_value)
    rescue Exception
      nil
    end
    { "status" => "ok", "exitCode" => 0, "valueJson" => (__wasmbox_value.nil? ? nil : json),
      "valueRepr" => (__wasmbox_value.nil? ? nil : (__wasmbox_value.inspect rescue nil)), "error" => nil }
  rescue SystemExit => e
    { "status" => e.status == 0 ? "ok" : "error", "exitCode" => e.status,
      "error" => e.status == 0 ? nil : { "type" => "SystemExit", "message" => "exit #{e.status}", "traceback" => "" } }
  rescue NoMemoryError => e
    { "status" => "memory_limit", "exitCode" => nil, "error" => __wasmbox_error.call(e) }
  rescue Exception => e
    { "status" => "error", "exitCode" => 1, "error" => __wasmbox_error.call(e) }
  end
  $stdout.flush rescue nil
  $stderr.flush rescue nil
  require "json"
  $__wasmbox_result = JSON.generate(__wasmbox_outcome)
end
`;
}

/** Thrown by every import of ruby.wasm's JavaScript bridge; it unwinds the whole VM. */
class NoJavaScript extends Error {
  constructor() {
    super('JavaScript is not available to Ruby in wasmbox (require "js" cannot be used)');
    this.name = "NotImplementedError";
  }
}

function refuse(): never {
  throw new NoJavaScript();
}

interface RubyExports {
  memory: WebAssembly.Memory;
  _initialize(): void;
  cabi_realloc(ptr: number, oldSize: number, align: number, size: number): number;
  [name: string]: unknown;
}

function runRuby(context: RunContext): RunOutcome {
  const { run } = context;
  const host = wasiHostFor(context, ["ruby"], {});
  let memory: WebAssembly.Memory;
  try {
    memory = cappedMemory(prepared.memory!, run.memoryLimitBytes);
  } catch {
    return memoryLimit(run.memoryLimitBytes);
  }
  host.memory = memory;
  // ruby.wasm's canonical-ABI handles: an index standing for a raw Ruby VALUE.
  const handles = new Map<number, number>();
  let nextHandle = 1;
  const jsBridge = new Proxy({}, { get: () => refuse });
  const imports: WebAssembly.Imports = {
    wasi_snapshot_preview1: host.imports as WebAssembly.ModuleImports,
    [prepared.memory!.module]: { [prepared.memory!.name]: memory },
    "rb-js-abi-host": jsBridge as WebAssembly.ModuleImports,
    canonical_abi: {
      "resource_drop_js-abi-value": () => {},
      "resource_new_rb-abi-value": (raw: number) => {
        handles.set(nextHandle, raw);
        return nextHandle++;
      },
      "resource_get_rb-abi-value": (index: number) => handles.get(index) ?? 0,
    },
  };
  const instance = new WebAssembly.Instance(prepared.module, imports);
  const exports = instance.exports as unknown as RubyExports;
  const string = (text: string): [number, number] => {
    const bytes = encoder.encode(text);
    const ptr = exports.cabi_realloc(0, 0, 1, bytes.length);
    new Uint8Array(memory.buffer, ptr, bytes.length).set(bytes);
    return [ptr, bytes.length];
  };
  const evalProtect = (source: string): { handle: number; state: number } => {
    const [ptr, len] = string(source);
    const fn = exports["rb-eval-string-protect: func(str: string) -> tuple<handle<rb-abi-value>, s32>"] as (p: number, l: number) => number;
    const ret = fn(ptr, len);
    const view = new DataView(memory.buffer);
    return { handle: view.getInt32(ret, true), state: view.getInt32(ret + 4, true) };
  };
  const readString = (handle: number): string => {
    const fn = exports["rstring-ptr: func(value: handle<rb-abi-value>) -> string"] as (h: number) => number;
    const ret = fn(handle);
    const view = new DataView(memory.buffer);
    const text = decoder.decode(new Uint8Array(memory.buffer, view.getInt32(ret, true), view.getInt32(ret + 4, true)));
    (exports["cabi_post_rstring-ptr"] as ((r: number) => void) | undefined)?.(ret);
    return text;
  };

  try {
    host.initialize(instance);
    const args = ["ruby", "-EUTF-8", "--disable-gems", "-e_=0"];
    const list = exports.cabi_realloc(0, 0, 4, args.length * 8);
    args.forEach((arg, i) => {
      const [ptr, len] = string(arg + "\0");
      const view = new DataView(memory.buffer);
      view.setInt32(list + i * 8, ptr, true);
      view.setInt32(list + i * 8 + 4, len, true);
    });
    (exports["ruby-init: func(args: list<string>) -> ()"] as (p: number, l: number) => void)(list, args.length);
    (exports["ruby-init-loadpath: func() -> ()"] as () => void)();
    const filename = run.filename === "<string>" ? "main.rb" : run.filename;
    const ran = evalProtect(runnerSource(run.code, filename, run.argv, run.env));
    host.flush();
    const result = evalProtect("$__wasmbox_result.to_s");
    const text = result.state === 0 ? readString(result.handle) : "";
    if (ran.state !== 0 || !text) {
      // The runner itself failed: out of memory before it could report, most likely.
      if (nearMemoryCap(memory, run.memoryLimitBytes)) return memoryLimit(run.memoryLimitBytes);
      return { status: "error", exitCode: 1, value: null, valueRepr: null, error: { type: "RubyError", message: "the Ruby VM failed to run the program", traceback: "" } };
    }
    const outcome = JSON.parse(text) as RunOutcome & { valueJson?: string | null };
    let value: unknown = null;
    try {
      value = outcome.valueJson ? JSON.parse(outcome.valueJson) : null;
    } catch {
      value = null;
    }
    return { status: outcome.status, exitCode: outcome.exitCode, value, valueRepr: outcome.valueRepr ?? null, error: outcome.error ?? null };
  } catch (error) {
    host.flush();
    if (error instanceof WasiExit) {
      // exit! (or a fatal error) ends the VM at once.
      if (error.code !== 0 && nearMemoryCap(memory, run.memoryLimitBytes)) return memoryLimit(run.memoryLimitBytes);
      return {
        status: error.code === 0 ? "ok" : "error",
        exitCode: error.code,
        value: null,
        valueRepr: null,
        error: error.code === 0 ? null : { type: "SystemExit", message: `exit ${error.code}`, traceback: "" },
      };
    }
    if (error instanceof NoJavaScript) {
      context.write(2, encoder.encode(`${error.message} (${error.name})\n`));
      return { status: "error", exitCode: 1, value: null, valueRepr: null, error: { type: error.name, message: error.message, traceback: "" } };
    }
    if (error instanceof WasiInterrupted) {
      return { status: "error", exitCode: null, value: null, valueRepr: null, error: { type: "Interrupt", message: "interrupted", traceback: "" } };
    }
    if (error instanceof WebAssembly.RuntimeError || error instanceof RangeError) {
      if (nearMemoryCap(memory, run.memoryLimitBytes)) return memoryLimit(run.memoryLimitBytes);
      const message = `the Ruby VM trapped: ${(error as Error).message}`;
      context.write(2, encoder.encode(message + "\n"));
      return { status: "error", exitCode: 134, value: null, valueRepr: null, error: { type: "Trap", message, traceback: "" } };
    }
    throw error;
  }
}

serveRuntime({
  async load({ init: { args } }) {
    // args: [@ruby/3.4-wasm-wasi package dir]
    prepared = await prepareModule(await readAsset(`${args[0]}/dist/ruby+stdlib.wasm`));
    if (!prepared.memory) throw new Error("ruby.wasm has no memory to cap");
  },
  run: runRuby,
});
