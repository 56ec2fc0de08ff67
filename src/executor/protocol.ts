/**
 * Messages between the host and an executor process. The host imports only these types.
 *
 * Both directions are length-prefixed binary frames (core/frames.ts): a JSON header and the raw
 * bytes it refers to (files, stdin, output), so inputs and outputs of any size cross in time
 * linear in their size. Host -> executor frames are plain; the first is `init` and carries the
 * frame key, read before any guest code exists. Executor -> host frames are signed: an
 * HMAC-SHA-256 of the header precedes it, and the header lists each blob's SHA-256, so guest code
 * that writes to the executor's stdout (it can) cannot forge one. Each header has a `seq` that
 * starts at 0 and increases by one.
 */
import type { GuestError, RichResult, RunStatus } from "../core/result.js";
import type { WorkerRun } from "../runtimes/worker-protocol.js";

export interface InitMessage {
  t: "init";
  /** 32 random bytes as hex: the HMAC key for this executor's frames. */
  key: string;
  /** Keep the warm state so runs sent with `reset` can be followed by a reset to it. */
  keepPristine?: boolean;
  /**
   * Isolation "isolate": every run sent with `reset` gets a worker (V8 isolate, wasm instance,
   * shared buffers) that no run has touched; the main isolate ends it after the run and says
   * `ready` again once the next one has loaded.
   */
  isolate?: boolean;
  /** Run the runtime's warm-up before `ready` (default true; skipped for an executor a run already waits for). */
  warmUp?: boolean;
}

/** A run as it travels: the worker's run, its files and stdin as blobs. */
export type RunMessage = WorkerRun;

export interface InterruptMessage {
  t: "interrupt";
}

/** The host's answer to a guest's host-function call: `reply` is JSON `{ok, value}` or `{ok: false, error}`. */
export interface CallResultMessage {
  t: "call-result";
  callId: number;
  reply: string;
}

/** Session file access between runs. */
export type FilesMessage =
  | { t: "fs"; rid: number; op: "read"; path: string }
  | { t: "fs"; rid: number; op: "write"; path: string; data: Uint8Array }
  | { t: "fs"; rid: number; op: "list" }
  | { t: "fs"; rid: number; op: "save" }
  | { t: "fs"; rid: number; op: "restore"; data: Uint8Array };

export type HostMessage = InitMessage | RunMessage | InterruptMessage | CallResultMessage | FilesMessage;

/** A file the run created or changed, as the executor reports it: raw bytes. */
export interface ExecutorFile {
  path: string;
  data: Uint8Array;
}

/** A changed file left out of the result because it is over an output cap. */
export interface FileOverLimit {
  path: string;
  size: number;
  cap: "maxOutputFileBytes" | "maxOutputFilesTotalBytes";
}

/** The part of a run's result the executor reports; the host adds stdout, stderr and timing. */
export interface ExecutorOutcome {
  status: Extract<RunStatus, "ok" | "error" | "memory_limit">;
  exitCode: number | null;
  value: unknown;
  /** The value in the lossless tagged form (core/value.ts), where the runtime makes one. */
  valueLossless?: unknown;
  valueRepr: string | null;
  error: GuestError | null;
  files: ExecutorFile[];
  /** Changed files not carried because of an output cap: the run ends as output_limit. */
  filesOverLimit?: FileOverLimit[];
  /** Rich results (display bundles), where the runtime makes them. */
  results?: RichResult[];
  /** Bytes the rich results would have taken when they went past the output cap: the run ends as output_limit. */
  resultsOverLimit?: number;
}

export type ExecutorFrame =
  | { seq: number; t: "ready" }
  /** The executor has the whole run and handed it to its runtime: the guest's clock starts now. */
  | { seq: number; t: "started" }
  | { seq: number; t: "out"; fd: 1 | 2; data: Uint8Array }
  | { seq: number; t: "result"; outcome: ExecutorOutcome }
  | { seq: number; t: "call"; callId: number; name: string; args: string }
  | { seq: number; t: "fs-reply"; rid: number; ok: boolean; entries?: { path: string; size: number }[]; data?: Uint8Array; error?: string }
  | { seq: number; t: "snapshot-done"; bytes: number }
  /** After a run with `reset`: the state cannot be restored; the host discards this executor. */
  | { seq: number; t: "retire"; reason: string }
  | { seq: number; t: "fatal"; message: string };
