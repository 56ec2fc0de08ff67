/**
 * Runs INSIDE the executor's Python worker: a session's interpreter state as bytes (save, fork) and
 * back (restore, in a fresh worker of the same runtime). Issue 19; docs/sessions.md has the design.
 *
 * The interpreter's state is the wasm linear memory plus what Emscripten and Pyodide keep outside it.
 * This carries the memory (the bytes that differ from the base snapshot's memory, which the restoring
 * worker reads from the same file), the session's files (/sandbox, /tmp, /home), the working
 * directory and the open file descriptors. What lives outside memory and cannot be carried is
 * checked and refused by name rather than saved into a blob that breaks on restore:
 *
 * - JavaScript objects Python holds (Pyodide's reference table, "hiwire": an externref table whose
 *   bookkeeping is in memory, whose objects are not). A fresh worker of the same runtime holds the
 *   same objects at the same slots after its start (the runner's host-call and sleep functions, the
 *   JS globals, Pyodide's API); a session that keeps any other (a `pyodide.ffi` proxy, a JS callback)
 *   cannot be saved. Pyodide's own makeMemorySnapshot refuses the same state ("Can't serialize object
 *   at index N") unless each object was reached through a path from globalThis while snapshotting.
 * - Interned JS strings (Pyodide's "immortal" table, append-only): those added after the start are
 *   strings, carried and appended again in order.
 * - Shared libraries loaded after the start (the function table and Emscripten's loader state
 *   live in JavaScript): refused.
 * - The interpreter ended by os._exit: refused.
 *
 * Guest code shares this realm and can forge anything here: the host treats saved state as untrusted
 * bytes, and restoring a forged state gives guest code nothing it could not do in its own session.
 */

import { asFileSystemOwner, fsErrorText } from "./fs-owner.js";

// deno-lint-ignore no-explicit-any
type Pyodide = any;

/** Pages checked for zeros when a restored heap is larger than the base. */
const STATE_PAGE_BYTES = 4096;
/** Differing bytes closer than this are carried as one run (a run's header costs about as much). */
const RUN_MERGE_GAP_BYTES = 8;
const STATE_FORMAT = 1;
/** Where a session's files live: carried whole, and replaced whole on restore. */
const CARRIED_ROOTS = ["/sandbox", "/tmp", "/home"];

interface BridgeBaseline {
  /** One descriptor per slot occupied at the start ("index:type:name"), in slot order. */
  slots: string[];
  /** The same, as index -> the object, to compare identity at save time. */
  objects: Map<number, unknown>;
  immortals: number;
  functionTable: number;
  libraries: string[];
  /**
   * Descriptors the runtime itself opened while starting (a package environment leaves
   * /lib/python314.zip open): the restoring worker has the same, so a save leaves them out.
   */
  streams: Map<number, unknown>;
  /** The same, as "fd:path" for the runtime check. */
  streamPaths: string[];
}

type FileRecord = [path: string, kind: "dir" | "file" | "link", mode: number, mtimeMs: number, atimeMs: number, sizeOrTarget: number | string];

interface StateMeta {
  format: number;
  heapBytes: number;
  /** Bytes of the memory difference after the meta (see encodeDifference). */
  differenceBytes: number;
  baseline: string[];
  functionTable: number;
  libraries: string[];
  hiwireTableLength: number;
  immortalBase: number;
  immortals: string[];
  cwd: string;
  files: FileRecord[];
  /** Descriptors opened by the session: [fd, path, flags, position]. */
  fds: [number, string, number, number][];
}

let baseline: BridgeBaseline | null = null;

const NativeRegistry = globalThis.FinalizationRegistry;
/** Registries whose pending finalizers must not run any more: their proxies point into replaced memory. */
const retired = new WeakSet<object>();
const cleanups = new WeakMap<object, (held: unknown) => void>();

