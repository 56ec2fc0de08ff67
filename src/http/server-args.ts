import { parseDurationMs, parseSizeBytes } from "../cli/parse-units.js";
import type { OsSandboxMode } from "../host/executor-launch.js";
import { isIsolation, type Isolation } from "../sandbox/sandbox.js";
import { DEFAULT_SHUTDOWN_GRACE_MS } from "./http-server.js";
import { isLoopbackHost, resolveToken } from "./request-guard.js";

/** A command-line mistake: the command prints it and exits 2. */
export class ServerUsageError extends Error {}

/** `--isolation process|interpreter`, shared by every server command. */
export function parseIsolation(value: string): Isolation {
  if (!isIsolation(value)) throw new ServerUsageError("--isolation: use process, isolate or interpreter");
  return value;
}

/** Options of `serve --http` and `mcp --http`, validated. */
export interface ServerArgs {
  /** Present when --http PORT was given. */
  port: number | undefined;
  host: string;
  token: string | undefined;
  maxBodyBytes: number | undefined;
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
}

const VALUE_FLAGS = [
  "--http", "--host", "--token", "--max-body-bytes", "--max-queue", "--max-concurrency", "--pool", "--grace", "--os-sandbox", "--isolation", "--max-sessions",
  "--header-timeout", "--request-timeout", "--max-connections", "--package", "--wheelhouse",
] as const;
type Flag = (typeof VALUE_FLAGS)[number];

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
    port: undefined,
    host: "127.0.0.1",
    token: undefined,
    maxBodyBytes: undefined,
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
  };
  let tokenFlag: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = (eq > 0 ? arg.slice(0, eq) : arg) as Flag;
    if (!accepted.includes(flag)) throw new ServerUsageError(`unknown option ${flag}`);
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      const next = args[++i];
      if (next === undefined) throw new ServerUsageError(`${flag} needs a value`);
      value = next;
    }
    switch (flag) {
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
      case "--os-sandbox":
        if (value !== "auto" && value !== "require" && value !== "off") throw new ServerUsageError("--os-sandbox: use auto, require or off");
        out.osSandbox = value;
        break;
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
      case "--package":
        if (!value.trim()) throw new ServerUsageError("--package needs a package name");
        out.packages.push(...value.split(",").map((name) => name.trim()).filter(Boolean));
        break;
      case "--wheelhouse":
        if (!value) throw new ServerUsageError("--wheelhouse needs a directory");
        out.wheelhouse = value;
        break;
    }
  }
  out.token = resolveToken(tokenFlag, env);
  if (!isLoopbackHost(out.host) && out.token === undefined) {
    throw new ServerUsageError(`refusing to listen on ${out.host} without a token: give --token or set WASMBOX_TOKEN`);
  }
  return out;
}
