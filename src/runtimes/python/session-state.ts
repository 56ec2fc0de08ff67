/**
 * Runs INSIDE the executor's Python worker: a session's interpreter state as bytes (save, fork) and
 * back (restore, in a fresh worker of the same runtime). Issue 19; docs/sessions.md has the design.
 *
 * The interpreter's state is the wasm linear memory plus what Emscripten and Pyodide keep outside it.
 * This carries the memory (the pages that differ from the base snapshot's memory, which the restoring
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

// deno-lint-ignore no-explicit-any
type Pyodide = any;

/** Pages compared and carried: the wasm page is 64 KiB; smaller pages make smaller deltas. */
export const STATE_PAGE_BYTES = 4096;
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
}

type FileRecord = [path: string, kind: "dir" | "file" | "link", mode: number, mtimeMs: number, atimeMs: number, sizeOrTarget: number | string];

interface StateMeta {
  format: number;
  heapBytes: number;
  pageBytes: number;
  /** [first page, count]: the pages carried, their bytes in this order after the meta. */
  runs: [number, number][];
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
  baseline = {
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

function samePage(a: Uint8Array, aOffset: number, b: Uint8Array, bOffset: number, length: number): boolean {
  if ((a.byteOffset + aOffset) % 4 === 0 && (b.byteOffset + bOffset) % 4 === 0 && length % 4 === 0) {
    const a32 = new Int32Array(a.buffer, a.byteOffset + aOffset, length >>> 2);
    const b32 = new Int32Array(b.buffer, b.byteOffset + bOffset, length >>> 2);
    for (let i = 0; i < a32.length; i++) if (a32[i] !== b32[i]) return false;
    return true;
  }
  for (let i = 0; i < length; i++) if (a[aOffset + i] !== b[bOffset + i]) return false;
  return true;
}

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
 * The session's state as bytes: [u32 meta length][meta JSON][carried pages][file contents]. Throws a
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
    if (!stream) continue;
    const path = stream.path ?? "";
    if (!carriedPath(path) || !FS.isFile(stream.node.mode)) {
      throw new StateError(`descriptor ${fd} (${path || "no path"}) is open and is not a file in /sandbox, /tmp or /home: close it and save again`);
    }
    fds.push([fd, path, stream.flags, stream.position]);
  }

  const heap: Uint8Array = module.HEAPU8;
  const pages = Math.ceil(heap.length / STATE_PAGE_BYTES);
  const runs: [number, number][] = [];
  let carried = 0;
  const chunk = new Uint8Array(COMPARE_CHUNK_BYTES);
  let chunkStart = -1;
  for (let page = 0; page < pages; page++) {
    const offset = page * STATE_PAGE_BYTES;
    const length = Math.min(STATE_PAGE_BYTES, heap.length - offset);
    let same: boolean;
    if (offset + length <= base.length) {
      const wanted = offset - (offset % COMPARE_CHUNK_BYTES);
      if (wanted !== chunkStart) {
        chunkStart = wanted;
        base.read(chunkStart, chunk.subarray(0, Math.min(COMPARE_CHUNK_BYTES, base.length - chunkStart)));
      }
      same = samePage(heap, offset, chunk, offset - chunkStart, length);
    } else {
      same = offset >= base.length && zeroPage(heap, offset, length);
    }
    if (same) continue;
    const last = runs.at(-1);
    if (last && last[0] + last[1] === page) last[1]++;
    else runs.push([page, 1]);
    carried++;
  }

