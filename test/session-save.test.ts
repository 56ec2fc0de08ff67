/**
 * Saving, restoring and forking sessions (issue 19): what a saved session carries, that a restored
 * or forked one is independent and has no more power than a fresh one, and that every damaged,
 * foreign or crafted blob is refused with a clear code while the sandbox goes on working.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { Sandbox, Session, WasmboxError, type HostFunction, type Isolation } from "../src/index.js";
import { SESSION_BLOB_FORMAT, type SessionBlobHeader } from "../src/sandbox/session-blob.js";
import { testWheelhouse } from "./helpers/wheels.js";

const add: HostFunction = ({ a, b }: Record<string, unknown>) => (a as number) + (b as number);

const failsWith = (code: string, message?: RegExp) => (error: unknown) => {
  assert.ok(error instanceof WasmboxError, `expected a WasmboxError ${code}, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  if (message) assert.match(error.message, message);
  return true;
};

// --- Blob crafting: the layout of src/sandbox/session-blob.ts, written independently -------------

const MAGIC = new TextEncoder().encode("WASMBOX-SESSION\n");

function openBlob(blob: Uint8Array): { header: SessionBlobHeader; payload: Uint8Array } {
  const length = Buffer.from(blob).readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  return {
    header: JSON.parse(Buffer.from(blob.subarray(start, start + length)).toString("utf8")) as SessionBlobHeader,
    payload: blob.subarray(start + length, blob.length - 32),
  };
}

/** A blob of `header` and `payload` with the checksum recomputed (header.state left as given). */
function buildBlob(header: unknown, payload: Uint8Array): Uint8Array {
  const headerBytes = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(headerBytes.length);
  const body = Buffer.concat([MAGIC, length, headerBytes, payload]);
  return new Uint8Array(Buffer.concat([body, createHash("sha256").update(body).digest()]));
}

function withHeader(blob: Uint8Array, edit: (header: SessionBlobHeader) => void): Uint8Array {
  const { header, payload } = openBlob(blob);
  edit(header);
  return buildBlob(header, payload);
}

/** A valid container around `state` (the executor's bytes), sizes and checksum consistent. */
function withState(blob: Uint8Array, state: Uint8Array): Uint8Array {
  const { header } = openBlob(blob);
  // As session-blob.ts lays it out: chunks of chunkBytes, each raw DEFLATE on its own.
  const chunkBytes = header.state.chunkBytes;
  const chunks: Buffer[] = [];
  for (let at = 0; at < state.length; at += chunkBytes) chunks.push(deflateRawSync(state.subarray(at, at + chunkBytes), { level: 1 }));
  const payload = Buffer.concat(chunks);
  return buildBlob({ ...header, state: { bytes: state.length, compressedBytes: payload.length, chunkBytes, chunks: chunks.map((c) => c.length) } }, payload);
}

// The executor's state: [u32 LE meta length][meta JSON][memory difference][file contents].
// deno-lint-ignore no-explicit-any
type Meta = Record<string, any>;

function stateOf(blob: Uint8Array): { meta: Meta; rest: Buffer } {
  const { header, payload } = openBlob(blob);
  const parts: Buffer[] = [];
  let at = 0;
  for (const length of header.state.chunks) {
    parts.push(inflateRawSync(payload.subarray(at, at + length)));
    at += length;
  }
  const state = Buffer.concat(parts);
  const length = state.readUInt32LE(0);
  return { meta: JSON.parse(state.subarray(4, 4 + length).toString("utf8")) as Meta, rest: state.subarray(4 + length) };
}

function withMeta(blob: Uint8Array, edit: (meta: Meta) => void, rest?: Buffer): Uint8Array {
  const parts = stateOf(blob);
  edit(parts.meta);
  const metaBytes = Buffer.from(JSON.stringify(parts.meta));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(metaBytes.length);
  return withState(blob, Buffer.concat([length, metaBytes, rest ?? parts.rest]));
}