/**
 * Makes every FinalizationRegistry made from now on retirable. Call before Pyodide loads: its proxy
 * registry (`Module.finalizationRegistry`) decrements the reference count at a proxy's address when
 * the proxy is collected. A worker about to take a saved state holds proxies from its own start
 * (the warm-up's, its loader's) whose finalizers would otherwise run later against the restored
 * memory and decrement whatever lives at those addresses there: an intermittent crash ("memory
 * access out of bounds", "null function") in a restored session's later calls.
 */
export function guardFinalizers(): void {
  if (globalThis.FinalizationRegistry !== NativeRegistry) return;
  class GuardedRegistry<T> extends NativeRegistry<T> {
    constructor(cleanup: (held: T) => void) {
      let self: object | null = null;
      super((held: T) => {
        if (self !== null && !retired.has(self)) cleanup(held);
      });
      self = this;
      cleanups.set(this, cleanup as (held: unknown) => void);
    }
  }
  globalThis.FinalizationRegistry = GuardedRegistry as typeof FinalizationRegistry;
}

/** Stops the finalizers of every proxy made so far; proxies made from now on get a new registry. */
function retireProxyFinalizers(module: Pyodide): void {
  const old = module.finalizationRegistry as object;
  const cleanup = cleanups.get(old);
  if (!cleanup) throw new StateError("internal: Pyodide's proxy registry was made before guardFinalizers()");
  retired.add(old);
  module.finalizationRegistry = new FinalizationRegistry(cleanup);
}

function describeObject(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "function") return `function:${(value as { name?: string }).name ?? ""}`;
  if (typeof value === "object") {
    const name = (value as { constructor?: { name?: string } }).constructor?.name;
    return `object:${typeof name === "string" ? name : "?"}`;
  }
  return typeof value;
}

/** Length of a wasm table reached through an accessor that traps past its end. */
function tableLength(get: (index: number) => unknown, from = 0): number {
  let i = from;
  for (;;) {
    try {
      get(i);
    } catch {
      return i;
    }
    i++;
  }
}

function occupied(module: Pyodide, index: number): boolean {
  return ((module.__hiwire_slot_info(index) as number) & 1) === 1;
}

function loadedLibraries(module: Pyodide): string[] {
  return Object.keys(module.LDSO?.loadedLibsByName ?? {});
}

/**
 * Records what Python holds of JavaScript in a worker no guest code has used yet. Call once per
 * worker before its first run or restore (later calls keep the first record).
 */
export function recordBaseline(pyodide: Pyodide): void {
  if (baseline) return;
  const module = pyodide._module;
  const length = tableLength((i) => module.__hiwire_get(i));
  const slots: string[] = [];
  const objects = new Map<number, unknown>();
  for (let i = 1; i < length; i++) {
    if (!occupied(module, i)) continue;
    const value = module.__hiwire_get(i);
    objects.set(i, value);
    slots.push(`${i}:${describeObject(value)}`);
  }
  const streams = new Map<number, unknown>();
  const streamPaths: string[] = [];
  const fsStreams = pyodide.FS.streams as ({ path?: string } | null)[];
  for (let fd = 3; fd < fsStreams.length; fd++) {
    const stream = fsStreams[fd];
    if (!stream) continue;
    streams.set(fd, stream);
    streamPaths.push(`${fd}:${stream.path ?? ""}`);
  }
  baseline = {
    streams,
    streamPaths,
    slots,
    objects,
    immortals: tableLength((i) => module.__hiwire_immortal_get(i)),
    functionTable: module.wasmTable.length,
    libraries: loadedLibraries(module),
  };
}

/** An error whose message is shown to the caller as the reason (SESSION_NOT_SAVEABLE / INVALID_SESSION_BLOB). */
export class StateError extends Error {}

/**
 * The base snapshot's memory, read from its file on demand (the restoring worker starts from the
 * same bytes): reading 30 MB into a fresh buffer costs more than the rest of a small fork.
 */
export interface BaseMemory {
  length: number;
  /** Fills `into` with the bytes from `offset`. */
  read(offset: number, into: Uint8Array): void;
  close(): void;
}

