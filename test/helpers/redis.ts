/**
 * A redis-server of the test's own (Debian's `redis-server` package) on a free loopback port, never
 * the system's. `persistent` keeps an append-only file in a temp dir so the data survives a
 * restart on the same port; otherwise nothing is written to disk. Stop it by pid (`stop()`).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Whether `redis-server` is installed (.ci/run installs Debian's package). */
export function redisAvailable(): boolean {
  return spawnSync("redis-server", ["--version"]).status === 0;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface TestRedis {
  port: number;
  url: string;
  /** The running server's process (changes on restart). */
  process(): ChildProcess;
  /** SIGTERM, then waits for it to exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** Starts it again on the same port (and, if persistent, the same data). */
  start(): Promise<void>;
}

/** Starts a redis-server; resolves once it accepts connections. */
export async function startRedis({ persistent = false } = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "wasmbox-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--protected-mode", "yes"];
  // BullMQ asks for noeviction: an evicted job would be a lost job.
  args.push("--maxmemory-policy", "noeviction");
  if (persistent) args.push("--appendonly", "yes", "--appendfsync", "always");
  else args.push("--appendonly", "no");
  let child: ChildProcess;
  const start = async () => {
    child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000);
      child.stdout!.on("data", (d) => {
        out += d;
        if (out.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}): ${out}`));
      });
    });
    child.removeAllListeners("exit");
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return { port, url: `redis://127.0.0.1:${port}/0`, process: () => child, stop, start };
}
