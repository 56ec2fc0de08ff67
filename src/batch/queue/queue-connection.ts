/**
 * Where a batch's queue lives: a Redis URL as BullMQ takes it (ioredis parses it), and the names
 * both sides agree on. Only this folder imports BullMQ, and only `--queue` loads this folder, so a
 * local batch (and the rest of wasmbox) never loads BullMQ or ioredis.
 */
import { createHash } from "node:crypto";
import { idKey, type JobId } from "../jobs-file.js";

/** The BullMQ queue every producer and worker uses; batches are told apart by their jobs' ids. */
export const QUEUE_NAME = "wasmbox-batch";

/** What a queued job carries. */
export interface QueuedJob {
  /** The batch (`--name`). */
  batch: string;
  id: JobId;
  /** Its line in the producer's jobs file, for an "invalid"/"failed" record. */
  line: number;
  /** The run request (JSON wire form), with the producer's default limits filled in. */
  request: Record<string, unknown>;
}

/** A queue URL as the user typed it: redis://[user:password@]host[:port][/db], rediss:// for TLS. */
export function checkQueueUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`--queue: cannot read ${JSON.stringify(url)} as a URL; use redis://HOST:PORT/DB`);
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") throw new TypeError("--queue: use a redis:// or rediss:// (TLS) URL");
  if (parsed.pathname.length > 1 && !/^\/\d+$/.test(parsed.pathname)) throw new TypeError("--queue: the path of the URL is the database number, e.g. redis://host:6379/0");
  return parsed;
}

/**
 * BullMQ's connection options for `url`: ioredis reads host, port, user, password and the database
 * from it, and turns TLS on for rediss://. Commands wait through a Redis restart instead of failing
 * after 20 retries (`maxRetriesPerRequest: null`, which BullMQ's workers require anyway).
 */
export function connectionOptions(url: string): { url: string; maxRetriesPerRequest: null; enableOfflineQueue: true } {
  checkQueueUrl(url);
  return { url, maxRetriesPerRequest: null, enableOfflineQueue: true };
}

/** Batch names: they become part of BullMQ job ids, which may not contain ":". */
export function checkBatchName(name: string): string {
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(name)) throw new TypeError(`--name: ${JSON.stringify(name)}: use letters, digits, ".", "_" and "-" (at most 100)`);
  return name;
}

/**
 * The BullMQ job id of job `id` of `batch`: the same on every run of the producer, so a restarted
 * producer adds nothing twice (BullMQ ignores an add whose job id exists). Hashed: ids may hold
 * any character, BullMQ's may not hold ":" nor be an integer.
 */
export function queueJobId(batch: string, id: JobId): string {
  return `${batch}.${createHash("sha256").update(idKey(id)).digest("hex").slice(0, 32)}`;
}

/** The error a worker fails a job with, as the producer reads it back from BullMQ's failedReason. */
export function encodeFailure(code: string, message: string): string {
  return JSON.stringify({ code, message });
}

export function decodeFailure(reason: string | undefined): { code: string; message: string } {
  try {
    const parsed = JSON.parse(reason ?? "") as { code?: unknown; message?: unknown };
    if (typeof parsed.code === "string" && typeof parsed.message === "string") return { code: parsed.code, message: parsed.message };
  } catch {
    // a failure BullMQ itself recorded (a job stalled too often)
  }
  return { code: "JOB_FAILED", message: reason || "the job failed" };
}