const COMPARE_CHUNK_BYTES = 1024 * 1024;

function zeroPage(a: Uint8Array, offset: number, length: number): boolean {
  const a32 = new Int32Array(a.buffer, a.byteOffset + offset, length >>> 2);
  for (let i = 0; i < a32.length; i++) if (a32[i] !== 0) return false;
  return true;
}

function walkCarried(FS: Pyodide): { records: FileRecord[]; contents: Uint8Array[] } {
  const records: FileRecord[] = [];
  const contents: Uint8Array[] = [];
  const visit = (path: string) => {
    const stat = FS.lstat(path);
    const mode: number = stat.mode;
    const times = [stat.mtime.getTime(), stat.atime.getTime()] as const;
    if (FS.isDir(mode)) {
      records.push([path, "dir", mode, times[0], times[1], 0]);
      for (const name of FS.readdir(path) as string[]) {
        if (name !== "." && name !== "..") visit(`${path}/${name}`);
      }
    } else if (FS.isFile(mode)) {
      const data = FS.readFile(path) as Uint8Array;
      records.push([path, "file", mode, times[0], times[1], data.length]);
      contents.push(data);
    } else if (FS.isLink(mode)) {
      records.push([path, "link", mode, times[0], times[1], FS.readlink(path) as string]);
    } else {
      throw new StateError(`${path} is a special file (a pipe or device), which a saved session cannot carry`);
    }
  };
  for (const root of CARRIED_ROOTS) {
    if (FS.analyzePath(root).exists) visit(root);
  }
  return { records, contents };
}

function carriedPath(path: string): boolean {
  if (typeof path !== "string" || path.includes("\0") || path.length > 4096) return false;
  if (!CARRIED_ROOTS.some((root) => path === root || path.startsWith(root + "/"))) return false;
  return path.split("/").slice(1).every((part) => part !== "" && part !== "." && part !== "..");
}

/**
 * The session's state as bytes: [u32 meta length][meta JSON][memory difference][file contents]. Throws a
 * StateError naming what cannot be saved.
 */
