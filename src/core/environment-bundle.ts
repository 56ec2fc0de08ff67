/**
 * The file format of a package environment (docs/packages.md): the unpacked files of every wheel
 * of one package set, and what the interpreter imports from them, in one file the executor reads
 * with one call. Written by the host (packages/environment.ts), read inside the executor's Python
 * worker (bundle-fs.ts). No Node or Deno APIs here: both sides import it.
 *
 * Layout: MAGIC (8 bytes), the header's length (uint32, little-endian), the header (JSON,
 * BundleHeader), then the files' bytes back to back. A directory in `roots` is an object of its
 * entries; a file is [offset, size] into the data that follows the header.
 */

export const BUNDLE_MAGIC = "WBXENV1\n";

export type BundleDir = { [name: string]: BundleDir | BundleFile };
/** Offset and size in the data of its bundle; `source` (when mounted with others) says which bundle's. */
export type BundleFile = [offset: number, size: number, source?: number];

export interface BundleHeader {
  /** Trees mounted read-only at these absolute paths in the interpreter's file system. */
  roots: Record<string, BundleDir>;
  /** Modules imported before the memory snapshot is taken (pure Python all the way down). */
  snapshotImports: string[];
  /**
   * Modules imported by each executor after it loads the snapshot, before it says ready: those
   * that load a WebAssembly shared library, which a memory snapshot cannot hold (its code and
   * function table live outside the memory).
   */
  startImports: string[];
  /** Shared libraries (Pyodide's distribution) loaded, with their symbols global, before startImports. */
  sharedLibraries: string[];
}

/** Where wheels' files go inside the interpreter; Pyodide's sys.path already holds it. */
export const SITE_PACKAGES = "/lib/python3.14/site-packages";
/** Where Pyodide's distribution puts shared libraries (its lock file's install_dir "dynlib"). */
export const SHARED_LIBRARY_DIR = "/usr/lib";

/** Splits a bundle held in memory into its header and its data; throws on anything malformed. */
export function parseBundle(bytes: Uint8Array): { header: BundleHeader; data: Uint8Array } {
  const { header, dataStart } = readBundleHeader((offset, length) => bytes.subarray(offset, offset + length));
  return { header, data: bytes.subarray(dataStart) };
}

/** The header of a bundle read through `readAt(offset, length)`, and where its data starts. */
export function readBundleHeader(readAt: (offset: number, length: number) => Uint8Array): { header: BundleHeader; dataStart: number } {
  const start = BUNDLE_MAGIC.length + 4;
  const head = readAt(0, start);
  if (head.length < start || new TextDecoder().decode(head.subarray(0, BUNDLE_MAGIC.length)) !== BUNDLE_MAGIC) {
    throw new Error("not a wasmbox environment bundle");
  }
  const headerBytes = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(BUNDLE_MAGIC.length, true);
  const json = readAt(start, headerBytes);
  if (json.length < headerBytes) throw new Error("truncated environment bundle");
  return { header: JSON.parse(new TextDecoder().decode(json)) as BundleHeader, dataStart: start + headerBytes };
}

/** Joins a header and its data into a bundle's bytes (the host writes them to a file). */
export function encodeBundleHeader(header: BundleHeader): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(BUNDLE_MAGIC.length + 4 + json.length);
  out.set(new TextEncoder().encode(BUNDLE_MAGIC), 0);
  new DataView(out.buffer).setUint32(BUNDLE_MAGIC.length, json.length, true);
  out.set(json, BUNDLE_MAGIC.length + 4);
  return out;
}

/**
 * An environment's snapshot file may carry a second bundle after Pyodide's snapshot: the bytecode
 * of the modules its executors import when they start (compiled once, when the snapshot is made),
 * mounted over site-packages' __pycache__ directories. Layout: the snapshot, the bundle, its
 * length (uint32, little-endian), then BYTECODE_TRAILER.
 */
export const BYTECODE_TRAILER = "WBXPYC1\n";

/** Splits a snapshot file into Pyodide's snapshot and the bytecode bundle that follows it, if any. */
export function splitSnapshotFile(bytes: Uint8Array): { snapshot: Uint8Array; bytecode: Uint8Array | null } {
  const end = bytes.length - BYTECODE_TRAILER.length;
  if (end < 4 || new TextDecoder().decode(bytes.subarray(end)) !== BYTECODE_TRAILER) return { snapshot: bytes, bytecode: null };
  const length = new DataView(bytes.buffer, bytes.byteOffset + end - 4, 4).getUint32(0, true);
  const start = end - 4 - length;
  if (start < 0) throw new Error("truncated bytecode in the environment's snapshot");
  return { snapshot: bytes.subarray(0, start), bytecode: bytes.subarray(start, end - 4) };
}

/** Joins Pyodide's snapshot and a bytecode bundle into one snapshot file's bytes. */
export function joinSnapshotFile(snapshot: Uint8Array, bytecode: Uint8Array): Uint8Array {
  const out = new Uint8Array(snapshot.length + bytecode.length + 4 + BYTECODE_TRAILER.length);
  out.set(snapshot, 0);
  out.set(bytecode, snapshot.length);
  new DataView(out.buffer).setUint32(snapshot.length + bytecode.length, bytecode.length, true);
  out.set(new TextEncoder().encode(BYTECODE_TRAILER), snapshot.length + bytecode.length + 4);
  return out;
}