/** The blob with its memory difference replaced by `difference` (the meta's size follows it). */
function withDifference(blob: Uint8Array, difference: Buffer): Uint8Array {
  const parts = stateOf(blob);
  const files = parts.rest.subarray(parts.meta.differenceBytes);
  return withMeta(blob, (m) => (m.differenceBytes = difference.length), Buffer.concat([difference, files]));
}

const flip = (blob: Uint8Array, at: number): Uint8Array => {
  const copy = new Uint8Array(blob);
  copy[at]! ^= 0x40;
  return copy;
};

// ------------------------------------------------------------------------------------------------

const STATE_CODE = `
import fractions, collections, random
from wasmbox import tools
data = {'list': [1, 2, 3], 'nested': {'k': 'v'}}
class Counter:
    def __init__(self):
        self.n = 0
    def bump(self):
        self.n += 1
        return self.n
counter = Counter()
counter.bump(); counter.bump()
half = fractions.Fraction(1, 2)
tally = collections.Counter('abracadabra')
open('/sandbox/note.txt', 'w').write('in sandbox')
open('/tmp/scratch.txt', 'w').write('in tmp')
f = open('log.txt', 'a')
f.write('before\\n')
f.flush()
random.seed(1234)
from_host = tools.add(a=2, b=3)
`;

const CHECK_CODE = `
import json
f.write('after\\n')
f.close()
json.dumps({
    'data': data,
    'bump': counter.bump(),
    'counter_class': type(counter).__name__,
    'fraction': str(half + fractions.Fraction(1, 3)),
    'tally_a': tally['a'],
    'note': open('/sandbox/note.txt').read(),
    'scratch': open('/tmp/scratch.txt').read(),
    'log': open('log.txt').read(),
    'from_host': from_host,
    'host_again': tools.add(a=from_host, b=10),
})
`;

const EXPECTED = {
  data: { list: [1, 2, 3], nested: { k: "v" } },
  bump: 3,
  counter_class: "Counter",
  fraction: "5/6",
  tally_a: 5,
  note: "in sandbox",
  scratch: "in tmp",
  log: "before\nafter\n",
  from_host: 5,
  host_again: 15,
};

