import { spawnSync } from "node:child_process";
import { closeSync, cpSync, existsSync, openSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { WasmboxError } from "../core/errors.js";
import { CHANNEL_DIR_PREFIX, EXECUTOR_DIR_PREFIX, makeOwnedTempDir, removeOwnedTempDir } from "./host-temp.js";

/** Whether executors run inside bubblewrap: "auto" uses it when it works, "require" fails without it. */
export type OsSandboxMode = "auto" | "require" | "off";

export interface LaunchPaths {
  deno: string;
  entry: string;
  /** Directories and files the executor may read: its own code, Pyodide, the snapshot. */
  readable: string[];
  /**
   * Inside bubblewrap every readable path appears under /wasmbox/; a path's name there is its
   * entry here, else its base name (dist/ is always /wasmbox/dist). Never a host path.
   */
  sandboxNames?: Readonly<Record<string, string>>;
}

/** Where an executor keeps what Deno itself writes (its DENO_DIR), and how the watchdog measures it. */
export type PrivateStorage =
  /** A size-capped tmpfs inside bubblewrap, at `path` in the executor's mount namespace (RAM, never the host's disk). */
  | { kind: "tmpfs"; path: string; capBytes: number }
  /** A host directory (no bubblewrap): the watchdog walks it. */
  | { kind: "dir"; path: string };

export interface ExecutorLaunch {
  command: string;
  args: string[];
  env: Record<string, string>;
  /** A host temp directory to remove when the executor exits (its private DENO_DIR). */
  cleanupDir: string | null;
  /**
   * The FIFO the host writes its frames into (a host path), and the temp directory holding it, to
   * remove when the executor exits. Frames do not travel on the executor's stdin: every worker of
   * the process could read that (Deno.stdin needs no permission), and a read a guest left pending
   * would take a later run's frames. Only the main isolate may open this path; workers are started
   * without read permission for it.
   */
  channel: string;
  channelDir: string;
  /** Open files the child gets as fds 3, 4, …; the spawner closes them after spawning. */
  passFds: number[];
  /** The executor's writable storage, for the watchdog. Null for a kept DENO_DIR (a trusted primer). */
  storage: PrivateStorage | null;
}

/**
 * What a guest may make Deno write into the executor's private DENO_DIR (module analysis and V8's
 * code cache for the modules it imports; the Web Cache API is refused outright, see LOCATION_DATA)
 * beyond the copy of the compile cache it starts with. Past it the run ends as memory_limit: the
 * storage is memory inside bubblewrap (a tmpfs) and the host's disk without it, and either way it
 * is the guest's to fill only this far.
 */
export const PRIVATE_STORAGE_BUDGET_BYTES = 16 * 1024 * 1024;
/** The tmpfs is this much larger than seed + budget: the watchdog ends the run first, the size cap holds regardless. */
const TMPFS_MARGIN_BYTES = 8 * 1024 * 1024;
/** /tmp inside bubblewrap (the executor's working directory): nothing is meant to be written there. */
const SANDBOX_TMP_BYTES = 1024 * 1024;

/**
 * Deno keeps origin-bound storage (the Web Cache API's files, localStorage) under
 * DENO_DIR/location_data. Where that name is a read-only file, Deno cannot create the directory and
 * `caches.open()` rejects at once ("Failed to create cache storage directory"): a wall that holds
 * in a nested Worker too, where `caches` is back in the global.
 */
const LOCATION_DATA = "location_data";

/** Where an executor inside bubblewrap finds its assets and its DENO_DIR: neutral paths, nothing of the host's layout. */
export const SANDBOX_ROOT = "/wasmbox";
const SANDBOX_DENO_DIR = `${SANDBOX_ROOT}/deno-dir`;
const SANDBOX_DENO_BIN_DIR = `${SANDBOX_ROOT}/deno`;
const SANDBOX_OUT_DIR = `${SANDBOX_ROOT}/out`;

/**
 * The executor environment: built from this allow-list, never from the host's. An empty
 * DENO_WEBGPU_BACKEND gives wgpu no backend at all, so `navigator.gpu.requestAdapter()` resolves
 * null even where a GPU or a software renderer (Mesa's llvmpipe) is installed: Deno reads it with
 * std::env in its own process (deno_webgpu, `Backends::from_comma_list`), out of the guest's reach.
 * MALLOC_ARENA_MAX: glibc gives each thread that allocates its own arena and keeps what ended
 * workers freed there; with a worker per run ("isolate") that held ~250 MB extra resident per
 * executor (measured: 440-480 MB with the default, a steady 225 MB with one or two arenas).
 */
function executorEnv(denoDir: string): Record<string, string> {
  return {
    DENO_DIR: denoDir,
    DENO_NO_UPDATE_CHECK: "1",
    DENO_NO_PROMPT: "1",
    DENO_WEBGPU_BACKEND: "",
    MALLOC_ARENA_MAX: "2",
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
    // Workers are started with fewer permissions than the main isolate (not the frame channel).
    "--unstable-worker-options",
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

/** Host path -> the neutral path it has inside bubblewrap. */
type PathMap = Map<string, string>;

function sandboxPathMap(paths: LaunchPaths): PathMap {
  const map: PathMap = new Map();
  const taken = new Set<string>();
  const dist = dirname(dirname(paths.entry)); // <dist>/executor/main.js
  for (const path of [dist, ...paths.readable]) {
    const clean = path.replace(/\/+$/, "");
    if (map.has(clean)) continue;
    const wanted = clean === dist ? "dist" : (paths.sandboxNames?.[path] ?? paths.sandboxNames?.[clean] ?? basename(clean));
    let name = wanted.replace(/[^A-Za-z0-9._@+-]/g, "_") || "asset";
    for (let i = 2; taken.has(name); i++) name = `${wanted}-${i}`;
    taken.add(name);
    map.set(clean, `${SANDBOX_ROOT}/${name}`);
  }
  return map;
}

/** Rewrites a host path (or a path under one) to its neutral form; other strings are left alone. */
function toSandbox(map: PathMap, value: string): string {
  for (const [host, inside] of map) {
    if (value === host || value === host + "/") return inside + (value.endsWith("/") ? "/" : "");
    if (value.startsWith(host + "/")) return inside + value.slice(host.length);
  }
  return value;
}

/** A DENO_DIR seed as bubblewrap recreates it: its directories and regular files (symlinks are Deno's to remake). */
interface SeedListing {
  dirs: string[];
  files: { rel: string; bytes: number }[];
  bytes: number;
}

const seedListings = new Map<string, SeedListing | null>();

/** Lists a compile-cache seed once: it is renamed into place complete and never changes after. */
function listSeed(seed: string): SeedListing | null {
  if (seedListings.has(seed)) return seedListings.get(seed)!;
  let listing: SeedListing | null = { dirs: [], files: [], bytes: 0 };
  try {
    const walk = (rel: string) => {
      for (const entry of readdirSync(join(seed, rel), { withFileTypes: true })) {
        const child = rel ? `${rel}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          listing!.dirs.push(child);
          walk(child);
        } else if (entry.isFile()) {
          const bytes = statSync(join(seed, child)).size;
          listing!.files.push({ rel: child, bytes });
          listing!.bytes += bytes;
        }
      }
    };
    walk("");
  } catch {
    listing = null; // pruned meanwhile: executors compile from scratch
  }
  seedListings.set(seed, listing);
  return listing;
}

interface BwrapStorage {
  /** A host directory bound as the DENO_DIR (a trusted primer making the compile cache). */
  keepDir?: string;
  /** Otherwise: a tmpfs of this size, filled from the seed through `seedFds`. */
  tmpfsBytes?: number;
  seed?: { listing: SeedListing; fds: number[] };
}

function bwrapArgs(paths: LaunchPaths, env: Record<string, string>, writable: string | undefined, storage?: BwrapStorage): string[] {
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
  // A minimal /dev (null, zero, random, tty, …): no GPU (/dev/dri) or any other device node.
  args.push("--proc", "/proc", "--dev", "/dev", ...sized(SANDBOX_TMP_BYTES), "--tmpfs", "/tmp");
  const map = sandboxPathMap(paths);
  // Bind the binary's directory, not the binary: under a Deno host, Node-compat rewrites an argv
  // where the Deno path is followed by a non-subcommand into `deno run -A …` (denoland/deno#35443),
  // which would corrupt these bwrap arguments. The executor also checks its own permissions.
  args.push("--ro-bind", dirname(paths.deno), SANDBOX_DENO_BIN_DIR);
  for (const [host, inside] of map) args.push("--ro-bind", host, inside);
  if (storage?.keepDir) {
    args.push("--bind", storage.keepDir, SANDBOX_DENO_DIR);
  } else if (storage?.tmpfsBytes) {
    args.push(...sized(storage.tmpfsBytes), "--tmpfs", SANDBOX_DENO_DIR);
    if (storage.seed) {
      for (const dir of storage.seed.listing.dirs) args.push("--dir", `${SANDBOX_DENO_DIR}/${dir}`);
      storage.seed.listing.files.forEach((file, i) => args.push("--file", String(3 + i), `${SANDBOX_DENO_DIR}/${file.rel}`));
    }
    args.push("--ro-bind", "/dev/null", `${SANDBOX_DENO_DIR}/${LOCATION_DATA}`);
  }
  if (writable) args.push("--bind", dirname(writable), SANDBOX_OUT_DIR);
  args.push("--chdir", "/tmp");
  return args;
}

/** The launch paths as an executor inside bubblewrap sees them. */
function sandboxedPaths(paths: LaunchPaths): LaunchPaths {
  const map = sandboxPathMap(paths);
  return {
    deno: `${SANDBOX_DENO_BIN_DIR}/${basename(paths.deno)}`,
    entry: toSandbox(map, paths.entry),
    readable: paths.readable.map((path) => toSandbox(map, path)),
  };
}

let bwrapProbe: { path: string | null; reason: string } | null = null;
/** Whether bwrap takes --size (0.8 and later), learned by the probe. */
let tmpfsSizeSupported = true;

/** `--size N` before a `--tmpfs`, where bwrap supports it. */
function sized(bytes: number): string[] {
  return tmpfsSizeSupported ? ["--size", String(bytes)] : [];
}

function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

let setprivProbe: string | null | undefined;
/**
 * setpriv (util-linux), when it can set a parent-death signal here; found and tried once per
 * process. Without bubblewrap (whose --die-with-parent does the same), an executor the host has
 * stopped between calls (SIGSTOP: ExecutorProcess.pause) cannot read the end of its stdin when the
 * host is killed outright, and would stay stopped forever. The kernel's parent-death signal reaches
 * it stopped or not. Node has no prctl(PR_SET_PDEATHSIG) of its own; setpriv sets it, then execs
 * Deno (same pid, same process group). It is bound to the thread that spawned the child, which is
 * the host's main thread on Node and on Deno, as for bwrap.
 */
function findSetpriv(): string | null {
  if (setprivProbe !== undefined) return setprivProbe;
  if (process.platform !== "linux") return (setprivProbe = null);
  const setpriv = findOnPath("setpriv");
  const works = setpriv !== null && spawnSync(setpriv, ["--pdeathsig", "KILL", "--", "true"], { stdio: "ignore", timeout: 10_000 }).status === 0;
  return (setprivProbe = works ? setpriv : null);
}

/** Finds bwrap and checks, once per process, that it can really start Deno here. */
export function probeBubblewrap(paths: LaunchPaths): { path: string | null; reason: string } {
  if (bwrapProbe) return bwrapProbe;
  if (process.platform !== "linux") return (bwrapProbe = { path: null, reason: "bubblewrap is Linux-only" });
  const bwrap = process.env.WASMBOX_BWRAP ?? findOnPath("bwrap");
  if (!bwrap) return (bwrapProbe = { path: null, reason: "bwrap is not installed" });
  const attempt = () =>
    spawnSync(bwrap, [...bwrapArgs(paths, executorEnv("/tmp/deno"), undefined), sandboxedPaths(paths).deno, "--version"], { encoding: "utf8", timeout: 10_000 });
  let probe = attempt();
  if (probe.status !== 0 && /--size/.test(probe.stderr ?? "")) {
    // bubblewrap before 0.8 has no --size: its tmpfs mounts are uncapped, and the watchdog's
    // measurement of Deno's writes (storage-usage.ts) is the wall there.
    tmpfsSizeSupported = false;
    probe = attempt();
  }
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
  if (bwrap) {
    layers.push(
      "bubblewrap (no network, own pid namespace, no devices, read-only view of the assets at neutral paths under /wasmbox, Deno's own writes on a size-capped tmpfs)",
    );
  }
  return (
    `wasmbox: active layers: ${layers.join("; ")}.` +
    (bwrap
      ? ""
      : ` Not active: bubblewrap (${bwrapReason}); so guest code can see the host paths of wasmbox's own assets and Deno binary (Deno.execPath(), argv, stack traces), and Deno's own writes go to a host temp directory that the watchdog measures.`)
  );
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

/** The channel's name inside bubblewrap (/wasmbox/frames) and its base name on the host. */
const CHANNEL_NAME = "frames";

/** A FIFO in a fresh owned temp dir: the host's frames to one executor (see ExecutorLaunch.channel). */
function makeChannel(): { channel: string; channelDir: string } {
  const channelDir = makeOwnedTempDir(CHANNEL_DIR_PREFIX);
  const channel = join(channelDir, CHANNEL_NAME);
  // Node has no mkfifo(); coreutils' (and macOS's) does it.
  const made = spawnSync("mkfifo", ["-m", "600", channel], { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  if (made.status !== 0) {
    removeOwnedTempDir(channelDir);
    const why = made.error?.message ?? made.stderr.trim();
    throw new WasmboxError("EXECUTOR_START_FAILED", `cannot make the executor's frame channel (mkfifo ${channel}): ${why}`);
  }
  return { channel, channelDir };
}

export function buildLaunch(base: LaunchPaths, options: LaunchOptions): ExecutorLaunch {
  const { channel, channelDir } = makeChannel();
  // The main isolate reads the channel: it is one of its readable paths and its first argument.
  const paths: LaunchPaths = { ...base, readable: [...base.readable, channel], sandboxNames: { ...base.sandboxNames, [channel]: CHANNEL_NAME } };
  options = { ...options, extra: [channel, ...options.extra] };
  const seed = options.denoDirSeed && !options.keepDenoDir ? listSeed(options.denoDirSeed) : null;
  if (options.bwrap) {
    const inside = sandboxedPaths(paths);
    const map = sandboxPathMap(paths);
    const writable = options.writable ? `${SANDBOX_OUT_DIR}/${basename(options.writable)}` : undefined;
    const storage: BwrapStorage = {};
    const passFds: number[] = [];
    let capBytes = 0;
    if (options.keepDenoDir) storage.keepDir = options.keepDenoDir;
    else {
      capBytes = (seed?.bytes ?? 0) + PRIVATE_STORAGE_BUDGET_BYTES + TMPFS_MARGIN_BYTES;
      storage.tmpfsBytes = capBytes;
      if (seed) {
        try {
          for (const file of seed.files) passFds.push(openSync(join(options.denoDirSeed!, file.rel), "r"));
          storage.seed = { listing: seed, fds: passFds };
        } catch {
          // a seed pruned meanwhile: the executor compiles from scratch
          for (const fd of passFds.splice(0)) closeSync(fd);
        }
      }
    }
    const extra = options.extra.map((arg) => (options.writable && arg === options.writable ? writable! : toSandbox(map, arg)));
    return {
      command: options.bwrap,
      args: [
        ...bwrapArgs(paths, executorEnv(SANDBOX_DENO_DIR), options.writable, storage),
        inside.deno,
        ...denoArgs(inside, { ...options, writable, extra }),
      ],
      env: {},
      cleanupDir: null,
      channel,
      channelDir,
      passFds,
      storage: options.keepDenoDir ? null : { kind: "tmpfs", path: SANDBOX_DENO_DIR, capBytes },
    };
  }
  const denoDir = options.keepDenoDir ?? makeOwnedTempDir(EXECUTOR_DIR_PREFIX);
  if (seed) {
    try {
      // Skipping Deno's module analysis and V8's compilation of Pyodide's 1.2 MB of JavaScript
      // saves a few hundred milliseconds per executor (bench/: cold start).
      cpSync(options.denoDirSeed!, denoDir, { recursive: true });
    } catch {
      // a seed pruned meanwhile: the executor compiles from scratch
    }
  }
  if (!options.keepDenoDir) {
    const blocker = join(denoDir, LOCATION_DATA);
    rmSync(blocker, { recursive: true, force: true });
    writeFileSync(blocker, "", { mode: 0o444 });
  }
  const setpriv = findSetpriv();
  return {
    command: setpriv ?? paths.deno,
    args: setpriv ? ["--pdeathsig", "KILL", "--", paths.deno, ...denoArgs(paths, options)] : denoArgs(paths, options),
    env: executorEnv(denoDir),
    cleanupDir: options.keepDenoDir ? null : denoDir,
    channel,
    channelDir,
    passFds: [],
    storage: options.keepDenoDir ? null : { kind: "dir", path: denoDir },
  };
}

export function requireLayer(mode: OsSandboxMode, bwrap: string | null, reason: string): void {
  if (mode === "require" && !bwrap) {
    throw new WasmboxError("SANDBOX_LAYER_MISSING", `osSandbox "require": ${reason}`);
  }
}
