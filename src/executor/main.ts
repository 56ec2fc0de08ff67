/**
 * The executor's trusted main isolate. Runs INSIDE the Deno executor process, never in the host.
 *
 * It holds the frame key (read from the frame channel before any guest code exists), starts the worker that
 * hosts the guest runtime, relays the host's requests to it, and signs every frame it sends back.
 * The guest lives in the worker: it can post messages here and write to the process's stdout, but
 * it cannot reach this isolate's memory, so it cannot sign. Every worker message is validated.
 *
 * With `isolate` (isolation "isolate"), each run sent with `reset` gets a worker no run has touched:
 * a fresh V8 isolate and wasm instance with its own shared buffers (output ring, host-call buffer,
 * interrupt flag). The next one is loaded while a run executes; after the run's result this
 * isolate terminates the run's worker and says `ready` once the next one is. That decision is made
 * here, where guest code cannot reach, never by anything the worker posts.
 *
 * Usage (by the host only): deno run <flags> main.js serve|make-snapshot CHANNEL RUNTIME [RUNTIME_ARGS...]
 * CHANNEL is the FIFO the host's frames arrive on (never stdin: see startWorker); RUNTIME names the
 * worker (src/runtimes/RUNTIME/worker.ts); in make-snapshot mode the last argument is the file to
 * write the snapshot to.
 */
import type { ExecutorFrame, HostMessage, InitMessage, RunMessage } from "./protocol.js";
import type { WorkerFiles, WorkerInit, WorkerRun } from "../runtimes/worker-protocol.js";
import { encodeHeader, extractBlobs, FrameReader, framePartsFromHeader, reviveBlobs } from "../core/frames.js";
import { CALL_INTERRUPTED, CALL_REPLIED, HOST_CALL_BUFFER_BYTES, HOST_CALL_DATA_OFFSET } from "../runtimes/python/host-call-layout.js";
import { createOutputRing, drainRing, releaseRing, resetRingRelease } from "../runtimes/output-ring.js";

declare const Deno: {
  args: string[];
  open(path: string, options: { read: true }): Promise<{ readable: ReadableStream<Uint8Array> }>;
  stdin: { readable: ReadableStream<Uint8Array> };
  stdout: { writable: WritableStream<Uint8Array> };
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array): Promise<void>;
  exit(code: number): never;
  permissions: { querySync(descriptor: { name: string; path?: string }): { state: "granted" | "prompt" | "denied" } };
};

type FrameBody = ExecutorFrame extends infer F ? (F extends { seq: number } ? Omit<F, "seq"> : never) : never;

const [mode, channelPath, runtime, ...runtimeArgs] = Deno.args as [string, string, string, ...string[]];
const snapshotPath = runtimeArgs.at(-1)!;
if ((mode !== "serve" && mode !== "make-snapshot") || !channelPath?.startsWith("/") || !/^[a-z]+$/.test(runtime ?? "")) {
  console.error("wasmbox executor: usage: main.js serve|make-snapshot CHANNEL RUNTIME [ARGS...]");
  Deno.exit(2);
}

// Refuse to run with any permission beyond reading our assets: a launcher mistake (or a runtime
// that rewrites argv, as Deno's Node-compat layer can: denoland/deno#35443) must not widen the walls.
for (const name of ["net", "env", "run", "ffi", "sys", "import", ...(mode === "serve" ? ["write"] : [])]) {
  if (Deno.permissions.querySync({ name }).state !== "denied") {
    console.error(`wasmbox executor: permission ${name} is not denied; refusing to start`);
    Deno.exit(3);
  }
}
for (const path of ["/", "/etc/passwd", "/proc/self/environ"]) {
  if (Deno.permissions.querySync({ name: "read", path }).state === "granted") {
    console.error(`wasmbox executor: can read ${path}; refusing to start`);
    Deno.exit(3);
  }
}
const encoder = new TextEncoder();
const stdout = Deno.stdout.writable.getWriter();
// Captured before any guest code can run, so later changes to globals cannot reach them.
const subtle = crypto.subtle;
const sign = subtle.sign.bind(subtle);
const digest = subtle.digest.bind(subtle);
const stringify = JSON.stringify;

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

