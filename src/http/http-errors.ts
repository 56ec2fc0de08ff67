import { WasmboxError, type WasmboxErrorCode } from "../core/errors.js";

/**
 * The HTTP status of every error code: the caller's fault is 4xx, the host's 5xx. A Record, so a
 * code added to WasmboxErrorCode does not build until it has a status here.
 */
const STATUS_BY_CODE: Readonly<Record<WasmboxErrorCode, number>> = {
  INVALID_REQUEST: 400,
  INVALID_PATH: 400,
  UNSUPPORTED_LANGUAGE: 400,
  UNKNOWN_OP: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  // An id this server never issued, or one it has forgotten (it remembers the last 1000 ended sessions).
  SESSION_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  // The request names a package the host's wheelhouse does not hold (an operator adds it with
  // `wasmbox packages add`); the request, not the host, is what cannot be served.
  PACKAGE_NOT_FOUND: 422,
  // The package set the request names cannot be used (a package raises on import, two install the
  // same file, a wheel on the host is damaged): the message says which.
  PACKAGE_INVALID: 422,
  // Gone for good: closed (DELETE, idle or lifetime reaping) or dead (its interpreter was killed).
  // The body's code tells which; either way the caller opens a new session.
  SESSION_CLOSED: 410,
  SESSION_DEAD: 410,
  // The session holds state a saved session cannot carry (the message names it): the session is
  // still open; the caller can change it and save again.
  SESSION_NOT_SAVEABLE: 409,
  // An uploaded saved session is damaged, truncated, or of another format, or from another
  // wasmbox or runtime: the caller's bytes, not the host, are what cannot be served.
  INVALID_SESSION_BLOB: 422,
  SESSION_BLOB_INCOMPATIBLE: 422,
  REQUEST_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  QUEUE_FULL: 429,
  TOO_MANY_SESSIONS: 429,
  INTERNAL_ERROR: 500,
  DENO_NOT_FOUND: 500,
  EXECUTOR_START_FAILED: 500,
  SNAPSHOT_FAILED: 500,
  CACHE_UNWRITABLE: 500,
  SANDBOX_LAYER_MISSING: 500,
  // The package index could not be reached or answered an error.
  PACKAGE_DOWNLOAD_FAILED: 502,
  NOT_IMPLEMENTED: 501,
  SANDBOX_CLOSED: 503,
  ABORTED: 503,
};

/** Every code an HTTP error body can carry (the OpenAPI document's enum). */
export const HTTP_ERROR_CODES: readonly WasmboxErrorCode[] = Object.keys(STATUS_BY_CODE) as WasmboxErrorCode[];

/** The HTTP status for an error code. */
export function statusForCode(code: WasmboxErrorCode): number {
  return STATUS_BY_CODE[code] ?? 500;
}

/** An answer the HTTP edge gives instead of a run result: a WasmboxError plus response headers. */
export class HttpError extends WasmboxError {
  constructor(
    code: WasmboxErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message);
    this.name = "HttpError";
  }

  get statusCode(): number {
    return statusForCode(this.code);
  }

  toBody(): { error: { code: WasmboxErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/** Any thrown value as an HttpError; unknown failures become a 500 INTERNAL_ERROR. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  // A full queue is worth another try in a moment; the service's errors carry no headers of their own.
  if (error instanceof WasmboxError) return new HttpError(error.code, error.message, error.code === "QUEUE_FULL" ? { "retry-after": "1" } : {});
  return new HttpError("INTERNAL_ERROR", error instanceof Error ? error.message : String(error));
}
