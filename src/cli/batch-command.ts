/**
 * `wasmbox batch JOBS.jsonl -o RESULTS.jsonl`: the jobs of a file, one result line each, on this
 * machine's sandbox (src/batch/local-batch.ts) or through a queue with `--queue` (src/batch/queue/).
 * BATCH_OPTIONS is the one list of its options: the parser takes exactly these, `--help` prints them.
 */
import { basename } from "node:path";
import { BatchProgress } from "../batch/batch-progress.js";
import { countJobLines, readJobs, type DefaultLimits } from "../batch/jobs-file.js";
import { runLocalBatch } from "../batch/local-batch.js";
import { checkBatchName, checkQueueUrl } from "../batch/queue/queue-connection.js";
import { ResultsFile, ResultsFileError } from "../batch/results-file.js";
import type { OsSandboxMode } from "../host/executor-launch.js";
import { isIsolation, Sandbox, type Isolation } from "../sandbox/sandbox.js";
import { findOption, UsageError, type CommandHelp, type OptionSpec } from "./command-help.js";
import { OS_SANDBOX_USAGE, parseDurationMs, parseOsSandbox, parsePackageNames, parseSizeBytes } from "./parse-units.js";
import { shutdownSignals } from "./shutdown-signals.js";

/** Every option of `wasmbox batch`, in the order `--help` lists them. */
export const BATCH_OPTIONS = [
  { flag: "-o", value: "FILE", help: "the results file, appended one line per job as each finishes; - for stdout", default: "-" },
  { flag: "--resume", help: "continue a results file: skip the jobs it already has (a partial last line is cut off)" },
  { flag: "--concurrency", value: "N", help: "jobs running at once", default: "CPU cores, at least 2" },
  {
    flag: "--isolation",
    value: "MODE",
    help: "process (a fresh executor process per job), isolate (a fresh V8 isolate per job, about twice the throughput) or interpreter (one interpreter reset between jobs: fastest, for code you trust only)",
    default: "process",
  },
  { flag: "--timeout", value: "T", help: "wall-clock limit of jobs that set no timeoutMs: seconds, or 500ms, 2s, 1m", default: "30s" },
  { flag: "--cpu-time", value: "T", help: "CPU-time limit of jobs that set no cpuTimeMs, measured by the host: a verdict that does not depend on the machine's load (Linux)", default: "none" },
  { flag: "--memory", value: "M", help: "memory limit of jobs that set no memoryLimitBytes: MiB, or 512m, 1g", default: "256m" },
  { flag: "--max-output", value: "N", help: "cap on stdout and stderr of jobs that set no maxOutputBytes: bytes, or 64k, 1m", default: "1m" },
  { flag: "--package", value: "NAME", help: "a Python package every job gets, imported ahead (repeatable, or a,b); a job's own packages add to them" },
  { flag: "--wheelhouse", value: "DIR", help: "the wheelhouse --package reads", default: "$WASMBOX_WHEELHOUSE, else the cache dir's" },
  { flag: "--os-sandbox", value: "MODE", help: "auto, require (fail without bubblewrap) or off: run executors inside bubblewrap", default: "auto" },
] as const satisfies readonly OptionSpec[];

/** The options of `wasmbox batch --queue`: the jobs run on workers (`wasmbox worker`), which have the sandbox's options. */
export const BATCH_QUEUE_OPTIONS = [
  { flag: "--queue", value: "URL", help: "enqueue the jobs on BullMQ in Redis at URL (redis://[USER:PASSWORD@]HOST:PORT/DB, rediss:// for TLS) and collect the results that wasmbox worker processes produce" },
  { flag: "--name", value: "NAME", help: "the batch's name: its jobs' ids in the queue derive from it, so a restarted batch adds nothing twice", default: "the jobs file's name" },
] as const satisfies readonly OptionSpec[];

/** Local options that have no meaning with --queue (the workers have their own). */
const LOCAL_ONLY: readonly string[] = ["--concurrency", "--isolation", "--package", "--wheelhouse", "--os-sandbox"];

