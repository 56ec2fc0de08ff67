/**
 * Packages from the wheelhouse (sympy, networkx, pydantic): what naming them costs a run. Against
 * baselines measured in the same run:
 *  - print(1) with a warm pool of 2, one run at a time, against the same sandbox with no packages
 *    (isolation "process", then "isolate"); the two sandboxes alternate run by run, so drifting
 *    machine load hits both alike;
 *  - an executor's start: the CPU its process used to become ready (read from /proc once it is
 *    idle), and the wall time of a run on an empty pool (pool 0: a fresh executor per run);
 *  - import + sympy.solve, a networkx shortest path, a pydantic model, timed inside the guest
 *    (perf_counter) and as a whole run, against a native CPython subprocess with the same versions
 *    installed (bench/.venv), whose timing includes the import the sandbox's snapshot already did;
 *  - building the environment once: its bundle and snapshot made from a cold cache (this
 *    environment's files deleted from the bench's cache first), and their sizes.
 * The wheels are fetched from PyPI into bench/.cache/wheelhouse once and reused.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { environmentsDir, resolveEnvironment } from "../../dist/packages/environment.js";
import { addPackages, readWheelhouse } from "../../dist/packages/wheelhouse.js";
import { executorFiles } from "../../dist/host/runtime-registry.js";
import { cacheDir, pyodideVersion } from "../../dist/host/runtime-paths.js";
import { snapshotPath } from "../../dist/host/snapshot-cache.js";
import { BENCH_DIR, CACHE_DIR, REPO_DIR, wants, type BenchContext } from "../lib/context.js";
import { cpuTicks, denoDescendants, exec, firstErrorLine, lastJsonLine, MIB, waitForIdleExecutors } from "../lib/proc.js";
import { attempt, latencyRow, valueRow } from "../lib/rows.js";
import { summarize, type Summary } from "../lib/stats.js";
import { emptySection, type Section } from "../lib/types.js";
import { nativeLabel } from "../peers/native-python.js";
import { ensureVenvWith, VENV_PYTHON } from "../peers/pypi-peers.js";
import { WasmboxLibrary } from "../peers/wasmbox-library.js";
import { parseTimed, sameCheck } from "./cpu-suite.js";

const PACKAGES = ["sympy", "networkx", "pydantic"];
const SET = PACKAGES.join(" + ");
const WHEELHOUSE = join(CACHE_DIR, "wheelhouse");
const BUILD_CHILD = join(BENCH_DIR, "peers", "wasmbox-packages-build-child.ts");
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on Linux). */
const TICK_MS = 10;

const W_PRINT = "packages: print(1), warm pool";
const W_PRINT_ISOLATE = "packages: print(1), warm pool, isolation isolate";
const W_START_CPU = "packages: executor start, CPU";
const W_START = "packages: print(1), pool 0 (an executor per run)";
const W_BUILD = "packages: environment built once";
const W_FILES = "packages: environment files";

/** Code timed inside the guest and in native CPython: `body` imports, works and sets `_check`. */
const TASKS = [
  {
    name: "sympy solve",
    what: "import sympy; sympy.solve(x**2 - 4)",
    guest: "",
    body: "import sympy\nx = sympy.Symbol('x')\n_check = [str(s) for s in sympy.solve(x**2 - 4)]",
  },
  {
    name: "networkx shortest path",
    what: "import networkx; shortest path across a 30×30 grid graph",
    guest: "",
    body: "import networkx as nx\ng = nx.grid_2d_graph(30, 30)\n_check = len(nx.shortest_path(g, (0, 0), (29, 29)))",
  },
  {
    name: "pydantic model",
    what: "import pydantic; define a 3-field BaseModel and validate one dict (with coercion)",
    // Seen while writing this: pydantic's __init__ is lazy, so the import at executor start loads
    // little; the first pydantic.BaseModel loads pydantic.main and its imports from source.
    guest: "; pydantic imports lazily: the import at executor start loads its __init__ only, and the first pydantic.BaseModel loads pydantic.main and dozens of modules (50 in native CPython), compiled from source in every run (the bundle holds no .pyc)",
    body: [
      "import pydantic",
      "class User(pydantic.BaseModel):",
      "    id: int",
      "    name: str",
      "    tags: list[str] = []",
      "_check = User.model_validate({'id': '42', 'name': 'ada', 'tags': ['a', 'b']}).model_dump()",
    ].join("\n"),
  },
] as const;

