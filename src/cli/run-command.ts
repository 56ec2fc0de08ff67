/**
 * `wasmbox run [options] (FILE | -c CODE | -) [-- ARG...]`: one program, run like `python` would
 * run it. RUN_OPTIONS is the one list of its options: the parser takes exactly these, `--help`
 * prints them.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, resolve, sep } from "node:path";
import {
  DEFAULT_MAX_INPUT_BYTES,
  DEFAULT_MAX_INPUT_FILE_BYTES,
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_MAX_OUTPUT_FILE_BYTES,
  DEFAULT_MAX_OUTPUT_FILES_TOTAL_BYTES,
  DEFAULT_MAX_STDIN_BYTES,
  DEFAULT_MEMORY_LIMIT_BYTES,
  DEFAULT_TIMEOUT_MS,
  MAX_INPUT_BYTES_LIMIT,
  MAX_OUTPUT_FILES_BYTES_LIMIT,
} from "../core/limits.js";
import { LANGUAGES, type Language } from "../core/request.js";
import type { RunRequest } from "../protocol/run-request.js";
import { CLI_EXIT_CODES, fileBytes, type RunResult } from "../core/result.js";
import type { OsSandboxMode } from "../host/executor-launch.js";
import { Sandbox } from "../sandbox/sandbox.js";
import { containedHostPath, normalizeSandboxPath } from "../vfs/sandbox-path.js";
import { findOption, UsageError, type CommandHelp, type OptionSpec } from "./command-help.js";
import { LANGUAGE_BY_EXTENSION, languageForFile } from "./languages-command.js";
import { durationText, OS_SANDBOX_USAGE, parseDurationMs, parseOsSandbox, parsePackageNames, parseSizeBytes, sizeText } from "./parse-units.js";

const MiB = 1024 * 1024;
const extensions = [...new Set(Object.keys(LANGUAGE_BY_EXTENSION))].filter((e) => e !== ".py").join(" ");

/** Every option of `wasmbox run`, in the order `--help` lists them. */
export const RUN_OPTIONS = [
  { flag: "-c", value: "CODE", help: "run CODE (like python -c); what follows it is the program's argv" },
  { flag: "--language", value: "NAME", help: `${LANGUAGES.join(", ")}; without it a FILE's extension picks (${extensions})`, default: "python" },
  { flag: "--timeout", value: "T", help: "wall-clock limit: seconds, or 500ms, 2s, 1m", default: durationText(DEFAULT_TIMEOUT_MS) },
  { flag: "--cpu-time", value: "T", help: "CPU-time limit, as --timeout: the same verdict on a loaded machine (Linux only)" },
  { flag: "--memory", value: "M", help: "memory limit: MiB, or 512m, 1g", default: sizeText(DEFAULT_MEMORY_LIMIT_BYTES) },
  { flag: "--max-output", value: "N", help: "cap on stdout and stderr together: bytes, or 64k, 1m", default: sizeText(DEFAULT_MAX_OUTPUT_BYTES) },
  { flag: "--max-stdin", value: "N", help: `cap on stdin, refused before the run; at most ${sizeText(MAX_INPUT_BYTES_LIMIT)}`, default: sizeText(DEFAULT_MAX_STDIN_BYTES) },
  { flag: "--max-input-file", value: "N", help: `cap on each --file; at most ${sizeText(MAX_INPUT_BYTES_LIMIT)}`, default: sizeText(DEFAULT_MAX_INPUT_FILE_BYTES) },
  { flag: "--max-input", value: "N", help: `cap on stdin, files and code together; at most ${sizeText(MAX_INPUT_BYTES_LIMIT)}`, default: sizeText(DEFAULT_MAX_INPUT_BYTES) },
  { flag: "--max-output-file", value: "N", help: "cap on each file the run writes back; past it: output limit", default: sizeText(DEFAULT_MAX_OUTPUT_FILE_BYTES) },
  { flag: "--max-output-files", value: "N", help: `cap on all files written back together; at most ${sizeText(MAX_OUTPUT_FILES_BYTES_LIMIT)}`, default: sizeText(DEFAULT_MAX_OUTPUT_FILES_TOTAL_BYTES) },
  { flag: "--file", value: "HOST[:SANDBOX]", help: "copy a host file into the sandbox, under its own name or SANDBOX (repeatable)" },
  { flag: "--out", value: "DIR", help: "write the files the run created or changed into DIR, and each rich result as output-N.png/.jpg/.svg/.html/.md" },
  { flag: "--stdin", value: "FILE", help: "the program's stdin", default: "this process's stdin when it is piped" },
  { flag: "--env", value: "K=V", help: "a variable of the guest's environment, which holds nothing else (repeatable)" },
  { flag: "--json", help: "print the result object as JSON, and nothing else, on stdout" },
  { flag: "--package", value: "NAME", help: "a Python package from the wheelhouse to import (repeatable, or a,b); add it first with wasmbox packages add NAME" },
  { flag: "--wheelhouse", value: "DIR", help: "the wheelhouse", default: "$WASMBOX_WHEELHOUSE, else the cache dir's" },
  { flag: "--os-sandbox", value: "MODE", help: "auto, require (fail without bubblewrap) or off: run executors inside bubblewrap", default: "auto" },
] as const satisfies readonly OptionSpec[];

