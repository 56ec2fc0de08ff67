import { WasmboxError, type WasmboxErrorCode } from "../core/errors.js";

/**
 * Codes only the HTTP edge produces. They belong in WasmboxErrorCode (src/core/errors.ts) so the
 * TypeScript and Python clients share them; until that lands they live here.
 */
export type HttpOnlyErrorCode =
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "METHOD_NOT_ALLOWED"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "QUEUE_FULL"
  | "NOT_IMPLEMENTED";

export type HttpErrorCode = WasmboxErrorCode | HttpOnlyErrorCode;

export const HTTP_ERROR_CODES: readonly HttpErrorCode[] = [
  "INVALID_REQUEST",
  "INVALID_PATH",
  "UNSUPPORTED_LANGUAGE",
  "REQUEST_TOO_LARGE",
  "UNAUTHORIZED",
  "FORBIDDEN",
  "NOT_FOUND",
  "METHOD_NOT_ALLOWED",
  "UNSUPPORTED_MEDIA_TYPE",
  "QUEUE_FULL",
  "NOT_IMPLEMENTED",
  "SANDBOX_CLOSED",
  "EXECUTOR_START_FAILED",
  "DENO_NOT_FOUND",
  "SNAPSHOT_FAILED",
  "SANDBOX_LAYER_MISSING",
  "INTERNAL_ERROR",
];

/** An answer the HTTP edge gives instead of a run result. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: HttpErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }

  toBody(): { error: { code: HttpErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/** The HTTP status for a host error: the caller's fault is 4xx, the host's is 5xx. */
export function statusForWasmboxError(code: WasmboxErrorCode): number {
  switch (code) {
    case "INVALID_REQUEST":
    case "INVALID_PATH":
    case "UNSUPPORTED_LANGUAGE":
    case "UNKNOWN_OP":
      return 400;
    case "REQUEST_TOO_LARGE":
      return 413;
    case "SESSION_NOT_FOUND":
      return 404;
    case "SESSION_CLOSED":
    case "SESSION_DEAD":
      return 410;
    case "TOO_MANY_SESSIONS":
      return 429;
    case "SANDBOX_CLOSED":
    case "ABORTED":
      return 503;
    case "DENO_NOT_FOUND":
    case "EXECUTOR_START_FAILED":
    case "SNAPSHOT_FAILED":
    case "SANDBOX_LAYER_MISSING":
    case "INTERNAL_ERROR":
      return 500;
    default:
      // Not `never`-checked on purpose: codes added for sessions (issue 4) must not break the
      // build of this adapter; they answer 500 until mapped here.
      return 500;
  }
}

/** Any thrown value as an HttpError; unknown failures become a 500 INTERNAL_ERROR. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof WasmboxError) return new HttpError(statusForWasmboxError(error.code), error.code, error.message);
  return new HttpError(500, "INTERNAL_ERROR", error instanceof Error ? error.message : String(error));
}
