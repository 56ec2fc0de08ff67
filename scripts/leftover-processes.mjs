#!/usr/bin/env node
// Lists the processes a test run left behind, kills them by pid, and exits 1 if there were any.
// scripts/test.sh runs it last: `node scripts/leftover-processes.mjs TEST_SH_PID`.
//
// A process belongs to this run when
//  - its environment carries WASMBOX_TEST_RUN=<this run's marker>: test.sh exports it, so every
//    test file, server, host (also the Python client's, on Deno) and helper process inherits it;
//  - or it is an executor of this checkout started since test.sh started: executors get a clean
//    environment (no marker), so they are known by their command line instead: this checkout's
//    dist/ in it (directly, or in the bubblewrap process above the Deno inside it). A concurrent
//    test run in the same checkout would be counted too; runs in other checkouts are not.
// Linux only (/proc); elsewhere it checks nothing.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const marker = process.env.WASMBOX_TEST_RUN;
const testSh = Number(process.argv[2]);
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const distDir = join(root, "dist") + "/";
/** How long processes that are still stopping get before they count as left behind. */
const GRACE_MS = 10_000;

if (!existsSync("/proc/self/stat") || !marker || !Number.isInteger(testSh)) {
  if (existsSync("/proc/self/stat")) console.error("leftover-processes: needs WASMBOX_TEST_RUN and test.sh's pid");
  process.exit(existsSync("/proc/self/stat") ? 2 : 0);
}

function stat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0], ppid: Number(fields[1]), start: Number(fields[19]) };
  } catch {
    return null;
  }
}

function read(pid, what) {
  try {
    return readFileSync(`/proc/${pid}/${what}`, "utf8");
  } catch {
    return "";
  }
}

/** This process and its ancestors (test.sh among them): they carry the marker and are not leftovers. */
const ancestors = new Set();
for (let pid = process.pid; pid > 1; pid = stat(pid)?.ppid ?? 0) ancestors.add(pid);
const runStart = stat(testSh)?.start ?? Number.POSITIVE_INFINITY;

function leftovers() {
  const found = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (ancestors.has(pid)) continue;
    const info = stat(pid);
    if (!info || info.state === "Z") continue;
    const cmd = read(pid, "cmdline").replaceAll("\0", " ").trim();
    const marked = read(pid, "environ").split("\0").includes(`WASMBOX_TEST_RUN=${marker}`);
    const executor =
      info.start >= runStart &&
      cmd.includes("executor/main.js") &&
      (cmd.includes(distDir) || cmd.includes(` ${root}/dist `) || read(info.ppid, "cmdline").replaceAll("\0", " ").includes(` ${root}/dist `));
    if (marked || executor) found.push({ pid, start: info.start, cmd });
  }
  return found;
}

let found = leftovers();
const deadline = Date.now() + GRACE_MS;
while (found.length > 0 && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 250));
  found = leftovers();
}
if (found.length === 0) process.exit(0);

console.error(`leftover-processes: the test run left ${found.length} process(es) running; killing them:`);
for (const proc of found) {
  console.error(`  ${proc.pid}  ${proc.cmd.slice(0, 300)}`);
  // The same process (same start time) still: a pid is not reused within this check, but be sure.
  if (stat(proc.pid)?.start === proc.start) {
    try {
      process.kill(proc.pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}
process.exit(1);