describe("saving and restoring a session", () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await Sandbox.create({ poolSize: 1 });
  });
  after(() => sandbox.close());

  it("carries data, a class instance, imported modules, files, an open descriptor, the random state and host functions into a new Sandbox", async () => {
    await using session = await sandbox.session({ tools: { add } });
    const built = await session.run({ code: STATE_CODE });
    assert.equal(built.status, "ok", built.error?.message);
    const blob = await session.save();
    assert.ok(blob instanceof Uint8Array);
    const drawn = await session.run({ code: "random.random()" });

    await using other = await Sandbox.create({ poolSize: 0 });
    await using restored = await other.session({ restore: blob, tools: { add } });
    assert.equal((await restored.run({ code: "random.random()" })).value, drawn.value);
    const checked = await restored.run({ code: CHECK_CODE });
    assert.equal(checked.status, "ok", checked.error?.message);
    assert.deepEqual(JSON.parse(checked.value as string), EXPECTED);
    // The original went on by itself: its descriptor is still open, its counter where it was.
    assert.equal((await session.run({ code: "(f.closed, counter.n)" })).value?.toString(), [false, 2].toString());
  });

  it("needs the host functions it was opened with passed again", async () => {
    await using session = await sandbox.session({ tools: { add } });
    await session.run({ code: "x = 1" });
    const blob = await session.save();
    const before = sandbox.sessionCount;
    await assert.rejects(sandbox.session({ restore: blob }), failsWith("INVALID_REQUEST", /add/));
    assert.equal(sandbox.sessionCount, before);
  });

  it("restores in another host process", async () => {
    await using session = await sandbox.session({ tools: { add } });
    assert.equal((await session.run({ code: STATE_CODE })).status, "ok");
    const dir = mkdtempSync(join(tmpdir(), "wasmbox-session-save-"));
    try {
      const file = join(dir, "session.bin");
      writeFileSync(file, await session.save());
      const child = join(fileURLToPath(new URL(".", import.meta.url)), "helpers", "restore-session-child.ts");
      const out = await new Promise<string>((resolve, reject) => {
        const proc = spawn(process.execPath, ["--import", "tsx", child, file, CHECK_CODE], {
          cwd: fileURLToPath(new URL("..", import.meta.url)),
          stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        proc.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
        proc.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        proc.on("error", reject);
        proc.on("close", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`child exited ${code}: ${stderr}`))));
      });
      const result = JSON.parse(out.trim().split("\n").at(-1)!) as { status: string; value: string; pid: number };
      assert.equal(result.status, "ok", out);
      assert.notEqual(result.pid, process.pid);
      assert.deepEqual(JSON.parse(result.value), EXPECTED);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gives a restored session no more power than a fresh one: time and memory limits hold, host files stay out of reach", async () => {
    await using session = await sandbox.session();
    await session.run({ code: "kept = 'yes'" });
    const blob = await session.save();
    await using restored = await sandbox.session({ restore: blob });
    const spin = await restored.run({ code: "while True: pass", timeoutMs: 300 });
    assert.equal(spin.status, "timeout");
    const restoredAgain = await sandbox.session({ restore: blob });
    try {
      const bomb = await restoredAgain.run({ code: "big = bytearray(400 * 1024 * 1024)", memoryLimitBytes: 96 * 1024 * 1024 });
      assert.equal(bomb.status, "memory_limit");
      const host = await restoredAgain.run({
        code: "try:\n    r = open('/etc/passwd').read()\nexcept OSError as e:\n    r = type(e).__name__\nr",
        memoryLimitBytes: 96 * 1024 * 1024,
      });
      assert.equal(host.value, "FileNotFoundError");
    } finally {
      await restoredAgain.close();
    }
  });

  it("can be saved again after a restore, and the second restore continues from there", async () => {
    await using session = await sandbox.session();
    await session.run({ code: "steps = ['first']" });
    await using restored = await sandbox.session({ restore: await session.save() });
    await restored.run({ code: "steps.append('second')" });
    await using again = await sandbox.session({ restore: await restored.save() });
    assert.deepEqual((await again.run({ code: "steps" })).value, ["first", "second"]);
  });
});

describe("forking a session", () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await Sandbox.create({ poolSize: 1, maxSessions: 6 });
  });
  after(() => sandbox.close());

  it("gives n independent sessions that diverge without affecting each other or the original", async () => {
    await using original = await sandbox.session();
    await original.run({ code: "items = ['base']\nopen('shared.txt', 'w').write('base')" });
    const countBefore = sandbox.sessionCount;
    const forks = await original.fork(3);
    try {
      assert.equal(forks.length, 3);
      assert.equal(sandbox.sessionCount, countBefore + 3);
      assert.equal(new Set(forks.map((f) => f.id)).size, 3);
      for (const [i, fork] of forks.entries()) {
        const r = await fork.run({ code: `items.append('fork-${i}')\nopen('shared.txt', 'a').write('-${i}')\nitems` });
        assert.deepEqual(r.value, ["base", `fork-${i}`]);
      }
      for (const [i, fork] of forks.entries()) {
        assert.deepEqual((await fork.run({ code: "(items, open('shared.txt').read())" })).value, [["base", `fork-${i}`], `base-${i}`]);
      }
      assert.deepEqual((await original.run({ code: "(items, open('shared.txt').read())" })).value, [["base"], "base"]);
    } finally {
      await Promise.all(forks.map((f) => f.close()));
    }
    assert.equal(sandbox.sessionCount, countBefore);
  });

  it("gives one Session for fork() without a count", async () => {
    await using original = await sandbox.session();
    await original.run({ code: "x = 41" });
    await using fork = await original.fork();
    assert.ok(fork instanceof Session);
    assert.equal((await fork.run({ code: "x + 1" })).value, 42);
  });

  it("opens no fork when the count does not fit in maxSessions (TOO_MANY_SESSIONS, all or none)", async () => {
    await using original = await sandbox.session();
    await original.run({ code: "x = 1" });
    const before = sandbox.sessionCount;
    await assert.rejects(original.fork(6), failsWith("TOO_MANY_SESSIONS"));
    assert.equal(sandbox.sessionCount, before);
    assert.equal((await original.run({ code: "x" })).value, 1);
  });

  it("refuses a count that is not a whole number from 1 (INVALID_REQUEST)", async () => {
    await using original = await sandbox.session();
    await assert.rejects(original.fork(0), failsWith("INVALID_REQUEST"));
    await assert.rejects(original.fork(1.5), failsWith("INVALID_REQUEST"));
    await assert.rejects(original.fork(-1), failsWith("INVALID_REQUEST"));
  });
});