type BatchFlag = (typeof BATCH_OPTIONS)[number]["flag"] | (typeof BATCH_QUEUE_OPTIONS)[number]["flag"];
const ALL_BATCH_OPTIONS = [...BATCH_OPTIONS, ...BATCH_QUEUE_OPTIONS];

/** `wasmbox batch --help`. */
export const BATCH_HELP: CommandHelp = {
  usage: ["wasmbox batch [options] JOBS.jsonl -o RESULTS.jsonl", "wasmbox batch [options] - < JOBS.jsonl", "wasmbox batch --queue redis://HOST:PORT/DB [--name NAME] JOBS.jsonl -o RESULTS.jsonl"],
  about: [
    "Runs every job of a JSON-lines file and writes one result line per job, in the order they finish:",
    '{"id": ..., "status": ..., "stdout": ..., ...} (the run result with the job\'s id). Each job line is a',
    'run request as serve --stdio takes it, with a unique "id" (string or number). A line that is not a',
    'job gets {"id", "line", "status": "invalid", "error": {"code", "message"}} and the batch goes on.',
    "Progress goes to stderr: one updating line on a terminal, a summary line otherwise.",
  ].join("\n"),
  sections: [
    { title: "options:", options: BATCH_OPTIONS },
    { title: "across machines (then the workers run the jobs: wasmbox worker --help):", options: BATCH_QUEUE_OPTIONS },
  ],
  notes:
    "exit status: 0 when every job ran (whatever its programs did), 1 when some lines were invalid or some jobs could not be run (a host failure: they get no line, and --resume runs them), 2 bad usage, 130 on SIGINT and 143 on SIGTERM (jobs in flight are cancelled and get no line, so --resume runs them again).",
  examples: [
    { says: "grade a file of jobs, 4 at a time", command: "wasmbox batch jobs.jsonl -o results.jsonl --concurrency 4" },
    { says: "continue after a crash or Ctrl-C: only the jobs without a line run", command: "wasmbox batch jobs.jsonl -o results.jsonl --resume" },
    { says: "jobs from a pipe, 2 s each unless they say otherwise", command: `echo '{"id": 1, "code": "print(6 * 7)"}' | wasmbox batch --timeout 2s -` },
    { says: "through a queue that wasmbox worker processes on other machines take jobs from", command: "wasmbox batch --queue redis://10.0.0.5:6379/0 jobs.jsonl -o results.jsonl" },
  ],
};

export interface BatchArgs {
  jobs: string;
  output: string;
  resume: boolean;
  concurrency: number | undefined;
  isolation: Isolation;
  defaults: DefaultLimits;
  packages: string[];
  wheelhouse: string | undefined;
  osSandbox: OsSandboxMode;
  /** --queue URL, else null (local). */
  queue: string | null;
  /** --name NAME (the queue's batch name), else null: the jobs file's name. */
  name: string | null;
}

function wholeNumber(text: string, flag: string, min: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) throw new UsageError(`${flag}: give a whole number, at least ${min}`);
  return value;
}