function fromHex(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

/** Frames from the host, read in time linear in their size (core/frames.ts). The host is trusted: its limits are generous. */
async function* frames(stream: ReadableStream<Uint8Array>): AsyncGenerator<Record<string, unknown>> {
  const reader = new FrameReader({ maxHeaderBytes: 2 ** 31, maxBlobBytes: Number.MAX_SAFE_INTEGER });
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    reader.push(chunk);
    for (let frame = reader.next(); frame; frame = reader.next()) {
      yield reviveBlobs<Record<string, unknown>>(frame.header, frame.blobs);
    }
  }
}

// The host holds our stdin open for as long as it lives and never writes to it: its end (also while
// we wait below for the channel's writer) means the host is gone. Nothing travels on it, so a read
// a guest leaves pending there takes nothing.
void (async () => {
  try {
    const reader = Deno.stdin.readable.getReader();
    while (!(await reader.read()).done) {
      // nothing is sent here
    }
  } catch {
    // closed under us: the same as its end
  }
  Deno.exit(0);
})();
const input = frames((await Deno.open(channelPath, { read: true })).readable);
const first = await input.next();
if (first.done) Deno.exit(2);
const init = first.value as unknown as InitMessage;
if (init.t !== "init" || !/^[0-9a-f]{64}$/.test(init.key)) Deno.exit(2);
const rawKey = fromHex(init.key);
const key = await subtle.importKey("raw", rawKey, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
rawKey.fill(0);

let seq = 0;
/** Values up to this size travel inside the signed header instead of as digested blobs. */
const INLINE_MAX_BYTES = 64 * 1024;
let sending: Promise<void> = Promise.resolve();
/**
 * Queues one signed frame; frames leave in the order they were queued. Bytes in the body (output,
 * files) travel as blobs, each named in the header with its SHA-256; the HMAC covers the header.
 */
function sendFrame(body: FrameBody): Promise<void> {
  // Small values (most output chunks) go inline as base64, covered by the MAC: no digest to await.
  const { value, blobs } = extractBlobs({ seq: seq++, ...body }, { inline: (b) => (b.length <= INLINE_MAX_BYTES ? (b as Uint8Array & { toBase64(): string }).toBase64() : null) });
  sending = sending.then(async () => {
    const entries = await Promise.all(blobs.map(async (b) => [b.length, hex(new Uint8Array(await digest("SHA-256", b as Uint8Array<ArrayBuffer>)))]));
    const headerBytes = encodeHeader(value, blobs, entries);
    const mac = new Uint8Array(await sign("HMAC", key, headerBytes as Uint8Array<ArrayBuffer>));
    for (const part of framePartsFromHeader(headerBytes, blobs, mac)) await stdout.write(part);
  });
  return sending;
}

/** Sends a frame after any output still waiting, so the host sees everything in order. */
function send(body: FrameBody): Promise<void> {
  flushOutput();
  return sendFrame(body);
}

// Guest output arrives through a shared ring (output-ring.ts) that this isolate drains every
// OUTPUT_POLL_MS while a run is active, and before any other frame, so order holds. Each drain
// becomes one frame per stream run instead of one signed frame per write, which a flood of short
// writes would outrun. Output is counted here too: past the run's cap one extra byte goes out (so
// the host sees the cap crossed and ends the run) and the rest is dropped.
const OUTPUT_POLL_MS = 5;
let pendingOutput: { fd: 1 | 2; parts: Uint8Array[] }[] = [];
let runOutputBytes = 0;
let runMaxOutputBytes = Number.POSITIVE_INFINITY;
let outputPoll: ReturnType<typeof setInterval> | null = null;

function acceptOutput(fd: 1 | 2, data: Uint8Array): void {
  const room = runMaxOutputBytes + 1 - runOutputBytes;
  if (room <= 0) return;
  const kept = data.length > room ? data.subarray(0, room) : data;
  runOutputBytes += kept.length;
  // Past the cap the guest's writes are dropped at once instead of queueing.
  if (runOutputBytes > runMaxOutputBytes) releaseRing(current.ring);
  const last = pendingOutput.at(-1);
  if (last && last.fd === fd) last.parts.push(kept);
  else pendingOutput.push({ fd, parts: [kept] });
}

function flushOutput(): void {
  let records;
  try {
    records = drainRing(current.ring);
  } catch (error) {
    void fail(String(error));
    return;
  }
  for (const { fd, bytes } of records) acceptOutput(fd, bytes);
  for (const { fd, parts } of pendingOutput) {
    const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const part of parts) {
      joined.set(part, offset);
      offset += part.length;
    }
    void sendFrame({ t: "out", fd, data: joined });
  }
  pendingOutput = [];
}

