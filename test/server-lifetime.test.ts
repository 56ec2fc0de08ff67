/**
 * A server stops, leaving no executor behind, however its life ends (issue 17): SIGTERM, SIGINT or
 * SIGHUP (exit 143, 130, 129 after a clean shutdown), the process that started it dying without a
 * word (`npx wasmbox serve --http 8787 &`, then `kill %1`), or the server itself killed outright.
 * Every server mode: serve --stdio, serve --http, mcp (stdio) and mcp --http, with the host on Node
 * and on Deno (as the Python client runs it). Needs `npm run build`.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import { after, describe, test } from "node:test";
import { denoBinary, pyodideDir } from "../src/host/runtime-paths.js";
import { BIN } from "./helpers/cli.js";
import { alive, descendants, type Proc } from "./helpers/processes.js";

interface Mode {
  name: string;
  args: string[];
  /** What it says on stderr once it listens (the HTTP modes); stdio modes say nothing. */
  ready?: RegExp;
}

const MODES: Mode[] = [
  { name: "serve --stdio", args: ["serve", "--stdio"] },
  { name: "serve --http", args: ["serve", "--http", "0"], ready: /listening on http:/ },
  { name: "mcp", args: ["mcp"] },
  { name: "mcp --http", args: ["mcp", "--http", "0"], ready: /MCP endpoint http:/ },
];

/** The host's runtime: the CLI on Node (npx) or on Deno's Node compatibility (the Python client). */
interface Host {
  name: string;
  argv: string[];
  env: NodeJS.ProcessEnv;
}

const HOSTS: Host[] = [
  { name: "Node", argv: [process.execPath, BIN], env: process.env },
  { name: "Deno", argv: [denoBinary(), "run", "-A", BIN], env: { ...process.env, WASMBOX_PYODIDE_DIR: pyodideDir() } },
];

/** Processes this file started, killed by pid at the end whatever happened. */
const started = new Set<ChildProcess>();
const leftovers: Proc[] = [];
after(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const proc of leftovers) if (alive(proc)) process.kill(proc.pid, "SIGKILL");
});

/** Polls `check` every 100 ms until it holds; fails with `what` after `deadlineMs` (a failure bound, not a timing claim). */
async function poll(check: () => boolean, what: string, deadlineMs: number): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) assert.fail(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const isExecutor = (p: Proc) => p.cmd.includes("executor/main.js");

function collect(stream: Readable): () => string {
  let text = "";
  stream.on("data", (chunk: Buffer) => (text += chunk.toString()));
  return () => text;
}

/** The process `pid` as a Proc (its start time tells it from a later process with the same pid). */
function proc(pid: number): Proc {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return { pid, start: stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!, cmd: readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ") };
}

/** Waits until the server `pid` is ready (its ready line, a warm executor) and returns it with everything below it. */
async function readyTree(pid: number, mode: Mode, stderr: () => string): Promise<Proc[]> {
  // Generous: a cold cache first builds the interpreter snapshot.
  await poll(() => (!mode.ready || mode.ready.test(stderr())) && descendants(pid).some(isExecutor), `${mode.name} to start an executor (stderr: ${stderr()})`, 180_000);
  const tree = [proc(pid), ...descendants(pid)];
  leftovers.push(...tree);
  return tree;
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(child.exitCode) : child.once("exit", (code) => resolve(code))));
}

describe("a server stopped by a signal", () => {
  const cases: [Host, Mode, NodeJS.Signals, number][] = [
    ...MODES.map((mode): [Host, Mode, NodeJS.Signals, number] => [HOSTS[0]!, mode, "SIGTERM", 143]),
    [HOSTS[0]!, MODES[0]!, "SIGHUP", 129],
    [HOSTS[0]!, MODES[1]!, "SIGINT", 130],
    [HOSTS[0]!, MODES[2]!, "SIGHUP", 129],
    [HOSTS[0]!, MODES[3]!, "SIGINT", 130],
    [HOSTS[1]!, MODES[0]!, "SIGTERM", 143],
    [HOSTS[1]!, MODES[1]!, "SIGHUP", 129],
    [HOSTS[1]!, MODES[2]!, "SIGINT", 130],
  ];
  for (const [host, mode, signal, code] of cases) {
    test(`${mode.name} on ${host.name} shuts down cleanly on ${signal}, exits ${code} and leaves no executor`, async () => {
      // stdin stays open (a pipe this test holds): only the signal can end the stdio modes.
      const server = spawn(host.argv[0]!, [...host.argv.slice(1), ...mode.args, "--pool", "1"], { stdio: ["pipe", "ignore", "pipe"], env: host.env });
      started.add(server);
      const stderr = collect(server.stderr!);
      const tree = await readyTree(server.pid!, mode, stderr);
      server.kill(signal);
      assert.equal(await exitOf(server), code, stderr());
      await poll(() => tree.every((p) => !alive(p)), `every executor of ${mode.name} to exit`, 15_000);
    });
  }
});