type Task = (typeof TASKS)[number];

function timedTask(task: Task): string {
  return `import time as _bench_time, json as _bench_json
_bench_t0 = _bench_time.perf_counter()
${task.body}
_bench_t1 = _bench_time.perf_counter()
print(_bench_json.dumps({"ms": (_bench_t1 - _bench_t0) * 1000.0, "check": _check}))
`;
}

/** The wheelhouse with PACKAGES: fetched from PyPI on first use, reused after (no network when present). */
async function ensureWheelhouse(ctx: BenchContext): Promise<{ versions: Record<string, string>; wheels: number; wheelBytes: number }> {
  await addPackages(WHEELHOUSE, PACKAGES, { onProgress: (line) => ctx.log(`wheelhouse: ${line}`) });
  const installed = readWheelhouse(WHEELHOUSE).packages;
  const environment = resolveEnvironment(WHEELHOUSE, PACKAGES);
  const versions: Record<string, string> = {};
  for (const name of PACKAGES) versions[name] = installed.get(name)!.version;
  const fromWheelhouse = environment.packages.filter((p) => installed.has(p.name));
  return { versions, wheels: fromWheelhouse.length, wheelBytes: fromWheelhouse.reduce((sum, p) => sum + (p.sizeBytes ?? 0), 0) };
}

/** bench/.venv with the same versions the sandbox runs; null when ready, else why not. */
async function ensureNativePackages(ctx: BenchContext, versions: Record<string, string>): Promise<string | null> {
  const pinned = PACKAGES.map((name) => `${name}==${versions[name]}`);
  const problem = await ensureVenvWith(ctx, pinned, PACKAGES);
  if (problem) return problem;
  const probe = `import json, importlib.metadata as m; print(json.dumps({n: m.version(n) for n in ${JSON.stringify(PACKAGES)}}))`;
  const have = JSON.parse((await exec(VENV_PYTHON, ["-c", probe], { timeoutMs: 60_000 })).stdout.trim() || "{}") as Record<string, string>;
  if (PACKAGES.every((n) => have[n] === versions[n])) return null;
  // bench/.venv had other versions (an earlier wheelhouse): the ones the sandbox runs, now.
  ctx.log(`installing ${pinned.join(", ")} into bench/.venv…`);
  const pip = await exec(VENV_PYTHON, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", ...pinned], { timeoutMs: 900_000 });
  return pip.code === 0 ? null : `pip install ${pinned.join(" ")} failed: ${firstErrorLine(pip.stderr)}`;
}

/** Runs `fn` against each sandbox in turn, `n` times, waiting before each run until all their pools are idle. */
async function alternate(
  libs: WasmboxLibrary[],
  n: number,
  fn: (lib: WasmboxLibrary, index: number) => Promise<void>,
  warm: boolean,
): Promise<number> {
  const total = libs.reduce((sum, lib) => sum + lib.poolSize, 0);
  let notWarm = 0;
  for (let i = 0; i < n; i++) {
    for (const [index, lib] of libs.entries()) {
      if (warm && !(await waitForIdleExecutors(process.pid, total, 120_000))) notWarm++;
      await fn(lib, index);
    }
  }
  return notWarm;
}

/** CPU of executors started since the last call, once idle: what each took to become ready. */
class StartCpu {
  private readonly seen = new Set<number>(denoDescendants(process.pid));
  /** Milliseconds of CPU (user + system) of each new executor's Deno process. */
  take(): number[] {
    const out: number[] = [];
    for (const pid of denoDescendants(process.pid)) {
      if (this.seen.has(pid)) continue;
      this.seen.add(pid);
      const ticks = cpuTicks(pid);
      if (ticks !== null) out.push(ticks * TICK_MS);
    }
    return out;
  }
}

const mib = (bytes: number) => bytes / MIB;

/** Files of one environment in the cache (bundle, snapshots, what was found native at import). */
function environmentFiles(id: string): string[] {
  const dir = environmentsDir(cacheDir());
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith(id)).map((f) => join(dir, f)) : [];
}

