import { resolve } from "node:path";
import type { OptionSpec } from "../cli/command-help.js";
import { durationText, OS_SANDBOX_USAGE, parseDurationMs, parseOsSandbox, parsePackageNames, parseSizeBytes, sizeText } from "../cli/parse-units.js";
import { DEFAULT_MAX_REQUEST_BYTES } from "../core/limits.js";
import type { OsSandboxMode } from "../host/executor-launch.js";
import { isIsolation, type Isolation } from "../sandbox/sandbox.js";
import { DEFAULT_MAX_QUEUE, DEFAULT_SHUTDOWN_GRACE_MS } from "./http-server.js";
import { DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT_MS } from "./listen.js";
import { DEFAULT_MAX_BODY_BYTES } from "./read-body.js";
import { isLoopbackHost, resolveToken } from "./request-guard.js";

/** A command-line mistake: the command prints it and exits 2. */
export class ServerUsageError extends Error {}

/** `--isolation process|interpreter`, shared by every server command. */
export function parseIsolation(value: string): Isolation {
  if (!isIsolation(value)) throw new ServerUsageError("--isolation: use process, isolate or interpreter");
  return value;
}

/**
 * Every option of the server commands (`serve --stdio`, `serve --http`, `mcp`), with its line in
 * `--help`. Each command accepts the subset it names (SERVE_STDIO_FLAGS, HTTP_SERVE_FLAGS,
 * MCP_FLAGS) and its help lists that same subset.
 */
export const SERVER_OPTIONS = [
  { flag: "--stdio", help: "answer JSON lines: one request per line on stdin, one reply per line on stdout" },
  { flag: "--http", value: "PORT", help: "listen for HTTP on PORT (0 picks a free one and prints it)" },
  { flag: "--host", value: "ADDR", help: "bind address; beyond loopback a token is required", default: "127.0.0.1" },
  { flag: "--token", value: "TOKEN", help: "require Authorization: Bearer TOKEN", default: "$WASMBOX_TOKEN, else none" },
  { flag: "--max-request-bytes", value: "N", help: "largest request line: bytes, or 64k, 8m", default: sizeText(DEFAULT_MAX_REQUEST_BYTES) },
  { flag: "--max-body-bytes", value: "N", help: "largest request body: bytes, or 64k, 8m", default: sizeText(DEFAULT_MAX_BODY_BYTES) },
  { flag: "--header-timeout", value: "T", help: "time a client has to send the request headers", default: durationText(DEFAULT_HEADERS_TIMEOUT_MS) },
  { flag: "--request-timeout", value: "T", help: "time a client has to send the whole request", default: durationText(DEFAULT_REQUEST_TIMEOUT_MS) },
  { flag: "--max-connections", value: "N", help: "open connections at once; more are refused", default: String(DEFAULT_MAX_CONNECTIONS) },
  { flag: "--max-queue", value: "N", help: "runs waiting beyond the running ones before 429", default: String(DEFAULT_MAX_QUEUE) },
  { flag: "--max-concurrency", value: "N", help: "runs at once", default: "CPU cores, at least 2" },
  { flag: "--pool", value: "N", help: "executors kept warm", default: "2" },
  { flag: "--max-sessions", value: "N", help: "sessions open at once; each holds an executor", default: "16" },
  {
    flag: "--isolation",
    value: "MODE",
    help: "process (a fresh executor process per run), isolate (a fresh V8 isolate per run in a long-lived executor: about twice the throughput) or interpreter (one interpreter reset between runs: fastest, for code you trust only)",
    default: "process",
  },
  { flag: "--package", value: "NAME", help: "a Python package every run gets, imported ahead (repeatable, or a,b); a request's own packages add to them" },
  { flag: "--wheelhouse", value: "DIR", help: "the wheelhouse --package reads", default: "$WASMBOX_WHEELHOUSE, else the cache dir's" },
  {
    flag: "--save-idle-sessions",
    value: "DIR",
    help: "save a session that reaches its idle timeout to DIR instead of closing it (and every open session on shutdown); its next call restores it, also after a restart",
  },
  { flag: "--grace", value: "T", help: "on SIGTERM, SIGINT or SIGHUP, the time runs in flight get to finish; a second signal cancels them", default: durationText(DEFAULT_SHUTDOWN_GRACE_MS) },
  { flag: "--os-sandbox", value: "MODE", help: "auto, require (fail without bubblewrap) or off: run executors inside bubblewrap", default: "auto" },
] as const satisfies readonly OptionSpec[];

/** A server command's option. */
export type ServerFlag = (typeof SERVER_OPTIONS)[number]["flag"];
type Flag = ServerFlag;

/** The specs of `flags`, in SERVER_OPTIONS' order: what a command's `--help` lists. */
export function serverOptions(flags: readonly ServerFlag[]): OptionSpec[] {
  return SERVER_OPTIONS.filter((o) => flags.includes(o.flag));
}

/** Options of the server commands, validated. */
export interface ServerArgs {
  /** --stdio was given. */
  stdio: boolean;
  /** Present when --http PORT was given. */
  port: number | undefined;
  host: string;
  token: string | undefined;
  maxBodyBytes: number | undefined;
  /** --max-request-bytes: the largest request line of `serve --stdio`. */
  maxRequestBytes: number | undefined;
  maxQueue: number | undefined;
  maxConcurrency: number | undefined;
  poolSize: number | undefined;
  maxSessions: number | undefined;
  graceMs: number;
  osSandbox: OsSandboxMode;
  isolation: Isolation;
  headersTimeoutMs: number | undefined;
  requestTimeoutMs: number | undefined;
  maxConnections: number | undefined;
  /** --package NAME (repeatable): Python packages every run gets (Sandbox packages). */
  packages: string[];
  /** --wheelhouse DIR. */
  wheelhouse: string | undefined;
  /** --save-idle-sessions DIR. */
  saveIdleSessionsDir: string | undefined;
}