export function saveState(pyodide: Pyodide, base: BaseMemory, exited: boolean): Uint8Array {
  if (exited) throw new StateError("the interpreter exited (os._exit) in an earlier call");
  if (!baseline) throw new StateError("internal: no baseline was recorded");
  const module = pyodide._module;
  const FS = pyodide.FS;

  // JavaScript objects Python holds now must be the ones every fresh worker holds at the same slots.
  const hiwireLength = tableLength((i) => module.__hiwire_get(i));
  for (let i = 1; i < hiwireLength; i++) {
    if (!occupied(module, i)) continue;
    const value = module.__hiwire_get(i);
    if (baseline.objects.get(i) !== value || !baseline.objects.has(i)) {
      throw new StateError(
        `it holds a JavaScript object (${describeObject(value).replace(":", " ")}, reference ${i}), which cannot be saved: ` +
          "drop the Python variables that refer to JavaScript values (pyodide.ffi proxies, callbacks) and save again",
      );
    }
  }
  if (module.wasmTable.length !== baseline.functionTable) {
    throw new StateError("it loaded a shared library or made a C callback (ctypes) after it started, which a saved session cannot carry");
  }
  const libraries = loadedLibraries(module);
  if (libraries.join("\n") !== baseline.libraries.join("\n")) {
    throw new StateError(`it loaded a shared library after it started (${libraries.filter((l) => !baseline!.libraries.includes(l)).join(", ")}), which a saved session cannot carry`);
  }
  const immortalCount = tableLength((i) => module.__hiwire_immortal_get(i), baseline.immortals);
  const immortals: string[] = [];
  for (let i = baseline.immortals; i < immortalCount; i++) {
    const value = module.__hiwire_immortal_get(i);
    if (typeof value !== "string") throw new StateError(`it interned a JavaScript ${typeof value} (immortal ${i}), which cannot be saved`);
    immortals.push(value);
  }

  // Descriptors the session opened: regular files in the carried directories only.
  const fds: [number, string, number, number][] = [];
  const streams: ({ path?: string; flags: number; position: number; node: { mode: number } } | null)[] = FS.streams;
  for (let fd = 3; fd < streams.length; fd++) {
    const stream = streams[fd];
    if (!stream || baseline.streams.get(fd) === stream) continue; // the runtime's own, in every worker
    const path = stream.path ?? "";
    if (!carriedPath(path) || !FS.isFile(stream.node.mode)) {
      throw new StateError(`descriptor ${fd} (${path || "no path"}) is open and is not a file in /sandbox, /tmp or /home: close it and save again`);
    }
    // Restored by opening its path again: the path must still lead to the same file (not deleted,
    // renamed or replaced since it was opened), or the blob would not restore.
    let sameFile = false;
    try {
      sameFile = FS.lookupPath(path).node === stream.node;
    } catch {
      // no such path any more
    }
    if (!sameFile) {
      throw new StateError(`descriptor ${fd} (${path}) is open on a file that was deleted, renamed or replaced since: close it and save again`);
    }
    fds.push([fd, path, stream.flags, stream.position]);
  }

  const heap: Uint8Array = module.HEAPU8;
  const difference = encodeDifference(heap, base);

  // As the file system's owner: the guest may have made a directory unreadable.
  const { records, contents } = asFileSystemOwner(FS, () => {
    try {
      return walkCarried(FS);
    } catch (error) {
      if (error instanceof StateError) throw error;
      throw new StateError(`its files cannot be read (${fsErrorText(error)})`);
    }
  });
  const meta: StateMeta = {
    format: STATE_FORMAT,
    heapBytes: heap.length,
    differenceBytes: difference.length,
    baseline: [...baseline.slots, ...baseline.streamPaths.map((entry) => `fd ${entry}`)],
    functionTable: baseline.functionTable,
    libraries: baseline.libraries,
    hiwireTableLength: hiwireLength,
    immortalBase: baseline.immortals,
    immortals,
    cwd: FS.cwd(),
    files: records,
    fds,
  };
  const metaBytes = new TextEncoder().encode(JSON.stringify(meta));
  const fileBytes = contents.reduce((sum, c) => sum + c.length, 0);
  const out = new Uint8Array(4 + metaBytes.length + difference.length + fileBytes);
  new DataView(out.buffer).setUint32(0, metaBytes.length, true);
  out.set(metaBytes, 4);
  let at = 4 + metaBytes.length;
  out.set(difference, at);
  at += difference.length;
  for (const content of contents) {
    out.set(content, at);
    at += content.length;
  }
  return out;
}

/**
 * The memory's difference from the base snapshot's: runs of bytes that differ, each as
 * [LEB128 bytes since the end of the previous run][LEB128 length][the bytes]. Past the base's end the
 * base is zeros. A small session differs from the snapshot in ~1300 pages but in only ~140 KB of
 * bytes within them (allocator words, reference counts), so this is ~20 times smaller than the pages.
 */