  const { records, contents } = walkCarried(FS);
  const meta: StateMeta = {
    format: STATE_FORMAT,
    heapBytes: heap.length,
    pageBytes: STATE_PAGE_BYTES,
    runs,
    baseline: baseline.slots,
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
  const out = new Uint8Array(4 + metaBytes.length + carried * STATE_PAGE_BYTES + fileBytes);
  new DataView(out.buffer).setUint32(0, metaBytes.length, true);
  out.set(metaBytes, 4);
  let at = 4 + metaBytes.length;
  for (const [first, count] of runs) {
    const start = first * STATE_PAGE_BYTES;
    const end = Math.min(heap.length, start + count * STATE_PAGE_BYTES);
    out.set(heap.subarray(start, end), at);
    at += count * STATE_PAGE_BYTES; // a short last page leaves zeros
  }
  for (const content of contents) {
    out.set(content, at);
    at += content.length;
  }
  return out;
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
    meta && meta.format === STATE_FORMAT && meta.pageBytes === STATE_PAGE_BYTES &&
    Number.isInteger(meta.heapBytes) && meta.heapBytes > 0 && meta.heapBytes % 65536 === 0 && meta.heapBytes <= 4 * 1024 ** 3 &&
    Array.isArray(meta.runs) && Array.isArray(meta.baseline) && Array.isArray(meta.immortals) && Array.isArray(meta.files) &&
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

  if (meta.baseline.join("|") !== baseline.slots.join("|") || meta.functionTable !== baseline.functionTable || meta.libraries.join("\n") !== baseline.libraries.join("\n") || meta.immortalBase !== baseline.immortals) {
    throw new StateError("the saved session was made by a different runtime (its interpreter started differently from this one)");
  }
  if (!meta.immortals.every((s) => typeof s === "string")) throw new StateError("the saved state's interned strings are malformed");

  // Every page and file must lie inside the bytes before anything changes.
  const pages = meta.heapBytes / STATE_PAGE_BYTES;
  let carried = 0;
  let previousEnd = 0;
  for (const run of meta.runs) {
    if (!Array.isArray(run) || !Number.isInteger(run[0]) || !Number.isInteger(run[1]) || run[0] < previousEnd || run[1] < 1 || run[0] + run[1] > pages) {
      throw new StateError("the saved state's memory pages are malformed");
    }
    previousEnd = run[0] + run[1];
    carried += run[1];
  }
  let fileBytes = 0;
  for (const record of meta.files) {
    if (!Array.isArray(record) || !carriedPath(record[0]) || !["dir", "file", "link"].includes(record[1]) || !Number.isInteger(record[2]) || typeof record[3] !== "number" || typeof record[4] !== "number") {
      throw new StateError("the saved state's file list is malformed");
    }
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
  }
  if (dataStart + carried * STATE_PAGE_BYTES + fileBytes !== bytes.length) throw new StateError("the saved state is truncated or has extra bytes");

  // Memory: grow to the saved size (the allocator's growth; its bookkeeping is overwritten next),
  // then the base snapshot's bytes, zeros past them, and the carried pages over them.
  while (module.HEAPU8.length < meta.heapBytes) {
    const want = meta.heapBytes - module.HEAPU8.length + 65536;
    if (!module._malloc(want)) throw new StateError(`this executor cannot grow its memory to ${meta.heapBytes} bytes`);
  }
  const heap: Uint8Array = module.HEAPU8;
  base.read(0, heap.subarray(0, Math.min(base.length, heap.length)));
  if (heap.length > base.length) heap.fill(0, base.length);
  let at = dataStart;
  for (const [first, count] of meta.runs) {
    const start = first * STATE_PAGE_BYTES;
    heap.set(bytes.subarray(at, at + count * STATE_PAGE_BYTES), start);
    at += count * STATE_PAGE_BYTES;
  }

  // JavaScript's side of the reference tables: as long as the saving worker's, interned strings appended.
  for (let i = tableLength((j) => module.__hiwire_get(j)); i < meta.hiwireTableLength; i++) module.__hiwire_set(i, null);
  for (const value of meta.immortals) module.__hiwire_immortal_add(value);

  // Files: the carried directories replaced whole.
  const ignorePermissions = FS.ignorePermissions;
  FS.ignorePermissions = true;
  try {
    FS.chdir("/");
    for (const root of CARRIED_ROOTS) removeTree(FS, root);
    for (const record of meta.files) {
      const [path, kind, mode] = record;
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
      FS.chmod(path, mode);
      FS.utime(path, atime, mtime);
    }
    for (const [fd, path, flags, position] of meta.fds) {
      const stream = FS.open(path, flags & ~(0o100 | 0o200 | 0o1000)); // without O_CREAT, O_EXCL, O_TRUNC
      FS.streams[stream.fd] = null;
      if (FS.streams[fd]) FS.close(FS.streams[fd]);
      stream.fd = fd;
      FS.streams[fd] = stream;
      stream.position = position;
    }
    try {
      FS.chdir(meta.cwd);
    } catch {
      FS.chdir("/sandbox");
    }
  } finally {
    FS.ignorePermissions = ignorePermissions;
  }
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
