/** The `wasmbox` command as a child process, for tests of what a user types. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The built CLI (dist/): what `npx wasmbox` runs. */
export const BIN = fileURLToPath(new URL("../../dist/cli/bin.js", import.meta.url));

export interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `wasmbox ARGS` to its end: `entry` the script to run (default the built CLI; with a .ts
 * entry node runs it through tsx), `stdin` what it reads, `env` its environment.
 */
export function wasmbox(args: string[], options: { stdin?: string | Buffer; cwd?: string; env?: NodeJS.ProcessEnv; entry?: string } = {}): Promise<Outcome> {
  const entry = options.entry ?? BIN;
  const node = entry.endsWith(".ts") ? ["--import", "tsx", entry] : [entry];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...node, ...args], { cwd: options.cwd, env: options.env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? "");
  });
}
