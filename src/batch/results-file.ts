/**
 * The results file of `wasmbox batch`: one JSON line per job, appended as each finishes. Every
 * line is written with a single write(2) on a file opened O_APPEND, so a batch killed at any point
 * leaves whole lines and at most one partial last line, which `--resume` cuts off before it goes on
 * (a regular file takes a write whole unless the disk fills or the process dies inside it).
 */
import { closeSync, createReadStream, existsSync, fstatSync, openSync, readSync, statSync, ftruncateSync, writeSync } from "node:fs";
import { createInterface } from "node:readline";
import type { RunResult } from "../core/result.js";
import { idKey, type JobId } from "./jobs-file.js";

/** A line of the results file for a job that ran: its id, then the run's result. */
export type ResultRecord = { id: JobId } & RunResult;

/**
 * A line of the results file for an input line that is not a job (bad JSON, no id, an invalid
 * request, a repeated id): the shape the stdio server answers such a line with (`{id, error:
 * {code, message}}`), plus the line number and `status: "invalid"` so one `status` field tells
 * every line apart. `id` is null when none could be read.
 */
export interface InvalidRecord {
  id: JobId | null;
  line: number;
  status: "invalid";
  error: { code: string; message: string };
}

/**
 * A line for a job that could not be run (`--queue`: a worker refused it, e.g. over its maxima, or
 * its attempts were spent on infrastructure failures). A local batch writes none: it reports such
 * a job on stderr, and `--resume` runs it again.
 */
export interface FailedRecord {
  id: JobId;
  line: number;
  status: "failed";
  error: { code: string; message: string };
}

export type BatchRecord = ResultRecord | InvalidRecord | FailedRecord;

/** What a results file already holds (for --resume). */
export interface ResultsSoFar {
  /** idKey() of every id with a result line. */
  readonly ids: Set<string>;
  /** Line numbers of the jobs file that already have an "invalid" line. */
  readonly invalidLines: Set<number>;
  /** Lines by status ("ok", "error", "timeout", …, "invalid"). */
  readonly byStatus: Map<string, number>;
  /** Bytes of a partial last line cut off (a batch killed while writing it). */
  readonly truncatedBytes: number;
}

/** Cuts a partial last line (one without its newline) off the file; returns the bytes removed. */
function truncatePartialLine(fd: number): number {
  const size = fstatSync(fd).size;
  const chunk = Buffer.alloc(64 * 1024);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const n = readSync(fd, chunk, 0, end - start, start);
    const at = chunk.subarray(0, n).lastIndexOf(0x0a);
    if (at >= 0) {
      const keep = start + at + 1;
      if (keep < size) ftruncateSync(fd, keep);
      return size - keep;
    }
    end = start;
  }
  if (size > 0) ftruncateSync(fd, 0);
  return size;
}

/** Reads the whole lines of a results file: which ids and invalid lines it already has. */
async function readResults(path: string, truncatedBytes: number): Promise<ResultsSoFar> {
  const so: ResultsSoFar = { ids: new Set(), invalidLines: new Set(), byStatus: new Map(), truncatedBytes };
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const text of lines) {
    if (!text.trim()) continue;
    let record: Partial<BatchRecord>;
    try {
      record = JSON.parse(text) as Partial<BatchRecord>;
    } catch {
      continue; // not ours (only a cut last line can be broken, and it was removed)
    }
    if (typeof record.status !== "string") continue;
    so.byStatus.set(record.status, (so.byStatus.get(record.status) ?? 0) + 1);
    if (record.status === "invalid") {
      if (typeof (record as InvalidRecord).line === "number") so.invalidLines.add((record as InvalidRecord).line);
    } else if (typeof record.id === "string" || typeof record.id === "number") so.ids.add(idKey(record.id));
  }
  return so;
}

/** Where results go: a file (appended, resumable) or stdout ("-"). */
export class ResultsFile {
  private closed = false;

  private constructor(
    private readonly fd: number | null,
    /** What the file held before this batch (empty unless resumed). */
    readonly before: ResultsSoFar,
  ) {}

  /**
   * Opens `path` for appending ("-": stdout). Without `resume` an existing non-empty file is
   * refused (FileExistsError): results are never overwritten by accident. With `resume` a partial
   * last line is cut off and the ids already there are read.
   */
  static async open(path: string, { resume = false } = {}): Promise<ResultsFile> {
    const empty = (): ResultsSoFar => ({ ids: new Set(), invalidLines: new Set(), byStatus: new Map(), truncatedBytes: 0 });
    if (path === "-") {
      if (resume) throw new ResultsFileError("--resume needs a results file (-o FILE), not stdout");
      return new ResultsFile(null, empty());
    }
    if (!resume && existsSync(path) && statSync(path).size > 0) {
      throw new ResultsFileError(`${path} already holds results: --resume continues it (or remove it to start over)`);
    }
    const fd = openSync(path, "a+");
    try {
      const truncated = truncatePartialLine(fd);
      return new ResultsFile(fd, resume ? await readResults(path, truncated) : empty());
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** Appends one line with one write. */
  write(record: BatchRecord): void {
    if (this.closed) throw new TypeError("the results file is closed");
    const line = Buffer.from(JSON.stringify(record) + "\n");
    if (this.fd === null) {
      process.stdout.write(line);
      return;
    }
    const written = writeSync(this.fd, line);
    // A short write on a regular file means the disk is full: stop rather than go on past a cut line.
    if (written !== line.length) throw new Error(`wrote ${written} of ${line.length} bytes to the results file (disk full?)`);
  }

  /** Closes the file. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.fd !== null) closeSync(this.fd);
  }
}

/** The results file cannot be used as asked (exists without --resume, --resume on stdout). */
export class ResultsFileError extends Error {}