function wholeNumber(text: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(value) || value < min || value > max) {
    throw new ServerUsageError(`${flag}: give a whole number between ${min} and ${max}`);
  }
  return value;
}

/**
 * Parses `--flag VALUE` / `--flag=VALUE` options; `accepted` lists which this command takes.
 * A non-loopback --host without a token (flag or WASMBOX_TOKEN) is refused here, before anything starts.
 */
export function parseServerArgs(args: string[], accepted: readonly Flag[], env: NodeJS.ProcessEnv = process.env): ServerArgs {
  const out: ServerArgs = {
    stdio: false,
    port: undefined,
    host: "127.0.0.1",
    token: undefined,
    maxBodyBytes: undefined,
    maxRequestBytes: undefined,
    maxQueue: undefined,
    maxConcurrency: undefined,
    poolSize: undefined,
    maxSessions: undefined,
    graceMs: DEFAULT_SHUTDOWN_GRACE_MS,
    osSandbox: "auto",
    isolation: "process",
    headersTimeoutMs: undefined,
    requestTimeoutMs: undefined,
    maxConnections: undefined,
    packages: [],
    wheelhouse: undefined,
    saveIdleSessionsDir: undefined,
  };
  let tokenFlag: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = (eq > 0 ? arg.slice(0, eq) : arg) as Flag;
    const spec = SERVER_OPTIONS.find((o) => o.flag === flag);
    if (!spec || !accepted.includes(flag)) throw new ServerUsageError(`unknown option ${flag}`);
    let value = "";
    if (!("value" in spec)) {
      if (eq > 0) throw new ServerUsageError(`${flag} takes no value`);
    } else if (eq > 0) value = arg.slice(eq + 1);
    else {
      const next = args[++i];
      if (next === undefined) throw new ServerUsageError(`${flag} needs a value`);
      value = next;
    }
    switch (flag) {
      case "--stdio":
        out.stdio = true;
        break;
      case "--max-request-bytes": {
        const bytes = parseSizeBytes(value, "b");
        if (!bytes) throw new ServerUsageError("--max-request-bytes: cannot read a size; use bytes, or e.g. 64k, 8m");
        out.maxRequestBytes = bytes;
        break;
      }
      case "--http":
        out.port = wholeNumber(value, flag, 0, 65535);
        break;
      case "--host":
        if (!value) throw new ServerUsageError("--host needs an address");
        out.host = value;
        break;
      case "--token":
        tokenFlag = value;
        break;
      case "--max-body-bytes": {
        const bytes = parseSizeBytes(value, "b");
        if (!bytes) throw new ServerUsageError("--max-body-bytes: cannot read a size; use bytes, or e.g. 64k, 8m");
        out.maxBodyBytes = bytes;
        break;
      }
      case "--max-queue":
        out.maxQueue = wholeNumber(value, flag, 0);
        break;
      case "--max-concurrency":
        out.maxConcurrency = wholeNumber(value, flag, 1);
        break;
      case "--pool":
        out.poolSize = wholeNumber(value, flag, 0);
        break;
      case "--max-sessions":
        out.maxSessions = wholeNumber(value, flag, 0);
        break;
      case "--grace": {
        const ms = /^\s*0+(\.0*)?\s*(ms|s|m)?\s*$/i.test(value) ? 0 : parseDurationMs(value);
        if (ms === null) throw new ServerUsageError("--grace: cannot read a duration; use seconds, or e.g. 500ms");
        out.graceMs = ms;
        break;
      }
      case "--os-sandbox": {
        const mode = parseOsSandbox(value);
        if (!mode) throw new ServerUsageError(OS_SANDBOX_USAGE);
        out.osSandbox = mode;
        break;
      }
      case "--isolation":
        out.isolation = parseIsolation(value);
        break;
      case "--header-timeout":
      case "--request-timeout": {
        const ms = parseDurationMs(value);
        if (ms === null || ms < 1) throw new ServerUsageError(`${flag}: cannot read a duration; use seconds, or e.g. 500ms, 2m`);
        if (flag === "--header-timeout") out.headersTimeoutMs = ms;
        else out.requestTimeoutMs = ms;
        break;
      }
      case "--max-connections":
        out.maxConnections = wholeNumber(value, flag, 1);
        break;
      case "--save-idle-sessions":
        if (!value.trim()) throw new ServerUsageError("--save-idle-sessions needs a directory");
        out.saveIdleSessionsDir = resolve(value);
        break;
      case "--package":
        if (!value.trim()) throw new ServerUsageError("--package needs a package name");
        out.packages.push(...parsePackageNames(value));
        break;
      case "--wheelhouse":
        if (!value) throw new ServerUsageError("--wheelhouse needs a directory");
        out.wheelhouse = value;
        break;
      default: {
        // Every option SERVER_OPTIONS lists has its case above: this fails to compile otherwise.
        const unhandled: never = flag;
        throw new TypeError(`option ${String(unhandled)} has no handler`);
      }
    }
  }
  out.token = resolveToken(tokenFlag, env);
  if (!isLoopbackHost(out.host) && out.token === undefined) {
    throw new ServerUsageError(`refusing to listen on ${out.host} without a token: give --token or set WASMBOX_TOKEN`);
  }
  return out;
}
