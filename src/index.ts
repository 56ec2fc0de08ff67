export { Sandbox, run, type SandboxOptions, type SandboxStats, type RunOptions, type Isolation } from "./sandbox/sandbox.js";
export { Session, type SessionOptions, type SessionState } from "./sandbox/session.js";
export { listLanguages, type LanguageInfo } from "./sandbox/languages.js";
export type { HostFunction, FileEntry } from "./host/executor-process.js";
export type { Language } from "./core/request.js";
export type { RunRequest, FileContent } from "./protocol/run-request.js";
export type { RunResult, RunStatus, GuestError, OutputFile, RichResult } from "./core/result.js";
export { RUN_STATUSES, fileBytes, richResult, richResultFormats, resultImages } from "./core/result.js";
export { decodeLosslessValue, isLosslessValue, LOSSLESS_TAGS } from "./core/value.js";
export { WasmboxError, type WasmboxErrorCode } from "./core/errors.js";
export {
  DEFAULT_TIMEOUT_MS,
  DEFAULT_MEMORY_LIMIT_BYTES,
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_MAX_REQUEST_BYTES,
} from "./core/limits.js";
export type { OsSandboxMode } from "./host/executor-launch.js";
export { onPreparation, type PreparationEvent, type PreparationListener } from "./sandbox/preparation.js";
