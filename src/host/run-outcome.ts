/**
 * From what an executor reported (or did not) to the RunResult a caller gets. The outcome comes from
 * the executor's main isolate, which relays it from the worker, where guest code could have forged
 * it: it is input like any other, checked again here.
 */
import { ERROR_MESSAGE_MAX_CHARS, MAX_OUTPUT_FILES_BYTES_LIMIT, TRACEBACK_MAX_CHARS, VALUE_REPR_MAX_CHARS } from "../core/limits.js";
import type { NormalizedRun } from "../core/request.js";
import type { GuestError, RichResult, RunResult, RunStatus } from "../core/result.js";
import { isLosslessValue } from "../core/value.js";
import type { ExecutorFile, ExecutorOutcome, FileOverLimit } from "../executor/protocol.js";
import { normalizeSandboxPath } from "../vfs/sandbox-path.js";
import { encodeOutputFile } from "./output-encoding.js";

/** What the host saw of a run besides the outcome: its output, and why it ended it, if it did. */
export interface RunRecord {
  run: NormalizedRun;
  startedAt: number;
  chunks: { fd: 1 | 2; bytes: Uint8Array }[];
  /** The guest was interrupted at its timeout (a result after that still ends "timeout"). */
  interrupted: boolean;
  crashMessage: string | null;
  /** What crossed a limit the host enforced, for the error message. */
  limitDetail?: string | null;
  /** Which time limit stopped the run ("wall": timeoutMs, "cpu": cpuTimeMs), or null. */
  timeLimit: "wall" | "cpu" | null;
  /** The run's CPU time in ms as last read (from its start), or null where unreadable. */
  cpuTimeMs: number | null;
  /** The run's CPU time when it passed cpuTimeMs, for the error message. */
  cpuAtLimitMs?: number | null;
}

/**
 * The status a reported outcome ends with, and its error: the guest's own, "timeout" if it answered
 * only after its interrupt, or "output_limit" naming the first file past an output cap (the files
 * within the caps come back).
 */
export function judgeOutcome(outcome: ExecutorOutcome, record: RunRecord): RunStatus {
  let status: RunStatus = record.interrupted ? "timeout" : outcome.status;
  if (record.interrupted && record.timeLimit === "cpu") {
    // The CPU-time limit is named whether the guest answered its interrupt or was killed: the same
    // error either way, since which comes first depends on the machine's load. The guest's
    // traceback (where the interrupt found it) is kept.
    outcome.error = { ...hostError("timeout", record)!, traceback: outcome.error?.traceback ?? "" };
  }
  const over = outcome.filesOverLimit?.[0];
  if (over && (status === "ok" || status === "error")) {
    status = "output_limit";
    const { run } = record;
    const capBytes = over.cap === "maxOutputFileBytes" ? run.maxOutputFileBytes : run.maxOutputFilesTotalBytes;
    const what =
      over.cap === "maxOutputFileBytes"
        ? `output file ${JSON.stringify(over.path)} is ${over.size} bytes`
        : `output file ${JSON.stringify(over.path)} (${over.size} bytes) takes the run's files past ${capBytes} bytes`;
    const others = outcome.filesOverLimit!.length > 1 ? ` (and ${outcome.filesOverLimit!.length - 1} more files)` : "";
    outcome.error = {
      type: "OutputLimit",
      message: `${what}, over ${over.cap} (${capBytes} bytes)${others}; it is left out of the result: raise ${over.cap} (up to ${MAX_OUTPUT_FILES_BYTES_LIMIT})`,
      traceback: outcome.error?.traceback ?? "",
    };
  }
  // Rich results count against the output cap together with stdout and stderr (issue 16).
  const outputBytes = record.chunks.reduce((n, c) => n + c.bytes.length, 0);
  const results = outcome.results ?? [];
  let kept = 0;
  let used = outputBytes;
  while (kept < results.length && used + richResultBytes(results[kept]!) <= record.run.maxOutputBytes) used += richResultBytes(results[kept++]!);
  if (kept < results.length || outcome.resultsOverLimit !== undefined) {
    const wanted = outcome.resultsOverLimit ?? results.slice(kept).reduce((n, r) => n + richResultBytes(r), used);
    outcome.results = results.slice(0, kept);
    if (status === "ok" || status === "error") {
      status = "output_limit";
      outcome.error = {
        type: "OutputLimit",
        message: `rich results (display() and the last expression) take the run's output past maxOutputBytes (${record.run.maxOutputBytes} bytes; stdout and stderr ${outputBytes}, results at least ${wanted}): the ones past it are left out; display less or raise maxOutputBytes`,
        traceback: outcome.error?.traceback ?? "",
      };
    }
  }
  return status;
}

