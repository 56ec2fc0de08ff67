import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { before, describe, test } from "node:test";
import { WasiExit, WasiHost, WasiInterrupted } from "./wasi-host.js";
import { Errno, FsError, MemFs } from "./wasi-memfs.js";
import { collectOutputFiles } from "./output-files.js";
import { cappedMemory, makeMemoryImported, MEMORY_IMPORT, nearMemoryCap } from "./wasi-memory.js";

type Wabt = { parseWat(name: string, text: string): { toBinary(o: object): { buffer: Uint8Array }; destroy(): void } };
let wabt: Wabt;

before(async () => {
  wabt = await (createRequire(import.meta.url)("wabt") as () => Promise<Wabt>)();
});

function wat(text: string): Uint8Array {
  const module = wabt.parseWat("test.wat", text);
  try {
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}

/** The WASI imports every test module may use. */
const IMPORTS = `
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func $sched_yield (result i32)))
`;

/** Copies fd $from to fd $to until a read returns 0 bytes (EOF); exits with a read's errno. */
const COPY = `
  (func $copy (param $from i32) (param $to i32)
    (local $n i32) (local $err i32)
    (block $done (loop $more
      ;; iovec at 0: buffer 1024, length 4096
      (i32.store (i32.const 0) (i32.const 1024))
      (i32.store (i32.const 4) (i32.const 4096))
      (local.set $err (call $fd_read (local.get $from) (i32.const 0) (i32.const 1) (i32.const 8)))
      (if (local.get $err) (then (call $proc_exit (local.get $err))))
      (local.set $n (i32.load (i32.const 8)))
      (br_if $done (i32.eqz (local.get $n)))
      (i32.store (i32.const 4) (local.get $n))
      (drop (call $fd_write (local.get $to) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $more))))
`;

interface Ran {
  code: number | null;
  error: unknown;
  stdout: string;
  stderr: string;
  fs: MemFs;
}

function runWat(text: string, options: { args?: string[]; stdin?: string; fs?: MemFs; interrupted?: () => boolean } = {}): Ran {
  const fs = options.fs ?? new MemFs();
  fs.mkdirp("/sandbox");
  const out: Record<1 | 2, string> = { 1: "", 2: "" };
  const host = new WasiHost({
    args: options.args ?? ["prog"],
    env: { GREETING: "hi" },
    stdin: new TextEncoder().encode(options.stdin ?? ""),
    write: (fd, bytes) => (out[fd] += new TextDecoder().decode(bytes)),
    fs,
    preopens: [[".", "/sandbox"]],
    interrupted: options.interrupted,
  });
  const module = new WebAssembly.Module(wat(text) as Uint8Array<ArrayBuffer>);
  const instance = new WebAssembly.Instance(module, { wasi_snapshot_preview1: host.imports as WebAssembly.ModuleImports });
  let code: number | null = null;
  let error: unknown = null;
  try {
    code = host.start(instance);
  } catch (e) {
    error = e;
  }
  return { code, error, stdout: out[1], stderr: out[2], fs };
}

describe("WasiHost", () => {
  test("fd_write to stdout and stderr reaches the output callback", () => {
    const ran = runWat(`(module ${IMPORTS} (memory (export "memory") 1)
      (data (i32.const 100) "hello\\n")
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 6))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))))`);
    assert.equal(ran.code, 0);
    assert.equal(ran.stdout, "hello\n");
    assert.equal(ran.stderr, "hello\n");
  });

  test("stdin is read to EOF: a copy loop that stops at a zero-byte read ends", () => {
    const input = "line one\nline two\n".repeat(500);
    const ran = runWat(`(module ${IMPORTS} (memory (export "memory") 1) ${COPY}
      (func (export "_start") (call $copy (i32.const 0) (i32.const 1))))`, { stdin: input });
    assert.equal(ran.code, 0);
    assert.equal(ran.stdout, input);
  });

  test("args_get gives the program name and arguments, NUL-terminated", () => {
    const ran = runWat(`(module ${IMPORTS} (memory (export "memory") 1)
      (func (export "_start")
        (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
        (drop (call $args_get (i32.const 64) (i32.const 1024)))
        (i32.store (i32.const 16) (i32.const 1024)) (i32.store (i32.const 20) (i32.load (i32.const 4)))
        (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 8)))
        (call $proc_exit (i32.load (i32.const 0)))))`, { args: ["prog", "one", "two words"] });
    assert.equal(ran.code, 3, "argc");
    assert.equal(ran.stdout, "prog\0one\0two words\0");
  });

  test("path_open under the preopen reads a given file and creates a new one", () => {
    const fs = new MemFs();
    fs.writeFile("/sandbox/in.txt", new TextEncoder().encode("file content"));
    const ran = runWat(`(module ${IMPORTS} (memory (export "memory") 1) ${COPY}
      (data (i32.const 200) "in.txt") (data (i32.const 220) "sub/../out.txt")
      (func (export "_start") (local $in i32) (local $out i32) (local $err i32)
        ;; open in.txt for reading (rights: fd_read)
        (local.set $err (call $path_open (i32.const 3) (i32.const 1) (i32.const 200) (i32.const 6) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 300)))
        (if (local.get $err) (then (call $proc_exit (i32.add (i32.const 100) (local.get $err)))))
        (local.set $in (i32.load (i32.const 300)))
        ;; create out.txt (oflags creat|trunc, rights fd_write)
        (local.set $err (call $path_open (i32.const 3) (i32.const 1) (i32.const 220) (i32.const 14) (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 304)))
        (if (local.get $err) (then (call $proc_exit (i32.add (i32.const 200) (local.get $err)))))
        (call $copy (local.get $in) (i32.load (i32.const 304)))))`, { fs });
    // sub/ does not exist, so "sub/../out.txt" cannot resolve: WASI paths are walked as given.
    assert.equal(ran.code, 200 + Errno.NOENT);
    fs.mkdirp("/sandbox/sub");
    const again = runWat(`(module ${IMPORTS} (memory (export "memory") 1) ${COPY}
      (data (i32.const 200) "in.txt") (data (i32.const 220) "sub/../out.txt")
      (func (export "_start")
        (drop (call $path_open (i32.const 3) (i32.const 1) (i32.const 200) (i32.const 6) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 300)))
        (drop (call $path_open (i32.const 3) (i32.const 1) (i32.const 220) (i32.const 14) (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 304)))
        (call $copy (i32.load (i32.const 300)) (i32.load (i32.const 304)))))`, { fs });
    assert.equal(again.code, 0);
    assert.equal(new TextDecoder().decode(fs.readFile("/sandbox/out.txt")), "file content");
  });

  test("path_open refuses to climb out of the preopened directory with ENOTCAPABLE", () => {
    const fs = new MemFs();
    fs.writeFile("/secret.txt", new TextEncoder().encode("outside"));
    const ran = runWat(`(module ${IMPORTS} (memory (export "memory") 1)
      (data (i32.const 200) "../secret.txt")
      (func (export "_start")
        (call $proc_exit (call $path_open (i32.const 3) (i32.const 1) (i32.const 200) (i32.const 13) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 300)))))`, { fs });
    assert.equal(ran.code, Errno.NOTCAPABLE);
  });

  test("an absolute path is resolved inside the preopen, never against the host", () => {
    const ran = runWat(`(module ${IMPORTS} (memory (export "memory") 1)
      (data (i32.const 200) "/etc/passwd")
      (func (export "_start")
        (call $proc_exit (call $path_open (i32.const 3) (i32.const 1) (i32.const 200) (i32.const 11) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 300)))))`);
    assert.equal(ran.code, Errno.NOENT);
  });

  test("proc_exit ends the program with its code, and a trap surfaces as a RuntimeError", () => {
    assert.equal(runWat(`(module ${IMPORTS} (memory (export "memory") 1) (func (export "_start") (call $proc_exit (i32.const 42))))`).code, 42);
    const trapped = runWat(`(module ${IMPORTS} (memory (export "memory") 1) (func (export "_start") unreachable))`);
    assert.ok(trapped.error instanceof WebAssembly.RuntimeError);
  });

  test("a program that keeps calling WASI stops with WasiInterrupted once interrupted() is true", () => {
    let calls = 0;
    const ran = runWat(`(module ${IMPORTS} (memory (export "memory") 1)
      (func (export "_start") (loop $forever (drop (call $sched_yield)) (br $forever))))`, { interrupted: () => ++calls > 1000 });
    assert.ok(ran.error instanceof WasiInterrupted);
  });

  test("start() rejects a module without _start", () => {
    const host = new WasiHost({ args: [], env: {}, stdin: new Uint8Array(), write: () => {}, fs: new MemFs(), preopens: [] });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(wat("(module)") as Uint8Array<ArrayBuffer>));
    assert.throws(() => host.start(instance), TypeError);
    assert.ok(new WasiExit(3).code === 3);
  });
});