function encodeDifference(heap: Uint8Array, base: BaseMemory): Uint8Array {
  let out = new Uint8Array(64 * 1024);
  let used = 0;
  const reserve = (n: number) => {
    if (used + n <= out.length) return;
    const grown = new Uint8Array(Math.max(out.length * 2, used + n));
    grown.set(out.subarray(0, used));
    out = grown;
  };
  const leb = (value: number) => {
    reserve(5);
    do {
      let byte = value & 0x7f;
      value = Math.floor(value / 128);
      if (value > 0) byte |= 0x80;
      out[used++] = byte;
    } while (value > 0);
  };
  let previousEnd = 0;
  let runStart = -1;
  let runEnd = -1;
  const flush = () => {
    if (runStart < 0) return;
    leb(runStart - previousEnd);
    leb(runEnd - runStart);
    reserve(runEnd - runStart);
    out.set(heap.subarray(runStart, runEnd), used);
    used += runEnd - runStart;
    previousEnd = runEnd;
    runStart = -1;
  };
  // One pass, word by word, over views made once (heap and chunk are 4-byte aligned, memory grows by
  // 64 KiB pages, the base's memory is a whole number of pages): a run carries whole differing words.
  const heap32 = new Int32Array(heap.buffer, heap.byteOffset, heap.length >>> 2);
  const chunk = new Uint8Array(COMPARE_CHUNK_BYTES);
  const chunk32 = new Int32Array(chunk.buffer);
  const baseWords = base.length >>> 2;
  const visit = (word: number) => {
    const at = word * 4;
    if (runStart >= 0 && at - runEnd <= RUN_MERGE_GAP_BYTES) runEnd = at + 4;
    else {
      flush();
      runStart = at;
      runEnd = at + 4;
    }
  };
  for (let chunkWord = 0; chunkWord < baseWords; chunkWord += COMPARE_CHUNK_BYTES >>> 2) {
    const words = Math.min(COMPARE_CHUNK_BYTES >>> 2, baseWords - chunkWord);
    base.read(chunkWord * 4, chunk.subarray(0, words * 4));
    for (let i = 0; i < words; i++) if (heap32[chunkWord + i] !== chunk32[i]) visit(chunkWord + i);
  }
  // Past the base the base is zeros.
  for (let word = baseWords; word < heap32.length; word++) if (heap32[word] !== 0) visit(word);
  flush();
  return out.slice(0, used);
}

/** Reads one LEB128 number; null past the end or past 2^32. */
function readLeb(bytes: Uint8Array, cursor: { at: number }): number | null {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 5; i++) {
    if (cursor.at >= bytes.length) return null;
    const byte = bytes[cursor.at++]!;
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return value <= 0xffffffff ? value : null;
    scale *= 128;
  }
  return null;
}

/** Checks a memory difference lies inside a heap of `heapBytes` and ends exactly at its own end. */
function checkDifference(difference: Uint8Array, heapBytes: number): void {
  const cursor = { at: 0 };
  let position = 0;
  while (cursor.at < difference.length) {
    const skip = readLeb(difference, cursor);
    const length = readLeb(difference, cursor);
    if (skip === null || length === null || length === 0) throw new StateError("the saved state's memory difference is malformed");
    position += skip + length;
    cursor.at += length;
    if (position > heapBytes || cursor.at > difference.length) throw new StateError("the saved state's memory difference reaches past its memory or its end");
  }
}

/** Writes a checked difference over the heap. */
function applyDifference(heap: Uint8Array, difference: Uint8Array): void {
  const cursor = { at: 0 };
  let position = 0;
  while (cursor.at < difference.length) {
    position += readLeb(difference, cursor)!;
    const length = readLeb(difference, cursor)!;
    heap.set(difference.subarray(cursor.at, cursor.at + length), position);
    cursor.at += length;
    position += length;
  }
}

function parseMeta(bytes: Uint8Array): { meta: StateMeta; at: number } {
  if (bytes.length < 4) throw new StateError("the saved state is truncated");
  const metaLength = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  if (4 + metaLength > bytes.length) throw new StateError("the saved state is truncated");
  let meta: StateMeta;
  try {
    meta = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + metaLength)));
  } catch {
    throw new StateError("the saved state's description is not valid JSON");
  }
  const ok =
    meta && meta.format === STATE_FORMAT &&
    Number.isInteger(meta.heapBytes) && meta.heapBytes > 0 && meta.heapBytes % 65536 === 0 && meta.heapBytes <= 4 * 1024 ** 3 &&
    Number.isInteger(meta.differenceBytes) && meta.differenceBytes >= 0 && Array.isArray(meta.baseline) && Array.isArray(meta.immortals) && Array.isArray(meta.files) &&
    Array.isArray(meta.fds) && Array.isArray(meta.libraries) && typeof meta.cwd === "string" &&
    Number.isInteger(meta.hiwireTableLength) && meta.hiwireTableLength >= 0 && meta.hiwireTableLength < 1 << 24 &&
    Number.isInteger(meta.immortalBase) && Number.isInteger(meta.functionTable);
  if (!ok) throw new StateError("the saved state's description is malformed or of another format");
  return { meta, at: 4 + metaLength };
}

