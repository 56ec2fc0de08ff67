/**
 * The in-memory filesystem behind the WASI host (and the JavaScript runtime's `fs`): directories
 * and regular files only, no links, with a byte quota so a guest cannot grow the executor's JS heap
 * without bound through files. Errors carry WASI errno numbers (the preview1 `errno` enum), so the
 * WASI host can return them as they are.
 */

import type { FileListing } from "./output-files.js";

/** WASI preview1 errno values used here and by the WASI host. */
export const Errno = {
  SUCCESS: 0,
  TOOBIG: 1,
  ACCES: 2,
  AGAIN: 6,
  BADF: 8,
  EXIST: 20,
  FAULT: 21,
  FBIG: 22,
  INVAL: 28,
  IO: 29,
  ISDIR: 31,
  LOOP: 32,
  NAMETOOLONG: 37,
  NOENT: 44,
  NOMEM: 48,
  NOSPC: 51,
  NOSYS: 52,
  NOTDIR: 54,
  NOTEMPTY: 55,
  NOTSOCK: 57,
  NOTSUP: 58,
  NOTTY: 59,
  OVERFLOW: 61,
  PERM: 63,
  SPIPE: 70,
  NOTCAPABLE: 76,
} as const;

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Errno).map(([name, n]) => [n, `E${name}`]));

/** A filesystem error with its WASI errno; `code` is the POSIX-style name ("ENOENT"). */
export class FsError extends Error {
  readonly code: string;
  constructor(readonly errno: number, message?: string) {
    super(message ?? ERRNO_NAMES[errno] ?? `errno ${errno}`);
    this.name = "FsError";
    this.code = ERRNO_NAMES[errno] ?? "EIO";
  }
}

let nextIno = 1n;

export interface MemFile {
  kind: "file";
  ino: bigint;
  /** Backing store; only the first `size` bytes are the file. */
  data: Uint8Array;
  size: number;
  mtimeNs: bigint;
}

export interface MemDir {
  kind: "dir";
  ino: bigint;
  entries: Map<string, MemNode>;
  parent: MemDir | null;
  mtimeNs: bigint;
}

export type MemNode = MemFile | MemDir;

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export function newDir(parent: MemDir | null): MemDir {
  return { kind: "dir", ino: nextIno++, entries: new Map(), parent, mtimeNs: nowNs() };
}

function newFile(): MemFile {
  return { kind: "file", ino: nextIno++, data: new Uint8Array(0), size: 0, mtimeNs: nowNs() };
}

/** The bytes of a file (a copy, exactly `size` long). */
export function fileContent(file: MemFile): Uint8Array {
  return file.data.slice(0, file.size);
}

export class MemFs {
  readonly root: MemDir = newDir(null);
  private used = 0;

  /** @param quotaBytes total size of all files together; writes past it fail with ENOSPC. */
  constructor(public quotaBytes = Number.POSITIVE_INFINITY) {}

  /** Bytes held by files. */
  get usedBytes(): number {
    return this.used;
  }

  /**
   * Walks `path` from `from` (or the root for absolute paths). With `confine`, `..` may not climb
   * above `from` (WASI's capability rule: ENOTCAPABLE).
   */
  lookup(path: string, from: MemDir = this.root, confine = false): MemNode {
    let node: MemNode = path.startsWith("/") ? this.root : from;
    for (const part of path.split("/")) {
      if (part === "" || part === ".") continue;
      if (node.kind !== "dir") throw new FsError(Errno.NOTDIR);
      if (part === "..") {
        if (confine && node === from) throw new FsError(Errno.NOTCAPABLE);
        node = node.parent ?? node;
        continue;
      }
      const next = node.entries.get(part);
      if (!next) throw new FsError(Errno.NOENT);
      node = next;
    }
    return node;
  }

  /** The directory that holds the last part of `path`, and that part's name. */
  parentOf(path: string, from: MemDir = this.root, confine = false): [MemDir, string] {
    const trimmed = path.replace(/\/+$/, "");
    const slash = trimmed.lastIndexOf("/");
    const name = trimmed.slice(slash + 1);
    const dirPath = slash < 0 ? "." : trimmed.slice(0, slash) || "/";
    if (name === "" || name === "." || name === "..") throw new FsError(path.startsWith("/") && trimmed === "" ? Errno.EXIST : Errno.INVAL);
    if (name.length > 255) throw new FsError(Errno.NAMETOOLONG);
    const dir = this.lookup(dirPath, from, confine);
    if (dir.kind !== "dir") throw new FsError(Errno.NOTDIR);
    return [dir, name];
  }

  mkdir(path: string, from: MemDir = this.root, confine = false): MemDir {
    const [parent, name] = this.parentOf(path, from, confine);
    if (parent.entries.has(name)) throw new FsError(Errno.EXIST);
    const dir = newDir(parent);
    parent.entries.set(name, dir);
    parent.mtimeNs = nowNs();
    return dir;
  }

  /** mkdir -p from the root. */
  mkdirp(path: string): MemDir {
    let node: MemDir = this.root;
    for (const part of path.split("/")) {
      if (part === "" || part === ".") continue;
      let next = node.entries.get(part);
      if (!next) {
        next = newDir(node);
        node.entries.set(part, next);
      }
      if (next.kind !== "dir") throw new FsError(Errno.NOTDIR);
      node = next;
    }
    return node;
  }