describe("makeMemoryImported and cappedMemory", () => {
  const GROWER = `(module ${IMPORTS} (memory (export "memory") 2)
    (func (export "_start")
      (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
      (call $proc_exit (memory.size))))`;

  test("a module's own memory becomes an import, so its growth stops at the cap", () => {
    const { bytes, memory: shape } = makeMemoryImported(wat(GROWER));
    assert.ok(shape);
    assert.equal(shape.module, MEMORY_IMPORT.module);
    assert.equal(shape.minPages, 2);
    const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    const memory = cappedMemory(shape, 4 * 1024 * 1024); // 64 pages
    const fs = new MemFs();
    fs.mkdirp("/sandbox");
    const host = new WasiHost({ args: [], env: {}, stdin: new Uint8Array(), write: () => {}, fs, preopens: [] });
    host.memory = memory;
    const instance = new WebAssembly.Instance(module, { wasi_snapshot_preview1: host.imports as WebAssembly.ModuleImports, wasmbox: { memory } });
    assert.equal(host.start(instance), 50, "2 + 3 * 16 pages: the next grow would pass 64");
    assert.ok(nearMemoryCap(memory, 4 * 1024 * 1024));
  });

  test("a module that needs more memory to start than the limit is refused with a RangeError", () => {
    const { memory: shape } = makeMemoryImported(wat(`(module (memory 100))`));
    assert.throws(() => cappedMemory(shape!, 1024 * 1024), RangeError);
  });

  test("a module without memory is left as it is", () => {
    const bytes = wat("(module (func (export \"f\")))");
    assert.deepEqual(makeMemoryImported(bytes), { bytes, memory: null });
  });
});

