/**
 * Opening a session, and the other operations every transport offers besides a run: one schema
 * each, checked once at the edge. Host function names follow the guest's rule (a Python identifier).
 */
import { z } from "zod";
import { WasmboxError } from "../core/errors.js";
import { LANGUAGES, type Language } from "../core/request.js";

/**
 * Upper bound of a session's `idleTimeoutMs` and `maxLifetimeMs`: one day. Each open session holds
 * an executor process; timers beyond 2^31 ms would also fire at once.
 */
export const MAX_SESSION_TIMEOUT_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_SESSION_IDLE_TIMEOUT_MS = 10 * 60 * 1000;
export const DEFAULT_SESSION_MAX_LIFETIME_MS = 60 * 60 * 1000;

/** A host function's name: what `tools.<name>(...)` in the guest calls. */
export const TOOL_NAME = /^(?!__)[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const TOOL_NAME_RULE = 'must be a Python identifier not starting with "__"';

export const toolNamesSchema = z
  .array(z.string().regex(TOOL_NAME))
  .describe(`Host functions the caller answers (call events on the stream), by name: each a Python identifier, not starting with "__".`);

function toolNamesError(input: unknown): never {
  const bad = Array.isArray(input) ? input.find((name) => typeof name !== "string" || !TOOL_NAME.test(name)) : undefined;
  if (typeof bad === "string") throw new WasmboxError("INVALID_REQUEST", `host function name ${JSON.stringify(bad)} ${TOOL_NAME_RULE}`);
  throw new WasmboxError("INVALID_REQUEST", "tools must be an array of host function names");
}

const timeoutMs = (fallback: number, description: string) =>
  z.number().int().min(1).max(MAX_SESSION_TIMEOUT_MS).describe(`${description} Default ${fallback}.`);

export const sessionOptionsSchema = z.strictObject({
  idleTimeoutMs: timeoutMs(DEFAULT_SESSION_IDLE_TIMEOUT_MS, "Close the session after this long without a call, in milliseconds.").optional(),
  maxLifetimeMs: timeoutMs(DEFAULT_SESSION_MAX_LIFETIME_MS, "Close the session this long after it opened, however busy, in milliseconds.").optional(),
  language: z.enum(LANGUAGES as [Language, ...Language[]]).optional().describe('The session\'s language. Default "python".'),
  tools: toolNamesSchema.optional(),
  packages: z
    .array(z.string().min(1).max(200))
    .max(100)
    .optional()
    .describe("Python packages from the wheelhouse the session's interpreter has, imported ahead (fixed when it opens)."),
});

export type SessionRequest = z.output<typeof sessionOptionsSchema>;

/** The session options as JSON Schema (draft 2020-12, as OpenAPI 3.1 reads it), defaults stated. */
export function sessionOptionsJsonSchema(): Record<string, unknown> {
  const document = z.toJSONSchema(sessionOptionsSchema, { target: "draft-2020-12", io: "input" }) as Record<string, unknown>;
  delete document.$schema;
  const properties = document.properties as Record<string, Record<string, unknown>>;
  properties.idleTimeoutMs!.default = DEFAULT_SESSION_IDLE_TIMEOUT_MS;
  properties.maxLifetimeMs!.default = DEFAULT_SESSION_MAX_LIFETIME_MS;
  properties.language!.default = "python";
  return document;
}

/** Validates the options of a new session (none is `{}`); the messages name the field. */
export function validateSessionRequest(input: unknown): SessionRequest {
  if (input === undefined || input === null) input = {};
  if (typeof input !== "object" || Array.isArray(input)) throw new WasmboxError("INVALID_REQUEST", "the session options must be a JSON object");
  const parsed = sessionOptionsSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = String(issue.path[0] ?? "");
  const value = (input as Record<string, unknown>)[field];
  if (issue.code === "unrecognized_keys") {
    throw new WasmboxError("INVALID_REQUEST", `unknown field ${JSON.stringify(issue.keys[0])}; a session takes ${Object.keys(sessionOptionsSchema.shape).join(", ")}`);
  }
  if (field === "language") {
    throw new WasmboxError("UNSUPPORTED_LANGUAGE", `unsupported language ${JSON.stringify(value)}; use one of ${LANGUAGES.join(", ")}`);
  }
  if (field === "tools") toolNamesError(value);
  if (field === "packages") throw new WasmboxError("INVALID_REQUEST", 'packages must be an array of package names (e.g. ["sympy", "pydantic>=2"])');
  throw new WasmboxError("INVALID_REQUEST", `${field} must be a positive integer, at most ${MAX_SESSION_TIMEOUT_MS}, got ${JSON.stringify(value)}`);
}

/** Tool names given with a run (besides its session's); absent is none. */
export function validateToolNames(input: unknown): string[] {
  if (input === undefined || input === null) return [];
  const parsed = toolNamesSchema.safeParse(input);
  if (!parsed.success) toolNamesError(input);
  return parsed.data;
}
