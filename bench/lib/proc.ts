/** Process helpers: timed spawns and reading /proc (Linux) for resident memory and CPU time. */
import { spawn, type SpawnOptions } from "node:child_process";
import { readFileSync } from "node:fs";
import { processTree } from "../../dist/host/process-memory.js";

const PAGE_BYTES = 4096;
export const MIB = 1024 * 1024;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Exec {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, in milliseconds. */
  wallMs: number;
}

/** Runs a command to completion, timing it from spawn to exit. Never rejects for a non-zero exit. */
export function exec(command: string, args: string[], options: SpawnOptions & { timeoutMs?: number; input?: string } = {}): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { ...options, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      // keep the tail only: a failing peer can be chatty
      stderr = (stderr + d).slice(-64 * 1024);
    });
    const timer = options.timeoutMs
      ? setTimeout(() => {
          stderr += `\n[bench: killed after ${options.timeoutMs} ms]`;
          child.kill("SIGKILL");
        }, options.timeoutMs)
      : null;
    child.on("error", (error) => {
      if (timer) clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, wallMs: performance.now() - started });
    });
    child.stdin!.on("error", () => {});
    child.stdin!.end(options.input ?? "");
  });
}

/** The last line of output that parses as a JSON object, or null. */
export function lastJsonLine<T = Record<string, unknown>>(text: string): T | null {
  const lines = text.trim().split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (!line.startsWith("{")) continue;
    try {
      return JSON.parse(line) as T;
    } catch {
      // not JSON: keep looking
    }
  }
  return null;
}

/** First meaningful line of an error output, shortened for a table note. */
export function firstErrorLine(text: string, max = 300): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/\x1b\[[0-9;]*m/g, "");
  const lines = clean.split("\n").map((l) => l.trim()).filter(Boolean);
  const line = lines.find((l) => /error/i.test(l)) ?? lines[lines.length - 1] ?? "(no output)";
  return line.length > max ? line.slice(0, max) + "…" : line;
}

/** Pids of `pid`'s descendants (not `pid` itself), as wasmbox's own watchdog finds them in /proc. */
export function descendants(pid: number): number[] {
  return processTree(pid).slice(1);
}

export function comm(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return null;
  }
}

/** Parent pid from /proc/<pid>/stat, or null when the process is gone. */
export function parentPid(pid: number): number | null {
  const stat = readStat(pid);
  return stat ? Number(stat[1]) : null;
}

/** Fields of /proc/<pid>/stat after the command name (index 0 is the state). */
function readStat(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** Resident bytes of one process (statm's second field), or null when it is gone. */
export function residentBytes(pid: number): number | null {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]) * PAGE_BYTES;
  } catch {
    return null;
  }
}

/** User + system CPU time of one process in clock ticks, or null when it is gone. */
export function cpuTicks(pid: number): number | null {
  const stat = readStat(pid);
  // utime and stime are fields 14 and 15 of stat; after the name, index 11 and 12.
  return stat ? Number(stat[11]) + Number(stat[12]) : null;
}

/** Deno processes below `root`: with bubblewrap each executor is deno under two bwrap processes. */
export function denoDescendants(root: number): number[] {
  return descendants(root).filter((pid) => comm(pid) === "deno" && isLive(pid) && !isBenchPeer(pid));
}

/** A Deno process the bench started itself (a peer under bench/peers/), not a wasmbox executor. */
function isBenchPeer(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("/bench/peers/");
  } catch {
    return false;
  }
}

/** Whether a process exists and is not a zombie (an executor that was just killed lingers as one). */
function isLive(pid: number): boolean {
  const state = readStat(pid)?.[0];
  return state !== undefined && state !== "Z" && state !== "X";
}

/**
 * Waits until at least `count` Deno executors below `root` exist and all of them have been idle
 * (no CPU time used) for `quietMs`: the pool is warm. Returns false if that did not happen within
 * `timeoutMs`, so the caller can note it rather than hang.
 */
export async function waitForIdleExecutors(root: number, count: number, timeoutMs = 30_000, quietMs = 120): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const pids = denoDescendants(root);
    if (pids.length >= count) {
      const before = pids.map(cpuTicks);
      await sleep(quietMs);
      const after = pids.map(cpuTicks);
      if (before.every((ticks, i) => ticks !== null && after[i] === ticks)) return true;
    } else {
      await sleep(50);
    }
  }
  return false;
}

/** Resident bytes of each executor below `root`: the Deno process, and with it its bwrap parents. */
export function executorResidentBytes(root: number): { deno: number; withWrappers: number }[] {
  const out: { deno: number; withWrappers: number }[] = [];
  for (const pid of denoDescendants(root)) {
    const deno = residentBytes(pid) ?? 0;
    let withWrappers = deno;
    // walk up through bwrap wrappers until the host process
    let parent = parentPid(pid);
    while (parent !== null && parent !== root && comm(parent) === "bwrap") {
      withWrappers += residentBytes(parent) ?? 0;
      parent = parentPid(parent);
    }
    out.push({ deno, withWrappers });
  }
  return out;
}
