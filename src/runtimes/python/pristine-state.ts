/**
 * Runs INSIDE the executor's Python worker, for the "interpreter" isolation mode: captures the
 * warm interpreter's whole state once, before any guest code, and puts it back after each run, so
 * the next run on this executor starts from exactly the state a fresh executor would give it.
 *
 * The interpreter's state is the wasm linear memory (every Python object, module, the allocator,
 * the random generator) plus what Emscripten and Pyodide keep in JavaScript: the in-memory file
 * system, open descriptors, the current directory, timers Python scheduled (asyncio, signal.alarm),
 * and the finalizers of JS proxies that point into wasm memory. Each is captured or tracked here.
 * What cannot be put back (a run that loaded a shared library, grew the function table, used the
 * JavaScript bridge, closed a standard stream, or grew memory past the smallest memory limit a
 * later run may have) makes `restore` refuse, and the host discards the executor as in the
 * default mode.
 *
 * This is a wall against Python code. Guest code that breaks out into this worker's JavaScript
 * could leave state behind for later runs on the same executor: that is the documented price of
 * this mode (README, "Isolation modes").
 */
import { MIN_MEMORY_LIMIT_BYTES } from "../../core/limits.js";
import { asFileSystemOwner } from "./fs-owner.js";

// deno-lint-ignore no-explicit-any
type Pyodide = any;

interface FsNode {
  kind: "dir" | "file" | "link" | "other";
  mode: number;
  mtime: number;
  atime: number;
  /** Regular files: the content. */
  data?: Uint8Array;
  /** Symbolic links: the target. */
  target?: string;
}

interface Pristine {
  memory: Uint8Array;
  /** Pyodide's JS-reference table ("hiwire"), as slot descriptors: see bridgeState(). */
  bridge: string;
  tableLength: number;
  files: Map<string, FsNode>;
  streams: unknown[];
  cwd: string;
}

// Captured when this module loads, before Pyodide or any guest code: the reset itself must run on
// the real timer functions, and the wrappers below must see every timer Pyodide schedules.
const nativeSetTimeout = globalThis.setTimeout;
const nativeSetInterval = globalThis.setInterval;
const nativeClearTimeout = globalThis.clearTimeout;
const nativeClearInterval = globalThis.clearInterval;
const nativeRegister = FinalizationRegistry.prototype.register;
// Pyodide counts Deno as Node (IN_NODE) and schedules asyncio's call_soon with setImmediate.
const nodeGlobals = globalThis as unknown as Record<string, ((...args: unknown[]) => unknown) | undefined>;
const nativeSetImmediate = nodeGlobals.setImmediate;
const nativeClearImmediate = nodeGlobals.clearImmediate;

let tracking = false;
const liveTimers = new Set<number>();
const liveImmediates = new Set<unknown>();
const registrations: [FinalizationRegistry<unknown>, WeakKey][] = [];

/**
 * Wraps the timer functions and FinalizationRegistry.register so a run's timers can be cancelled
 * and its proxies' finalizers dropped. Call before loading Pyodide.
 */
export function trackRunResources(): void {
  const g = globalThis as unknown as Record<string, unknown>;
  g.setTimeout = function (handler: unknown, delayMs?: number, ...args: unknown[]) {
    if (typeof handler !== "function") return nativeSetTimeout(handler as () => void, delayMs);
    // (Deno's timer ids are numbers; the casts only satisfy Node's typings this file is checked with.)
    const id = nativeSetTimeout(() => {
      liveTimers.delete(id);
      handler(...args);
    }, delayMs) as unknown as number;
    if (tracking) liveTimers.add(id);
    return id;
  };
  g.setInterval = function (handler: unknown, delayMs?: number, ...args: unknown[]) {
    const id = nativeSetInterval(handler as () => void, delayMs, ...args) as unknown as number;
    if (tracking) liveTimers.add(id);
    return id;
  };
  g.clearTimeout = (id?: number) => {
    if (id !== undefined) liveTimers.delete(id);
    nativeClearTimeout(id);
  };
  g.clearInterval = (id?: number) => {
    if (id !== undefined) liveTimers.delete(id);
    nativeClearInterval(id);
  };
  if (nativeSetImmediate && nativeClearImmediate) {
    g.setImmediate = function (handler: unknown, ...args: unknown[]) {
      if (typeof handler !== "function") return nativeSetImmediate(handler, ...args);
      const immediate = nativeSetImmediate(() => {
        liveImmediates.delete(immediate);
        handler(...args);
      });
      if (tracking) liveImmediates.add(immediate);
      return immediate;
    };
    g.clearImmediate = (immediate?: unknown) => {
      liveImmediates.delete(immediate);
      nativeClearImmediate(immediate);
    };
  }
  FinalizationRegistry.prototype.register = function (target: WeakKey, held: unknown, token?: WeakKey) {
    nativeRegister.call(this, target, held, token);
    // Pyodide always passes a token (the proxy), so each finalizer can be dropped again.
    if (tracking && token !== undefined) registrations.push([this, token]);
  };
}

