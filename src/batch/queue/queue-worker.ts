/**
 * `wasmbox worker --queue URL`: takes jobs from the batch queue and runs them on this machine's
 * Sandbox. What the guest did is the job's return value (a completed job, whatever the status);
 * a job fails only when this worker refuses it (over its maxima, a package it lacks: at once, no
 * retry) or the host fails (retried by BullMQ up to the job's attempts).
 *
 * A worker killed outright loses nothing: its jobs' locks expire (LOCK_DURATION_MS) and BullMQ's
 * stalled-job check (every STALLED_INTERVAL_MS, on any worker) puts them back in the queue, at
 * most MAX_STALLED_COUNT times before failing them (a job that kills every worker it runs on).
 */
import { UnrecoverableError, Worker, type Job } from "bullmq";
import { WasmboxError } from "../../core/errors.js";
import type { RunResult } from "../../core/result.js";
import { validateRunRequest } from "../../protocol/run-request.js";
import type { Sandbox } from "../../sandbox/sandbox.js";
import { REQUEST_ERROR_CODES } from "../local-batch.js";
import { connectionOptions, encodeFailure, QUEUE_NAME, type QueuedJob } from "./queue-connection.js";

/**
 * How long a job stays locked to its worker without a renewal (the worker renews every half of
 * it while the job runs, whatever the job's own timeout): a SIGKILLed worker's jobs run again
 * after at most this plus STALLED_INTERVAL_MS. BullMQ's default is 30 s; a run ends in at most
 * its timeout, and renewals are cheap.
 */
export const LOCK_DURATION_MS = 10_000;
export const STALLED_INTERVAL_MS = 5_000;
export const MAX_STALLED_COUNT = 2;

export interface QueueWorkerOptions {
  url: string;
  sandbox: Sandbox;
  /** Jobs run at once. */
  concurrency: number;
  /** Jobs whose timeoutMs (after defaults) is above this are refused. */
  maxTimeoutMs?: number;
  /** Jobs whose memoryLimitBytes (after defaults) is above this are refused. */
  maxMemoryBytes?: number;
  /** Each job finished here, for the worker's log. */
  onJob?: (job: Job<QueuedJob>, outcome: string) => void;
  onWarning?: (message: string) => void;
  /** Overrides of the lock timings (tests). */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
}

export interface RunningWorker {
  /**
   * Stops taking jobs. `force: false` lets the jobs in flight finish and complete; `force: true`
   * cancels them and leaves them to BullMQ, which gives them to another worker once their lock
   * expires.
   */
  close(options: { force: boolean }): Promise<void>;
}

/** Starts a worker on the batch queue. */
export async function startQueueWorker(options: QueueWorkerOptions): Promise<RunningWorker> {
  const { sandbox } = options;
  const controller = new AbortController();
  const refuse = (code: string, message: string): never => {
    // Unrecoverable: failed at once, not retried on this worker or any other.
    throw new UnrecoverableError(encodeFailure(code, message));
  };
  const process = async (job: Job<QueuedJob, RunResult>): Promise<RunResult> => {
    let valid;
    try {
      valid = validateRunRequest(job.data.request);
    } catch (error) {
      if (error instanceof WasmboxError) refuse(error.code, error.message);
      throw error;
    }
    const { timeoutMs, memoryLimitBytes } = valid.run;
    if (options.maxTimeoutMs !== undefined && timeoutMs > options.maxTimeoutMs) {
      refuse("OVER_WORKER_LIMIT", `timeoutMs ${timeoutMs} is over this worker's --max-timeout (${options.maxTimeoutMs} ms)`);
    }
    if (options.maxMemoryBytes !== undefined && memoryLimitBytes > options.maxMemoryBytes) {
      refuse("OVER_WORKER_LIMIT", `memoryLimitBytes ${memoryLimitBytes} is over this worker's --max-memory (${options.maxMemoryBytes} bytes)`);
    }
    let result: RunResult;
    try {
      result = await sandbox.run(valid, { signal: controller.signal });
    } catch (error) {
      if (error instanceof WasmboxError && REQUEST_ERROR_CODES.includes(error.code)) refuse(error.code, error.message);
      throw error; // a host failure: BullMQ retries the job (its attempts)
    }
    // Cancelled because this worker is stopping: not the job's result. Another worker runs it.
    if (result.status === "cancelled" && controller.signal.aborted) throw new Error("the worker stopped");
    return result;
  };
  const worker = new Worker<QueuedJob, RunResult>(QUEUE_NAME, process, {
    connection: connectionOptions(options.url),
    concurrency: options.concurrency,
    lockDuration: options.lockDurationMs ?? LOCK_DURATION_MS,
    stalledInterval: options.stalledIntervalMs ?? STALLED_INTERVAL_MS,
    maxStalledCount: MAX_STALLED_COUNT,
    autorun: false,
  });
  const warned = new Set<string>();
  worker.on("error", (error) => {
    if (warned.has(error.message)) return;
    warned.add(error.message);
    options.onWarning?.(error.message);
  });
  worker.on("completed", (job, result) => options.onJob?.(job, result.status));
  worker.on("failed", (job, error) => {
    if (job) options.onJob?.(job, `failed: ${error.message}`);
  });
  void worker.run().catch((error: Error) => options.onWarning?.(error.message));
  await worker.waitUntilReady();
  return {
    close: async ({ force }) => {
      if (force) controller.abort();
      await worker.close(force);
    },
  };
}