/**
 * Puts a saved state into this worker, which must be fresh (no guest code has run in it). Checks
 * everything first and changes nothing if a check fails; throws a StateError naming the cause.
 */
export function restoreState(pyodide: Pyodide, base: BaseMemory, bytes: Uint8Array): void {
  if (!baseline) throw new StateError("internal: no baseline was recorded");
  const module = pyodide._module;
  const FS = pyodide.FS;
  const { meta, at: dataStart } = parseMeta(bytes);

  if (meta.baseline.join("|") !== [...baseline.slots, ...baseline.streamPaths.map((entry) => `fd ${entry}`)].join("|") || meta.functionTable !== baseline.functionTable || meta.libraries.join("\n") !== baseline.libraries.join("\n") || meta.immortalBase !== baseline.immortals) {
    throw new StateError("the saved session was made by a different runtime (its interpreter started differently from this one)");
  }
  if (!meta.immortals.every((s) => typeof s === "string")) throw new StateError("the saved state's interned strings are malformed");

  // The memory difference and every file must lie inside the bytes before anything changes.
  const difference = bytes.subarray(dataStart, dataStart + meta.differenceBytes);
  checkDifference(difference, meta.heapBytes);
  let fileBytes = 0;
  // Each entry's parent is a carried root's parent or a directory listed before it (as the save
  // walks them): no entry is reached through a symbolic link (which could lead out of the carried
  // directories) or recreated before its directory exists.
  const kinds = new Map<string, string>();
  for (const record of meta.files) {
    if (!Array.isArray(record) || !carriedPath(record[0]) || !["dir", "file", "link"].includes(record[1]) || !Number.isInteger(record[2]) || typeof record[3] !== "number" || typeof record[4] !== "number") {
      throw new StateError("the saved state's file list is malformed");
    }
    const path = record[0];
    const isRoot = CARRIED_ROOTS.includes(path);
    if (kinds.has(path) || (isRoot ? record[1] !== "dir" : kinds.get(path.slice(0, path.lastIndexOf("/"))) !== "dir")) {
      throw new StateError(`the saved state's file list is malformed (${JSON.stringify(path.slice(0, 200))} is listed twice, or not in a directory listed before it)`);
    }
    kinds.set(path, record[1]);
    if (record[1] === "file") {
      if (!Number.isInteger(record[5]) || (record[5] as number) < 0) throw new StateError("the saved state's file list is malformed");
      fileBytes += record[5] as number;
    } else if (record[1] === "link" && typeof record[5] !== "string") {
      throw new StateError("the saved state's file list is malformed");
    }
  }
  for (const fd of meta.fds) {
    if (!Array.isArray(fd) || !Number.isInteger(fd[0]) || fd[0] < 3 || fd[0] > 4096 || !carriedPath(fd[1]) || !Number.isInteger(fd[2]) || !Number.isInteger(fd[3]) || fd[3] < 0) {
      throw new StateError("the saved state's descriptor list is malformed");
    }
    if (kinds.get(fd[1]) !== "file") throw new StateError("the saved state's descriptor list names a file the state does not carry");
  }
  if (meta.hiwireTableLength > 1 << 20) throw new StateError("the saved state's JavaScript reference table is implausibly long");
  if (dataStart + meta.differenceBytes + fileBytes !== bytes.length) throw new StateError("the saved state is truncated or has extra bytes");

  // From here the memory is the saved session's: no finalizer of a proxy this worker made may touch it.
  retireProxyFinalizers(module);

  // Memory: grow to the saved size (the allocator's growth; its bookkeeping is overwritten next),
  // then the base snapshot's bytes, zeros past them, and the difference over them.
  while (module.HEAPU8.length < meta.heapBytes) {
    const want = meta.heapBytes - module.HEAPU8.length + 65536;
    if (!module._malloc(want)) throw new StateError(`this executor cannot grow its memory to ${meta.heapBytes} bytes`);
  }
  const heap: Uint8Array = module.HEAPU8;
  base.read(0, heap.subarray(0, Math.min(base.length, heap.length)));
  // Zeros past the base: only pages the growth above wrote to (the allocator's bookkeeping) are not
  // zero already. Filling all of them would make the executor resident in the whole declared heap
  // (gigabytes, from a blob of kilobytes) before any call's memory limit applies.
  for (let offset = base.length - (base.length % STATE_PAGE_BYTES); offset < heap.length; offset += STATE_PAGE_BYTES) {
    const start = Math.max(offset, base.length);
    const end = Math.min(heap.length, offset + STATE_PAGE_BYTES);
    if (start % 4 === 0 && (end - start) % 4 === 0 ? !zeroPage(heap, start, end - start) : heap.subarray(start, end).some((b) => b !== 0)) heap.fill(0, start, end);
  }
  applyDifference(heap, difference);
  let at = dataStart + meta.differenceBytes;

  // JavaScript's side of the reference tables: as long as the saving worker's, interned strings appended.
  for (let i = tableLength((j) => module.__hiwire_get(j)); i < meta.hiwireTableLength; i++) module.__hiwire_set(i, null);
  for (const value of meta.immortals) module.__hiwire_immortal_add(value);

  // Files: the carried directories replaced whole, as the file system's owner.
  let current = "/";
  asFileSystemOwner(FS, () => {
    try {
      FS.chdir("/");
      for (const root of CARRIED_ROOTS) removeTree(FS, root);
      for (const record of meta.files) {
        const [path, kind, mode] = record;
        current = path;
        if (kind === "dir") FS.mkdir(path, mode & 0o7777);
        else if (kind === "file") {
          const size = record[5] as number;
          FS.writeFile(path, bytes.subarray(at, at + size));
          at += size;
        } else FS.symlink(record[5] as string, path);
      }
      // Modes and times once nothing changes a directory's entries any more (deepest first).
      for (const [path, kind, mode, mtime, atime] of [...meta.files].reverse()) {
        if (kind === "link") continue;
        current = path;
        FS.chmod(path, mode);
        FS.utime(path, atime, mtime);
      }
      for (const [fd, path, flags, position] of meta.fds) {
        current = path;
        const stream = FS.open(path, flags & ~(0o100 | 0o200 | 0o1000)); // without O_CREAT, O_EXCL, O_TRUNC
        FS.streams[stream.fd] = null;
        if (FS.streams[fd]) FS.close(FS.streams[fd]);
        stream.fd = fd;
        FS.streams[fd] = stream;
        stream.position = position;
      }
      // Every run works in /sandbox and may use /tmp: a state without them still gets them.
      for (const dir of ["/sandbox", "/tmp"]) if (!FS.analyzePath(dir).exists) FS.mkdirTree(dir);
      try {
        FS.chdir(meta.cwd);
      } catch {
        FS.chdir("/sandbox");
      }
    } catch (error) {
      if (error instanceof StateError) throw error;
      throw new StateError(`the saved state's files cannot be recreated (${JSON.stringify(current.slice(0, 200))}: ${fsErrorText(error)})`);
    }
  });
}

function removeTree(FS: Pyodide, path: string): void {
  if (!FS.analyzePath(path).exists) return;
  const stat = FS.lstat(path);
  if (FS.isDir(stat.mode)) {
    FS.chmod(path, 0o777);
    for (const name of FS.readdir(path) as string[]) {
      if (name !== "." && name !== "..") removeTree(FS, `${path}/${name}`);
    }
    FS.rmdir(path);
  } else FS.unlink(path);
}
