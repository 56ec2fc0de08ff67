import { z } from "zod";
import { DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MEMORY_LIMIT_BYTES, DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS, SANDBOX_DIR } from "../core/limits.js";
import type { Language } from "../core/request.js";
import type { LanguageInfo } from "../sandbox/languages.js";

/**
 * What the tools tell a model: their descriptions and input schemas, and the server's
 * instructions. The words are the interface: a model knows only what it reads here.
 *
 * They are also a cost: every agent conversation carries the whole tool list (and the
 * instructions) in its context, on every turn. So the tool list stays within 2048 bytes of JSON,
 * plus the `--package` list (which only the server's owner makes longer), and the instructions
 * within 512 (test/mcp.test.ts and test/packages.test.ts measure both as the official client
 * receives them). Each thing is said once: one run tool for every language, fresh or in the
 * session, instead of one tool per kind of run repeating the same prose and schemas (before:
 * run_python, run_code, session_run and session_reset, 18 KB); no output schema (the RunResult
 * schema alone was 2.9 KB per tool: the model reads the text content, and structuredContent still
 * carries the whole result, described by the OpenAPI document); parameter descriptions only where
 * the name and schema do not already say it.
 */

const MIB = 1024 * 1024;

/**
 * Languages the run tool offers: those installed, less "wasi" (it runs a module given as `wasm`
 * or `entryPath`, which the tool does not take: C and C++ cover compiled code).
 */
export function toolLanguages(languages: readonly LanguageInfo[]): LanguageInfo[] {
  return languages.filter((l) => l.installed && l.name !== "wasi");
}

/** "CPython 3.14 (Pyodide 314.0.7)" -> "CPython 3.14": the runtime and its version, without the npm package's. */
function runtimeName(info: LanguageInfo): string {
  return /^[^\s(]+(?: \d[\d.]*)?/.exec(info.version ?? "")?.[0] ?? info.name;
}

/**
 * The installed languages as a model reads them: "Ruby 3.4" where the runtime is named after the
 * language, else "javascript (QuickJS)"; languages of one runtime together, "c/cpp (Clang 22)".
 */
function languageLabels(languages: readonly LanguageInfo[], python: string): string[] {
  const groups: { names: string[]; runtime: string }[] = [];
  for (const info of languages) {
    const runtime = info.name === "python" ? python : runtimeName(info);
    const last = groups.at(-1);
    if (last && last.runtime === runtime) last.names.push(info.name);
    else groups.push({ names: [info.name], runtime });
  }
  return groups.map(({ names, runtime }) =>
    names.length === 1 && runtime.split(" ")[0]!.toLowerCase() === names[0] ? runtime : `${names.join("/")} (${runtime})`,
  );
}

/** The Python the server runs: with the packages it was started with (`--package`), if any. */
export function packageText(packages: readonly { name: string; version: string }[]): string {
  return packages.length === 0 ? "standard library only" : `standard library + ${packages.map((p) => `${p.name} ${p.version}`).join(", ")}`;
}

/** The run tool's description: what is installed, how values and files come back, sessions, limits. */
export function runDescription(languages: readonly LanguageInfo[], packages: readonly { name: string; version: string }[]): string {
  const python = languages.find((l) => l.name === "python");
  const installed = languageLabels(languages, python ? `${runtimeName(python)}, ${packageText(packages)}, no pip` : "");
  return (
    `Run code in a WebAssembly sandbox: no network, subprocesses or host files. Installed: ${installed.join(", ")}. ` +
    `Cwd ${SANDBOX_DIR}: files are written there first; files the code creates or changes come back as resources. ` +
    "The last expression's value comes back (or print() it); Python display() and _repr_png_/_repr_html_ objects come back as images or text. " +
    "Fresh each call, unless session: true. " +
    `Limits: ${DEFAULT_TIMEOUT_MS / 1000} s (timeoutMs), ${DEFAULT_MEMORY_LIMIT_BYTES / MIB} MiB memory, ${DEFAULT_MAX_OUTPUT_BYTES / MIB} MiB output. ` +
    "Any status but ok is an error."
  );
}

/** The session parameter, with the interpreter's lifetimes as the session applies them ("closed after 30 min idle or 1 h"). */
export function sessionDescription(lifetimes: string): string {
  return `Python: run in this conversation's persistent interpreter (notebook: variables, imports, files kept; ${lifetimes}; lost if a run is killed, the answer says so).`;
}

export const SESSION_RESET_DESCRIPTION = "Discard the session interpreter and all it held; the next session run starts fresh.";

/**
 * Input of run_code: fields of the run request (src/protocol/run-request.ts validates them again,
 * with its messages) plus `session`. A file's content is what the run request takes (text, or
 * `{encoding, content}`); stdin is text only here (binary input goes in as a file).
 */
export function runInputShape(languages: readonly Language[], lifetimes: string) {
  return {
    code: z.string(),
    language: z.enum(languages as [Language, ...Language[]]).default("python"),
    session: z.boolean().default(false).describe(sessionDescription(lifetimes)),
    files: z
      .record(z.string(), z.union([z.string(), z.strictObject({ encoding: z.enum(["utf8", "base64"]).optional(), content: z.string() })]))
      .optional()
      .describe(`Path under ${SANDBOX_DIR} -> text or base64.`)
      // Draft 7 JSON Schema: the keys are strings anyway; zod's `propertyNames` would say it again.
      .meta({ propertyNames: undefined }),
    stdin: z.string().optional(),
    timeoutMs: z.number().int().min(1).max(MAX_TIMEOUT_MS).optional(),
  };
}

/** The server's instructions (sent once, in `initialize`): only what the tool description leaves out. */
export const INSTRUCTIONS =
  "wasmbox runs untrusted code for you: use run_code (session: true keeps Python state between calls, like notebook cells). " +
  "Python notes: asyncio works (asyncio.run, top-level await); threads do not start (ThreadPoolExecutor runs tasks one after another).";
