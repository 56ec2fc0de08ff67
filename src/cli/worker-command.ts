/**
 * `wasmbox worker --queue URL`: takes the jobs of `wasmbox batch --queue` from BullMQ and runs them
 * on this machine's sandbox (src/batch/queue/queue-worker.ts). Stops on SIGTERM, SIGINT or SIGHUP
 * after the jobs in flight finish; a second signal cancels them and leaves them to other workers.
 */
import { checkQueueUrl } from "../batch/queue/queue-connection.js";
import type { OsSandboxMode } from "../host/executor-launch.js";
import { isIsolation, Sandbox, type Isolation } from "../sandbox/sandbox.js";
import { findOption, UsageError, type CommandHelp, type OptionSpec } from "./command-help.js";
import { OS_SANDBOX_USAGE, parseDurationMs, parseOsSandbox, parsePackageNames, parseSizeBytes } from "./parse-units.js";
import { shutdownSignals } from "./shutdown-signals.js";

/** Every option of `wasmbox worker`, in the order `--help` lists them. */
export const WORKER_OPTIONS = [
  { flag: "--queue", value: "URL", help: "the Redis of the batch queue: redis://[USER:PASSWORD@]HOST:PORT/DB, rediss:// for TLS (required)" },
  { flag: "--concurrency", value: "N", help: "jobs running at once", default: "CPU cores, at least 2" },
  {
    flag: "--isolation",
    value: "MODE",
    help: "process (a fresh executor process per job), isolate (a fresh V8 isolate per job) or interpreter (one interpreter reset between jobs: fastest, for code you trust only)",
    default: "process",
  },
  { flag: "--max-timeout", value: "T", help: "refuse jobs whose timeout is longer (they fail at once with OVER_WORKER_LIMIT): seconds, or 500ms, 2s, 1m", default: "no maximum" },
  { flag: "--max-memory", value: "M", help: "refuse jobs whose memory limit is larger: MiB, or 512m, 1g", default: "no maximum" },
  { flag: "--package", value: "NAME", help: "a Python package every job gets, imported ahead (repeatable, or a,b); a job's own packages add to them" },
  { flag: "--wheelhouse", value: "DIR", help: "the wheelhouse --package and jobs' packages read", default: "$WASMBOX_WHEELHOUSE, else the cache dir's" },
  { flag: "--os-sandbox", value: "MODE", help: "auto, require (fail without bubblewrap) or off: run executors inside bubblewrap", default: "auto" },
  { flag: "--quiet", help: "no line per job on stderr" },
] as const satisfies readonly OptionSpec[];

type WorkerFlag = (typeof WORKER_OPTIONS)[number]["flag"];

/** `wasmbox worker --help`. */
export const WORKER_HELP: CommandHelp = {
  usage: ["wasmbox worker --queue redis://HOST:PORT/DB [options]"],
  about: [
    "Takes jobs of wasmbox batch --queue from a BullMQ queue in Redis and runs them in this machine's",
    "sandbox; start one on each machine. A job's result, whatever its program did, completes the job.",
    "A worker killed outright loses nothing: its jobs go back to the queue when their lock expires",
    "(10 s) and another worker runs them. SIGTERM, SIGINT or SIGHUP: no new jobs, the ones in flight",
    "finish; a second signal cancels them and leaves them to other workers.",
  ].join("\n"),
  sections: [{ title: "options:", options: WORKER_OPTIONS }],
  notes: "exit status: 128 + the signal's number (143 SIGTERM, 130 SIGINT, 129 SIGHUP or the parent gone) once stopped cleanly, the jobs in flight finished or handed back; 2 bad usage.",
  examples: [
    { says: "serve the queue with 4 jobs at a time", command: "wasmbox worker --queue redis://10.0.0.5:6379/0 --concurrency 4" },
    { says: "over TLS with a password, refusing jobs over 10 s or 512 MiB", command: "wasmbox worker --queue rediss://:secret@redis.example:6380/0 --max-timeout 10s --max-memory 512m" },
  ],
};

export interface WorkerArgs {
  queue: string;
  concurrency: number | undefined;
  isolation: Isolation;
  maxTimeoutMs: number | undefined;
  maxMemoryBytes: number | undefined;
  packages: string[];
  wheelhouse: string | undefined;
  osSandbox: OsSandboxMode;
  quiet: boolean;
}

