/**
 * Runs INSIDE the executor's worker. Emscripten-built runtimes (Pyodide, QuickJS, sql.js, Lua, PHP)
 * grow their heap through WebAssembly.Memory.prototype.grow and turn a throw into a failed malloc,
 * which they report as out-of-memory (Python: a MemoryError the guest can survive). This patch
 * refuses growth past the run's cap. Modules that grow with the memory.grow instruction get an
 * imported memory with a maximum instead (vfs/wasi-memory.ts). Guest JS could undo the patch; the
 * host's resident-memory watchdog is the wall behind it.
 */
const WASM_PAGE_BYTES = 65536;
let growCapBytes = Number.POSITIVE_INFINITY;
const originalGrow = WebAssembly.Memory.prototype.grow;

WebAssembly.Memory.prototype.grow = function grow(this: WebAssembly.Memory, deltaPages: number): number {
  if (this.buffer.byteLength + deltaPages * WASM_PAGE_BYTES > growCapBytes) {
    throw new RangeError("wasmbox: memory limit reached");
  }
  return originalGrow.call(this, deltaPages);
};

/** Sets the cap, in bytes of one memory, that growth may not pass. */
export function setGrowCap(bytes: number): void {
  growCapBytes = bytes;
}