/**
 * Rich results count against the run's output cap with stdout and stderr (issue 16): those past it
 * are cut here, so a guest cannot make the result frame arbitrarily large, and the outcome says so
 * (`resultsOverLimit`, the host ends the run as output_limit). The host checks their shape.
 */
function capRichResults(outcome: unknown): void {
  if (typeof outcome !== "object" || outcome === null) return;
  const o = outcome as Record<string, unknown>;
  if (o.results === undefined) return;
  if (!Array.isArray(o.results)) {
    o.results = null; // the host rejects the outcome
    return;
  }
  let used = runOutputBytes;
  let total = 0;
  let kept = -1;
  for (let i = 0; i < o.results.length; i++) {
    let size: number;
    try {
      size = JSON.stringify(o.results[i])?.length ?? 0;
    } catch {
      o.results = null; // not JSON (a cycle, a BigInt): the host rejects the outcome
      return;
    }
    total += size;
    if (kept === -1 && used + size > runMaxOutputBytes) kept = i;
    if (kept === -1) used += size;
    if (total > 2 * runMaxOutputBytes) break;
  }
  if (kept !== -1) {
    o.results = o.results.slice(0, kept);
    o.resultsOverLimit = Math.max(Number.isSafeInteger(o.resultsOverLimit) ? (o.resultsOverLimit as number) : 0, total);
  }
}

async function fail(message: string): Promise<never> {
  await send({ t: "fatal", message: String(message).slice(0, 4000) });
  Deno.exit(1);
}

const MAX_CALL_ARGS_CHARS = 8 * 1024 * 1024;

/**
 * One runtime worker and the shared memory only it and this isolate hold. In isolate mode every
 * run gets a new slot, so nothing a run could touch (its realm, its wasm memory, these buffers)
 * is ever seen by another run.
 */
interface WorkerSlot {
  worker: Worker;
  ring: SharedArrayBuffer;
  interruptFlag: Int32Array;
  callState: Int32Array;
  callData: Uint8Array;
  /** The worker has loaded its runtime and said `ready`. */
  ready: boolean;
  /** A run was handed to it: guest code may have run there, so it never takes a run of another trust scope. */
  used: boolean;
  /** The call the worker is blocked on, if any: replies for any other id are stale and dropped. */
  pendingCallId: number | null;
}

const isolate = init.isolate === true;
/** What the first worker offered to share before any guest code existed (Python: the compiled wasm module). */
let sharedAssets: unknown = undefined;
/** Isolate mode: the host waits for `ready` after a run's result until the next worker has loaded. */
let readyOwed = false;

/**
 * What a worker may do: read our code and the runtime's assets (its absolute-path arguments), and
 * nothing else. Above all not the frame channel, which this isolate may read: a guest that could
 * open it, or leave a read of it pending, would take frames meant for later runs. (The process's
 * stdin, which needs no permission, carries nothing: the host only holds it open.)
 */
const WORKER_PERMISSIONS = {
  read: [new URL("..", import.meta.url).pathname, ...runtimeArgs].filter(
    (path) => path.startsWith("/") && path !== channelPath && Deno.permissions.querySync({ name: "read", path }).state === "granted",
  ),
  write: false,
  net: false,
  env: false,
  run: false,
  ffi: false,
  sys: false,
  import: false,
};

