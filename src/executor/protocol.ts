/**
 * Messages between the host and an executor process. The host imports only these types.
 *
 * Host -> executor: one JSON object per line on the executor's stdin. The first line is `init`
 * and carries the frame key; it is read before any guest code exists.
 * Executor -> host: one frame per line on stdout: `<hmac-sha256 hex> <json body>`. The body has a
 * `seq` that starts at 0 and increases by one. Guest code can write to the executor's stdout, but
 * cannot sign, so the host rejects what it writes.
 */
import type { GuestError, OutputFile, RunStatus } from "../core/result.js";
import type { WorkerRun } from "../runtimes/worker-protocol.js";

export interface InitMessage {
  t: "init";
  /** 32 random bytes as hex: the HMAC key for this executor's frames. */
  key: string;
  /** Keep the warm state so runs sent with `reset` can be followed by a reset to it. */
  keepPristine?: boolean;
  /** Run the runtime's warm-up before `ready` (default true; skipped for an executor a run already waits for). */
  warmUp?: boolean;
}

/** A run as it travels on the wire: the worker's run with bytes as base64. */
export type RunMessage = Omit<WorkerRun, "files" | "stdin"> & {
  /** [sandbox path, base64 content] */
  files: [string, string][];
  /** base64 */
  stdin: string;
};

export interface InterruptMessage {
  t: "interrupt";
}

/** The host's answer to a guest's host-function call: `reply` is JSON `{ok, value}` or `{ok: false, error}`. */
export interface CallResultMessage {
  t: "call-result";
  callId: number;
  reply: string;
}

/** Session file access between runs. `data` is base64. */
export type FilesMessage =
  | { t: "fs"; rid: number; op: "read"; path: string }
  | { t: "fs"; rid: number; op: "write"; path: string; data: string }
  | { t: "fs"; rid: number; op: "list" };

export type HostMessage = InitMessage | RunMessage | InterruptMessage | CallResultMessage | FilesMessage;

/** The part of a run's result the executor reports; the host adds stdout, stderr and timing. */
export interface ExecutorOutcome {
  status: Extract<RunStatus, "ok" | "error" | "memory_limit">;
  exitCode: number | null;
  value: unknown;
  valueRepr: string | null;
  error: GuestError | null;
  files: OutputFile[];
}

export type ExecutorFrame =
  | { seq: number; t: "ready" }
  | { seq: number; t: "out"; fd: 1 | 2; data: string }
  | { seq: number; t: "result"; outcome: ExecutorOutcome }
  | { seq: number; t: "call"; callId: number; name: string; args: string }
  | { seq: number; t: "fs-reply"; rid: number; ok: boolean; entries?: { path: string; size: number }[]; data?: string; error?: string }
  | { seq: number; t: "snapshot-done"; bytes: number }
  /** After a run with `reset`: the state cannot be restored; the host discards this executor. */
  | { seq: number; t: "retire"; reason: string }
  | { seq: number; t: "fatal"; message: string };