type RunFlag = (typeof RUN_OPTIONS)[number]["flag"];

/** `wasmbox run --help`. */
export const RUN_HELP: CommandHelp = {
  usage: ["wasmbox run [options] (FILE | -c CODE | -) [-- ARG...]"],
  about: [
    "Runs one program in the sandbox like python would: its stdout to stdout as it is produced, its",
    "stderr to stderr, its exit code as ours. FILE is a program file, -c CODE a string, - reads the",
    "program from stdin. Arguments after the program (or after --) are its argv.",
  ].join("\n"),
  sections: [{ title: "options:", options: RUN_OPTIONS }],
  notes: `exit status: the program's own, or ${CLI_EXIT_CODES.timeout} timeout, ${CLI_EXIT_CODES.memory_limit} memory limit, ${CLI_EXIT_CODES.output_limit} output limit, ${CLI_EXIT_CODES.crash} crash, ${CLI_EXIT_CODES.cancelled} cancelled, 2 bad usage.`,
  examples: [
    { says: "run a string of Python", command: `wasmbox run -c "print('hello')"` },
    { says: "a file with arguments, at most 2 seconds and 128 MiB", command: "wasmbox run --timeout 2s --memory 128m prog.py -- --verbose in.csv" },
    { says: "JavaScript from stdin, the result as JSON", command: `echo "1 + 1" | wasmbox run --language javascript --json -` },
    { says: "give it a file and keep what it writes", command: `wasmbox run --file data.csv --out results/ -c "open('out.txt', 'w').write(open('data.csv').read())"` },
  ],
};

interface RunCommand {
  request: RunRequest;
  json: boolean;
  outDir: string | null;
  stdinFile: string | null;
  codeFromStdin: boolean;
  osSandbox: OsSandboxMode;
  wheelhouse: string | undefined;
}

/** The run's input and output caps, as `wasmbox run` options (sizes in bytes, or 64m, 1g, …). */
const CAP_FLAGS = {
  "--max-stdin": "maxStdinBytes",
  "--max-input-file": "maxInputFileBytes",
  "--max-input": "maxInputBytes",
  "--max-output-file": "maxOutputFileBytes",
  "--max-output-files": "maxOutputFilesTotalBytes",
} as const satisfies Partial<Record<RunFlag, keyof RunRequest>>;

function takeValue(args: string[], i: number, flag: string): string {
  const value = args[i + 1];
  if (value === undefined) throw new UsageError(`${flag} needs a value`);
  return value;
}