  /** Opens (and with `create`, makes) a regular file. */
  openFile(path: string, from: MemDir, options: { create?: boolean; exclusive?: boolean; truncate?: boolean; confine?: boolean } = {}): MemFile {
    const [parent, name] = this.parentOf(path, from, options.confine);
    let node = parent.entries.get(name);
    if (node && options.exclusive && options.create) throw new FsError(Errno.EXIST);
    if (!node) {
      if (!options.create) throw new FsError(Errno.NOENT);
      node = newFile();
      parent.entries.set(name, node);
      parent.mtimeNs = nowNs();
    }
    if (node.kind !== "file") throw new FsError(Errno.ISDIR);
    if (options.truncate) this.resize(node, 0);
    return node;
  }

  /** Writes a whole file, making its parent directories (for inputs and session writes). */
  writeFile(path: string, bytes: Uint8Array): void {
    const slash = path.lastIndexOf("/");
    if (slash > 0) this.mkdirp(path.slice(0, slash));
    const file = this.openFile(path, this.root, { create: true, truncate: true });
    this.write(file, 0, bytes);
  }

  readFile(path: string, from: MemDir = this.root): Uint8Array {
    const node = this.lookup(path, from);
    if (node.kind !== "file") throw new FsError(Errno.ISDIR);
    return fileContent(node);
  }

  /** Sets a file's size, zero-filling when it grows. */
  resize(file: MemFile, size: number): void {
    if (size < 0 || !Number.isSafeInteger(size)) throw new FsError(Errno.INVAL);
    const delta = size - file.size;
    if (delta > 0 && this.used + delta > this.quotaBytes) throw new FsError(Errno.NOSPC);
    if (size > file.data.length) {
      const grown = new Uint8Array(Math.max(size, Math.min(file.data.length * 2, size + 64 * 1024 * 1024), 256));
      grown.set(file.data.subarray(0, file.size));
      file.data = grown;
    } else if (size < file.size) {
      file.data.fill(0, size, file.size);
    }
    this.used += delta;
    file.size = size;
    file.mtimeNs = nowNs();
  }

  /** Writes `bytes` at `offset`, growing the file as needed. */
  write(file: MemFile, offset: number, bytes: Uint8Array): number {
    const end = offset + bytes.length;
    if (end > file.size) this.resize(file, end);
    file.data.set(bytes, offset);
    file.mtimeNs = nowNs();
    return bytes.length;
  }

  /** Reads up to `length` bytes at `offset`. */
  read(file: MemFile, offset: number, length: number): Uint8Array {
    if (offset >= file.size) return new Uint8Array(0);
    return file.data.subarray(offset, Math.min(file.size, offset + length));
  }

  unlink(path: string, from: MemDir = this.root, confine = false): void {
    const [parent, name] = this.parentOf(path, from, confine);
    const node = parent.entries.get(name);
    if (!node) throw new FsError(Errno.NOENT);
    if (node.kind === "dir") throw new FsError(Errno.ISDIR);
    this.used -= node.size;
    parent.entries.delete(name);
    parent.mtimeNs = nowNs();
  }

  rmdir(path: string, from: MemDir = this.root, confine = false): void {
    const [parent, name] = this.parentOf(path, from, confine);
    const node = parent.entries.get(name);
    if (!node) throw new FsError(Errno.NOENT);
    if (node.kind !== "dir") throw new FsError(Errno.NOTDIR);
    if (node.entries.size > 0) throw new FsError(Errno.NOTEMPTY);
    parent.entries.delete(name);
    parent.mtimeNs = nowNs();
  }

  rename(oldPath: string, oldFrom: MemDir, newPath: string, newFrom: MemDir, confine = false): void {
    const [oldParent, oldName] = this.parentOf(oldPath, oldFrom, confine);
    const [newParent, newName] = this.parentOf(newPath, newFrom, confine);
    const node = oldParent.entries.get(oldName);
    if (!node) throw new FsError(Errno.NOENT);
    // A directory cannot move into itself.
    for (let d: MemDir | null = newParent; d; d = d.parent) if (d === node) throw new FsError(Errno.INVAL);
    const target = newParent.entries.get(newName);
    if (target === node) return;
    if (target) {
      if (node.kind === "dir" && target.kind !== "dir") throw new FsError(Errno.NOTDIR);
      if (node.kind !== "dir" && target.kind === "dir") throw new FsError(Errno.ISDIR);
      if (target.kind === "dir" && target.entries.size > 0) throw new FsError(Errno.NOTEMPTY);
      if (target.kind === "file") this.used -= target.size;
    }
    oldParent.entries.delete(oldName);
    newParent.entries.set(newName, node);
    if (node.kind === "dir") node.parent = newParent;
    oldParent.mtimeNs = newParent.mtimeNs = nowNs();
  }

  /** Regular files under `dirPath` with their sizes, read only on demand (output-files.ts). */
  listing(dirPath: string): FileListing[] {
    const out: FileListing[] = [];
    let start: MemNode;
    try {
      start = this.lookup(dirPath);
    } catch {
      return out;
    }
    const walk = (dir: MemDir, prefix: string) => {
      for (const [name, node] of dir.entries) {
        const rel = prefix ? `${prefix}/${name}` : name;
        if (node.kind === "dir") walk(node, rel);
        else out.push({ path: rel, size: node.size, read: () => fileContent(node), peek: () => node.data.subarray(0, node.size) });
      }
    };
    if (start.kind === "dir") walk(start, "");
    return out;
  }

  /** Every regular file under `dirPath`, by path relative to it ("a/b.txt"), as copies. */
  files(dirPath: string): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>();
    let start: MemNode;
    try {
      start = this.lookup(dirPath);
    } catch {
      return out;
    }
    const walk = (dir: MemDir, prefix: string) => {
      for (const [name, node] of [...dir.entries].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const rel = prefix ? `${prefix}/${name}` : name;
        if (node.kind === "dir") walk(node, rel);
        else out.set(rel, fileContent(node));
      }
    };
    if (start.kind === "dir") walk(start, "");
    return out;
  }
}
