import { readFileSync, readdirSync } from "node:fs";

const PAGE_BYTES = 4096;

/** Pids of `pid` and all its descendants, from /proc (Linux). */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const pending = [pid];
  while (pending.length > 0) {
    const current = pending.pop()!;
    out.push(current);
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${current}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      try {
        const children = readFileSync(`/proc/${current}/task/${task}/children`, "utf8").trim();
        if (children) for (const child of children.split(/\s+/)) pending.push(Number(child));
      } catch {
        // the task ended while we looked
      }
    }
  }
  return out;
}

/** Resident memory of a process and its descendants in bytes, or null where /proc is unavailable. */
export function treeResidentBytes(pid: number): number | null {
  return residentBytes(processTree(pid));
}

/** Resident memory of the given processes in bytes (those that exited count 0), or null if none is left. */
export function residentBytes(pids: readonly number[]): number | null {
  let total = 0;
  let seen = false;
  for (const member of pids) {
    try {
      const statm = readFileSync(`/proc/${member}/statm`, "utf8").split(" ");
      total += Number(statm[1]) * PAGE_BYTES;
      seen = true;
    } catch {
      // gone
    }
  }
  return seen ? total : null;
}

export const canMeasureMemory = (() => {
  try {
    readFileSync(`/proc/${process.pid}/statm`, "utf8");
    return true;
  } catch {
    return false;
  }
})();

/**
 * Milliseconds per clock tick of /proc/<pid>/stat's utime and stime: USER_HZ, which the kernel
 * fixes at 100 for user space on every architecture Node and Deno run on (`getconf CLK_TCK`).
 */
export const CLOCK_TICK_MS = 10;

/** CPU time (user + system) the given processes have used, in clock ticks (usually 10 ms), or null without /proc. */
export function cpuTicks(pids: readonly number[]): number | null {
  let total = 0;
  let seen = false;
  for (const member of pids) {
    try {
      const stat = readFileSync(`/proc/${member}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += Number(fields[11]) + Number(fields[12]); // utime, stime
      seen = true;
    } catch {
      // gone
    }
  }
  return seen ? total : null;
}

/** CPU ticks (user + system) of one thread, from /proc/<pid>/task/<tid>/stat, or null when it is gone. */
export function threadCpuTicks(pid: number, tid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

/**
 * The Deno Web Worker threads of these processes (named `worker-<id>`, ids given in creation order
 * across the process), lowest id first; null where /proc is unreadable.
 */
export function workerThreads(pids: readonly number[]): { pid: number; tid: number; workerId: number }[] | null {
  const out: { pid: number; tid: number; workerId: number }[] = [];
  try {
    for (const pid of pids) {
      for (const task of readdirSync(`/proc/${pid}/task`)) {
        try {
          const match = /^worker-(\d+)$/.exec(readFileSync(`/proc/${pid}/task/${task}/comm`, "utf8").trim());
          if (match) out.push({ pid, tid: Number(task), workerId: Number(match[1]) });
        } catch {
          // the thread ended while we looked
        }
      }
    }
  } catch {
    return null;
  }
  return out.sort((a, b) => a.workerId - b.workerId);
}

/** Pids among `pids` that are alive and not stopped (state other than T/t), from /proc. */
export function runningPids(pids: readonly number[]): number[] {
  const out: number[] = [];
  for (const member of pids) {
    try {
      const stat = readFileSync(`/proc/${member}/stat`, "utf8");
      const state = stat[stat.lastIndexOf(")") + 2];
      if (state !== "T" && state !== "t" && state !== "Z" && state !== "X") out.push(member);
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * Threads of Deno Web Workers in these processes (Deno names each worker's thread `worker-<id>`).
 * A guest cannot rename a thread, so this counts every worker still alive, including nested
 * workers a guest started and workers that ignored termination; null where /proc is unreadable.
 */
export function workerThreadCount(pids: readonly number[]): number | null {
  let count = 0;
  try {
    for (const pid of pids) {
      for (const task of readdirSync(`/proc/${pid}/task`)) {
        try {
          if (/^worker-\d+$/.test(readFileSync(`/proc/${pid}/task/${task}/comm`, "utf8").trim())) count++;
        } catch {
          // the thread ended while we looked
        }
      }
    }
  } catch {
    return null;
  }
  return count;
}
