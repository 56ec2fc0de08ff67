/**
 * The run result and the error body as schemas: what the OpenAPI document and the MCP tools'
 * output schemas are derived from. The TypeScript types stay in core (the executor side reads
 * them and cannot load zod); the checks at the end of this file fail the build if the two differ.
 */
import { z } from "zod";
import type { WasmboxErrorCode } from "../core/errors.js";
import { RUN_STATUSES, type RunResult, type RunStatus } from "../core/result.js";

function resultSchema(object: typeof z.looseObject | typeof z.strictObject) {
  return object({
    status: z.enum(RUN_STATUSES as [RunStatus, ...RunStatus[]]),
    exitCode: z.number().int().nullable().describe("sys.exit(n) gives n, an uncaught exception 1; null when the run did not finish."),
    stdout: z.string().describe("UTF-8, invalid bytes replaced; capped together with stderr at maxOutputBytes."),
    stderr: z.string(),
    value: z.unknown().describe("The last expression as JSON where it converts, else null."),
    valueLossless: z
      .unknown()
      .describe('The last expression where it converts exactly, as JSON with one-key {"$tag": …} objects for what JSON cannot say (big ints, integral and non-finite floats, tuples, dicts with non-string keys, bytes, sets, dates, decimals): see docs/values.md. Else null.'),
    valueRepr: z.string().nullable().describe("repr() of the last expression; null when there is none."),
    error: object({ type: z.string().describe('Exception class name, e.g. "ZeroDivisionError".'), message: z.string(), traceback: z.string() }).nullable(),
    files: z
      .array(
        object({
          path: z.string().describe("Relative to the sandbox directory, with / separators."),
          size: z.number().int(),
          encoding: z.enum(["utf8", "base64"]),
          content: z.string(),
        }),
      )
      .describe("Files under /sandbox the run created or changed."),
    results: z
      .array(
        object({
          data: z
            .record(z.string(), z.unknown())
            .describe("Each format the object offers, by MIME type: text/plain, image/png and image/jpeg (base64), image/svg+xml, text/html, text/markdown, text/latex (text), application/json (a JSON value)."),
          isMainResult: z.boolean().describe("The run's last expression, rather than a display() call."),
          error: z.string().nullable().describe("What went wrong making some formats (a _repr_*_ that raised, returned the wrong type or was too big), else null."),
        }),
      )
      .describe("Rich results (Jupyter's display protocol: display(obj) and the last expression when it offers more than text), in the order displayed; counted against maxOutputBytes."),
    durationMs: z.number().describe("From the request reaching an executor to the result, in milliseconds."),
    cpuTimeMs: z
      .number()
      .nullable()
      .describe("CPU time the run used (the executor's, all its threads), in milliseconds at 10 ms resolution, read by the host; null where it cannot be read (no /proc, e.g. macOS)."),
  });
}

/**
 * A run's result. Objects are open (extra fields pass) so that fields added later do not fail a
 * client's validation.
 */
export const runResultSchema = resultSchema(z.looseObject);

/** A request that failed (not the guest: the guest's failures are results): `{"error": {code, message}}`. */
export function errorBodySchema(codes: readonly WasmboxErrorCode[]) {
  return z.object({
    error: z.object({ code: z.enum(codes as [WasmboxErrorCode, ...WasmboxErrorCode[]]), message: z.string() }),
  });
}

/** JSON Schema (draft 2020-12, as OpenAPI 3.1 reads it) of a zod schema, as the output it describes. */
export function jsonSchemaOf(schema: z.ZodType, io: "input" | "output" = "output"): Record<string, unknown> {
  const document = z.toJSONSchema(schema, { target: "draft-2020-12", io }) as Record<string, unknown>;
  delete document.$schema;
  return document;
}

// The schema (closed, to compare) and core's RunResult must describe the same object, field for field.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameAsCore: Same<z.output<ReturnType<typeof resultSchema>>, RunResult> = true;
void sameAsCore;
