/**
 * A WASI preview1 host over an in-memory filesystem (wasi-memfs.ts): what ruby.wasm, programs
 * built by clang and callers' own modules see as their operating system. Spec:
 * https://github.com/WebAssembly/WASI/blob/main/legacy/preview1/docs.md
 *
 * - stdin is a byte buffer that ends in EOF; stdout/stderr go to a callback, coalesced a little
 *   so a program printing byte by byte does not send one message per byte.
 * - Files exist only in memory, under the preopened directories; `..` cannot climb out of a
 *   preopen (ENOTCAPABLE), and there is nothing of the host's filesystem to reach anyway.
 * - No sockets: sock_* answer ENOTSUP/ENOTSOCK.
 * - Every call checks `interrupted()`: a program that prints, reads, sleeps or asks the time stops
 *   at its next call (WasiInterrupted). A pure compute loop is stopped by the host's watchdog.
 *
 * Written for wasmbox after reading browser_wasi_shim (bjorn3) and uvwasi; no code is shared.
 */
import { Errno, FsError, MemFs, type MemDir, type MemFile, type MemNode } from "./wasi-memfs.js";

/** proc_exit(code) unwinds the guest with this. */
export class WasiExit extends Error {
  constructor(readonly code: number) {
    super(`exit(${code})`);
    this.name = "WasiExit";
  }
}

/** Thrown out of a WASI call once the run was asked to stop. */
export class WasiInterrupted extends Error {
  constructor() {
    super("interrupted");
    this.name = "WasiInterrupted";
  }
}

const FILETYPE_CHARACTER_DEVICE = 2;
const FILETYPE_DIRECTORY = 3;
const FILETYPE_REGULAR_FILE = 4;

const RIGHTS_ALL = (1n << 30n) - 1n;
const RIGHT_FD_READ = 1n << 1n;
const RIGHT_FD_SEEK = 1n << 2n;
const RIGHT_FD_TELL = 1n << 5n;
const RIGHT_FD_WRITE = 1n << 6n;
/** Standard streams look like terminals without seek/tell (wasi-libc's isatty), so C stdout is line buffered. */
const RIGHTS_STDIO = RIGHTS_ALL & ~(RIGHT_FD_SEEK | RIGHT_FD_TELL);

const OFLAGS_CREAT = 1;
const OFLAGS_DIRECTORY = 2;
const OFLAGS_EXCL = 4;
const OFLAGS_TRUNC = 8;
const FDFLAGS_APPEND = 1;

/** Output is handed on after this many bytes, or when it has waited this long. */
const FLUSH_BYTES = 32 * 1024;
const FLUSH_AFTER_MS = 40;

type Descriptor =
  | { kind: "stdin" }
  | { kind: "stdout"; fd: 1 | 2 }
  | { kind: "file"; node: MemFile; offset: number; append: boolean; readable: boolean; writable: boolean }
  | { kind: "dir"; node: MemDir; preopen: string | null };

