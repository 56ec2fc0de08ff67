import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Host temporary files and directories wasmbox makes (an executor's private DENO_DIR without
 * bubblewrap, a snapshot being written) carry their owner in their name: `<prefix><pid>.<start>-…`
 * where <start> is the owner's start time from /proc (0 where there is no /proc). Each is removed
 * on every exit path this process controls (the executor's exit, this process's exit); what a
 * host killed with SIGKILL left behind is swept by the next host that starts, and only when its
 * owner is gone: never another live host's.
 */

/** This process's start time in clock ticks since boot (field 22 of /proc/self/stat), or 0. */
export function processStartTicks(pid: number | "self" = "self"): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: fields after it follow the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]) || 0;
  } catch {
    return 0;
  }
}

const OWNER = `${process.pid}.${processStartTicks()}`;

/** This process's owner tag (`pid.start`), as written in the names and locks it owns. */
export function ownerTag(): string {
  return OWNER;
}

/** Whether the process named by an owner tag (`pid.start`) is still running. */
export function ownerAlive(tag: string): boolean {
  const match = /^(\d+)\.(\d+)$/.exec(tag);
  if (!match) return true; // not ours to judge
  const pid = Number(match[1]);
  const start = Number(match[2]);
  if (pid === process.pid) return start === processStartTicks() || start === 0;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    // EPERM: a process of another user has the pid; its start time below tells if it is the owner
  }
  if (start === 0) return true;
  const now = processStartTicks(pid);
  return now === 0 ? !existsProc() : now === start;
}

function existsProc(): boolean {
  try {
    readFileSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
}

/** Directories this process made and has not removed yet: removed synchronously when it exits. */
const live = new Set<string>();
let exitHooked = false;

/** Makes a private temporary directory under the OS temp dir, owned (by name) by this process. */
export function makeOwnedTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}${OWNER}-`));
  live.add(dir);
  if (!exitHooked) {
    exitHooked = true;
    // 'exit' runs on a normal end and on process.exit() (what the servers' SIGTERM handlers call),
    // so executors still starting or running then leave nothing behind.
    process.once("exit", () => {
      for (const path of live) rmSync(path, { recursive: true, force: true });
    });
  }
  return dir;
}

/** Removes a directory made by makeOwnedTempDir. Idempotent. */
export function removeOwnedTempDir(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // best effort: a later start sweeps it
  }
  live.delete(dir);
}

/**
 * Removes entries of `dir` whose name matches `pattern` (its first group an owner tag) and whose
 * owner is gone. Returns how many were removed.
 */
export function sweepOrphans(dir: string, pattern: RegExp): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const match = pattern.exec(name);
    if (!match || ownerAlive(match[1]!)) continue;
    try {
      rmSync(join(dir, name), { recursive: true, force: true });
      removed++;
    } catch {
      // another user's, or being removed by another sweeper
    }
  }
  return removed;
}

/** A name for a file or directory written beside `path` and renamed into place when complete. */
export function ownedTempSibling(path: string, random: string): string {
  return `${path}.tmp-${OWNER}-${random}`;
}

/** Matches names made by ownedTempSibling; group 1 is the owner. */
export const TEMP_SIBLING_PATTERN = /\.tmp-(\d+\.\d+)-[0-9a-f]+$/;

/** The prefix of every executor's private DENO_DIR made on the host (without bubblewrap). */
export const EXECUTOR_DIR_PREFIX = "wasmbox-deno-";
/** The prefix of the directory holding an executor's frame channel (a FIFO), with or without bubblewrap. */
export const CHANNEL_DIR_PREFIX = "wasmbox-chan-";

let swept = false;

/** Once per process: sweeps the executor directories of hosts that died. */
export function sweepExecutorDirsOnce(): void {
  if (swept) return;
  swept = true;
  for (const prefix of [EXECUTOR_DIR_PREFIX, CHANNEL_DIR_PREFIX]) sweepOrphans(tmpdir(), new RegExp(`^${prefix}(\\d+\\.\\d+)-`));
}