/** Reads `wasmbox worker`'s arguments (after `worker`). */
export function parseWorkerArgs(args: string[]): WorkerArgs {
  const out: WorkerArgs = { queue: "", concurrency: undefined, isolation: "process", maxTimeoutMs: undefined, maxMemoryBytes: undefined, packages: [], wheelhouse: undefined, osSandbox: "auto", quiet: false };
  let queue: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = findOption(WORKER_OPTIONS, flag);
    if (!spec) throw new UsageError(arg.startsWith("-") ? `unknown option ${flag}` : `unexpected argument ${arg}`);
    let value = "";
    if (!("value" in spec)) {
      if (eq > 0) throw new UsageError(`${flag} takes no value`);
    } else if (eq > 0) value = arg.slice(eq + 1);
    else {
      const next = args[++i];
      if (next === undefined) throw new UsageError(`${flag} needs a value`);
      value = next;
    }
    const known: WorkerFlag = spec.flag;
    switch (known) {
      case "--queue":
        try {
          checkQueueUrl(value);
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
        queue = value;
        break;
      case "--concurrency": {
        const n = Number(value);
        if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new UsageError("--concurrency: give a whole number, at least 1");
        out.concurrency = n;
        break;
      }
      case "--isolation":
        if (!isIsolation(value)) throw new UsageError("--isolation: use process, isolate or interpreter");
        out.isolation = value;
        break;
      case "--max-timeout": {
        const ms = parseDurationMs(value);
        if (ms === null) throw new UsageError("--max-timeout: cannot read a duration; use seconds, or e.g. 500ms");
        out.maxTimeoutMs = ms;
        break;
      }
      case "--max-memory": {
        const bytes = parseSizeBytes(value, "m");
        if (bytes === null) throw new UsageError("--max-memory: cannot read a size; use MiB, or e.g. 512m, 1g");
        out.maxMemoryBytes = bytes;
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
      case "--quiet":
        out.quiet = true;
        break;
      default: {
        const unhandled: never = known;
        throw new TypeError(`wasmbox worker: option ${String(unhandled)} has no handler`);
      }
    }
  }
  if (queue === null) throw new UsageError("give the queue: --queue redis://HOST:PORT/DB");
  out.queue = queue;
  return out;
}

/** `wasmbox worker ARGS`: runs until a signal; returns the exit status. */
export async function workerCommand(args: string[]): Promise<number> {
  const options = parseWorkerArgs(args);
  const signals = shutdownSignals();
  try {
    const sandbox = await Sandbox.create({
      maxConcurrency: options.concurrency,
      poolSize: options.concurrency,
      isolation: options.isolation,
      packages: options.packages,
      wheelhouse: options.wheelhouse,
      osSandbox: options.osSandbox,
    });
    try {
      const { startQueueWorker } = await import("../batch/queue/queue-worker.js");
      const worker = await startQueueWorker({
        url: options.queue,
        sandbox,
        concurrency: options.concurrency ?? sandbox.stats.maxConcurrency,
        maxTimeoutMs: options.maxTimeoutMs,
        maxMemoryBytes: options.maxMemoryBytes,
        onJob: options.quiet ? undefined : (job, outcome) => process.stderr.write(`wasmbox worker: ${job.data.batch} ${JSON.stringify(job.data.id)}: ${outcome}\n`),
        onWarning: (message) => process.stderr.write(`wasmbox worker: queue: ${message}\n`),
      });
      process.stderr.write(`wasmbox worker: taking jobs (${options.concurrency ?? sandbox.stats.maxConcurrency} at a time, isolation ${options.isolation})\n`);
      const reason = await signals.received;
      process.stderr.write(`wasmbox worker: ${reason}: finishing the jobs in flight (signal again to hand them back now)\n`);
      let forced = false;
      void signals.again.then(() => {
        forced = true;
        void worker.close({ force: true });
      });
      await worker.close({ force: false });
      if (forced) process.stderr.write("wasmbox worker: jobs in flight handed back\n");
    } finally {
      await sandbox.close();
    }
    return signals.exitCode();
  } finally {
    signals.dispose();
  }
}