describe("a server whose parent dies", () => {
  for (const host of HOSTS) {
    for (const mode of MODES) {
      test(`${mode.name} on ${host.name} exits and leaves no executor when the process that started it is killed with SIGKILL`, async () => {
        // The parent shell starts the server in the background, says its pid, and waits, as
        // `npx wasmbox ... &` does. The server's stdin is fd 3, a socket this test holds open: its
        // input never ends, so only noticing the parent's death can stop it.
        const parent = spawn("sh", ["-c", `"$@" <&3 3<&- & echo $!; wait`, "sh", ...host.argv, ...mode.args, "--pool", "1"], {
          stdio: ["ignore", "pipe", "pipe", "pipe"],
          env: host.env,
        });
        started.add(parent);
        const stdout = collect(parent.stdout!);
        const stderr = collect(parent.stderr!);
        await poll(() => /^\d+\n/.test(stdout()), "the parent to say the server's pid", 30_000);
        const serverPid = Number(/^(\d+)\n/.exec(stdout())![1]);
        try {
          const tree = await readyTree(serverPid, mode, stderr);
          parent.kill("SIGKILL");
          await exitOf(parent);
          await poll(() => tree.every((p) => !alive(p)), `${mode.name} and its executors to exit after its parent died (stderr: ${stderr()})`, 15_000);
          // The modes that say why they stop name the parent (serve --stdio says nothing on stderr).
          if (mode.name !== "serve --stdio") assert.match(stderr(), /parent exited/);
        } finally {
          (parent.stdio[3] as Readable).destroy();
        }
      });
    }
  }
});

describe("a server killed outright", () => {
  const setpriv = spawnSync("sh", ["-c", "command -v setpriv"]).status === 0;
  for (const osSandbox of ["auto", "off"] as const) {
    test(`serve --stdio --os-sandbox ${osSandbox} killed with SIGKILL leaves no executor, also one stopped between a session's calls`, { skip: osSandbox === "off" && !setpriv ? "no setpriv here to give executors a parent-death signal" : false }, async () => {
      const server = spawn(process.execPath, [BIN, "serve", "--stdio", "--pool", "1", "--os-sandbox", osSandbox], { stdio: ["pipe", "pipe", "pipe"] });
      started.add(server);
      const stdout = collect(server.stdout!);
      const stderr = collect(server.stderr!);
      const send = (message: object) => server.stdin!.write(JSON.stringify(message) + "\n");
      send({ id: "open", op: "session.open" });
      await poll(() => /"sessionId"/.test(stdout()), `a session (stderr: ${stderr()})`, 180_000);
      const sessionId = (JSON.parse(stdout().split("\n").find((l) => l.includes("sessionId"))!) as { sessionId: string }).sessionId;
      send({ id: "cell", op: "session.run", sessionId, code: "x = 1" });
      await poll(() => /"id":"cell"/.test(stdout()), "the session's first call", 60_000);
      // Between calls the host stops the session's executor (SIGSTOP): it cannot read the end of
      // its stdin then, so only a parent-death signal (bwrap's, or setpriv's) can end it.
      const stopped = () => descendants(server.pid!).filter(isExecutor).some((p) => stateOf(p.pid) === "T");
      await poll(stopped, "the session's executor to be stopped between calls", 15_000);
      const tree = [proc(server.pid!), ...descendants(server.pid!)];
      leftovers.push(...tree);
      server.kill("SIGKILL");
      await exitOf(server);
      await poll(() => tree.every((p) => !alive(p)), "every executor of the killed host to exit", 15_000);
    });
  }
});

function stateOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0]!;
  } catch {
    return null;
  }
}
