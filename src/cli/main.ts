/**
 * The `wasmbox` command: `run` executes one program like `python` would, `serve --stdio` answers
 * JSON lines. Input is validated here, at the edge; the facade does the rest.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, resolve, sep } from "node:path";
import { WasmboxError } from "../core/errors.js";
import { DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MEMORY_LIMIT_BYTES, DEFAULT_TIMEOUT_MS } from "../core/limits.js";
import { LANGUAGES, type Language } from "../core/request.js";
import type { RunRequest } from "../protocol/run-request.js";
import { CLI_EXIT_CODES, fileBytes, type RunResult } from "../core/result.js";
import type { OsSandboxMode } from "../host/executor-launch.js";
import { isIsolation, Sandbox, type Isolation } from "../sandbox/sandbox.js";
import { containedHostPath, normalizeSandboxPath } from "../vfs/sandbox-path.js";
import { languageForFile } from "./languages-command.js";
import { parseDurationMs, parseSizeBytes } from "./parse-units.js";
import { serveStdio } from "./serve-stdio.js";
import { shutdownSignals } from "./shutdown-signals.js";

const USAGE = `usage: wasmbox run [options] (FILE | -c CODE | -) [-- ARG...]
       wasmbox serve --stdio [--max-request-bytes N] [--pool N] [--max-sessions N] [--isolation MODE]
                     [--package NAME]... [--wheelhouse DIR]
       wasmbox serve --http PORT [server options]
       wasmbox mcp [--http PORT] [server options]
       wasmbox languages [--json]
       wasmbox packages add SPEC... [--wheelhouse DIR] [--index-url URL] [--pyodide-dist DIR]
       wasmbox packages list [--json] [--wheelhouse DIR]
       wasmbox packages remove NAME... [--wheelhouse DIR]
       wasmbox --version

Runs untrusted code in a zero-permission WebAssembly sandbox.

run options:
  -c CODE               run CODE (like python -c)
  --language NAME       python (default), javascript, ruby, c, cpp, sqlite, php, lua, wasi;
                        a FILE's extension picks it otherwise (.js .rb .c .cpp .sql .php .lua .wasm)
  --timeout T           wall-clock limit: seconds, or 500ms, 2s, 1m (default 30s)
  --memory M            memory limit: MiB, or 512m, 1g (default 256m)
  --max-output N        cap on stdout+stderr: bytes, or 64k, 1m (default 1m)
  --max-stdin N         cap on stdin, refused before the run (default 64m, at most 1g)
  --max-input-file N    cap on each --file (default 64m, at most 1g)
  --max-input N         cap on stdin, files and code together (default 128m, at most 1g)
  --max-output-file N   cap on each file the run writes back; past it: output limit (default 64m)
  --max-output-files N  cap on all files written back together (default 128m, at most 256m)
  --file HOST[:SANDBOX] copy a host file into the sandbox (repeatable)
  --out DIR             write files the run created or changed into DIR, and each rich
                        result's image, SVG, HTML and markdown as output-N.png/.jpg/.svg/.html/.md
  --stdin FILE          the program's stdin (default: this process's stdin when piped)
  --env K=V             set a variable in the guest's environment (repeatable)
  --json                print the result object as JSON, and nothing else, on stdout
  --package NAME        a Python package from the wheelhouse to import (repeatable, or a,b);
                        add it first with: wasmbox packages add NAME
  --wheelhouse DIR      the wheelhouse (default $WASMBOX_WHEELHOUSE, else the cache dir's)
  --os-sandbox MODE     auto (default), require or off: run executors inside bubblewrap
Exit status: the program's, or 124 timeout, 137 memory limit, 125 output limit, 70 crash, 2 usage.

server options (serve --http, mcp):
  --host ADDR           bind address (default 127.0.0.1; beyond loopback a token is required)
  --token TOKEN         require Authorization: Bearer TOKEN (default: $WASMBOX_TOKEN)
  --max-body-bytes N    largest request body: bytes, or 64k, 8m (default 8m)
  --header-timeout T    time a client has to send the request headers (default 10s)
  --request-timeout T   time a client has to send the whole request (default 60s)
  --max-connections N   open connections at once; more are refused (default 256)
  --max-queue N         runs waiting beyond the running ones before 429 (serve --http; default 64)
  --max-concurrency N   runs at once (default: CPU cores, at least 2)
  --pool N              executors kept warm (default 2)
  --max-sessions N      sessions open at once; each holds an executor (default 16)
  --isolation MODE      process (default): a fresh executor process per run; isolate: each run
                        gets a fresh V8 isolate and wasm instance inside a long-lived executor
                        (about twice the throughput); interpreter: executors reset one interpreter
                        between runs (fastest; no boundary between runs: code you trust only)
  --package NAME        a Python package every run gets, imported ahead (repeatable); a request's
                        own "packages" add to them
  --wheelhouse DIR      as for run
  --grace T             on SIGTERM/SIGINT/SIGHUP, time runs get to finish (default 10s)
  --os-sandbox MODE     as for run`;

class UsageError extends Error {}

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
const CAP_FLAGS: Record<string, "maxStdinBytes" | "maxInputFileBytes" | "maxInputBytes" | "maxOutputFileBytes" | "maxOutputFilesTotalBytes"> = {
  "--max-stdin": "maxStdinBytes",
  "--max-input-file": "maxInputFileBytes",
  "--max-input": "maxInputBytes",
  "--max-output-file": "maxOutputFileBytes",
  "--max-output-files": "maxOutputFilesTotalBytes",
};

function takeValue(args: string[], i: number, flag: string): string {
  const value = args[i + 1];
  if (value === undefined) throw new UsageError(`${flag} needs a value`);
  return value;
}

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
  for (; i < args.length; i++) {
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
    } else if (flag === "-c") {
      if (source) throw new UsageError("give one program: FILE, -c CODE or -");
      source = { kind: "code", code: value() };
      i++;
      break; // like python: what follows -c CODE is argv
    } else if (flag === "--timeout") {
      const ms = parseDurationMs(value());
      if (ms === null) throw new UsageError(`--timeout: cannot read a duration; use seconds, or e.g. 500ms`);
      request.timeoutMs = ms;
    } else if (flag === "--memory") {
      const bytes = parseSizeBytes(value(), "m");
      if (bytes === null) throw new UsageError(`--memory: cannot read a size; use MiB, or e.g. 512m, 1g`);
      request.memoryLimitBytes = bytes;
    } else if (flag === "--max-output") {
      const bytes = parseSizeBytes(value(), "b");
      if (bytes === null) throw new UsageError(`--max-output: cannot read a size; use bytes, or e.g. 64k, 1m`);
      request.maxOutputBytes = bytes;
    } else if (flag in CAP_FLAGS) {
      const field = CAP_FLAGS[flag]!;
      const bytes = parseSizeBytes(value(), "b");
      if (bytes === null) throw new UsageError(`${flag}: cannot read a size; use bytes, or e.g. 64m, 1g`);
      request[field] = bytes;
    } else if (flag === "--file") {
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
    } else if (flag === "--out") {
      outDir = value();
    } else if (flag === "--stdin") {
      stdinFile = value();
    } else if (flag === "--env") {
      const pair = value();
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new UsageError(`--env ${pair}: expected K=V`);
      request.env![pair.slice(0, eq)] = pair.slice(eq + 1);
    } else if (flag === "--language") {
      const name = value();
      if (!(LANGUAGES as readonly string[]).includes(name)) throw new UsageError(`--language: use one of ${LANGUAGES.join(", ")}`);
      language = name as Language;
    } else if (flag === "--json") {
      json = true;
    } else if (flag === "--package") {
      packages.push(...value().split(",").map((name) => name.trim()).filter(Boolean));
    } else if (flag === "--wheelhouse") {
      wheelhouse = value();
    } else if (flag === "--os-sandbox") {
      const mode = value();
      if (mode !== "auto" && mode !== "require" && mode !== "off") throw new UsageError("--os-sandbox: use auto, require or off");
      osSandbox = mode;
    } else if (flag === "-") {
      if (source) throw new UsageError("give one program: FILE, -c CODE or -");
      source = { kind: "stdin" };
    } else if (flag.startsWith("-")) {
      throw new UsageError(`unknown option ${flag}`);
    } else {
      if (source) throw new UsageError("give one program: FILE, -c CODE or -");
      source = { kind: "file", path: arg };
      i++;
      break; // like python: what follows the script is argv
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

async function runCommand(args: string[]): Promise<number> {
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

async function serveCommand(args: string[]): Promise<number> {
  let stdio = false;
  let maxRequestBytes: number | undefined;
  let poolSize: number | undefined;
  let osSandbox: OsSandboxMode = "auto";
  let isolation: Isolation = "process";
  let maxSessions: number | undefined;
  let wheelhouse: string | undefined;
  const packages: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--stdio") stdio = true;
    else if (arg === "--package") packages.push(...takeValue(args, i++, arg).split(",").map((name) => name.trim()).filter(Boolean));
    else if (arg === "--wheelhouse") wheelhouse = takeValue(args, i++, arg);
    else if (arg === "--max-sessions") {
      maxSessions = Number(takeValue(args, i++, arg));
      if (!Number.isInteger(maxSessions) || maxSessions < 0) throw new UsageError("--max-sessions: give a whole number");
    }
    else if (arg === "--isolation") {
      const mode = takeValue(args, i++, arg);
      if (!isIsolation(mode)) throw new UsageError("--isolation: use process, isolate or interpreter");
      isolation = mode;
    }
    else if (arg === "--max-request-bytes") {
      const bytes = parseSizeBytes(takeValue(args, i++, arg), "b");
      if (!bytes) throw new UsageError("--max-request-bytes: cannot read a size");
      maxRequestBytes = bytes;
    } else if (arg === "--pool") {
      poolSize = Number(takeValue(args, i++, arg));
      if (!Number.isInteger(poolSize) || poolSize < 0) throw new UsageError("--pool: give a whole number");
    } else if (arg === "--os-sandbox") {
      const mode = takeValue(args, i++, arg);
      if (mode !== "auto" && mode !== "require" && mode !== "off") throw new UsageError("--os-sandbox: use auto, require or off");
      osSandbox = mode;
    } else throw new UsageError(`unknown option ${arg}`);
  }
  if (!stdio) throw new UsageError("serve needs --stdio");
  // SIGTERM, SIGINT, SIGHUP, or the parent going away (a client killed outright cannot send
  // shutdown): cancel what is running and exit, leaving no executor behind (shutdown-signals.ts).
  const stop = shutdownSignals();
  try {
    const sandbox = await Sandbox.create({ poolSize, osSandbox, isolation, maxSessions, packages, wheelhouse });
    try {
      await serveStdio(sandbox, process.stdin, process.stdout, { maxRequestBytes, signal: stop.signal });
    } finally {
      await sandbox.close();
    }
    return stop.exitCode();
  } finally {
    stop.dispose();
  }
}

export async function main(args: string[]): Promise<number> {
  try {
    const [command, ...rest] = args;
    if (command === "run") return await runCommand(rest);
    if (command === "serve" && rest.includes("--http")) return await (await import("../http/http-command.js")).httpCommand(rest);
    if (command === "serve") return await serveCommand(rest);
    if (command === "languages") return (await import("./languages-command.js")).languagesCommand(rest);
    if (command === "packages") return (await import("./packages-command.js")).packagesCommand(rest);
    if (command === "mcp") return await (await import("../mcp/mcp-command.js")).mcpCommand(rest);
    if (command === "--version" || command === "-V") {
      const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
      process.stdout.write(`wasmbox ${pkg.version}\n`);
      return 0;
    }
    if (command === "--help" || command === "-h" || command === "help") {
      process.stdout.write(USAGE + "\n");
      return 0;
    }
    throw new UsageError(command ? `unknown command ${command}` : "no command given");
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`wasmbox: ${error.message} (see wasmbox --help)\n`);
      return 2;
    }
    if (error instanceof WasmboxError && ["INVALID_REQUEST", "INVALID_PATH", "UNSUPPORTED_LANGUAGE", "REQUEST_TOO_LARGE", "PACKAGE_NOT_FOUND"].includes(error.code)) {
      // The code last: the Python client reads it from this line when the host exits at start
      // (a `--package` the wheelhouse lacks) and raises the matching error.
      process.stderr.write(`wasmbox: ${error.message} [${error.code}]\n`);
      return 2;
    }
    const code = error instanceof WasmboxError ? ` [${error.code}]` : "";
    process.stderr.write(`wasmbox: ${error instanceof Error ? error.message : String(error)}${code}\n`);
    return 70;
  }
}

