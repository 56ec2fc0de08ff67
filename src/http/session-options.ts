import { LANGUAGES, type Language } from "../core/request.js";
import type { SessionOptions } from "../sandbox/session.js";
import { HttpError } from "./http-errors.js";

/**
 * Upper bound of a session's `idleTimeoutMs` and `maxLifetimeMs` over HTTP: one day. Each open
 * session holds an executor process; timers beyond 2^31 ms would also fire at once.
 */
export const MAX_SESSION_TIMEOUT_MS = 24 * 60 * 60 * 1000;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Validates the body of POST /v1/sessions: `{idleTimeoutMs?, maxLifetimeMs?, language?}`, or none.
 * Host functions are not offered over HTTP (a guest call would need a channel back to the caller).
 */
export function parseSessionOptions(body: unknown): Pick<SessionOptions, "idleTimeoutMs" | "maxLifetimeMs" | "language"> {
  if (!isPlainObject(body)) throw new HttpError("INVALID_REQUEST", "the session options must be a JSON object");
  for (const key of Object.keys(body)) {
    if (key !== "idleTimeoutMs" && key !== "maxLifetimeMs" && key !== "language") {
      throw new HttpError("INVALID_REQUEST", `unknown field ${JSON.stringify(key)}; a session takes idleTimeoutMs, maxLifetimeMs and language`);
    }
  }
  const ms = (name: "idleTimeoutMs" | "maxLifetimeMs") => {
    const value = body[name];
    if (value === undefined) return undefined;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_SESSION_TIMEOUT_MS) {
      throw new HttpError("INVALID_REQUEST", `${name} must be an integer between 1 and ${MAX_SESSION_TIMEOUT_MS}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const language = body.language;
  if (language !== undefined && (typeof language !== "string" || !LANGUAGES.includes(language as Language))) {
    throw new HttpError("UNSUPPORTED_LANGUAGE", `unsupported language ${JSON.stringify(language)}; use one of ${LANGUAGES.join(", ")}`);
  }
  return { idleTimeoutMs: ms("idleTimeoutMs"), maxLifetimeMs: ms("maxLifetimeMs"), language: language as Language | undefined };
}