describe("a blob that is damaged, foreign or crafted", () => {
  let sandbox: Sandbox;
  let good: Uint8Array;
  before(async () => {
    sandbox = await Sandbox.create({ poolSize: 1 });
    await using session = await sandbox.session();
    await session.run({ code: "value = 'restored'\nopen('a.txt', 'w').write('file')" });
    good = await session.save();
  });
  after(() => sandbox.close());

  /** The sandbox still works and holds no session left over from the refused restore. */
  async function stillWorks(sessionsBefore: number): Promise<void> {
    assert.equal(sandbox.sessionCount, sessionsBefore);
    assert.equal((await sandbox.run({ code: "1 + 1" })).value, 2);
  }

  it("restores the unmodified blob (the control for everything below)", async () => {
    await using session = await sandbox.session({ restore: good });
    assert.equal((await session.run({ code: "value + ' ' + open('a.txt').read()" })).value, "restored file");
  });

  it("refuses random bytes, empty bytes and wrong magic bytes with INVALID_SESSION_BLOB", async () => {
    const count = sandbox.sessionCount;
    for (const blob of [new Uint8Array(randomBytes(4096)), new Uint8Array(0), flip(good, 0), good.slice(16)]) {
      await assert.rejects(sandbox.session({ restore: blob }), failsWith("INVALID_SESSION_BLOB"));
    }
    await stillWorks(count);
  });

  it("refuses a truncated blob, whatever the cut, as truncated or damaged", async () => {
    const count = sandbox.sessionCount;
    const headerLength = Buffer.from(good).readUInt32LE(16);
    const payloadStart = 20 + headerLength;
    const cuts = [20 + Math.floor(headerLength / 2), payloadStart + 10, Math.floor((payloadStart + good.length) / 2), good.length - 32, good.length - 1];
    for (const cut of cuts) {
      await assert.rejects(sandbox.session({ restore: good.slice(0, cut) }), failsWith("INVALID_SESSION_BLOB", /truncated|damaged/), `cut at ${cut} of ${good.length}`);
    }
    await stillWorks(count);
  });

  it("refuses one flipped byte in the header, the payload or the checksum", async () => {
    const count = sandbox.sessionCount;
    const headerLength = Buffer.from(good).readUInt32LE(16);
    const payloadStart = 20 + headerLength;
    for (const at of [20 + 2, 20 + Math.floor(headerLength / 2), payloadStart, Math.floor((payloadStart + good.length - 32) / 2), good.length - 33, good.length - 32, good.length - 1]) {
      await assert.rejects(sandbox.session({ restore: flip(good, at) }), failsWith("INVALID_SESSION_BLOB", /damaged|truncated|header/), `byte ${at}`);
    }
    await stillWorks(count);
  });

  it("refuses another format, another runtime and another base snapshot as SESSION_BLOB_INCOMPATIBLE", async () => {
    const count = sandbox.sessionCount;
    const incompatible = [
      withHeader(good, (h) => (h.format = SESSION_BLOB_FORMAT + 1)),
      withHeader(good, (h) => (h.runtime = h.runtime + "-other")),
      withHeader(good, (h) => (h.baseSha256 = "0".repeat(64))),
    ];
    for (const blob of incompatible) await assert.rejects(sandbox.session({ restore: blob }), failsWith("SESSION_BLOB_INCOMPATIBLE"));
    await stillWorks(count);
  });

  it("refuses a state declared larger than allowed before decompressing anything", async () => {
    const count = sandbox.sessionCount;
    const huge = withHeader(good, (h) => (h.state.bytes = 2 ** 40));
    await assert.rejects(sandbox.session({ restore: huge }), (e: unknown) => e instanceof WasmboxError && ["REQUEST_TOO_LARGE", "INVALID_SESSION_BLOB"].includes(e.code));
    await assert.rejects(sandbox.session({ restore: good, maxStateBytes: 1000 }), failsWith("REQUEST_TOO_LARGE"));
    await stillWorks(count);
  });

  it("restores a state whose heap is large but left zero without making the executor resident in all of it", async () => {
    const count = sandbox.sessionCount;
    // 1 GiB declared, nothing carried past the base: the first call under the default memory
    // limit (256 MiB) answers, so the restore did not touch every page of the declared heap.
    const blob = withMeta(good, (m) => (m.heapBytes = 1024 ** 3));
    await using restored = await sandbox.session({ restore: blob });
    const r = await restored.run({ code: "value" });
    assert.equal(r.status, "ok", r.error?.message);
    assert.equal(r.value, "restored");
    await restored.close();
    await stillWorks(count);
  });

  it("refuses a decompression bomb: a state that inflates past what its header declares", async () => {
    const count = sandbox.sessionCount;
    const payload = deflateRawSync(Buffer.alloc(50 * 1024 * 1024));
    const bomb = withHeader(good, () => {});
    const { header } = openBlob(bomb);
    const blob = buildBlob({ ...header, state: { bytes: 1000, compressedBytes: payload.length, chunkBytes: header.state.chunkBytes, chunks: [payload.length] } }, payload);
    await assert.rejects(sandbox.session({ restore: blob }), failsWith("INVALID_SESSION_BLOB", /inflates past/));
    await stillWorks(count);
  });

  it("refuses a valid container around a crafted state, and the sandbox goes on", async () => {
    const count = sandbox.sessionCount;
    const { meta } = stateOf(good);
    const crafted: [string, Uint8Array][] = [
      ["random state bytes", withState(good, randomBytes(64 * 1024))],
      ["a meta length past the end", withState(good, Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3]))],
      ["meta that is not JSON", withState(good, Buffer.concat([Buffer.from([4, 0, 0, 0]), Buffer.from("{{{{")]))],
      ["another state format", withMeta(good, (m) => (m.format = 99))],
      ["a file in /etc", withMeta(good, (m) => m.files.push(["/etc/x", "file", 0o100644, 0, 0, 0]))],
      ["a path with ..", withMeta(good, (m) => m.files.push(["/sandbox/../x", "file", 0o100644, 0, 0, 0]))],
      ["a file under a directory the state lacks", withMeta(good, (m) => m.files.push(["/sandbox/missing/x", "file", 0o100644, 0, 0, 0]))],
      ["a descriptor on a host path", withMeta(good, (m) => m.fds.push([9, "/etc/passwd", 0, 0]))],
      ["a descriptor on a file that does not exist", withMeta(good, (m) => m.fds.push([9, "/sandbox/nothing-here", 0, 0]))],
      // The memory difference: runs of [LEB128 skip][LEB128 length][bytes] (session-state.ts).
      ["a memory run past the heap", withDifference(good, Buffer.from([0x80, 0x80, 0x80, 0x80, 0x0f, 4, 1, 2, 3, 4]))],
      ["a memory run longer than the difference", withDifference(good, Buffer.from([0, 0x7f, 1, 2]))],
      ["a memory run of length 0", withDifference(good, Buffer.from([1, 0]))],
      ["a truncated LEB128 number", withDifference(good, Buffer.from([0x80]))],
      ["a difference longer than the state says", withMeta(good, (m) => (m.differenceBytes = m.differenceBytes + 10))],
      ["a heap of 3 bytes", withMeta(good, (m) => (m.heapBytes = 3))],
      ["a JavaScript reference table of 16 million slots", withMeta(good, (m) => (m.hiwireTableLength = 2 ** 24 - 1))],
      ["a heap past 4 GiB", withMeta(good, (m) => (m.heapBytes = 8 * 1024 ** 3))],
      ["a heap of 4 GiB", withMeta(good, (m) => (m.heapBytes = 4 * 1024 ** 3))],
      ["another runtime's start", withMeta(good, (m) => m.baseline.push("9999:object:Evil"))],
      [
        "a file written through a symbolic link out of /sandbox",
        withMeta(good, (m) => m.files.push(["/sandbox/l", "link", 0o120777, 0, 0, "/lib"], ["/sandbox/l/planted.py", "file", 0o100644, 0, 0, 0])),
      ],
      ["a path listed twice", withMeta(good, (m) => m.files.push(["/sandbox", "dir", 0o40777, 0, 0, 0]))],
    ];
    for (const [what, blob] of crafted) {
      // The reason is said in words (Emscripten's file system errors are not Errors).
      await assert.rejects(sandbox.session({ restore: blob }), failsWith("INVALID_SESSION_BLOB", /^(?!.*\[object Object\])/), what);
      assert.equal(sandbox.sessionCount, count, what);
    }
    await stillWorks(count);
    // A state without its files (no /sandbox at all) is no danger: it restores, and the session
    // gets the working directory every session has.
    const noFiles = withMeta(good, (m) => ((m.files = []), (m.fds = []), (m.cwd = "/sandbox")), stateOf(good).rest.subarray(0, meta.differenceBytes));
    await using bare = await sandbox.session({ restore: noFiles });
    const r = await bare.run({ code: "import os\nos.getcwd(), sorted(os.listdir('.')), value" });
    assert.deepEqual(r.value, ["/sandbox", [], "restored"], r.error?.message);
  });
});


