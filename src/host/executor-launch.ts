import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { WasmboxError } from "../core/errors.js";

/** Whether executors run inside bubblewrap: "auto" uses it when it works, "require" fails without it. */
export type OsSandboxMode = "auto" | "require" | "off";

export interface LaunchPaths {
  deno: string;
  entry: string;
  /** Directories and files the executor may read: its own code, Pyodide, the snapshot. */
  readable: string[];
}

export interface ExecutorLaunch {
  command: string;
  args: string[];
  env: Record<string, string>;
  /** A host temp directory to remove when the executor exits (its private DENO_DIR). */
  cleanupDir: string | null;
}

/** The executor environment: built from this allow-list, never from the host's. */
function executorEnv(denoDir: string): Record<string, string> {
  return {
    DENO_DIR: denoDir,
    DENO_NO_UPDATE_CHECK: "1",
    DENO_NO_PROMPT: "1",
    NO_COLOR: "1",
    LANG: "C.UTF-8",
  };
}

/**
 * Deno flags for an executor. --no-remote/--no-npm/--deny-import close the module loader's own
 * network paths (a guest could otherwise `import("https://…")` with no --allow-net);
 * every other permission is denied explicitly, and only the given paths may be read.
 */
export function denoArgs(paths: LaunchPaths, options: { heapLimitBytes: number; writable?: string; mode: string; extra: string[]; v8Flags?: string[] }): string[] {
  const heapMiB = Math.max(16, Math.floor(options.heapLimitBytes / (1024 * 1024)));
  return [
    "run",
    "--no-prompt",
    "--no-remote",
    "--no-npm",
    "--no-config",
    "--no-lock",
    "--cached-only",
    `--allow-read=${paths.readable.join(",")}`,
    ...(options.writable ? [`--allow-write=${options.writable}`] : ["--deny-write"]),
    "--deny-net",
    "--deny-env",
    "--deny-run",
    "--deny-ffi",
    "--deny-sys",
    "--deny-import",
    `--v8-flags=${[`--max-old-space-size=${heapMiB}`, ...(options.v8Flags ?? [])].join(",")}`,
    paths.entry,
    options.mode,
    ...options.extra,
  ];
}

/** Where an executor inside bubblewrap finds its DENO_DIR (a private host directory bound there). */
const SANDBOX_DENO_DIR = "/tmp/deno-dir";

function bwrapArgs(paths: LaunchPaths, env: Record<string, string>, writable: string | undefined, denoDir?: string): string[] {
  const args = [
    "--unshare-all", // new user, ipc, pid, net (no interfaces but lo, down), uts and cgroup namespaces
    "--die-with-parent",
    "--new-session",
    "--cap-drop", "ALL",
    "--clearenv",
  ];
  for (const [key, value] of Object.entries(env)) args.push("--setenv", key, value);
  // Only what the dynamically linked Deno binary needs, read-only; no /home, /root, /etc secrets.
  args.push("--ro-bind", "/usr", "/usr");
  for (const dir of ["/lib", "/lib64", "/lib32", "/etc/ld.so.cache"]) args.push("--ro-bind-try", dir, dir);
  args.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp");
  if (denoDir) args.push("--bind", denoDir, SANDBOX_DENO_DIR);
  // Bind the binary's directory, not the binary: under a Deno host, Node-compat rewrites an argv
  // where the Deno path is followed by a non-subcommand into `deno run -A …` (denoland/deno#35443),
  // which would corrupt these bwrap arguments. The executor also checks its own permissions.
  args.push("--ro-bind", dirname(paths.deno), dirname(paths.deno));
  for (const path of paths.readable) args.push("--ro-bind", path, path);
  if (writable) args.push("--bind", dirname(writable), dirname(writable));
  args.push("--chdir", "/tmp");
  return args;
}

let bwrapProbe: { path: string | null; reason: string } | null = null;

function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

/** Finds bwrap and checks, once per process, that it can really start Deno here. */
export function probeBubblewrap(paths: LaunchPaths): { path: string | null; reason: string } {
  if (bwrapProbe) return bwrapProbe;
  if (process.platform !== "linux") return (bwrapProbe = { path: null, reason: "bubblewrap is Linux-only" });
  const bwrap = process.env.WASMBOX_BWRAP ?? findOnPath("bwrap");
  if (!bwrap) return (bwrapProbe = { path: null, reason: "bwrap is not installed" });
  const probe = spawnSync(bwrap, [...bwrapArgs(paths, executorEnv("/tmp/deno"), undefined), paths.deno, "--version"], {
    encoding: "utf8",
    timeout: 10_000,
  });
  if (probe.status !== 0) {
    const why = (probe.stderr || probe.error?.message || `exit ${probe.status}`).trim().split("\n")[0];
    return (bwrapProbe = { path: null, reason: `bwrap cannot start executors here: ${why}` });
  }
  return (bwrapProbe = { path: bwrap, reason: "bubblewrap" });
}

/** The active layers, as said once on stderr and in `wasmbox doctor`-style output. */
export function describeLayers(bwrap: string | null, bwrapReason: string, watchdog: boolean): string {
  const layers = [
    "Deno executor with every permission denied but reading its own assets",
    "environment built from an allow-list",
    "a private DENO_DIR per executor (a copy of wasmbox's own compile cache, discarded after)",
    watchdog ? "host watchdog (time, resident memory, output)" : "host watchdog (time, output; no memory reading on this OS)",
  ];
  if (bwrap) layers.push("bubblewrap (no network, own pid namespace, read-only view of the assets)");
  return `wasmbox: active layers: ${layers.join("; ")}.` + (bwrap ? "" : ` Not active: bubblewrap (${bwrapReason}).`);
}

export interface LaunchOptions {
  bwrap: string | null;
  heapLimitBytes: number;
  mode: "serve" | "make-snapshot";
  extra: string[];
  writable?: string;
  v8Flags?: string[];
  /**
   * A compile cache to start from (a DENO_DIR a trusted executor filled: runtime-registry.ts). It
   * is copied into the executor's private DENO_DIR, so nothing an executor writes reaches another.
   */
  denoDirSeed?: string;
  /** Use this directory as DENO_DIR and keep it (to make a compile cache), instead of a temp one. */
  keepDenoDir?: string;
}

export function buildLaunch(paths: LaunchPaths, options: LaunchOptions): ExecutorLaunch {
  const denoDir = options.keepDenoDir ?? mkdtempSync(join(tmpdir(), "wasmbox-deno-"));
  if (options.denoDirSeed && !options.keepDenoDir) {
    try {
      // Skipping Deno's module analysis and V8's compilation of Pyodide's 1.2 MB of JavaScript
      // saves a few hundred milliseconds per executor (bench/: cold start).
      cpSync(options.denoDirSeed, denoDir, { recursive: true });
    } catch {
      // a seed pruned meanwhile: the executor compiles from scratch
    }
  }
  const cleanupDir = options.keepDenoDir ? null : denoDir;
  if (options.bwrap) {
    const env = executorEnv(SANDBOX_DENO_DIR);
    return {
      command: options.bwrap,
      args: [...bwrapArgs(paths, env, options.writable, denoDir), paths.deno, ...denoArgs(paths, options)],
      env: {},
      cleanupDir,
    };
  }
  return {
    command: paths.deno,
    args: denoArgs(paths, options),
    env: executorEnv(denoDir),
    cleanupDir,
  };
}

export function requireLayer(mode: OsSandboxMode, bwrap: string | null, reason: string): void {
  if (mode === "require" && !bwrap) {
    throw new WasmboxError("SANDBOX_LAYER_MISSING", `osSandbox "require": ${reason}`);
  }
}