/** Reads `wasmbox batch`'s arguments (after `batch`). */
export function parseBatchArgs(args: string[]): BatchArgs {
  const out: BatchArgs = { jobs: "", output: "-", resume: false, concurrency: undefined, isolation: "process", defaults: {}, packages: [], wheelhouse: undefined, osSandbox: "auto", queue: null, name: null };
  const given = new Set<string>();
  let jobs: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "-" || !arg.startsWith("-")) {
      if (jobs !== null) throw new UsageError("give one jobs file (or - for stdin)");
      jobs = arg;
      continue;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = findOption(ALL_BATCH_OPTIONS, flag);
    if (!spec) throw new UsageError(`unknown option ${flag}`);
    given.add(spec.flag);
    let value = "";
    if (!("value" in spec)) {
      if (eq > 0) throw new UsageError(`${flag} takes no value`);
    } else if (eq > 0) value = arg.slice(eq + 1);
    else {
      const next = args[++i];
      if (next === undefined) throw new UsageError(`${flag} needs a value`);
      value = next;
    }
    const known: BatchFlag = spec.flag;
    switch (known) {
      case "-o":
        out.output = value;
        break;
      case "--resume":
        out.resume = true;
        break;
      case "--concurrency":
        out.concurrency = wholeNumber(value, flag, 1);
        break;
      case "--isolation":
        if (!isIsolation(value)) throw new UsageError("--isolation: use process, isolate or interpreter");
        out.isolation = value;
        break;
      case "--timeout": {
        const ms = parseDurationMs(value);
        if (ms === null) throw new UsageError("--timeout: cannot read a duration; use seconds, or e.g. 500ms");
        out.defaults.timeoutMs = ms;
        break;
      }
      case "--cpu-time": {
        const ms = parseDurationMs(value);
        if (ms === null) throw new UsageError("--cpu-time: cannot read a duration; use seconds, or e.g. 500ms");
        out.defaults.cpuTimeMs = ms;
        break;
      }
      case "--memory": {
        const bytes = parseSizeBytes(value, "m");
        if (bytes === null) throw new UsageError("--memory: cannot read a size; use MiB, or e.g. 512m, 1g");
        out.defaults.memoryLimitBytes = bytes;
        break;
      }
      case "--max-output": {
        const bytes = parseSizeBytes(value, "b");
        if (bytes === null) throw new UsageError("--max-output: cannot read a size; use bytes, or e.g. 64k, 1m");
        out.defaults.maxOutputBytes = bytes;
        break;
      }
      case "--package":
        out.packages.push(...parsePackageNames(value));
        break;
      case "--wheelhouse":
        out.wheelhouse = value;
        break;
      case "--os-sandbox": {
        const mode = parseOsSandbox(value);
        if (!mode) throw new UsageError(OS_SANDBOX_USAGE);
        out.osSandbox = mode;
        break;
      }
      case "--queue":
        out.queue = value;
        break;
      case "--name":
        out.name = value;
        break;
      default: {
        const unhandled: never = known;
        throw new TypeError(`wasmbox batch: option ${String(unhandled)} has no handler`);
      }
    }
  }
  if (jobs === null) throw new UsageError("give the jobs file (or - for stdin)");
  if (jobs === "-" && out.output === "-" && out.resume) throw new UsageError("--resume needs a results file: -o FILE");
  if (out.queue !== null) {
    const local = LOCAL_ONLY.find((flag) => given.has(flag));
    if (local) throw new UsageError(`${local} is a worker's option with --queue: give it to wasmbox worker`);
    if (jobs === "-" && out.name === null) throw new UsageError("--queue with jobs from stdin needs --name NAME");
    try {
      checkQueueUrl(out.queue);
      out.name = checkBatchName(out.name ?? defaultBatchName(jobs));
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  } else if (out.name !== null) throw new UsageError("--name names a batch on a queue: it needs --queue");
  out.jobs = jobs;
  return out;
}

/** How often a plain (non-terminal) progress line is printed during a long batch. */
const PLAIN_PROGRESS_EVERY_MS = 30_000;

/**
 * Shows `progress` on stderr: on a terminal one line redrawn 4 times a second; otherwise a plain
 * line every 30 s. Returns the function that stops it and prints the summary.
 */
export function showBatchProgress(progress: BatchProgress, stream: { write(text: string): unknown; isTTY?: boolean } = process.stderr): (final: string) => void {
  const tty = stream.isTTY === true;
  const timer = setInterval(
    () => stream.write(tty ? `\r\x1b[K${progress.line()}` : `wasmbox batch: ${progress.line()}\n`),
    tty ? 250 : PLAIN_PROGRESS_EVERY_MS,
  );
  timer.unref();
  return (final) => {
    clearInterval(timer);
    stream.write(`${tty ? "\r\x1b[K" : ""}wasmbox batch: ${final}${progress.line({ final: true })} in ${progress.elapsedSeconds.toFixed(1)} s\n`);
  };
}