/** Building the environment from a cold cache, `reps` times (a fresh process each), and the sizes of what it made. */
async function buildOnce(ctx: BenchContext, section: Section, wheels: { wheels: number; wheelBytes: number }): Promise<void> {
  const environment = resolveEnvironment(WHEELHOUSE, PACKAGES);
  const cache = cacheDir();
  const reps = ctx.quick ? 1 : 3;
  const measured = await attempt(section, ctx.log, "wasmbox library", W_BUILD, async () => {
    const bundles: number[] = [];
    const colds: number[] = [];
    const warms: number[] = [];
    for (let i = 0; i < reps; i++) {
      const result = await exec(ctx.node, ["--import", "tsx", BUILD_CHILD, WHEELHOUSE, ...PACKAGES], { cwd: REPO_DIR, timeoutMs: 600_000 });
      const out = lastJsonLine<{ bundleMs: number; coldMs: number; warmMs: number }>(result.stdout);
      if (result.code !== 0 || !out) throw new Error(`build child exited ${result.code}: ${firstErrorLine(result.stderr)}`);
      bundles.push(out.bundleMs);
      colds.push(out.coldMs);
      warms.push(out.warmMs);
    }
    return { bundles, colds, warms };
  });
  if (!measured) return;
  const files = environmentFiles(environment.id);
  const bundle = files.find((f) => f.endsWith(".bundle"));
  const snapshot = files.filter((f) => f.endsWith(".snapshot")).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  const nativeAtImport = files.find((f) => f.endsWith(".native-at-import"));
  const bundleMs = summarize(measured.bundles).p50;
  const cold = summarize(measured.colds).p50;
  const warm = summarize(measured.warms).p50;
  const snapshotMs = measured.colds.map((c, i) => c - measured.warms[i]!);
  const retried = nativeAtImport ? "; a module was found loading a WebAssembly library while imported, so the bundle and snapshot were made twice" : "";
  section.rows.push(
    valueRow(W_BUILD, "bundle: the wheels unpacked into one file", "ms", bundleMs, null, {
      n: reps,
      latency: measured.bundles,
      note: `${wheels.wheels} wheels (${mib(wheels.wheelBytes).toFixed(1)} MiB) plus wasmbox's tzdata; ensureBundle() on the host, in a fresh process per build with this environment's files deleted from the cache`,
    }),
  );
  section.rows.push(
    valueRow(W_BUILD, "snapshot: an executor imports sympy, networkx and snapshots", "ms", summarize(snapshotMs).p50, null, {
      n: reps,
      latency: snapshotMs,
      note: `Sandbox.create() with the bundle made and no snapshot (p50 ${cold.toFixed(0)} ms) minus one with both cached (p50 ${warm.toFixed(0)} ms); pydantic is imported by each executor at start instead${retried}`,
    }),
  );
  section.rows.push(
    valueRow(W_BUILD, "total: bundle + snapshot, once per machine and package set", "ms", bundleMs + summarize(snapshotMs).p50, null, {
      n: reps,
      note: "what the first Sandbox.create() (or run, session) naming these packages waits for; later ones reuse the files",
    }),
  );

  const base = resolveEnvironment("", []);
  const baseSnapshot = snapshotPath(cache, pyodideVersion(), executorFiles("python"), base.id);
  const baseBundle = join(environmentsDir(cache), `${base.id}.bundle`);
  const size = (path: string | undefined) => (path && existsSync(path) ? statSync(path).size : null);
  const baseSnapshotBytes = size(baseSnapshot);
  if (baseSnapshotBytes !== null) {
    section.rows.push(
      valueRow(W_FILES, "snapshot, no packages (tzdata only)", "MiB", mib(baseSnapshotBytes), 1, {
        baseline: true,
        note: `the base environment; its bundle (tzdata) is ${size(baseBundle) === null ? "not found" : `${mib(size(baseBundle)!).toFixed(1)} MiB`}`,
      }),
    );
  }
  const snapshotBytes = size(snapshot);
  if (snapshotBytes !== null) {
    section.rows.push(
      valueRow(W_FILES, `snapshot with ${SET}`, "MiB", mib(snapshotBytes), baseSnapshotBytes ? snapshotBytes / baseSnapshotBytes : null, {
        note: "sympy and networkx imported; restored by every executor of the set",
      }),
    );
  }
  const bundleBytes = size(bundle);
  if (bundleBytes !== null) {
    section.rows.push(
      valueRow(W_FILES, `bundle with ${SET}`, "MiB", mib(bundleBytes), null, {
        note: `the unpacked wheels, mounted read-only by every executor of the set (the wheels: ${mib(wheels.wheelBytes).toFixed(1)} MiB)`,
      }),
    );
  }
}