describe("what cannot be saved", () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await Sandbox.create({ poolSize: 1 });
  });
  after(() => sandbox.close());

  it("refuses a session holding a JavaScript object by name, and saves it once the object is dropped", async () => {
    await using session = await sandbox.session();
    await session.run({ code: "from pyodide.ffi import to_js\nheld = to_js({'a': 1})\nx = 5" });
    await assert.rejects(session.save(), failsWith("SESSION_NOT_SAVEABLE", /JavaScript object/));
    assert.equal(session.state, "open");
    assert.equal((await session.run({ code: "x + held.a" })).value, 6);
    await session.run({ code: "del held" });
    await using restored = await sandbox.session({ restore: await session.save() });
    assert.equal((await restored.run({ code: "x" })).value, 5);
  });

  it("refuses a descriptor open on a file deleted since, and saves once it is closed", async () => {
    await using session = await sandbox.session();
    await session.run({ code: "import os\ng = open('gone.txt', 'w')\ng.write('z')\nos.unlink('gone.txt')\nx = 3" });
    await assert.rejects(session.save(), failsWith("SESSION_NOT_SAVEABLE", /descriptor \d+ \(\/sandbox\/gone\.txt\)/));
    await session.run({ code: "g.close()" });
    await using restored = await sandbox.session({ restore: await session.save() });
    assert.equal((await restored.run({ code: "x" })).value, 3);
  });

  it("refuses a descriptor on something other than a session file (/dev/null)", async () => {
    await using session = await sandbox.session();
    await session.run({ code: "dn = open('/dev/null', 'w')" });
    await assert.rejects(session.save(), failsWith("SESSION_NOT_SAVEABLE", /\/dev\/null/));
  });

  it("refuses a session whose interpreter exited (os._exit) with SESSION_NOT_SAVEABLE", async () => {
    await using session = await sandbox.session();
    await session.run({ code: "import os\nos._exit(3)" });
    await assert.rejects(session.save(), (e: unknown) => {
      assert.ok(e instanceof WasmboxError);
      // While the session stays open after os._exit the worker says why; once dead it is SESSION_DEAD.
      if (session.state === "open") {
        assert.equal(e.code, "SESSION_NOT_SAVEABLE");
        assert.match(e.message, /os\._exit/);
      } else assert.equal(e.code, "SESSION_DEAD");
      return true;
    });
    await assert.rejects(session.fork(), (e: unknown) => e instanceof WasmboxError && ["SESSION_NOT_SAVEABLE", "SESSION_DEAD"].includes(e.code));
  });

  it("saves a session whose guest made a directory unreadable, which also survives its own next call", async () => {
    await using session = await sandbox.session();
    const made = await session.run({ code: "import os\nos.mkdir('locked')\nopen('locked/x', 'w').write('1')\nos.chmod('locked', 0)" });
    assert.equal(made.status, "ok", made.error?.message);
    assert.equal((await session.run({ code: "2" })).value, 2);
    await using restored = await sandbox.session({ restore: await session.save() });
    const r = await restored.run({ code: "import os\nos.chmod('locked', 0o755)\nopen('locked/x').read()" });
    assert.equal(r.value, "1", r.error?.message);
  });

  it("refuses to save or fork a JavaScript session (NOT_IMPLEMENTED)", async () => {
    await using session = await sandbox.session({ language: "javascript" });
    await assert.rejects(session.save(), failsWith("NOT_IMPLEMENTED"));
    await assert.rejects(session.fork(), failsWith("NOT_IMPLEMENTED"));
  });
});