/** What a rich result counts against the output cap: its size as JSON. */
export function richResultBytes(result: RichResult): number {
  return JSON.stringify(result).length;
}

/** The result a caller gets: the outcome's fields where the executor reported one, the host's otherwise. */
export function assembleResult(status: RunStatus, outcome: ExecutorOutcome | null, record: RunRecord): RunResult {
  return {
    status,
    exitCode: outcome?.exitCode ?? null,
    stdout: decode(record.chunks, 1),
    stderr: decode(record.chunks, 2),
    value: outcome?.value ?? null,
    valueLossless: outcome?.valueLossless ?? null,
    valueRepr: outcome?.valueRepr ?? null,
    error: outcome?.error ?? hostError(status, record),
    files: (outcome?.files ?? []).map((f) => encodeOutputFile(f.path, f.data)),
    results: outcome?.results ?? [],
    durationMs: Math.round((performance.now() - record.startedAt) * 100) / 100,
    cpuTimeMs: record.cpuTimeMs,
  };
}

function decode(chunks: { fd: 1 | 2; bytes: Uint8Array }[], fd: 1 | 2): string {
  const parts = chunks.filter((c) => c.fd === fd).map((c) => c.bytes);
  return new TextDecoder("utf-8").decode(Buffer.concat(parts));
}

/** The error object for outcomes the host decided (the guest never got to report). */
export function hostError(
  status: RunStatus,
  record: Pick<RunRecord, "run" | "crashMessage" | "limitDetail"> & Partial<Pick<RunRecord, "timeLimit" | "cpuAtLimitMs">>,
): GuestError | null {
  const seconds = (record.run.timeoutMs / 1000).toString();
  switch (status) {
    case "timeout":
      if (record.timeLimit === "cpu") {
        const used = record.cpuAtLimitMs ?? null;
        return {
          type: "CpuTimeLimit",
          message: `run exceeded its CPU-time limit of ${record.run.cpuTimeMs} ms (cpuTimeMs)${used === null ? "" : `: it had used ${used} ms of CPU`}`,
          traceback: "",
        };
      }
      return { type: "Timeout", message: `run exceeded its time limit of ${seconds} s`, traceback: "" };
    case "memory_limit":
      return {
        type: "MemoryLimit",
        message: `run exceeded its memory limit of ${record.run.memoryLimitBytes} bytes${record.limitDetail ? `: ${record.limitDetail}` : ""}`,
        traceback: "",
      };
    case "output_limit":
      return { type: "OutputLimit", message: `run exceeded its output limit of ${record.run.maxOutputBytes} bytes`, traceback: "" };
    case "cancelled":
      return { type: "Cancelled", message: "run was cancelled", traceback: "" };
    case "crash":
      return { type: "Crash", message: record.crashMessage ?? "executor crashed", traceback: "" };
    default:
      return null;
  }
}

function isString(value: unknown): value is string {
  return typeof value === "string";
}

/** Cuts text the guest could have made arbitrarily long (the runner cuts honest results the same way). */
function cut(text: string, limit: number): string {
  return text.length <= limit ? text : text.slice(0, limit) + "…";
}

/**
 * Checks an outcome's shape: paths are validated again, sizes are checked against contents and the
 * run's caps, and text fields are bounded (a value that would not fit the output cap as JSON is
 * dropped, as the runner does). Null when it is not an outcome at all.
 */
