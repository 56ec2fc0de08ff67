/**
 * PyPI sandbox peers, installed into bench/.venv (gitignored) with pip and run through
 * pypi_peer.py. Both drive Deno (our binary, put first on PATH). Whether they work offline is
 * checked on every bench run rather than assumed: each gets one real try, and its error becomes
 * the skip reason.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { BENCH_DIR, CACHE_DIR, type BenchContext } from "../lib/context.js";
import { exec, firstErrorLine, lastJsonLine } from "../lib/proc.js";

export const PYPI_PEERS = [
  { id: "mcp-run-python", pip: "mcp-run-python", module: "mcp_run_python", label: "mcp-run-python (PyPI, Deno+Pyodide MCP server)" },
  { id: "langchain-sandbox", pip: "langchain-sandbox", module: "langchain_sandbox", label: "langchain-sandbox (PyPI, Deno+Pyodide per run)" },
] as const;

export type PypiPeer = (typeof PYPI_PEERS)[number];

const VENV = join(BENCH_DIR, ".venv");
export const VENV_PYTHON = join(VENV, "bin", "python");

const venvPromises = new Map<string, Promise<string | null>>();

/**
 * Makes bench/.venv (once) and installs `packages` into it unless `modules` already import;
 * resolves null when ready, else why not. Each set of packages is installed on its own, so one
 * that cannot install here does not take the others' workloads with it.
 */
export function ensureVenvWith(ctx: BenchContext, packages: readonly string[], modules: readonly string[]): Promise<string | null> {
  const key = packages.join(" ");
  let promise = venvPromises.get(key);
  if (!promise) {
    promise = (async () => {
      if (!ctx.python) return `no native CPython to make a venv with (${ctx.pythonProblem})`;
      const imports = `import ${modules.join(", ")}`;
      if (existsSync(VENV_PYTHON) && (await exec(VENV_PYTHON, ["-c", imports], { timeoutMs: 60_000 })).code === 0) return null;
      ctx.log(`installing ${packages.join(", ")} into bench/.venv (pip, once)…`);
      if (!existsSync(VENV_PYTHON)) {
        const venv = await exec(ctx.python.path, ["-m", "venv", VENV], { timeoutMs: 120_000 });
        if (venv.code !== 0) return `cannot create bench/.venv: ${firstErrorLine(venv.stderr)}`;
      }
      const pip = await exec(VENV_PYTHON, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", ...packages], { timeoutMs: 900_000 });
      if (pip.code !== 0) return `pip install ${packages.join(" ")} failed: ${firstErrorLine(pip.stderr)}`;
      return null;
    })();
    venvPromises.set(key, promise);
  }
  return promise;
}

/** bench/.venv with the PyPI sandbox peers installed; null when ready, else why not. */
export function ensurePeersVenv(ctx: BenchContext): Promise<string | null> {
  return ensureVenvWith(
    ctx,
    PYPI_PEERS.map((p) => p.pip),
    PYPI_PEERS.map((p) => p.module),
  );
}

/** Turns a peer's raw failure into a reason a reader can act on. */
export function explainFailure(raw: string): string {
  // eslint-disable-next-line no-control-regex
  const text = raw.replace(/\x1b\[[0-9;]*m/g, "");
  const denoError = /error: ([^\n]*?)(?:Stack backtrace|\n|$)/.exec(text)?.[1]?.trim();
  const detail = (denoError ?? text.trim().split("\n").pop() ?? "").slice(0, 240);
  if (/jsr\.io/.test(text)) return `needs the JSR registry (jsr.io) at run time, which this machine cannot reach; Deno said: ${detail}`;
  if (/cdn\.jsdelivr|pyodide\.org|cdn\./i.test(text)) return `fetches Pyodide packages from a CDN at run time, which this machine cannot reach: ${detail}`;
  return detail || "failed with no output";
}

export interface PypiResult {
  samples: number[];
  setupMs: number;
}

/** Runs the peer: one start-up run, then `n` timed runs of `code`. */
export async function runPypiPeer(ctx: BenchContext, peer: PypiPeer, n: number, code = "print(1)"): Promise<PypiResult> {
  const env = { ...process.env, PATH: `${dirname(ctx.deno)}:${process.env.PATH ?? ""}`, DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" };
  // An empty working directory: Deno would otherwise pick up this repository's package.json.
  const cwd = mkdtempSync(join(tmpdir(), "wasmbox-bench-peer-"));
  let result;
  try {
    result = await exec(VENV_PYTHON, [join(BENCH_DIR, "peers", "pypi_peer.py"), peer.id, String(n), code], { env, cwd, timeoutMs: 240_000 + n * 30_000 });
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
  const out = lastJsonLine<{ samples?: number[]; setup_ms?: number; error?: string; output?: unknown }>(result.stdout);
  if (!out) throw new Error(explainFailure(result.stderr || result.stdout));
  if (out.error) throw new Error(explainFailure(out.error));
  return { samples: out.samples ?? [], setupMs: out.setup_ms ?? NaN };
}

const PROBE_CACHE = join(CACHE_DIR, "pypi-peers.json");
/** How long --quick trusts an earlier run's verdict that a peer cannot run here. */
const PROBE_CACHE_MS = 7 * 24 * 60 * 60 * 1000;

type ProbeCache = Record<string, { reason: string; at: string }>;

function readProbeCache(): ProbeCache {
  try {
    return JSON.parse(readFileSync(PROBE_CACHE, "utf8")) as ProbeCache;
  } catch {
    return {};
  }
}

/** In --quick mode, the reason an earlier full check found (within a week), so a smoke run does not wait minutes on it. */
export function cachedFailure(ctx: BenchContext, peer: PypiPeer): string | null {
  if (!ctx.quick) return null;
  const entry = readProbeCache()[peer.id];
  if (!entry || Date.now() - Date.parse(entry.at) > PROBE_CACHE_MS) return null;
  return `${entry.reason} (found by the bench on ${entry.at.slice(0, 10)}; a full run checks again)`;
}

export function recordProbe(peer: PypiPeer, reason: string | null): void {
  const cache = readProbeCache();
  if (reason) cache[peer.id] = { reason, at: new Date().toISOString() };
  else delete cache[peer.id];
  mkdirSync(CACHE_DIR, { recursive: true });
  writeFileSync(PROBE_CACHE, JSON.stringify(cache, null, 2) + "\n");
}
