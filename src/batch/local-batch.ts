/**
 * `wasmbox batch` on this machine: runs the jobs of a jobs file on a Sandbox, at most `concurrency`
 * at once, and appends one line per job to the results file as each finishes (order of
 * completion). Reading is lazy: a job is read when a slot is free, so a file of any length streams.
 */
import { WasmboxError } from "../core/errors.js";
import type { RunResult } from "../core/result.js";
import type { ValidRun } from "../protocol/run-request.js";
import type { BatchProgress } from "./batch-progress.js";
import { idKey, type InvalidLine, type JobLine } from "./jobs-file.js";
import type { BatchRecord, ResultsFile } from "./results-file.js";

/** Errors a run is refused with because of what the job asks (its line gets an "invalid" record). */
export const REQUEST_ERROR_CODES: readonly string[] = ["INVALID_REQUEST", "INVALID_PATH", "UNSUPPORTED_LANGUAGE", "REQUEST_TOO_LARGE", "PACKAGE_NOT_FOUND"];

/** The one call a batch makes: a Sandbox's `run` fits. */
export type RunJob = (run: ValidRun, options: { signal: AbortSignal }) => Promise<RunResult>;

export interface LocalBatchOptions {
  jobs: AsyncIterable<JobLine | InvalidLine>;
  results: ResultsFile;
  run: RunJob;
  /** Jobs running at once. */
  concurrency: number;
  progress: BatchProgress;
  /**
   * Aborting stops taking jobs and cancels the runs in flight; their results are not written, so
   * `--resume` runs them again. Resolves once they have all ended.
   */
  signal?: AbortSignal;
  /** A host failure (not the guest's): the job gets no line. Default: ignored. */
  onFailure?: (job: JobLine, error: unknown) => void;
}

/**
 * What a batch (local or queued) does with a line before it runs anything: an invalid line gets its
 * record (once: not again on --resume); a job the results file already answers, with its result or
 * an "invalid" line (a run refused for what it asked, e.g. a package not there), is skipped. Returns
 * the job when it still has to run.
 */
export function jobToRun(item: JobLine | InvalidLine, results: ResultsFile, progress: BatchProgress): JobLine | null {
  if (item.kind === "invalid") {
    if (results.before.invalidLines.has(item.line)) progress.skipped++;
    else {
      results.write(invalidRecord(item));
      progress.record("invalid");
    }
    return null;
  }
  if (results.before.ids.has(idKey(item.id)) || results.before.invalidLines.has(item.line)) {
    progress.skipped++;
    return null;
  }
  return item;
}

/** The "invalid" record of a line. */
export function invalidRecord(line: InvalidLine): BatchRecord {
  return { id: line.id, line: line.line, status: "invalid", error: { code: line.code, message: line.message } };
}

/** Runs the batch; resolves when every job read has a line (or was abandoned on abort). */
export async function runLocalBatch(options: LocalBatchOptions): Promise<void> {
  const { results, progress, concurrency } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError("concurrency must be an integer >= 1");
  const controller = new AbortController();
  const stop = () => controller.abort();
  if (options.signal?.aborted) stop();
  options.signal?.addEventListener("abort", stop, { once: true });
  const aborted = new Promise<"aborted">((resolve) => {
    if (controller.signal.aborted) resolve("aborted");
    controller.signal.addEventListener("abort", () => resolve("aborted"), { once: true });
  });
  const inFlight = new Set<Promise<void>>();

  const start = (job: JobLine) => {
    progress.running++;
    const task = options
      .run(job.run, { signal: controller.signal })
      .then(
        (result) => {
          // A run we cancelled ourselves (Ctrl-C) is not a result: left out, --resume reruns it.
          if (controller.signal.aborted && result.status === "cancelled") return;
          results.write({ id: job.id, ...result });
          progress.record(result.status);
        },
        (error: unknown) => {
          if (error instanceof WasmboxError && REQUEST_ERROR_CODES.includes(error.code)) {
            results.write(invalidRecord({ kind: "invalid", line: job.line, id: job.id, code: error.code, message: error.message }));
            progress.record("invalid");
            return;
          }
          if (controller.signal.aborted) return;
          progress.failed++;
          options.onFailure?.(job, error);
        },
      )
      .finally(() => {
        progress.running--;
        inFlight.delete(task);
      });
    inFlight.add(task);
  };

  const iterator = options.jobs[Symbol.asyncIterator]();
  try {
    for (;;) {
      while (inFlight.size >= concurrency && !controller.signal.aborted) await Promise.race([...inFlight, aborted]);
      if (controller.signal.aborted) break;
      // Raced against the abort: a read from a terminal or a pipe may never end by itself.
      const next = await Promise.race([iterator.next(), aborted]);
      if (next === "aborted" || next.done) break;
      const job = jobToRun(next.value, results, progress);
      if (job) start(job);
    }
  } finally {
    await Promise.allSettled([...inFlight]);
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    options.signal?.removeEventListener("abort", stop);
    if (controller.signal.aborted) void iterator.return?.(undefined);
  }
}