/** Reads `wasmbox run`'s arguments (after `run`): the request and what to do with its result. */
export function parseRunArgs(args: string[]): RunCommand {
  const request: RunRequest = { files: {}, env: {}, argv: [] };
  const files = request.files as Record<string, Uint8Array>;
  let json = false;
  let outDir: string | null = null;
  let stdinFile: string | null = null;
  let source: { kind: "code"; code: string } | { kind: "file"; path: string } | { kind: "stdin" } | null = null;
  let osSandbox: OsSandboxMode = "auto";
  let language: Language | null = null;
  let wheelhouse: string | undefined;
  const packages: string[] = [];
  let i = 0;
  options: for (; i < args.length; i++) {
    const arg = args[i]!;
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      const v = takeValue(args, i, flag);
      i++;
      return v;
    };
    if (flag === "--") {
      i++;
      break;
    }
    if (flag === "-") {
      if (source) throw new UsageError("give one program: FILE, -c CODE or -");
      source = { kind: "stdin" };
      continue;
    }
    if (!flag.startsWith("-")) {
      if (source) throw new UsageError("give one program: FILE, -c CODE or -");
      source = { kind: "file", path: arg };
      i++;
      break; // like python: what follows the script is argv
    }
    const spec = findOption(RUN_OPTIONS, flag);
    if (!spec) throw new UsageError(`unknown option ${flag}`);
    const known: RunFlag = spec.flag;
    switch (known) {
      case "-c":
        if (source) throw new UsageError("give one program: FILE, -c CODE or -");
        source = { kind: "code", code: value() };
        i++;
        break options; // like python: what follows -c CODE is argv
      case "--timeout": {
        const ms = parseDurationMs(value());
        if (ms === null) throw new UsageError(`--timeout: cannot read a duration; use seconds, or e.g. 500ms`);
        request.timeoutMs = ms;
        break;
      }
      case "--cpu-time": {
        const ms = parseDurationMs(value());
        if (ms === null) throw new UsageError(`--cpu-time: cannot read a duration; use seconds, or e.g. 500ms`);
        request.cpuTimeMs = ms;
        break;
      }
      case "--memory": {
        const bytes = parseSizeBytes(value(), "m");
        if (bytes === null) throw new UsageError(`--memory: cannot read a size; use MiB, or e.g. 512m, 1g`);
        request.memoryLimitBytes = bytes;
        break;
      }
      case "--max-output": {
        const bytes = parseSizeBytes(value(), "b");
        if (bytes === null) throw new UsageError(`--max-output: cannot read a size; use bytes, or e.g. 64k, 1m`);
        request.maxOutputBytes = bytes;
        break;
      }
      case "--max-stdin":
      case "--max-input-file":
      case "--max-input":
      case "--max-output-file":
      case "--max-output-files": {
        const bytes = parseSizeBytes(value(), "b");
        if (bytes === null) throw new UsageError(`${flag}: cannot read a size; use bytes, or e.g. 64m, 1g`);
        request[CAP_FLAGS[known]] = bytes;
        break;
      }
      case "--file": {
        const spec = value();
        const colon = spec.indexOf(":");
        const host = colon >= 0 ? spec.slice(0, colon) : spec;
        let target: string;
        try {
          target = normalizeSandboxPath(colon >= 0 ? spec.slice(colon + 1) : basename(host));
        } catch (error) {
          throw new UsageError(`--file ${spec}: ${(error as Error).message}`);
        }
        try {
          files[target] = readFileSync(host);
        } catch (error) {
          throw new UsageError(`--file ${spec}: cannot read ${host}: ${(error as NodeJS.ErrnoException).code ?? error}`);
        }
        break;
      }
      case "--out":
        outDir = value();
        break;
      case "--stdin":
        stdinFile = value();
        break;
      case "--env": {
        const pair = value();
        const eq = pair.indexOf("=");
        if (eq <= 0) throw new UsageError(`--env ${pair}: expected K=V`);
        request.env![pair.slice(0, eq)] = pair.slice(eq + 1);
        break;
      }
      case "--language": {
        const name = value();
        if (!(LANGUAGES as readonly string[]).includes(name)) throw new UsageError(`--language: use one of ${LANGUAGES.join(", ")}`);
        language = name as Language;
        break;
      }
      case "--json":
        json = true;
        break;
      case "--package":
        packages.push(...parsePackageNames(value()));
        break;
      case "--wheelhouse":
        wheelhouse = value();
        break;
      case "--os-sandbox": {
        const mode = parseOsSandbox(value());
        if (!mode) throw new UsageError(OS_SANDBOX_USAGE);
        osSandbox = mode;
        break;
      }
      default: {
        // Every option RUN_OPTIONS lists has its case above: this fails to compile otherwise.
        const unhandled: never = known;
        throw new TypeError(`wasmbox run: option ${String(unhandled)} has no handler`);
      }
    }
  }
  request.argv = args.slice(i).filter((a, n) => !(n === 0 && a === "--"));
  if (!source) throw new UsageError("nothing to run: give FILE, -c CODE or -");
  if (source.kind === "code") request.code = source.code;
  else if (source.kind === "file") {
    let code: Buffer;
    try {
      code = readFileSync(source.path);
    } catch (error) {
      throw new UsageError(`cannot read ${source.path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
    const entry = basename(source.path);
    files[entry] = code;
    request.entryPath = entry;
    language ??= languageForFile(entry);
  }
  if (language) request.language = language;
  if (packages.length > 0) request.packages = packages;
  return { request, json, outDir, stdinFile, codeFromStdin: source.kind === "stdin", osSandbox, wheelhouse };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/** The files --out writes for a rich result's formats: output-N.png, .jpg, .svg, .html, .md (N from 1, as in `results`). */
const RICH_FILE_EXTENSIONS: [mime: string, ext: string, base64: boolean][] = [
  ["image/png", "png", true],
  ["image/jpeg", "jpg", true],
  ["image/svg+xml", "svg", false],
  ["text/html", "html", false],
  ["text/markdown", "md", false],
];

function writeOutFiles(result: RunResult, outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  // Rich results first: a file the run wrote under the same name wins.
  result.results.forEach((r, i) => {
    for (const [mime, ext, base64] of RICH_FILE_EXTENSIONS) {
      const value = r.data[mime];
      if (typeof value === "string") writeFileSync(resolve(outDir, `output-${i + 1}.${ext}`), base64 ? Buffer.from(value, "base64") : value);
    }
  });
  for (const file of result.files) {
    const target = containedHostPath(outDir, file.path, resolve, sep);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, fileBytes(file));
  }
}

/** `wasmbox run ARGS`: runs the program and returns the exit status. */
export async function runCommand(args: string[]): Promise<number> {
  const command = parseRunArgs(args);
  const { request } = command;
  if (command.codeFromStdin) request.code = (await readAll(process.stdin)).toString("utf8");
  if (command.stdinFile) {
    try {
      request.stdin = readFileSync(command.stdinFile);
    } catch (error) {
      throw new UsageError(`--stdin: cannot read ${command.stdinFile}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
  } else if (!command.codeFromStdin && !process.stdin.isTTY) {
    request.stdin = await readAll(process.stdin);
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const sandbox = await Sandbox.create({ poolSize: 0, osSandbox: command.osSandbox, languages: [request.language ?? "python"], wheelhouse: command.wheelhouse });
  let result: RunResult;
  try {
    result = await sandbox.run(request, {
      signal: controller.signal,
      // Without --json the CLI behaves like python: output appears as it is produced.
      onStdout: command.json ? undefined : (chunk) => process.stdout.write(chunk),
      onStderr: command.json ? undefined : (chunk) => process.stderr.write(chunk),
    });
  } finally {
    await sandbox.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  if (command.outDir) writeOutFiles(result, command.outDir);
  if (command.json) {
    process.stdout.write(JSON.stringify(result) + "\n");
  } else if (result.status !== "ok" && result.status !== "error") {
    process.stderr.write(`wasmbox: ${result.status}: ${statusLine(result, request)}\n`);
  }
  if (result.status === "ok" || result.status === "error") return result.exitCode ?? 1;
  return CLI_EXIT_CODES[result.status];
}

/** One line on why a run ended early, naming the limit in the units the flags take. */
function statusLine(result: RunResult, request: RunRequest): string {
  const mib = (bytes: number) => `${Math.round((bytes / 1024 / 1024) * 10) / 10} MiB`;
  switch (result.status) {
    case "timeout":
      if (result.error?.type === "CpuTimeLimit") return `the run exceeded its CPU-time limit of ${(request.cpuTimeMs ?? 0) / 1000} s`;
      return `the run exceeded its time limit of ${(request.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000} s`;
    case "memory_limit":
      return `the run exceeded its memory limit of ${mib(request.memoryLimitBytes ?? DEFAULT_MEMORY_LIMIT_BYTES)}`;
    case "output_limit":
      // An output file past its cap names the file and the cap (the --max-output-file* flags).
      if (result.error?.message.startsWith("output file")) return result.error.message;
      return `the run exceeded its output limit of ${request.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES} bytes`;
    default:
      return result.error?.message || result.error?.type || "";
  }
}

