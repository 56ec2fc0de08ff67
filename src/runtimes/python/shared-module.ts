/**
 * Runs INSIDE the executor's Python worker, in isolation "isolate": lets a fresh worker instantiate
 * Pyodide from the WebAssembly.Module the first worker compiled, instead of compiling 9.6 MB of
 * wasm again. V8 shares a module's compiled code between the isolates of a process, so a later
 * worker also skips the lazy compilation of every function the earlier ones already ran.
 *
 * Pyodide's loader has no option for a precompiled module; it builds Emscripten's settings with
 * its own `instantiateWasm` hook (pyodide.mjs, getInstantiateWasmFunc). We pass
 * `createPyodideModule`, which loadPyodide calls with those settings, and swap the hook there.
 */

// deno-lint-ignore no-explicit-any
type Settings = { instantiateWasm?: (imports: any, done: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void) => object; INITIAL_MEMORY?: number };
type PyodideModule = { HEAP8: Int8Array; growMemory(bytes: number): unknown };

/**
 * Pyodide's hook adds two imports before instantiating: Jsv_GetError_import and JsvError_Check
 * (pyodide.mjs, getJsvErrorImport). They come from this tiny wasm module (the same bytes Pyodide
 * ships, a GC struct used as a unique error marker), with the JavaScript fallback Pyodide itself
 * uses where wasm GC is missing.
 */
const JSV_ERROR_MODULE_BASE64 = "AGFzbQEAAAABDANfAGAAAW9gAW8BfwMDAgECBygCE0pzdl9HZXRFcnJvcl9pbXBvcnQAAA5Kc3ZFcnJvcl9DaGVjawABChMCBwD7AQD7GwsJACAA+xr7FAAL";

function jsvErrorImports(): Record<string, unknown> {
  try {
    const bytes = Uint8Array.from(atob(JSV_ERROR_MODULE_BASE64), (c) => c.charCodeAt(0));
    return new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as Record<string, unknown>;
  } catch {
    const marker = Symbol("error marker");
    return { Jsv_GetError_import: () => marker, JsvError_Check: (value: unknown) => value === marker };
  }
}

/**
 * A `createPyodideModule` for loadPyodide: with `module`, instantiates it; without, lets Pyodide
 * compile as usual and hands the compiled module to `onCompiled` (the first worker offers it).
 */
export function pyodideModuleFactory(
  factory: Promise<(settings: Settings) => Promise<unknown>>,
  module: WebAssembly.Module | null,
  onCompiled?: (module: WebAssembly.Module) => void,
): (settings: Settings) => Promise<unknown> {
  return async (settings) => {
    const made = await instantiate(settings);
    // Pyodide sizes a restored interpreter's memory by setting INITIAL_MEMORY to the snapshot's
    // length, but its build defines the memory itself (30 MB), so a snapshot of a larger heap (a
    // package environment: sympy makes it 62 MB) fails with "offset is out of bounds" when copied
    // in. Grow it first, as Emscripten would for a malloc.
    const wanted = settings.INITIAL_MEMORY ?? 0;
    if (made.HEAP8.length < wanted) made.growMemory(wanted);
    return made;
  };

  async function instantiate(settings: Settings): Promise<PyodideModule> {
    if (module) {
      settings.instantiateWasm = (imports, done) => {
        const { Jsv_GetError_import, JsvError_Check } = jsvErrorImports();
        imports.env.Jsv_GetError_import = Jsv_GetError_import;
        imports.env.JsvError_Check = JsvError_Check;
        WebAssembly.instantiate(module, imports).then((instance) => done(instance, module));
        return {};
      };
    } else if (onCompiled && settings.instantiateWasm) {
      const original = settings.instantiateWasm;
      settings.instantiateWasm = (imports, done) =>
        original(imports, (instance, compiled) => {
          onCompiled(compiled);
          done(instance, compiled);
        });
    }
    return (await factory)(settings) as Promise<PyodideModule>;
  }
}
