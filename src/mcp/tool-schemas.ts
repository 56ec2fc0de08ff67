import {
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_MEMORY_LIMIT_BYTES,
  DEFAULT_TIMEOUT_MS,
  MAX_TIMEOUT_MS,
  SANDBOX_DIR,
} from "../core/limits.js";
import { runRequestJsonSchema } from "../protocol/run-request.js";
import { runResultSchema } from "../protocol/run-result.js";

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

/** Python as the model gets it: with the packages the server was started with (`--package`), if any. */
export function pythonText(packages: readonly { name: string; version: string }[] = []): string {
  const libraries =
    packages.length === 0
      ? "with the standard library only: no numpy, pandas or other third-party packages"
      : `with the standard library and these packages, already imported: ${packages.map((p) => `${p.name} ${p.version}`).join(", ")}; no others`;
  return (
    `Python is CPython 3.14 (Pyodide, WebAssembly) ${libraries}, no pip/micropip. asyncio works (asyncio.run, and ` +
    "top-level await); threads do not start: use concurrent.futures.ThreadPoolExecutor (its tasks run one after " +
    "another) or call functions directly. No sockets, subprocesses or multiprocessing."
  );
}

export const PYTHON = pythonText();

/** What run_python's description and the server's instructions say about the interpreter. */
export function environmentText(packages: readonly { name: string; version: string }[] = []): string {
  return `${pythonText(packages)} ${SANDBOX}`;
}

export const RESULTS =
  "To get results back: end the code with an expression (its repr() is returned as the value, like in a REPL, and " +
  "as JSON when it converts) or print() them. The answer gives status (ok, error, timeout, memory_limit, " +
  "output_limit, crash, cancelled), stdout, stderr, the value and, on an exception, its traceback; any status but " +
  "ok is a tool error.";

const wire = runRequestJsonSchema.shape;

/**
 * Input of run_python and session_run (run_code adds `language`): fields of the run request
 * schema (their types and bounds), described in the words a model reads.
 */
export const runShape = {
  code: wire.code.unwrap().describe("The program's source. End with an expression to get its value back, or print() results."),
  files: wire.files.describe(`Files to create before the run: path relative to ${SANDBOX_DIR} (e.g. "data/input.csv") -> content.`),
  stdin: wire.stdin.describe("Text the program reads from standard input (input(), sys.stdin); it sees end-of-file after it."),
  timeoutMs: wire.timeoutMs.describe(`Wall-clock limit in milliseconds. Default ${DEFAULT_TIMEOUT_MS}.`),
};

/** The RunResult contract as an output schema; open objects, so fields added later do not fail clients' validation. */
export const runResultShape = runResultSchema.shape;
