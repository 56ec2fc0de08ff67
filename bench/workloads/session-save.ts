/**
 * Saved sessions (issue 19): for a session holding about 1, 50 and 200 MB of Python objects (a list
 * of ints, a dict of strings and random bytes, a third each), the time of `session.save()`, the
 * blob's size, and the time to restore it (`sandbox.session({ restore })` until a first call
 * answers 1), against opening a fresh session and running again the code that built the state
 * (the baseline: what a caller without save would do). And `fork()` of a ~1 MB session until the
 * fork's first call answers, against opening a fresh session the same way, both from a warm pool of
 * three executors that is let refill between samples.
 *
 * Everything runs in this process through the built library (dist/), executors as its children.
 */
import { wants, type BenchContext } from "../lib/context.js";
import { waitForIdleExecutors } from "../lib/proc.js";
import { attempt, latencyRow, valueRow } from "../lib/rows.js";
import { fmt, summarize } from "../lib/stats.js";
import { emptySection, type Section } from "../lib/types.js";
import { loadWasmbox } from "../peers/wasmbox-library.js";

type Wasmbox = Awaited<ReturnType<typeof loadWasmbox>>;
type SandboxInstance = Awaited<ReturnType<Wasmbox["Sandbox"]["create"]>>;
type SessionInstance = Awaited<ReturnType<SandboxInstance["session"]>>;

const MB = 1_000_000;
const MIB = 1024 * 1024;
const LIMITS = { memoryLimitBytes: 1024 ** 3, timeoutMs: 600_000 };

/** Python that builds about `bytes` of objects: a third ints in a list, a third a dict of strings, a third random bytes. */
function buildCode(bytes: number): string {
  const third = Math.floor(bytes / 3);
  return [
    "import random",
    "rng = random.Random(7)",
    // An int object is 28 bytes and its list slot 8.
    `ints = list(range(1_000_000_000, 1_000_000_000 + ${Math.floor(third / 36)}))`,
    // A key of ~10 characters (~51 bytes), a value of ~40 (~81 bytes), ~30 bytes of dict slot.
    `strs = {f'key-{i:06d}': f'value-{i:06d}-' + 'x' * 26 for i in range(${Math.floor(third / 160)})}`,
    `raw = rng.randbytes(${third})`,
    "len(ints) + len(strs) + len(raw)",
  ].join("\n");
}

async function call(session: SessionInstance, code: string): Promise<unknown> {
  const result = await session.run({ code, ...LIMITS });
  if (result.status !== "ok") throw new Error(`call ended ${result.status}: ${result.error ? `${result.error.type}: ${result.error.message}` : result.stderr.slice(-300)}`);
  return result.value;
}

/** The decompressed state size a blob's header declares. */
function stateBytes(blob: Uint8Array): number {
  const view = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const length = view.readUInt32LE(16);
  return (JSON.parse(view.subarray(20, 20 + length).toString("utf8")) as { state: { bytes: number } }).state.bytes;
}

async function timed<T>(task: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await task();
  return { ms: performance.now() - started, value };
}

/** Milliseconds from `open` to the opened session's first call answering 1; the session is closed after, untimed. */
async function openToFirstAnswer(open: () => Promise<SessionInstance>): Promise<number> {
  let opened: SessionInstance | null = null;
  try {
    const { ms } = await timed(async () => {
      opened = await open();
      if ((await call(opened, "1")) !== 1) throw new Error("the session did not answer 1");
    });
    return ms;
  } finally {
    await (opened as SessionInstance | null)?.close();
  }
}

/** Waits until the pool's executors (and the sessions' own) exist and are idle. */
async function settle(sandbox: SandboxInstance, poolSize: number): Promise<void> {
  const ready = await waitForIdleExecutors(process.pid, poolSize + sandbox.sessionCount, 60_000, 200);
  if (!ready) await new Promise((resolve) => setTimeout(resolve, 1500));
}