describe("a session with packages", () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await Sandbox.create({ poolSize: 1, wheelhouse: await testWheelhouse() });
  });
  after(() => sandbox.close());

  it("saves, restores and forks a session with a native package (pydantic), whose environment leaves the stdlib zip open from its start", async () => {
    await using session = await sandbox.session({ packages: ["pydantic"] });
    const built = await session.run({ code: "from pydantic import BaseModel\nclass User(BaseModel):\n    name: str\n    age: int\nu = User(name='ada', age=36)" });
    assert.equal(built.status, "ok", built.error?.message);
    const blob = await session.save();
    await using restored = await sandbox.session({ restore: blob });
    assert.deepEqual((await restored.run({ code: "User(name='bob', age=3).model_dump(), u.age" })).value, [{ name: "bob", age: 3 }, 36]);
    await using fork = await session.fork();
    const r = await fork.run({ code: "u.model_copy(update={'age': 40}).age" });
    assert.equal(r.value, 40, r.error?.message);
    // A restore names the packages it was saved with: asking for others is refused.
    await assert.rejects(sandbox.session({ restore: blob, packages: ["msgspec"] }), failsWith("INVALID_REQUEST", /pydantic/));
  });
});

describe("isolation modes", () => {
  const sandboxes = new Map<Isolation, Sandbox>();
  before(async () => {
    for (const isolation of ["process", "isolate", "interpreter"] as const) sandboxes.set(isolation, await Sandbox.create({ poolSize: 1, isolation }));
  });
  after(async () => {
    for (const sandbox of sandboxes.values()) await sandbox.close();
  });

  for (const [from, to] of [["process", "interpreter"], ["process", "isolate"], ["interpreter", "process"], ["isolate", "interpreter"]] as const) {
    it(`restores a session saved under "${from}" isolation in a sandbox with "${to}" isolation`, async () => {
      await using session = await sandboxes.get(from)!.session();
      await session.run({ code: `import collections\nseen = collections.OrderedDict(mode='${from}')\nopen('m.txt', 'w').write('${from}')` });
      const sandbox = sandboxes.get(to)!;
      await using restored = await sandbox.session({ restore: await session.save() });
      assert.deepEqual((await restored.run({ code: "(dict(seen), open('m.txt').read())" })).value, [{ mode: from }, from]);
      // A plain run on that sandbox afterwards is clean.
      assert.deepEqual((await sandbox.run({ code: "'seen' in globals()" })).value, false);
    });
  }
});