/**
 * Cancels the timers the run scheduled. Call at the end of the run, before its result is posted,
 * so none fires afterwards (its output would reach the next run).
 */
export function cancelRunTimers(): void {
  for (const id of liveTimers) {
    nativeClearTimeout(id);
    nativeClearInterval(id);
  }
  liveTimers.clear();
  for (const immediate of liveImmediates) nativeClearImmediate?.(immediate);
  liveImmediates.clear();
}

/** Runs `task` on a fresh macrotask with the real setTimeout, after the run's microtasks drained. */
export function afterMicrotasks(task: () => void): void {
  nativeSetTimeout(task, 0);
}

/** The file's bytes as MEMFS holds them, without a copy (null: read it through FS.readFile). */
function contentView(FS: Pyodide, path: string): Uint8Array | null {
  const node = FS.lookupPath(path, { follow: false }).node;
  if (node.contents === null || node.contents === undefined) return new Uint8Array(0);
  return node.contents instanceof Uint8Array ? node.contents.subarray(0, node.usedBytes) : null;
}

/**
 * Every node of the file system but /proc and `skip` (read-only mounts: the package environment);
 * file contents copied (`copy`) or viewed in place.
 */
function walk(FS: Pyodide, copy: boolean, skip: readonly string[]): Map<string, FsNode> {
  const out = new Map<string, FsNode>();
  const visit = (dir: string) => {
    for (const name of FS.readdir(dir) as string[]) {
      if (name === "." || name === "..") continue;
      const path = dir === "/" ? `/${name}` : `${dir}/${name}`;
      // /proc is generated from the descriptor table, which is restored on its own.
      if (path === "/proc" || skip.includes(path)) continue;
      const stat = FS.lstat(path);
      const mode: number = stat.mode;
      const node: FsNode = {
        kind: FS.isDir(mode) ? "dir" : FS.isFile(mode) ? "file" : FS.isLink(mode) ? "link" : "other",
        mode,
        mtime: stat.mtime.getTime(),
        atime: stat.atime.getTime(),
      };
      out.set(path, node);
      if (node.kind === "dir") visit(path);
      else if (node.kind === "file") node.data = (copy ? null : contentView(FS, path)) ?? (FS.readFile(path) as Uint8Array);
      else if (node.kind === "link") node.target = FS.readlink(path) as string;
    }
  };
  visit("/");
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  if (a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0) {
    const words = a.length >>> 2;
    const a32 = new Int32Array(a.buffer, a.byteOffset, words);
    const b32 = new Int32Array(b.buffer, b.byteOffset, words);
    for (let i = 0; i < words; i++) if (a32[i] !== b32[i]) return false;
    for (let i = words << 2; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The state of the table through which Python holds JavaScript values, as one string: the live
 * count and every slot's descriptor (each use of a slot changes it). Plain Python code never
 * touches it; host-function calls, asyncio scheduling and pyodide.ffi do. Pyodide keeps caches of
 * these references on the JavaScript side, which a memory copy cannot put back, so a run that
 * used the bridge is not reset (a stale reference crashed the next run in testing).
 */
function bridgeState(module: Pyodide): string {
  const slots: number[] = [];
  let zeros = 0;
  for (let i = 0; zeros < 64 && i < 1 << 20; i++) {
    const info = module.__hiwire_slot_info(i) as number;
    slots.push(info);
    zeros = info === 0 ? zeros + 1 : 0;
  }
  return `${module._hiwire_num_refs()}:${slots.join(",")}`;
}

let pristine: Pristine | null = null;

/** Records the interpreter's state as the one every later run starts from. Call once, when warm. */
export function capturePristine(pyodide: Pyodide, readOnlyMounts: readonly string[] = []): void {
  const module = pyodide._module;
  const FS = pyodide.FS;
  pristine = {
    memory: module.HEAP8.slice() as Uint8Array,
    bridge: bridgeState(module),
    tableLength: module.wasmTable.length,
    files: walk(FS, true, readOnlyMounts),
    streams: [...FS.streams],
    cwd: FS.cwd(),
  };
  tracking = true;
}

/**
 * Drops the captured state and stops tracking: this interpreter became a session's, which keeps
 * its state and is never reset, so the finalizers kept for a reset would only pile up.
 */
export function forgetPristine(): void {
  pristine = null;
  tracking = false;
  registrations.length = 0;
  liveTimers.clear();
  liveImmediates.clear();
}

/**
 * Puts the captured state back. Returns null when done, or why it cannot be (the executor must then
 * be discarded; nothing was changed that the caller relies on).
 */
export function restorePristine(pyodide: Pyodide, readOnlyMounts: readonly string[] = []): string | null {
  if (!pristine) return "no pristine state was captured";
  const module = pyodide._module;
  const FS = pyodide.FS;
  const heap: Uint8Array = module.HEAPU8;
  if (heap.length > Math.max(pristine.memory.length, MIN_MEMORY_LIMIT_BYTES)) return "memory grew past the smallest limit";
  if (module.wasmTable.length !== pristine.tableLength) return "the function table grew (a library was loaded)";
  if (bridgeState(module) !== pristine.bridge) return "the run used the JavaScript bridge (host functions, asyncio or pyodide.ffi)";
  const streams: unknown[] = FS.streams;
  for (let fd = 0; fd < pristine.streams.length; fd++) {
    if (pristine.streams[fd] && streams[fd] !== pristine.streams[fd]) return `descriptor ${fd} was closed or replaced`;
  }

  cancelRunTimers();
  for (const [registry, token] of registrations) registry.unregister(token);
  registrations.length = 0;

  heap.set(pristine.memory);
  if (heap.length > pristine.memory.length) heap.fill(0, pristine.memory.length);

  // The guest may have made files read-only or moved into a directory it then added: restore as
  // the file system's owner, from the root.
  const captured = pristine;
  return asFileSystemOwner(FS, (): string | null => {
    FS.chdir("/");
    for (let fd = 0; fd < streams.length; fd++) {
      if (streams[fd] && !captured.streams[fd]) FS.close(streams[fd]);
    }
    const now = walk(FS, false, readOnlyMounts);
    // Remove what the run added or changed the kind of, deepest paths first.
    const extra = [...now].filter(([path, node]) => captured.files.get(path)?.kind !== node.kind);
    extra.sort((a, b) => b[0].length - a[0].length);
    for (const [path, node] of extra) {
      if (node.kind === "dir") FS.rmdir(path);
      else FS.unlink(path);
      now.delete(path);
    }
    // Put back what the run removed or changed, shallowest first (a parent before its children).
    const paths = [...captured.files.keys()].sort((a, b) => a.length - b.length);
    for (const path of paths) {
      const want = captured.files.get(path)!;
      const have = now.get(path);
      if (!have) {
        if (want.kind === "dir") FS.mkdir(path, want.mode);
        else if (want.kind === "file") FS.writeFile(path, want.data);
        else if (want.kind === "link") FS.symlink(want.target, path);
        else return `cannot recreate the special file ${path}`;
      } else if (want.kind === "file" && !sameBytes(have.data!, want.data!)) {
        FS.writeFile(path, want.data);
      } else if (want.kind === "link" && have.target !== want.target) {
        FS.unlink(path);
        FS.symlink(want.target, path);
      }
    }
    // Then modes and times, once nothing changes a directory's contents (and so its mtime) any more.
    for (const path of paths) {
      const want = captured.files.get(path)!;
      if (want.kind === "link") continue;
      const stat = FS.lstat(path);
      if (stat.mode !== want.mode) FS.chmod(path, want.mode);
      if (stat.mtime.getTime() !== want.mtime || stat.atime.getTime() !== want.atime) FS.utime(path, want.atime, want.mtime);
    }
    FS.chdir(captured.cwd);
    return null;
  });
}