export interface WasiOptions {
  /** argv, with the program name first. */
  args: string[];
  env: Record<string, string>;
  /** Everything the program can read on fd 0; then EOF. */
  stdin: Uint8Array;
  /** Receives output for fd 1 and 2 (the bytes are a copy the receiver may keep). */
  write(fd: 1 | 2, bytes: Uint8Array): void;
  fs: MemFs;
  /** Directories the program may open, as [name the guest sees, absolute path in `fs`]: fds 3, 4, … */
  preopens: [string, string][];
  /** Checked on every call; true ends the program with WasiInterrupted. */
  interrupted?: () => boolean;
  /** Sleeps (poll_oneoff on a clock) up to `ms`, returning early when interrupted. Default: busy-free Atomics.wait. */
  sleep?: (ms: number) => void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class WasiHost {
  memory: WebAssembly.Memory | null = null;
  private readonly fds = new Map<number, Descriptor>();
  private stdinOffset = 0;
  private pending: { fd: 1 | 2; bytes: Uint8Array }[] = [];
  private pendingBytes = 0;
  private lastFlush = 0;
  /** The wasi_snapshot_preview1 import object. */
  readonly imports: Record<string, (...args: never[]) => number | void>;

  constructor(private readonly options: WasiOptions) {
    this.fds.set(0, { kind: "stdin" });
    this.fds.set(1, { kind: "stdout", fd: 1 });
    this.fds.set(2, { kind: "stdout", fd: 2 });
    let fd = 3;
    for (const [name, path] of options.preopens) {
      const node = options.fs.lookup(path);
      if (node.kind !== "dir") throw new TypeError(`preopen ${path} is not a directory`);
      this.fds.set(fd++, { kind: "dir", node, preopen: name });
    }
    this.imports = this.makeImports();
  }

  /** Runs a command module's `_start`; resolves its exit code (0 when `_start` returns). */
  start(instance: WebAssembly.Instance): number {
    const exports = instance.exports as { memory?: WebAssembly.Memory; _start?: () => void };
    if (exports.memory) this.memory = exports.memory;
    if (typeof exports._start !== "function") throw new TypeError("the module exports no _start function (not a WASI command)");
    try {
      exports._start();
      return 0;
    } catch (error) {
      if (error instanceof WasiExit) return error.code;
      throw error;
    } finally {
      this.flush();
    }
  }

  /** Calls a reactor's `_initialize`, if it has one. */
  initialize(instance: WebAssembly.Instance): void {
    const exports = instance.exports as { memory?: WebAssembly.Memory; _initialize?: () => void };
    if (exports.memory) this.memory = exports.memory;
    exports._initialize?.();
  }

  /** Hands on any buffered output. */
  flush(): void {
    for (const { fd, bytes } of this.pending) this.options.write(fd, bytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.lastFlush = performance.now();
  }

  private output(fd: 1 | 2, bytes: Uint8Array): void {
    const last = this.pending.at(-1);
    if (last && last.fd === fd && last.bytes.length + bytes.length <= FLUSH_BYTES) {
      const merged = new Uint8Array(last.bytes.length + bytes.length);
      merged.set(last.bytes);
      merged.set(bytes, last.bytes.length);
      last.bytes = merged;
    } else {
      this.pending.push({ fd, bytes: bytes.slice() });
    }
    this.pendingBytes += bytes.length;
    // The first write after a quiet spell goes at once, so a program that prints and then
    // computes shows its output; a burst is batched.
    if (this.pendingBytes >= FLUSH_BYTES || performance.now() - this.lastFlush >= FLUSH_AFTER_MS) this.flush();
  }

  private view(): DataView {
    if (!this.memory) throw new TypeError("WASI call before the module's memory is known");
    return new DataView(this.memory.buffer);
  }

  private bytes(ptr: number, len: number): Uint8Array {
    if (!this.memory) throw new TypeError("WASI call before the module's memory is known");
    return new Uint8Array(this.memory.buffer, ptr, len);
  }

  private string(ptr: number, len: number): string {
    return decoder.decode(this.bytes(ptr, len));
  }

  private checkInterrupt(): void {
    if (this.options.interrupted?.()) {
      this.flush();
      throw new WasiInterrupted();
    }
  }

  private descriptor(fd: number): Descriptor {
    const d = this.fds.get(fd);
    if (!d) throw new FsError(Errno.BADF);
    return d;
  }

  private dirFd(fd: number): MemDir {
    const d = this.descriptor(fd);
    if (d.kind !== "dir") throw new FsError(Errno.NOTDIR);
    return d.node;
  }

  private iovecs(ptr: number, count: number): [number, number][] {
    const view = this.view();
    const out: [number, number][] = [];
    for (let i = 0; i < count; i++) out.push([view.getUint32(ptr + i * 8, true), view.getUint32(ptr + i * 8 + 4, true)]);
    return out;
  }

  private writeFilestat(ptr: number, node: MemNode | null, filetype: number): void {
    const view = this.view();
    view.setBigUint64(ptr, 1n, true); // dev
    view.setBigUint64(ptr + 8, node?.ino ?? 0n, true);
    view.setUint8(ptr + 16, filetype);
    for (let i = 17; i < 24; i++) view.setUint8(ptr + i, 0);
    view.setBigUint64(ptr + 24, 1n, true); // nlink
    view.setBigUint64(ptr + 32, BigInt(node?.kind === "file" ? node.size : node ? 4096 : 0), true);
    const time = node?.mtimeNs ?? 0n;
    view.setBigUint64(ptr + 40, time, true);
    view.setBigUint64(ptr + 48, time, true);
    view.setBigUint64(ptr + 56, time, true);
  }

  private nextFd(): number {
    let fd = 3;
    while (this.fds.has(fd)) fd++;
    return fd;
  }

  private readInto(iovs: [number, number][], source: (length: number) => Uint8Array): number {
    let total = 0;
    for (const [ptr, len] of iovs) {
      if (len === 0) continue;
      const chunk = source(len);
      this.bytes(ptr, chunk.length).set(chunk);
      total += chunk.length;
      if (chunk.length < len) break;
    }
    return total;
  }

  private gather(iovs: [number, number][]): Uint8Array {
    const size = iovs.reduce((n, [, len]) => n + len, 0);
    const out = new Uint8Array(size);
    let at = 0;
    for (const [ptr, len] of iovs) {
      out.set(this.bytes(ptr, len), at);
      at += len;
    }
    return out;
  }

  private sleep(ms: number): void {
    if (this.options.sleep) return this.options.sleep(ms);
    const cell = new Int32Array(new SharedArrayBuffer(4));
    const end = performance.now() + ms;
    while (performance.now() < end) {
      this.checkInterrupt();
      Atomics.wait(cell, 0, 0, Math.min(50, end - performance.now()));
    }
  }

  private makeImports(): Record<string, (...args: never[]) => number | void> {
    const fs = this.options.fs;
    // Each call: check for interruption, map FsError to its errno, and a bad pointer to EFAULT.
    const call =
      <A extends unknown[]>(body: (...args: A) => number | void) =>
      (...args: A): number => {
        this.checkInterrupt();
        try {
          return body(...args) ?? Errno.SUCCESS;
        } catch (error) {
          if (error instanceof FsError) return error.errno;
          if (error instanceof RangeError) return Errno.FAULT;
          throw error;
        }
      };
    const args = this.options.args.map((a) => encoder.encode(a + "\0"));
    const env = Object.entries(this.options.env).map(([k, v]) => encoder.encode(`${k}=${v}\0`));
    const putList = (list: Uint8Array[], ptrsPtr: number, bufPtr: number) => {
      const view = this.view();
      let at = bufPtr;
      list.forEach((item, i) => {
        view.setUint32(ptrsPtr + i * 4, at, true);
        this.bytes(at, item.length).set(item);
        at += item.length;
      });
    };
    const sizes = (list: Uint8Array[], countPtr: number, sizePtr: number) => {
      const view = this.view();
      view.setUint32(countPtr, list.length, true);
      view.setUint32(sizePtr, list.reduce((n, a) => n + a.length, 0), true);
    };
    const resolveAt = (fd: number, ptr: number, len: number): [MemDir, string] => [this.dirFd(fd), this.string(ptr, len)];

    return {
      args_get: call((argvPtr: number, bufPtr: number) => putList(args, argvPtr, bufPtr)),
      args_sizes_get: call((countPtr: number, sizePtr: number) => sizes(args, countPtr, sizePtr)),
      environ_get: call((envPtr: number, bufPtr: number) => putList(env, envPtr, bufPtr)),
      environ_sizes_get: call((countPtr: number, sizePtr: number) => sizes(env, countPtr, sizePtr)),

      clock_res_get: call((id: number, resPtr: number) => {
        if (id < 0 || id > 3) return Errno.INVAL;
        this.view().setBigUint64(resPtr, 1000n, true);
      }),
      clock_time_get: call((id: number, _precision: bigint, timePtr: number) => {
        let ns: bigint;
        if (id === 0) ns = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
        else if (id >= 1 && id <= 3) ns = BigInt(Math.round(performance.now() * 1e6));
        else return Errno.INVAL;
        this.view().setBigUint64(timePtr, ns, true);
      }),

      fd_advise: call((fd: number) => void this.descriptor(fd)),
      fd_allocate: call((fd: number, offset: bigint, len: bigint) => {
        const d = this.descriptor(fd);
        if (d.kind !== "file") return Errno.BADF;
        const end = Number(offset + len);
        if (end > d.node.size) fs.resize(d.node, end);
      }),
      fd_close: call((fd: number) => {
        this.descriptor(fd);
        if (fd <= 2) this.flush();
        this.fds.delete(fd);
      }),
      fd_datasync: call((fd: number) => void this.descriptor(fd)),
      fd_sync: call((fd: number) => void this.descriptor(fd)),
      fd_fdstat_get: call((fd: number, ptr: number) => {
        const d = this.descriptor(fd);
        const view = this.view();
        const filetype = d.kind === "dir" ? FILETYPE_DIRECTORY : d.kind === "file" ? FILETYPE_REGULAR_FILE : FILETYPE_CHARACTER_DEVICE;
        view.setUint8(ptr, filetype);
        view.setUint8(ptr + 1, 0);
        view.setUint16(ptr + 2, d.kind === "file" && d.append ? FDFLAGS_APPEND : 0, true);
        view.setUint32(ptr + 4, 0, true);
        const rights = d.kind === "file" || d.kind === "dir" ? RIGHTS_ALL : RIGHTS_STDIO;
        view.setBigUint64(ptr + 8, rights, true);
        view.setBigUint64(ptr + 16, RIGHTS_ALL, true);
      }),
      fd_fdstat_set_flags: call((fd: number, flags: number) => {
        const d = this.descriptor(fd);
        if (d.kind === "file") d.append = (flags & FDFLAGS_APPEND) !== 0;
      }),
      fd_fdstat_set_rights: call((fd: number) => void this.descriptor(fd)),
      fd_filestat_get: call((fd: number, ptr: number) => {
        const d = this.descriptor(fd);
        if (d.kind === "file") this.writeFilestat(ptr, d.node, FILETYPE_REGULAR_FILE);
        else if (d.kind === "dir") this.writeFilestat(ptr, d.node, FILETYPE_DIRECTORY);
        else this.writeFilestat(ptr, null, FILETYPE_CHARACTER_DEVICE);
      }),
      fd_filestat_set_size: call((fd: number, size: bigint) => {
        const d = this.descriptor(fd);
        if (d.kind !== "file") return Errno.BADF;
        if (!d.writable) return Errno.BADF;
        fs.resize(d.node, Number(size));
      }),
      fd_filestat_set_times: call((fd: number) => void this.descriptor(fd)),
      fd_pread: call((fd: number, iovsPtr: number, iovsLen: number, offset: bigint, nreadPtr: number) => {
        const d = this.descriptor(fd);
        if (d.kind !== "file") return d.kind === "dir" ? Errno.ISDIR : Errno.SPIPE;
        if (!d.readable) return Errno.BADF;
        let at = Number(offset);
        const n = this.readInto(this.iovecs(iovsPtr, iovsLen), (len) => {
          const chunk = fs.read(d.node, at, len);
          at += chunk.length;
          return chunk;
        });
        this.view().setUint32(nreadPtr, n, true);
      }),
      fd_pwrite: call((fd: number, iovsPtr: number, iovsLen: number, offset: bigint, nwrittenPtr: number) => {
        const d = this.descriptor(fd);
        if (d.kind !== "file") return d.kind === "dir" ? Errno.ISDIR : Errno.SPIPE;
        if (!d.writable) return Errno.BADF;
        const data = this.gather(this.iovecs(iovsPtr, iovsLen));
        fs.write(d.node, Number(offset), data);
        this.view().setUint32(nwrittenPtr, data.length, true);
      }),
      fd_prestat_get: call((fd: number, ptr: number) => {
        const d = this.fds.get(fd);
        if (!d || d.kind !== "dir" || d.preopen === null) return Errno.BADF;
        const view = this.view();
        view.setUint32(ptr, 0, true); // tag: dir
        view.setUint32(ptr + 4, encoder.encode(d.preopen).length, true);
      }),
      fd_prestat_dir_name: call((fd: number, ptr: number, len: number) => {
        const d = this.fds.get(fd);
        if (!d || d.kind !== "dir" || d.preopen === null) return Errno.BADF;
        const name = encoder.encode(d.preopen);
        this.bytes(ptr, Math.min(len, name.length)).set(name.subarray(0, len));
      }),
      fd_read: call((fd: number, iovsPtr: number, iovsLen: number, nreadPtr: number) => {
        const d = this.descriptor(fd);
        const iovs = this.iovecs(iovsPtr, iovsLen);
        let n: number;
        if (d.kind === "stdin") {
          this.flush(); // a prompt printed before reading should be visible
          n = this.readInto(iovs, (len) => {
            const chunk = this.options.stdin.subarray(this.stdinOffset, this.stdinOffset + len);
            this.stdinOffset += chunk.length;
            return chunk;
          });
        } else if (d.kind === "file") {
          if (!d.readable) return Errno.BADF;
          n = this.readInto(iovs, (len) => {
            const chunk = fs.read(d.node, d.offset, len);
            d.offset += chunk.length;
            return chunk;
          });
        } else return d.kind === "dir" ? Errno.ISDIR : Errno.BADF;
        this.view().setUint32(nreadPtr, n, true);
      }),
      fd_readdir: call((fd: number, bufPtr: number, bufLen: number, cookie: bigint, usedPtr: number) => {
        const dir = this.dirFd(fd);
        const entries: [string, MemNode][] = [[".", dir], ["..", dir.parent ?? dir], ...dir.entries];
        const view = this.view();
        let used = 0;
        for (let i = Number(cookie); i < entries.length && used < bufLen; i++) {
          const [name, node] = entries[i]!;
          const nameBytes = encoder.encode(name);
          const record = new Uint8Array(24 + nameBytes.length);
          const rv = new DataView(record.buffer);
          rv.setBigUint64(0, BigInt(i + 1), true);
          rv.setBigUint64(8, node.ino, true);
          rv.setUint32(16, nameBytes.length, true);
          rv.setUint8(20, node.kind === "dir" ? FILETYPE_DIRECTORY : FILETYPE_REGULAR_FILE);
          record.set(nameBytes, 24);
          // A record that does not fit is cut: the caller sees a full buffer and asks again.
          const take = Math.min(record.length, bufLen - used);
          this.bytes(bufPtr + used, take).set(record.subarray(0, take));
          used += take;
        }
        view.setUint32(usedPtr, used, true);
      }),
      fd_renumber: call((from: number, to: number) => {
        const d = this.descriptor(from);
        this.descriptor(to);
        this.fds.set(to, d);
        this.fds.delete(from);
      }),
      fd_seek: call((fd: number, offset: bigint, whence: number, newOffsetPtr: number) => {
        const d = this.descriptor(fd);
        if (d.kind !== "file") return d.kind === "dir" ? Errno.BADF : Errno.SPIPE;
        const base = whence === 0 ? 0 : whence === 1 ? d.offset : whence === 2 ? d.node.size : NaN;
        if (Number.isNaN(base)) return Errno.INVAL;
        const next = base + Number(offset);
        if (next < 0) return Errno.INVAL;
        d.offset = next;
        this.view().setBigUint64(newOffsetPtr, BigInt(next), true);
      }),
      fd_tell: call((fd: number, ptr: number) => {
        const d = this.descriptor(fd);
        if (d.kind !== "file") return Errno.SPIPE;
        this.view().setBigUint64(ptr, BigInt(d.offset), true);
      }),
      fd_write: call((fd: number, iovsPtr: number, iovsLen: number, nwrittenPtr: number) => {
        const d = this.descriptor(fd);
        const data = this.gather(this.iovecs(iovsPtr, iovsLen));
        if (d.kind === "stdout") this.output(d.fd, data);
        else if (d.kind === "file") {
          if (!d.writable) return Errno.BADF;
          if (d.append) d.offset = d.node.size;
          fs.write(d.node, d.offset, data);
          d.offset += data.length;
        } else return d.kind === "dir" ? Errno.ISDIR : Errno.BADF;
        this.view().setUint32(nwrittenPtr, data.length, true);
      }),

      path_create_directory: call((fd: number, ptr: number, len: number) => {
        const [dir, path] = resolveAt(fd, ptr, len);
        fs.mkdir(path, dir, true);
      }),
      path_filestat_get: call((fd: number, _flags: number, ptr: number, len: number, buf: number) => {
        const [dir, path] = resolveAt(fd, ptr, len);
        const node = fs.lookup(path, dir, true);
        this.writeFilestat(buf, node, node.kind === "dir" ? FILETYPE_DIRECTORY : FILETYPE_REGULAR_FILE);
      }),
      path_filestat_set_times: call((fd: number, _flags: number, ptr: number, len: number) => {
        const [dir, path] = resolveAt(fd, ptr, len);
        fs.lookup(path, dir, true);
      }),
      path_link: call(() => Errno.NOTSUP),
      path_open: call(
        (fd: number, _dirflags: number, ptr: number, len: number, oflags: number, rightsBase: bigint, _rightsInheriting: bigint, fdflags: number, fdPtr: number) => {
          const [dir, path] = resolveAt(fd, ptr, len);
          let node: MemNode | null = null;
          try {
            node = fs.lookup(path, dir, true);
          } catch (error) {
            if (!(error instanceof FsError) || error.errno !== Errno.NOENT || !(oflags & OFLAGS_CREAT)) throw error;
          }
          if (node?.kind === "dir") {
            if (oflags & (OFLAGS_CREAT | OFLAGS_TRUNC) && oflags & OFLAGS_EXCL) return Errno.EXIST;
            if (rightsBase & RIGHT_FD_WRITE && !(oflags & OFLAGS_DIRECTORY)) return Errno.ISDIR;
            const next = this.nextFd();
            this.fds.set(next, { kind: "dir", node, preopen: null });
            this.view().setUint32(fdPtr, next, true);
            return;
          }
          if (oflags & OFLAGS_DIRECTORY) return node ? Errno.NOTDIR : Errno.NOENT;
          const writable = (rightsBase & RIGHT_FD_WRITE) !== 0n;
          const file = fs.openFile(path, dir, {
            create: (oflags & OFLAGS_CREAT) !== 0,
            exclusive: (oflags & OFLAGS_EXCL) !== 0,
            truncate: (oflags & OFLAGS_TRUNC) !== 0 && writable,
            confine: true,
          });
          const next = this.nextFd();
          this.fds.set(next, {
            kind: "file",
            node: file,
            offset: 0,
            append: (fdflags & FDFLAGS_APPEND) !== 0,
            readable: (rightsBase & RIGHT_FD_READ) !== 0n,
            writable,
          });
          this.view().setUint32(fdPtr, next, true);
        },
      ),
      path_readlink: call((fd: number, ptr: number, len: number) => {
        const [dir, path] = resolveAt(fd, ptr, len);
        fs.lookup(path, dir, true);
        return Errno.INVAL; // there are no links
      }),
      path_remove_directory: call((fd: number, ptr: number, len: number) => {
        const [dir, path] = resolveAt(fd, ptr, len);
        fs.rmdir(path, dir, true);
      }),
      path_rename: call((fd: number, ptr: number, len: number, newFd: number, newPtr: number, newLen: number) => {
        const [dir, path] = resolveAt(fd, ptr, len);
        const [newDir, newPath] = resolveAt(newFd, newPtr, newLen);
        fs.rename(path, dir, newPath, newDir, true);
      }),
      path_symlink: call(() => Errno.NOTSUP),
      path_unlink_file: call((fd: number, ptr: number, len: number) => {
        const [dir, path] = resolveAt(fd, ptr, len);
        fs.unlink(path, dir, true);
      }),

      poll_oneoff: call((inPtr: number, outPtr: number, count: number, neventsPtr: number) => {
        const view = this.view();
        const ready: { userdata: bigint; type: number; nbytes: bigint }[] = [];
        let sleepMs = Number.POSITIVE_INFINITY;
        const clocks: bigint[] = [];
        for (let i = 0; i < count; i++) {
          const sub = inPtr + i * 48;
          const userdata = view.getBigUint64(sub, true);
          const tag = view.getUint8(sub + 8);
          if (tag === 0) {
            const clockId = view.getUint32(sub + 16, true);
            const timeout = view.getBigUint64(sub + 24, true);
            const absolute = (view.getUint16(sub + 40, true) & 1) !== 0;
            const nowMs = clockId === 0 ? performance.timeOrigin + performance.now() : performance.now();
            const ms = absolute ? Number(timeout) / 1e6 - nowMs : Number(timeout) / 1e6;
            sleepMs = Math.min(sleepMs, Math.max(0, ms));
            clocks.push(userdata);
          } else {
            // fd_read / fd_write: every descriptor here is always ready (stdin is all in memory).
            const fd = view.getUint32(sub + 16, true);
            const d = this.fds.get(fd);
            const nbytes = d?.kind === "stdin" ? BigInt(this.options.stdin.length - this.stdinOffset) : 0n;
            ready.push({ userdata, type: tag, nbytes });
          }
        }
        if (ready.length === 0 && clocks.length > 0) {
          this.flush();
          if (Number.isFinite(sleepMs) && sleepMs > 0) this.sleep(sleepMs);
          for (const userdata of clocks) ready.push({ userdata, type: 0, nbytes: 0n });
        }
        ready.forEach((event, i) => {
          const at = outPtr + i * 32;
          view.setBigUint64(at, event.userdata, true);
          view.setUint16(at + 8, 0, true);
          view.setUint8(at + 10, event.type);
          view.setBigUint64(at + 16, event.nbytes, true);
          view.setUint16(at + 24, 0, true);
        });
        view.setUint32(neventsPtr, ready.length, true);
      }),
      proc_exit: (code: number) => {
        this.flush();
        throw new WasiExit(code);
      },
      proc_raise: call(() => Errno.NOTSUP),
      sched_yield: call(() => {}),
      random_get: call((ptr: number, len: number) => {
        for (let at = 0; at < len; at += 65536) crypto.getRandomValues(this.bytes(ptr + at, Math.min(65536, len - at)));
      }),
      sock_accept: call(() => Errno.NOTSOCK),
      sock_recv: call(() => Errno.NOTSOCK),
      sock_send: call(() => Errno.NOTSOCK),
      sock_shutdown: call(() => Errno.NOTSOCK),
    };
  }
}

/** Whether a module imports anything beyond WASI preview1 (e.g. an emscripten `env`). */
export function wasiImportsOnly(module: WebAssembly.Module): string[] {
  return WebAssembly.Module.imports(module)
    .filter((i) => i.module !== "wasi_snapshot_preview1" && i.module !== "wasi_unstable")
    .map((i) => `${i.module}.${i.name}`);
}
