/** Processes seen through /proc, for tests that check what a server leaves running. */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";

export type Proc = { pid: number; start: string; cmd: string };

/** Every process below `root`, read from /proc (executors lead their own process groups). */
export function descendants(root: number): Proc[] {
  const children = new Map<number, number[]>();
  const info = new Map<number, Proc>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const pid = Number(name);
      const ppid = Number(fields[1]);
      info.set(pid, { pid, start: fields[19]!, cmd: readFileSync(`/proc/${name}/cmdline`, "utf8").replaceAll("\0", " ") });
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch {
      // exited while we looked
    }
  }
  const out: Proc[] = [];
  const stack = [...(children.get(root) ?? [])];
  while (stack.length) {
    const pid = stack.pop()!;
    const proc = info.get(pid);
    if (proc) out.push(proc);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Whether this very process (same pid, same start time) still runs and is not a zombie. */
export function alive(proc: Proc): boolean {
  if (!existsSync(`/proc/${proc.pid}/stat`)) return false;
  try {
    const stat = readFileSync(`/proc/${proc.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] === proc.start && fields[0] !== "Z";
  } catch {
    return false;
  }
}

/** Polls `check` every 50 ms for up to 20 s; fails the test with `what` if it never holds. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`gave up waiting for ${what}`);
}
