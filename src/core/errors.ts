/**
 * Host-side failures: something went wrong in wasmbox or in how it was called, not in the guest.
 * Codes are SCREAMING_SNAKE strings, identical in TypeScript, HTTP bodies and the Python client.
 */
export type WasmboxErrorCode =
  | "INVALID_REQUEST"
  | "INVALID_PATH"
  | "REQUEST_TOO_LARGE"
  | "UNSUPPORTED_LANGUAGE"
  | "DENO_NOT_FOUND"
  | "EXECUTOR_START_FAILED"
  | "SNAPSHOT_FAILED"
  | "CACHE_UNWRITABLE"
  | "SANDBOX_LAYER_MISSING"
  | "SANDBOX_CLOSED"
  | "ABORTED"
  | "UNKNOWN_OP"
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "METHOD_NOT_ALLOWED"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "QUEUE_FULL"
  | "NOT_IMPLEMENTED"
  | "SESSION_CLOSED"
  | "SESSION_DEAD"
  | "SESSION_NOT_FOUND"
  | "SESSION_NOT_SAVEABLE"
  | "INVALID_SESSION_BLOB"
  | "SESSION_BLOB_INCOMPATIBLE"
  | "TOO_MANY_SESSIONS"
  | "PACKAGE_NOT_FOUND"
  | "PACKAGE_INVALID"
  | "PACKAGE_DOWNLOAD_FAILED"
  | "INTERNAL_ERROR";

export class WasmboxError extends Error {
  readonly code: WasmboxErrorCode;
  constructor(code: WasmboxErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WasmboxError";
    this.code = code;
  }

  /** The form errors take when they cross a process boundary. */
  toJSON(): { code: WasmboxErrorCode; name: string; message: string } {
    return { code: this.code, name: this.name, message: this.message };
  }
}

export function isWasmboxError(value: unknown): value is WasmboxError {
  return value instanceof WasmboxError;
}