export async function packagesWorkload(ctx: BenchContext): Promise<Section> {
  const section = emptySection();
  const { counts, log } = ctx;
  const wasmbox = wants(ctx, "packages", "wasmbox-lib");
  const needNative = ctx.python !== null;
  let warmTaskWalls = new Map<string, number[]>();

  const wheels = await attempt(section, log, "wheelhouse (PyPI)", "packages", () => ensureWheelhouse(ctx));
  if (!wheels) return section;
  const versions = PACKAGES.map((name) => `${name} ${wheels.versions[name]}`).join(", ");
  section.notes.push(
    `Packages: ${versions} (and their dependencies), from PyPI into bench/.cache/wheelhouse. sympy and networkx are imported before the environment's snapshot; pydantic needs pydantic-core, a WebAssembly library, so every executor of the set imports it when it starts, before it is ready.`,
  );

  if (wasmbox) await buildOnce(ctx, section, wheels);

  // print(1) with a warm pool: the two sandboxes alternate, each run waiting until all four executors are idle.
  for (const mode of [
    { isolation: "process", W: W_PRINT, note: "pool of 2, all executors idle before each run" },
    { isolation: "isolate", W: W_PRINT_ISOLATE, note: "pool of 2 executor processes reused; each run in a fresh worker, loaded before the run" },
  ]) {
    if (!wasmbox) break;
    const starts = new StartCpu();
    const base = await attempt(section, log, "wasmbox library, no packages", mode.W, () => WasmboxLibrary.create(2, { isolation: mode.isolation }));
    if (!base) continue;
    let withPackages: WasmboxLibrary | null = null;
    try {
      await base.warm(120_000);
      const cpu: number[][] = [starts.take(), []];
      withPackages = await attempt(section, log, `wasmbox library, ${SET}`, mode.W, () =>
        WasmboxLibrary.create(2, { isolation: mode.isolation, packages: PACKAGES, wheelhouse: WHEELHOUSE }),
      );
      if (!withPackages) continue;
      await waitForIdleExecutors(process.pid, 4, 120_000);
      cpu[1]!.push(...starts.take());
      const libs = [base, withPackages];
      const samples: number[][] = [[], []];
      const durations: number[][] = [[], []];
      let notWarm = 0;
      const ok = await attempt(section, log, "wasmbox library, alternating", mode.W, async () => {
        notWarm = await alternate(libs, counts.latencyWasmbox, async (lib, index) => {
          // An executor the other sandbox's last run left behind became idle in the wait: its start CPU.
          cpu[1 - index]!.push(...starts.take());
          const run = await lib.run("print(1)");
          if (run.stdout !== "1\n") throw new Error(`stdout ${JSON.stringify(run.stdout)}`);
          samples[index]!.push(run.wallMs);
          durations[index]!.push(run.durationMs);
        }, true);
        await waitForIdleExecutors(process.pid, 4, 120_000);
        cpu[1]!.push(...starts.take());
        return true;
      });
      if (!ok) continue;
      const baseline = summarize(samples[0]!);
      const warmNote = notWarm ? `; pool not idle before ${notWarm} runs` : "";
      section.rows.push(
        latencyRow(mode.W, `wasmbox library, no packages, isolation ${mode.isolation}`, samples[0]!, null, {
          baseline: true,
          note: `${mode.note}; result.durationMs p50 ${summarize(durations[0]!).p50.toFixed(1)} ms${warmNote}`,
          extra: { durationMsSamples: durations[0] },
        }),
      );
      section.rows.push(
        latencyRow(mode.W, `wasmbox library, ${SET}, isolation ${mode.isolation}`, samples[1]!, baseline, {
          note: `the same with packages: [${PACKAGES.map((p) => `"${p}"`).join(", ")}]; result.durationMs p50 ${summarize(durations[1]!).p50.toFixed(1)} ms`,
          extra: { durationMsSamples: durations[1] },
        }),
      );
      if (mode.isolation === "process" && cpu[0]!.length && cpu[1]!.length) {
        const cpuBase = summarize(cpu[0]!);
        section.rows.push(
          latencyRow(W_START_CPU, "wasmbox executor, no packages", cpu[0]!, null, {
            baseline: true,
            note: "user + system CPU ms of each pool executor's Deno process once started and idle (/proc, 10 ms ticks): what every process-isolated run costs the machine",
          }),
        );
        section.rows.push(
          latencyRow(W_START_CPU, `wasmbox executor, ${SET}`, cpu[1]!, cpuBase, {
            note: "the same for the package set: restore its larger snapshot, mount the bundle, import pydantic (pydantic-core) at start",
          }),
        );
      }
      if (mode.isolation === "process") warmTaskWalls = await warmPoolTasks(ctx, section, withPackages);
    } finally {
      await withPackages?.close();
      await base.close();
    }
  }

  // An executor per run: pool 0, back to back, the two sandboxes alternating; then the tasks in fresh executors.
  let zero: WasmboxLibrary[] | null = null;
  if (wasmbox) {
    zero = await attempt(section, log, "wasmbox library, pool 0", W_START, async () => [
      await WasmboxLibrary.create(0),
      await WasmboxLibrary.create(0, { packages: PACKAGES, wheelhouse: WHEELHOUSE }),
    ]);
  }
  try {
    if (zero) {
      const samples: number[][] = [[], []];
      const durations: number[][] = [[], []];
      const n = counts.cold * 2;
      const ok = await attempt(section, log, "wasmbox library, pool 0, alternating", W_START, async () => {
        for (const lib of zero!) await lib.run("print(1)"); // untimed: first use in this process
        await alternate(zero!, n, async (lib, index) => {
          const run = await lib.run("print(1)");
          if (run.stdout !== "1\n") throw new Error(`stdout ${JSON.stringify(run.stdout)}`);
          samples[index]!.push(run.wallMs);
          durations[index]!.push(run.durationMs);
        }, false);
        return true;
      });
      if (ok) {
        const baseline = summarize(samples[0]!);
        section.rows.push(
          latencyRow(W_START, "wasmbox library, no packages, pool 0", samples[0]!, null, {
            baseline: true,
            note: `Sandbox.create({ poolSize: 0 }), back to back: executor start + run, the sustained cost of a fresh process per run; result.durationMs p50 ${summarize(durations[0]!).p50.toFixed(1)} ms`,
            extra: { durationMsSamples: durations[0] },
          }),
        );
        section.rows.push(
          latencyRow(W_START, `wasmbox library, ${SET}, pool 0`, samples[1]!, baseline, {
            note: `the same with the package set; result.durationMs p50 ${summarize(durations[1]!).p50.toFixed(1)} ms`,
            extra: { durationMsSamples: durations[1] },
          }),
        );
      }
    }

    // The tasks: native (a fresh process, import included) alternating with wasmbox (a fresh executor per run).
    if (needNative || zero) {
      const nativeProblem = needNative ? await ensureNativePackages(ctx, wheels.versions) : "not selected";
      if (needNative && nativeProblem) section.skips.push({ peer: "native CPython with packages", workload: "packages", reason: nativeProblem, kind: "skipped" });
      const native = !nativeProblem;
      const reps = ctx.quick ? 2 : 10;
      for (const task of TASKS) {
        const W = `packages: ${task.name}, in guest`;
        const WW = `packages: ${task.name}, whole run`;
        const m = { nativeIn: [] as number[], nativeWall: [] as number[], guest: [] as number[], wall: [] as number[] };
        let nativeCheck: unknown = null;
        let guestCheck: unknown = null;
        const source = timedTask(task);
        await attempt(section, log, "native and wasmbox, alternating", W, async () => {
          for (let i = 0; i < reps; i++) {
            if (native) {
              const result = await exec(VENV_PYTHON, ["-c", source], { timeoutMs: 120_000 });
              if (result.code !== 0) throw new Error(`native ${task.name} failed: ${firstErrorLine(result.stderr)}`);
              const timed = parseTimed(result.stdout);
              m.nativeIn.push(timed.ms);
              m.nativeWall.push(result.wallMs);
              nativeCheck = timed.check;
            }
            if (zero) {
              const run = await zero[1]!.run(source, 120_000);
              const timed = parseTimed(run.stdout);
              m.guest.push(timed.ms);
              m.wall.push(run.wallMs);
              guestCheck = timed.check;
            }
          }
        });
        const agree = !native || !zero || !m.guest.length || sameCheck(nativeCheck, guestCheck);
        if (!agree) {
          section.skips.push({ peer: "wasmbox library", workload: W, reason: `wrong answer: ${JSON.stringify(guestCheck)} (native: ${JSON.stringify(nativeCheck)})`, kind: "failed" });
          continue;
        }
        let base: Summary | null = null;
        let baseWall: Summary | null = null;
        if (m.nativeIn.length) {
          base = summarize(m.nativeIn);
          baseWall = summarize(m.nativeWall);
          const label = `${nativeLabel(ctx.python!)}, ${PACKAGES.join("/")} installed`;
          section.rows.push(latencyRow(W, label, m.nativeIn, null, { baseline: true, note: `${task.what}: perf_counter around it, import included (a fresh process per sample)` }));
          section.rows.push(latencyRow(WW, label, m.nativeWall, null, { baseline: true, note: "python -c, spawn to exit: interpreter start, import, work" }));
        }
        if (m.guest.length) {
          section.rows.push(
            latencyRow(W, `wasmbox library, ${SET}, pool 0`, m.guest, base, {
              note: `the same code in a fresh executor per sample (pool 0: nothing else starts while it runs); the import is a lookup: done before the snapshot (pydantic: at executor start)${task.guest}`,
            }),
          );
          section.rows.push(latencyRow(WW, `wasmbox library, ${SET}, pool 0`, m.wall, baseWall, { note: "Sandbox.run() request to result: executor start, then the code" }));
        }
        const warm = warmTaskWalls.get(task.name);
        if (warm?.length) {
          section.rows.push(
            latencyRow(WW, `wasmbox library, ${SET}, warm pool`, warm, baseWall, {
              note: "Sandbox.run() request to result, pool of 2 idle before each run (measured earlier in this run; the refill starts as the run does, on the same cores)",
            }),
          );
        }
      }
    }
  } finally {
    for (const lib of zero ?? []) await lib.close();
  }
  return section;
}

/** The tasks as whole runs on the warm pool of the package set: what a caller with a pool waits for. */
async function warmPoolTasks(ctx: BenchContext, section: Section, lib: WasmboxLibrary): Promise<Map<string, number[]>> {
  const reps = ctx.quick ? 2 : 10;
  const walls = new Map<string, number[]>();
  for (const task of TASKS) {
    const samples = await attempt(section, ctx.log, "wasmbox library, warm pool", `packages: ${task.name}, whole run`, async () => {
      const out: number[] = [];
      for (let i = 0; i < reps; i++) {
        await waitForIdleExecutors(process.pid, 4, 120_000);
        out.push((await lib.run(timedTask(task), 120_000)).wallMs);
      }
      return out;
    });
    if (samples) walls.set(task.name, samples);
  }
  return walls;
}