describe("guest JavaScript that tampers with saving", () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await Sandbox.create({ poolSize: 1 });
  });
  after(() => sandbox.close());

  /** Runs `js` in the worker through the Function constructor, then drops every reference Python holds. */
  const runJs = (js: string) =>
    `from pyodide.ffi import to_js\nF = to_js({}).constructor.constructor\nF(${JSON.stringify(js)})()\ndel F\nimport gc\ngc.collect()\nsecret = 'mine'`;

  /** Saving either refuses or gives a blob that restores (or is refused) without harm; the host goes on. */
  async function saveAndRestore(session: Session): Promise<string> {
    let blob: Uint8Array;
    try {
      blob = await session.save();
    } catch (error) {
      assert.ok(error instanceof WasmboxError && error.code === "SESSION_NOT_SAVEABLE", String(error));
      return "refused at save";
    }
    await using fresh = await Sandbox.create({ poolSize: 0 });
    let outcome: string;
    try {
      await using restored = await fresh.session({ restore: blob });
      // Whatever the forged memory does, it is a call like any other: its limits hold and it ends.
      const r = await restored.run({ code: "while True: pass", timeoutMs: 300 });
      assert.ok(["timeout", "crash", "error"].includes(r.status), r.status);
      outcome = `restored, its first call ended with status ${r.status}`;
    } catch (error) {
      assert.ok(error instanceof WasmboxError && error.code === "INVALID_SESSION_BLOB", String(error));
      outcome = "refused at restore";
    }
    assert.equal((await fresh.run({ code: "1 + 1" })).value, 2);
    return outcome;
  }

  it("forging the state's description (JSON.stringify replaced) gives a blob that is refused at restore", async (t) => {
    await using session = await sandbox.session();
    const js = `
      const original = JSON.stringify;
      JSON.stringify = function (value, ...rest) {
        if (value && typeof value === "object" && typeof value.differenceBytes === "number" && Array.isArray(value.files)) {
          value = { ...value, files: [...value.files, ["/sandbox/../etc/evil", "file", 33188, 0, 0, 0]], fds: [[3, "/etc/passwd", 0, 0]], hiwireTableLength: 16777215 };
        }
        return original.call(this, value, ...rest);
      };`;
    const r = await session.run({ code: runJs(js) });
    assert.equal(r.status, "ok", r.error?.message);
    const outcome = await saveAndRestore(session);
    t.diagnostic(outcome);
    assert.equal(outcome, "refused at restore");
    assert.equal((await sandbox.run({ code: "1 + 1" })).value, 2);
  });

  it("patching typed arrays and WebAssembly.Memory in the worker neither crashes the host nor gives a restored session more power", async (t) => {
    await using session = await sandbox.session();
    const js = `
      const set = Uint8Array.prototype.set;
      Uint8Array.prototype.set = function (source, offset) {
        // The carried memory pages (views of the 30+ MB heap) are written as garbage; the description stays valid.
        if (this.length > 1 << 20 && source && source.buffer && source.buffer.byteLength > 16 << 20) return set.call(this, new Uint8Array(source.length).fill(0xcc), offset);
        return set.call(this, source, offset);
      };
      WebAssembly.Memory.prototype.grow = function () { throw new Error("no"); };
      globalThis.Deno = new Proxy({}, { get() { throw new Error("tampered"); } });`;
    const r = await session.run({ code: runJs(js) });
    assert.equal(r.status, "ok", r.error?.message);
    const outcome = await saveAndRestore(session);
    t.diagnostic(outcome);
    assert.match(outcome, /^(refused at save|refused at restore|restored, )/);
    assert.equal((await sandbox.run({ code: "1 + 1" })).value, 2);
  });

  it("a worker made never to answer (its message handler spinning) is killed at the deadline: save fails naming it, the session is dead, the host goes on", async () => {
    const session = await sandbox.session();
    const patched = await session.run({ code: runJs("const spin = () => { for (;;) {} }; self.onmessage = spin; self.addEventListener('message', spin);") });
    assert.equal(patched.status, "ok", patched.error?.message);
    await assert.rejects(session.save(), (e: unknown) => {
      assert.ok(e instanceof WasmboxError);
      assert.equal(e.code, "SESSION_DEAD");
      assert.match(e.message, /did not answer a session save within \d+ ms/);
      return true;
    });
    assert.equal(session.state, "dead");
    assert.equal((await sandbox.run({ code: "1 + 1" })).value, 2);
  });
});
