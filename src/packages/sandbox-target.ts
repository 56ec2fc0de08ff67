/**
 * What the sandbox's interpreter is, as far as choosing wheels goes: its Python version and the
 * Pyodide ABI its native wheels are built for. Read from the installed pyodide package's
 * pyodide-lock.json (`info`), so upgrading pyodide moves the wheelhouse's target with it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { WasmboxError } from "../core/errors.js";
import { pyodideDir } from "../host/runtime-paths.js";

export interface SandboxTarget {
  /** Full Python version, e.g. "3.14.2". */
  pythonFullVersion: string;
  /** Major and minor, e.g. [3, 14]. */
  pythonMajor: number;
  pythonMinor: number;
  /** Pyodide ABI version, e.g. "2026_0". */
  abiVersion: string;
  /** e.g. "wasm32". */
  arch: string;
  /** The wheel platform tag native wheels carry, e.g. "pyemscripten_2026_0_wasm32". */
  platformTag: string;
}

/** The `info` object of a pyodide-lock.json. */
export interface PyodideLockInfo {
  abi_version?: string;
  arch?: string;
  platform?: string;
  python?: string;
}

/** Builds the target from a lock's `info`; throws PACKAGE_INVALID naming `label` when fields are missing. */
export function targetFromLockInfo(info: PyodideLockInfo, label: string): SandboxTarget {
  const python = info.python;
  const m = typeof python === "string" ? /^(\d+)\.(\d+)(?:\.\d+)?/.exec(python) : null;
  if (!m || typeof info.abi_version !== "string" || typeof info.arch !== "string") {
    throw new WasmboxError("PACKAGE_INVALID", `${label}: "info" lacks python, abi_version or arch`);
  }
  return {
    pythonFullVersion: python!,
    pythonMajor: Number(m[1]),
    pythonMinor: Number(m[2]),
    abiVersion: info.abi_version,
    arch: info.arch,
    platformTag: `pyemscripten_${info.abi_version}_${info.arch}`,
  };
}

let cached: SandboxTarget | null = null;

/** The installed pyodide's target (read once per process). */
export function sandboxTarget(): SandboxTarget {
  if (cached) return cached;
  const path = join(pyodideDir(), "pyodide-lock.json");
  let info: PyodideLockInfo;
  try {
    info = (JSON.parse(readFileSync(path, "utf8")) as { info: PyodideLockInfo }).info;
  } catch (cause) {
    throw new WasmboxError("PACKAGE_INVALID", `cannot read the sandbox's Python version from ${path}`, { cause });
  }
  cached = targetFromLockInfo(info ?? {}, path);
  return cached;
}