function startWorker(options: { warmUp: boolean }): WorkerSlot {
  const calls = new SharedArrayBuffer(HOST_CALL_BUFFER_BYTES);
  const interrupt = new SharedArrayBuffer(4);
  const slot: WorkerSlot = {
    worker: new Worker(new URL(`../runtimes/${runtime}/worker.js`, import.meta.url), {
      type: "module",
      deno: { permissions: WORKER_PERMISSIONS },
    } as WorkerOptions),
    ring: createOutputRing(),
    interruptFlag: new Int32Array(interrupt),
    callState: new Int32Array(calls, 0, 2),
    callData: new Uint8Array(calls, HOST_CALL_DATA_OFFSET),
    ready: false,
    used: false,
    pendingCallId: null,
  };
  slot.worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    if (slot === current || slot === spare) void fail(`worker error: ${event.message}`);
  };
  slot.worker.onmessage = (event: MessageEvent) => onWorkerMessage(slot, event.data);
  const workerInit: WorkerInit = {
    t: "init",
    args: runtimeArgs,
    makeSnapshot: mode === "make-snapshot",
    interrupt,
    calls,
    output: slot.ring,
    keepPristine: init.keepPristine === true,
    warmUp: options.warmUp,
    offerShared: isolate && sharedAssets === undefined,
    shared: sharedAssets,
  };
  slot.worker.postMessage(workerInit);
  return slot;
}

/** The worker that takes (or runs) the current run. */
let current: WorkerSlot;
/** Isolate mode: the worker that takes the next run, loading ahead of demand; no run has touched it. */
let spare: WorkerSlot | null = null;

function answerCall(callId: number, reply: string): void {
  const slot = current;
  if (callId !== slot.pendingCallId) return;
  slot.pendingCallId = null;
  let bytes = encoder.encode(reply);
  if (bytes.length > slot.callData.length) {
    bytes = encoder.encode(stringify({ ok: false, error: `host function reply is larger than ${slot.callData.length} bytes` }));
  }
  slot.callData.set(bytes);
  Atomics.store(slot.callState, 1, bytes.length);
  Atomics.store(slot.callState, 0, CALL_REPLIED);
  Atomics.notify(slot.callState, 0);
}

/** Isolate mode, after a run's result: the run's worker is ended and the spare takes its place. */
function retireCurrentWorker(): void {
  current.worker.terminate();
  current = spare ?? startWorker({ warmUp: true });
  spare = null;
  readyOwed = true;
  if (current.ready) sayReady();
}

function sayReady(): void {
  if (!readyOwed) return;
  readyOwed = false;
  void send({ t: "ready" });
}

let finished = false;
/** Whether the current run was sent with `reset` in isolate mode: its worker ends after its result. */
let runEndsWorker = false;

function onWorkerMessage(slot: WorkerSlot, data: unknown): void {
  const message = data as Record<string, unknown> | null;
  if (finished || typeof message !== "object" || message === null) return;
  if (slot !== current) {
    // A spare has run no guest code: it may only offer what it shares and say it is ready. A
    // terminated worker's last messages are dropped.
    if (slot !== spare) return;
    if (message.t === "ready") slot.ready = true;
    else if (message.t === "fatal") void fail(String(message.message));
    return;
  }
  // Everything here may have been posted by guest code: check shapes before relaying.
  switch (message.t) {
    case "shared":
      // Accepted only from a worker that has never had a run (no guest code has existed in it).
      if (!slot.used && !slot.ready && isolate && sharedAssets === undefined) sharedAssets = message.assets;
      return;
    case "ready":
      if (!slot.used) {
        slot.ready = true;
        readyOwed = true;
        sayReady();
      } else if (!isolate) void send({ t: "ready" }); // interpreter mode: the worker restored itself
      return;
    case "out": {
      const { fd, data } = message;
      if ((fd !== 1 && fd !== 2) || !(data instanceof Uint8Array)) return void fail("malformed output message");
      acceptOutput(fd, data);
      return;
    }
    case "result":
      // The outcome is re-serialised by stringify; the host validates its shape. The executor
      // stays up: a session runs again, and the host kills one-shot executors itself.
      capRichResults(message.outcome);
      void send({ t: "result", outcome: message.outcome as never });
      if (outputPoll !== null) clearInterval(outputPoll);
      outputPoll = null;
      if (runEndsWorker) {
        runEndsWorker = false;
        retireCurrentWorker();
      }
      return;
    case "call": {
      const { callId, name, args } = message;
      if (!Number.isInteger(callId) || typeof name !== "string" || name.length > 256 || typeof args !== "string" || args.length > MAX_CALL_ARGS_CHARS) {
        return void fail("malformed host call");
      }
      slot.pendingCallId = callId as number;
      void send({ t: "call", callId: callId as number, name, args });
      return;
    }
    case "fs-reply": {
      const { rid, ok, entries, data, error } = message;
      if (!Number.isInteger(rid)) return void fail("malformed file reply");
      void send({
        t: "fs-reply",
        rid: rid as number,
        ok: ok === true,
        entries: Array.isArray(entries) ? (entries as { path: string; size: number }[]) : undefined,
        data: data instanceof Uint8Array ? data : undefined,
        error: typeof error === "string" ? error.slice(0, 2000) : undefined,
      });
      return;
    }
    case "snapshot": {
      const bytes = message.bytes;
      if (mode !== "make-snapshot" || !(bytes instanceof Uint8Array)) return void fail("unexpected snapshot");
      finished = true;
      void Deno.writeFile(snapshotPath, bytes)
        .then(() => send({ t: "snapshot-done", bytes: bytes.length }))
        .then(() => Deno.exit(0), (error) => fail(`cannot write snapshot: ${error}`));
      return;
    }
    case "retire":
      if (!isolate) void send({ t: "retire", reason: String(message.reason).slice(0, 1000) });
      return;
    case "fatal":
      return void fail(String(message.message));
    default:
      return void fail("unknown message from worker");
  }
}