describe("MemFs", () => {
  test("writes past the quota fail with ENOSPC and leave the file as it was", () => {
    const fs = new MemFs(10);
    fs.writeFile("/a.txt", new Uint8Array(8));
    assert.throws(() => fs.writeFile("/b.txt", new Uint8Array(8)), (e: unknown) => e instanceof FsError && e.code === "ENOSPC");
    assert.equal(fs.usedBytes, 8);
    fs.unlink("/a.txt");
    assert.equal(fs.usedBytes, 0);
  });

  test("rename moves files and refuses to move a directory into itself", () => {
    const fs = new MemFs();
    fs.writeFile("/d/x.txt", new Uint8Array([1]));
    fs.rename("/d/x.txt", fs.root, "/y.txt", fs.root);
    assert.deepEqual([...fs.files("/").keys()], ["y.txt"]);
    fs.mkdirp("/d/e");
    assert.throws(() => fs.rename("/d", fs.root, "/d/e/f", fs.root), FsError);
    assert.throws(() => fs.rmdir("/d"), (e: unknown) => e instanceof FsError && e.code === "ENOTEMPTY");
  });

  test("collectOutputFiles gives back new and changed files as bytes in path order, and names those past a cap without reading them", () => {
    const fs = new MemFs();
    fs.mkdirp("/s/d");
    fs.writeFile("/s/same.txt", new Uint8Array([65]));
    fs.writeFile("/s/edit.txt", new Uint8Array([66]));
    fs.writeFile("/s/bin.dat", new Uint8Array([0xff, 0xfe]));
    fs.writeFile("/s/d/big.bin", new Uint8Array(100));
    fs.writeFile("/s/z.txt", new Uint8Array(8));
    const before = new Map([["same.txt", new Uint8Array([65])], ["edit.txt", new Uint8Array([65])]]);
    const collected = collectOutputFiles(fs.listing("/s"), before, { maxOutputFileBytes: 50, maxOutputFilesTotalBytes: 5 });
    assert.deepEqual(collected.files, [
      { path: "bin.dat", data: new Uint8Array([0xff, 0xfe]) },
      { path: "edit.txt", data: new Uint8Array([66]) },
    ]);
    assert.deepEqual(collected.overLimit, [
      { path: "d/big.bin", size: 100, cap: "maxOutputFileBytes" },
      { path: "z.txt", size: 8, cap: "maxOutputFilesTotalBytes" },
    ]);
  });
});