/** `wasmbox batch ARGS`: returns the exit status. */
export async function batchCommand(args: string[]): Promise<number> {
  const options = parseBatchArgs(args);
  if (options.jobs !== "-") {
    try {
      await countJobLines(options.jobs); // fails early, as a usage error, on a file that is not there
    } catch (error) {
      throw new UsageError(`cannot read ${options.jobs}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
  }
  let results: ResultsFile;
  try {
    results = await ResultsFile.open(options.output, { resume: options.resume });
  } catch (error) {
    if (error instanceof ResultsFileError) throw new UsageError(error.message);
    throw new UsageError(`cannot open ${options.output}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
  // Listening starts before the sandbox does: a signal while executors start still stops cleanly.
  const signals = shutdownSignals();
  try {
    if (results.before.truncatedBytes > 0) process.stderr.write(`wasmbox batch: cut a partial last line (${results.before.truncatedBytes} bytes) off ${options.output}\n`);
    const progress = new BatchProgress(options.jobs === "-" ? null : await countJobLines(options.jobs));
    if (options.queue !== null) {
      // BullMQ (and ioredis) load here, only for --queue.
      const { runQueueBatch } = await import("../batch/queue/queue-batch.js");
      const stopDisplay = showBatchProgress(progress);
      try {
        await runQueueBatch({
          url: options.queue,
          name: options.name!,
          jobs: readJobs(options.jobs, options.defaults),
          results,
          progress,
          signal: signals.signal,
          onWarning: (message) => process.stderr.write(`\nwasmbox batch: queue: ${message}\n`),
        });
      } finally {
        stopDisplay(signals.signal.aborted ? `stopped (${String(signals.signal.reason)}; queued jobs stay queued, --resume collects them): ` : "");
      }
      if (signals.signal.aborted) return signals.exitCode();
      const notRun = ["invalid", "failed"].reduce((n, status) => n + (progress.byStatus.get(status) ?? 0) + (results.before.byStatus.get(status) ?? 0), 0);
      return notRun > 0 ? 1 : 0;
    }
    const sandbox = await Sandbox.create({
      maxConcurrency: options.concurrency,
      isolation: options.isolation,
      packages: options.packages,
      wheelhouse: options.wheelhouse,
      osSandbox: options.osSandbox,
      // Warm executors for every slot: in process isolation each job uses one up.
      poolSize: options.concurrency ?? undefined,
    });
    const stopDisplay = showBatchProgress(progress);
    let firstFailure = true;
    try {
      await runLocalBatch({
        jobs: readJobs(options.jobs, options.defaults),
        results,
        run: (run, { signal }) => sandbox.run(run, { signal }),
        concurrency: options.concurrency ?? sandbox.stats.maxConcurrency,
        progress,
        signal: signals.signal,
        onFailure: (job, error) => {
          if (!firstFailure) return;
          firstFailure = false;
          process.stderr.write(`\nwasmbox batch: job ${JSON.stringify(job.id)} (line ${job.line}) could not run: ${error instanceof Error ? error.message : String(error)}\n`);
        },
      });
    } finally {
      stopDisplay(signals.signal.aborted ? `stopped (${String(signals.signal.reason)}): ` : "");
      await sandbox.close();
    }
    if (signals.signal.aborted) return signals.exitCode();
    const invalid = (progress.byStatus.get("invalid") ?? 0) + (results.before.byStatus.get("invalid") ?? 0);
    return progress.failed > 0 || invalid > 0 ? 1 : 0;
  } finally {
    results.close();
    signals.dispose();
  }
}

/** The default batch name of a jobs file (for --queue): its name without the extension. */
export function defaultBatchName(jobs: string): string {
  return basename(jobs).replace(/\.[^.]*$/, "") || "batch";
}
