import { z } from "zod";
import {
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_MEMORY_LIMIT_BYTES,
  DEFAULT_TIMEOUT_MS,
  MAX_TIMEOUT_MS,
  SANDBOX_DIR,
} from "../core/limits.js";
import { RUN_STATUSES } from "../core/result.js";

/**
 * What the tools' descriptions tell a model, and their input and output schemas. The words are
 * the interface: a model knows only what it reads here.
 */

const MIB = 1024 * 1024;

export const LIMITS =
  `Limits per call: wall-clock timeout ${DEFAULT_TIMEOUT_MS / 1000} s by default (timeoutMs, up to ${MAX_TIMEOUT_MS / 3_600_000} h), ` +
  `memory ${DEFAULT_MEMORY_LIMIT_BYTES / MIB} MiB, stdout and stderr together ${DEFAULT_MAX_OUTPUT_BYTES / MIB} MiB; ` +
  `a run past a limit is stopped and reported with status timeout, memory_limit or output_limit.`;

/** The walls, without saying whether state carries over (that differs between the tools). */
export const ISOLATION =
  "No network access, no package installs, no subprocesses, and no file of the host. The working directory is " +
  `${SANDBOX_DIR}; files given in \`files\` are written there first, and files the program creates or changes there ` +
  "during the call are returned.";

export const FRESH =
  "Each call runs in a fresh interpreter inside an isolated process: nothing (variables, imports, files) carries over between calls.";

export const SANDBOX = `${FRESH} ${ISOLATION}`;

export const PYTHON =
  "Python is CPython 3.14 (Pyodide, WebAssembly) with the standard library only: no numpy, pandas or other " +
  "third-party packages, no pip/micropip.";

export const ENVIRONMENT = `${PYTHON} ${SANDBOX}`;

export const RESULTS =
  "To get results back: end the code with an expression (its repr() is returned as the value, like in a REPL, and " +
  "as JSON when it converts) or print() them. The answer gives status (ok, error, timeout, memory_limit, " +
  "output_limit, crash, cancelled), stdout, stderr, the value and, on an exception, its traceback; any status but " +
  "ok is a tool error.";

const fileContent = z.union([
  z.string().describe("UTF-8 text"),
  z.object({
    encoding: z.enum(["utf8", "base64"]).describe('"base64" for binary content'),
    content: z.string(),
  }),
]);

/** Input of run_python and session_run (run_code adds `language`). */
export const runShape = {
  code: z.string().describe("The program's source. End with an expression to get its value back, or print() results."),
  files: z
    .record(z.string(), fileContent)
    .optional()
    .describe(`Files to create before the run: path relative to ${SANDBOX_DIR} (e.g. "data/input.csv") -> content.`),
  stdin: z.string().optional().describe("Text the program reads from standard input (input(), sys.stdin); it sees end-of-file after it."),
  timeoutMs: z
    .number()
    .int()
    .min(1)
    .max(MAX_TIMEOUT_MS)
    .optional()
    .describe(`Wall-clock limit in milliseconds. Default ${DEFAULT_TIMEOUT_MS}.`),
};

/** The RunResult contract as an output schema; loose so fields added later do not fail clients' validation. */
export const runResultShape = {
  status: z.enum(RUN_STATUSES as [string, ...string[]]),
  exitCode: z.number().int().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  value: z.unknown(),
  valueRepr: z.string().nullable(),
  error: z.looseObject({ type: z.string(), message: z.string(), traceback: z.string() }).nullable(),
  files: z.array(z.looseObject({ path: z.string(), size: z.number(), encoding: z.enum(["utf8", "base64"]), content: z.string() })),
  durationMs: z.number(),
};