export function validateOutcome(raw: unknown, run: NormalizedRun): ExecutorOutcome | null {
  const maxValueBytes = run.maxOutputBytes;
  if (typeof raw !== "object" || raw === null) return null;
  const o = raw as Record<string, unknown>;
  if (o.status !== "ok" && o.status !== "error" && o.status !== "memory_limit") return null;
  if (o.exitCode !== null && !Number.isInteger(o.exitCode)) return null;
  if (o.valueRepr !== null && !isString(o.valueRepr)) return null;
  let error: GuestError | null = null;
  if (o.error !== null) {
    const e = o.error as Record<string, unknown>;
    if (typeof e !== "object" || !isString(e.type) || !isString(e.message) || !isString(e.traceback)) return null;
    error = { type: cut(e.type, 256), message: cut(e.message, ERROR_MESSAGE_MAX_CHARS), traceback: cut(e.traceback, TRACEBACK_MAX_CHARS) };
  }
  if (!Array.isArray(o.files)) return null;
  const validPath = (path: unknown): string | null => {
    if (!isString(path)) return null;
    try {
      return normalizeSandboxPath(path);
    } catch {
      return null;
    }
  };
  const overLimit: FileOverLimit[] = [];
  if (o.filesOverLimit !== undefined) {
    if (!Array.isArray(o.filesOverLimit)) return null;
    for (const f of o.filesOverLimit as Record<string, unknown>[]) {
      const path = typeof f === "object" && f !== null ? validPath(f.path) : null;
      if (path === null || !Number.isSafeInteger(f.size) || (f.cap !== "maxOutputFileBytes" && f.cap !== "maxOutputFilesTotalBytes")) return null;
      overLimit.push({ path, size: f.size as number, cap: f.cap });
    }
  }
  // The caps again, here: the worker that applied them shares a realm with the guest.
  const files: ExecutorFile[] = [];
  let total = 0;
  for (const f of o.files as Record<string, unknown>[]) {
    const path = typeof f === "object" && f !== null ? validPath(f.path) : null;
    if (path === null || !(f.data instanceof Uint8Array)) return null;
    const size = f.data.length;
    if (size > run.maxOutputFileBytes) overLimit.push({ path, size, cap: "maxOutputFileBytes" });
    else if (total + size > run.maxOutputFilesTotalBytes) overLimit.push({ path, size, cap: "maxOutputFilesTotalBytes" });
    else {
      total += size;
      files.push({ path, data: f.data });
    }
  }
  let value = o.value ?? null;
  if (value !== null && (JSON.stringify(value)?.length ?? 0) > maxValueBytes) value = null;
  // Clients rebuild values from this form: pass it on only when it is well formed.
  let valueLossless = o.valueLossless ?? null;
  if (valueLossless !== null && (!isLosslessValue(valueLossless) || (JSON.stringify(valueLossless)?.length ?? 0) > maxValueBytes)) valueLossless = null;
  let results: RichResult[] = [];
  if (o.results !== undefined) {
    const valid = validRichResults(o.results, maxValueBytes);
    if (valid === null) return null;
    results = valid;
  }
  const resultsOverLimit = o.resultsOverLimit === undefined ? undefined : Number.isSafeInteger(o.resultsOverLimit) ? (o.resultsOverLimit as number) : null;
  if (resultsOverLimit === null) return null;
  return {
    ...(o.results !== undefined ? { results } : {}),
    ...(resultsOverLimit !== undefined ? { resultsOverLimit } : {}),
    status: o.status,
    exitCode: o.exitCode as number | null,
    value,
    valueLossless,
    valueRepr: o.valueRepr === null ? null : cut(o.valueRepr as string, VALUE_REPR_MAX_CHARS),
    error,
    files,
    filesOverLimit: overLimit,
  };
}

const MAX_RICH_RESULTS = 10_000;
const MAX_FORMATS = 32;
const MIME_TYPE = /^[\w.+-]{1,60}\/[\w.+-]{1,100}$/;

/**
 * Rich results as the worker reported them, checked: the guest shares the worker's realm, so each
 * bundle's shape is checked again (MIME-type keys, text for text formats, JSON for JSON ones) and
 * the whole must fit the output cap (a larger list is cut by judgeOutcome()). Null when malformed.
 */
export function validRichResults(raw: unknown, maxBytes: number): RichResult[] | null {
  if (!Array.isArray(raw) || raw.length > MAX_RICH_RESULTS) return null;
  const out: RichResult[] = [];
  for (const entry of raw as unknown[]) {
    if (typeof entry !== "object" || entry === null) return null;
    const { data, isMainResult, error } = entry as Record<string, unknown>;
    if (typeof data !== "object" || data === null || Array.isArray(data) || typeof isMainResult !== "boolean") return null;
    if (error !== null && error !== undefined && !isString(error)) return null;
    const keys = Object.keys(data);
    if (keys.length > MAX_FORMATS) return null;
    const clean: Record<string, unknown> = {};
    for (const mime of keys) {
      const value = (data as Record<string, unknown>)[mime];
      if (!MIME_TYPE.test(mime)) return null;
      const json = mime === "application/json" || mime.endsWith("+json");
      if (!json && !isString(value)) return null;
      if (json && (JSON.stringify(value)?.length ?? maxBytes + 1) > maxBytes) return null;
      clean[mime] = value;
    }
    out.push({ data: clean, isMainResult, error: isString(error) ? cut(error, ERROR_MESSAGE_MAX_CHARS) : null });
  }
  return out;
}