async function measureSize(ctx: BenchContext, section: Section, wasmbox: Wasmbox, megabytes: number): Promise<void> {
  const W = `sessions: save and restore ~${megabytes} MB of Python objects`;
  if (!wants(ctx, W, "wasmbox-lib")) return;
  const reps = ctx.quick ? 1 : megabytes <= 50 ? 3 : 2;
  const code = buildCode(megabytes * MB);
  const sandbox = await wasmbox.Sandbox.create({ poolSize: 1 });
  try {
    // Baseline: a fresh session and the code that built the state, run again.
    const rebuild: number[] = [];
    for (let i = 0; i < reps; i++) {
      await settle(sandbox, 1);
      const sample = await attempt(section, ctx.log, "fresh session + rebuild", W, () =>
        timed(async () => {
          const session = await sandbox.session();
          try {
            await call(session, code);
          } finally {
            await session.close();
          }
        }),
      );
      if (sample) rebuild.push(sample.ms);
    }
    const baseline = rebuild.length ? summarize(rebuild) : null;
    if (baseline) {
      section.rows.push(latencyRow(W, "fresh session() + running the building code again", rebuild, null, { baseline: true, note: "what a caller without save does to get the state back" }));
    }

    await settle(sandbox, 1);
    const session = await sandbox.session();
    try {
      const built = await attempt(section, ctx.log, "building the state", W, () => timed(() => call(session, code)));
      if (!built) return;
      const saves: number[] = [];
      let blob: Uint8Array | null = null;
      for (let i = 0; i < reps; i++) {
        const sample = await attempt(section, ctx.log, "save()", W, () => timed(() => session.save()));
        if (!sample) continue;
        saves.push(sample.ms);
        blob = sample.value;
      }
      if (!blob) return;
      const inflated = stateBytes(blob);
      section.rows.push(
        latencyRow(W, "session.save()", saves, null, {
          note: `building the state took ${fmt(built.ms)} ms in the session; the executor's state is ${fmt(inflated / MIB)} MiB before compression`,
          extra: { stateBytes: inflated },
        }),
      );
      section.rows.push(
        valueRow(W, "blob size", "MiB", blob.length / MIB, null, {
          note: `${blob.length} bytes (${fmt(blob.length / MB)} MB), ${fmt(blob.length / inflated)}× the state; the objects are ~${megabytes} MB, a third of it random bytes`,
          extra: { blobBytes: blob.length, stateBytes: inflated },
        }),
      );

      const restores: number[] = [];
      for (let i = 0; i < reps; i++) {
        await settle(sandbox, 1);
        const saved = blob;
        const ms = await attempt(section, ctx.log, "restore", W, () => openToFirstAnswer(() => sandbox.session({ restore: saved })));
        if (ms !== null) restores.push(ms);
      }
      if (restores.length) {
        const r = summarize(restores);
        section.rows.push(
          latencyRow(W, "sandbox.session({ restore }) + first call", restores, baseline, {
            note: baseline
              ? `${r.p50 <= baseline.p50 ? `${fmt(baseline.p50 / r.p50)}× faster` : `${fmt(r.p50 / baseline.p50)}× slower`} than a fresh session + rebuilding (whose code here is cheap: ints, strings, random bytes)`
              : "no baseline",
          }),
        );
      }
    } finally {
      await session.close();
    }
  } finally {
    await sandbox.close();
  }
}

async function measureFork(ctx: BenchContext, section: Section, wasmbox: Wasmbox): Promise<void> {
  const W = "sessions: fork() of a ~1 MB session";
  if (!wants(ctx, W, "wasmbox-lib")) return;
  const n = ctx.quick ? 2 : 7;
  const poolSize = 3;
  const sandbox = await wasmbox.Sandbox.create({ poolSize });
  try {
    const fresh: number[] = [];
    for (let i = 0; i < n; i++) {
      await settle(sandbox, poolSize);
      const ms = await attempt(section, ctx.log, "fresh session()", W, () => openToFirstAnswer(() => sandbox.session()));
      if (ms !== null) fresh.push(ms);
    }
    if (!fresh.length) return;
    const baseline = summarize(fresh);
    section.rows.push(latencyRow(W, "fresh sandbox.session() + first call", fresh, null, { baseline: true, note: `warm pool of ${poolSize}, let refill between samples` }));

    await settle(sandbox, poolSize);
    const original = await sandbox.session();
    try {
      await call(original, buildCode(1 * MB));
      const forks: number[] = [];
      for (let i = 0; i < n; i++) {
        await settle(sandbox, poolSize);
        const ms = await attempt(section, ctx.log, "fork()", W, () => openToFirstAnswer(() => original.fork()));
        if (ms !== null) forks.push(ms);
      }
      if (forks.length) {
        section.rows.push(latencyRow(W, "session.fork() + the fork's first call", forks, baseline, { note: "the ~1 MB session's state carried into a warm executor" }));
      }
    } finally {
      await original.close();
    }
  } finally {
    await sandbox.close();
  }
}

export async function sessionSaveWorkload(ctx: BenchContext): Promise<Section> {
  const section = emptySection();
  const wasmbox = await loadWasmbox();
  await measureFork(ctx, section, wasmbox);
  for (const megabytes of ctx.quick ? [1, 50] : [1, 50, 200]) await measureSize(ctx, section, wasmbox, megabytes);
  section.notes.push(
    "Sessions: save() is timed in the session that holds the state (the session goes on); a restore is timed from sandbox.session({ restore }) to the first call's answer, in a warm executor; the baseline is a fresh session running the code that built the state again. Memory limit 1 GiB per call.",
  );
  return section;
}
