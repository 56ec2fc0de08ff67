/**
 * `wasmbox batch --queue URL`: the producer. It adds each job of the jobs file to the BullMQ queue
 * (a job id derived from the batch name and the job's id, so a restarted producer adds nothing
 * twice), and writes a result line for each as it completes. A job's result is its BullMQ return
 * value; a BullMQ *failure* is an infrastructure problem or a refusal by the worker, never the
 * guest's doing, and gets a "failed" line once its attempts are spent.
 *
 * Collection: QueueEvents says when a job of ours completed or failed (one stream read for many
 * events); the job is then read (one HGETALL), its line written, and the job removed (one command).
 * Events can be missed (the producer was down, the event stream was trimmed, Redis restarted), so a
 * sweep reads the state of every job still pending once all are added, and again whenever no job
 * was collected for SWEEP_MS; a job that is not in Redis at all (lost with a Redis that kept no
 * data) is added again.
 */
import { Job, Queue, QueueEvents } from "bullmq";
import type { RunResult } from "../../core/result.js";
import type { BatchProgress } from "../batch-progress.js";
import type { InvalidLine, JobLine } from "../jobs-file.js";
import { jobToRun } from "../local-batch.js";
import type { ResultsFile } from "../results-file.js";
import { connectionOptions, decodeFailure, QUEUE_NAME, queueJobId, type QueuedJob } from "./queue-connection.js";

/** Attempts of a job before it fails for good (infrastructure errors; a refusal fails at once). */
export const JOB_ATTEMPTS = 3;
/** Jobs left in Redis by a producer that died between writing a line and removing the job expire after this. */
const KEEP_FINISHED_SECONDS = 7 * 24 * 3600;
/** How often jobs still pending are checked directly, in case their events were missed. */
const SWEEP_MS = 5_000;
/** Jobs added per round trip. */
const ADD_CHUNK = 500;

export interface QueueBatchOptions {
  url: string;
  /** The batch's name: part of every job id. */
  name: string;
  jobs: AsyncIterable<JobLine | InvalidLine>;
  results: ResultsFile;
  progress: BatchProgress;
  /** Aborting stops adding and collecting; jobs already queued stay there and `--resume` collects them. */
  signal?: AbortSignal;
  /** Connection trouble (Redis gone for a while), said once per kind. */
  onWarning?: (message: string) => void;
}

type Pending = { id: JobLine["id"]; line: number; data: QueuedJob };

/** Enqueues the jobs and collects their results; resolves when every job has its line or on abort. */
export async function runQueueBatch(options: QueueBatchOptions): Promise<void> {
  const { results, progress, name } = options;
  const connection = connectionOptions(options.url);
  const queue = new Queue<QueuedJob, RunResult>(QUEUE_NAME, { connection });
  const events = new QueueEvents(QUEUE_NAME, { connection });
  const warned = new Set<string>();
  const warn = (error: Error) => {
    const text = error.message.replace(/\d+\.\d+\.\d+\.\d+:\d+/, "<redis>");
    if (warned.has(text)) return;
    warned.add(text);
    options.onWarning?.(error.message);
  };
  queue.on("error", warn);
  events.on("error", warn);
  const pending = new Map<string, Pending>();
  let allAdded = false;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const checkDone = () => {
    if (allAdded && pending.size === 0) finish();
  };
  options.signal?.addEventListener("abort", () => finish(), { once: true });

  let lastCollected = Date.now();
  /** Writes the line of a finished job (once: the job leaves `pending` first). `finished`: an event said so. */
  const collect = async (jobId: string, finished = false) => {
    const entry = pending.get(jobId);
    if (!entry || options.signal?.aborted) return;
    if (!finished) {
      // One small script instead of the whole job, for the many still waiting or running.
      const state = await queue.getJobState(jobId);
      if (state === "unknown" && pending.has(jobId)) {
        // Not in Redis at all: lost (a Redis restarted without its data). Add it again.
        await add([entry]);
        return;
      }
      if (state !== "completed" && state !== "failed") return;
    }
    const job = await Job.fromId<QueuedJob, RunResult>(queue, jobId);
    if (!job || !pending.has(jobId) || options.signal?.aborted) return;
    // "failed" is final: a job that will be retried is "delayed" or "waiting" again.
    const state = finished && job.finishedOn && job.returnvalue ? "completed" : await job.getState();
    if (state !== "completed" && state !== "failed") return;
    if (!pending.has(jobId)) return;
    pending.delete(jobId);
    lastCollected = Date.now();
    if (state === "completed") {
      results.write({ id: entry.id, ...job.returnvalue });
      progress.record(job.returnvalue.status);
    } else {
      const error = decodeFailure(job.failedReason);
      results.write({ id: entry.id, line: entry.line, status: "failed", error });
      progress.record("failed");
    }
    progress.running = pending.size;
    await job.remove().catch(() => {}); // expires anyway (KEEP_FINISHED_SECONDS)
    checkDone();
  };

  const add = async (entries: Pending[]) => {
    await queue.addBulk(
      entries.map((entry) => ({
        name,
        data: entry.data,
        opts: {
          jobId: queueJobId(name, entry.id),
          attempts: JOB_ATTEMPTS,
          backoff: { type: "exponential", delay: 1000 },
          removeOnComplete: { age: KEEP_FINISHED_SECONDS },
          removeOnFail: { age: KEEP_FINISHED_SECONDS },
        },
      })),
    );
  };

  const onFinished = ({ jobId }: { jobId: string }) => {
    if (pending.has(jobId)) collect(jobId, true).catch(warn);
  };
  events.on("completed", onFinished);
  events.on("failed", onFinished);

  let sweeping = false;
  const sweep = async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      const ids = [...pending.keys()];
      for (let i = 0; i < ids.length && !options.signal?.aborted; i += 200) {
        await Promise.all(ids.slice(i, i + 200).map((jobId) => collect(jobId)));
      }
    } catch (error) {
      warn(error as Error);
    } finally {
      sweeping = false;
    }
  };
  // Only while events bring nothing: when they flow, reading every pending job would be waste.
  const sweeper = setInterval(() => {
    if (allAdded && Date.now() - lastCollected >= SWEEP_MS) void sweep();
  }, SWEEP_MS);

  try {
    await events.waitUntilReady();
    let chunk: Pending[] = [];
    const flush = async () => {
      const entries = chunk;
      chunk = [];
      if (entries.length === 0) return;
      for (const entry of entries) pending.set(queueJobId(name, entry.id), entry);
      progress.running = pending.size;
      await add(entries);
    };
    for await (const next of options.jobs) {
      if (options.signal?.aborted) break;
      const item = jobToRun(next, results, progress);
      if (!item) continue;
      chunk.push({ id: item.id, line: item.line, data: { batch: name, id: item.id, line: item.line, request: item.request } });
      if (chunk.length >= ADD_CHUNK) await flush();
    }
    await flush();
    allAdded = true;
    // Jobs that finished before we listened (a restarted producer), or whose events came before
    // they were pending here.
    void sweep();
    checkDone();
    await finished;
  } finally {
    clearInterval(sweeper);
    await Promise.allSettled([events.close(), queue.close()]);
  }
}