current = startWorker({ warmUp: init.warmUp !== false });

function toWorkerRun(message: RunMessage): WorkerRun {
  return {
    ...message,
    keepState: message.keepState === true,
    // In isolate mode the worker never restores itself: it is ended after the run.
    reset: message.reset === true && !isolate,
    tools: Array.isArray(message.tools) ? message.tools.filter((n) => typeof n === "string") : [],
  };
}

/** The buffers of a run's inputs, handed to the worker instead of copied. */
function inputBuffers(run: WorkerRun): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const [, bytes] of run.files) buffers.add(bytes.buffer as ArrayBuffer);
  buffers.add(run.stdin.buffer as ArrayBuffer);
  return [...buffers].filter((b) => b.byteLength > 0);
}


for (;;) {
  let message: HostMessage;
  try {
    const next = await input.next();
    if (next.done) break;
    message = next.value as unknown as HostMessage;
  } catch (error) {
    message = await fail(`host sent a malformed frame: ${error}`);
  }
  if (message.t === "run") {
    if (isolate && message.reset === true && current.used) {
      // The host sends a run only after `ready`; a worker that ran guest code never takes another.
      await fail("run sent before the executor was ready");
    }
    // Output written after the previous run's result (a timer in a session) belongs to no run.
    try {
      drainRing(current.ring);
    } catch {
      // a corrupt ring is reported by the next flush
    }
    Atomics.store(current.interruptFlag, 0, 0);
    runOutputBytes = 0;
    runMaxOutputBytes = message.maxOutputBytes;
    resetRingRelease(current.ring);
    outputPoll ??= setInterval(flushOutput, OUTPUT_POLL_MS);
    const run = toWorkerRun(message);
    runEndsWorker = isolate && message.reset === true;
    // The next run's worker loads while this one runs, so it is ready when the result is or soon
    // after. It warms up too (trusted programs through the whole run path, no guest code): a new
    // realm's JavaScript is cold, and that first-call cost is better paid there than in a guest's
    // time. Started before this run is handed over: `new Worker` holds this isolate for ~10 ms,
    // which would otherwise delay this run's result and count as its time.
    if (runEndsWorker && spare === null) spare = startWorker({ warmUp: true });
    current.used = true;
    current.worker.postMessage(run, inputBuffers(run));
    // The whole run has arrived and is the runtime's now: from here on, time is the guest's.
    void send({ t: "started" });
  } else if (message.t === "interrupt") {
    // SIGINT (2) in Pyodide's interrupt buffer: the guest gets a KeyboardInterrupt, also when it
    // is blocked waiting for a host function.
    Atomics.store(current.interruptFlag, 0, 2);
    if (current.pendingCallId !== null) {
      current.pendingCallId = null;
      Atomics.store(current.callState, 0, CALL_INTERRUPTED);
      Atomics.notify(current.callState, 0);
    }
  } else if (message.t === "call-result") {
    answerCall(message.callId, message.reply);
  } else if (message.t === "fs") {
    current.worker.postMessage(message satisfies WorkerFiles, message.op === "write" || message.op === "restore" ? [message.data.buffer as ArrayBuffer] : []);
  }
}
// The host closed the frame channel: it is gone or done with us.
Deno.exit(0);
