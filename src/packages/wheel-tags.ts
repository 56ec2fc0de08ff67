/**
 * Wheel file names (PEP 427, platform compatibility tags PEP 425) and which of them run in the
 * sandbox: pure-Python wheels for Python 3 up to the sandbox's minor version, and native wheels
 * built for Pyodide's ABI (PEP 783's `pyemscripten_<abi>_<arch>` platform tag), read from the
 * installed pyodide's lock file rather than hard-coded.
 */
import { WasmboxError } from "../core/errors.js";
import { normalizeName } from "./requirement.js";
import { sandboxTarget, type SandboxTarget } from "./sandbox-target.js";

export interface WheelFilename {
  /** PEP 503 normalized. */
  name: string;
  version: string;
  /** Build tag, or null. */
  build: string | null;
  pythonTags: string[];
  abiTags: string[];
  platformTags: string[];
}

/** How a wheel runs in the sandbox: a Pyodide build for this exact CPython, an abi3 build, or pure Python. */
export type WheelFit = "native" | "abi3" | "pure";

/** Preference among wheels of one version: higher first (native Pyodide builds over pure Python). */
export const FIT_PRIORITY: Readonly<Record<WheelFit, number>> = { native: 3, abi3: 2, pure: 1 };

/** Source distributions and other non-wheel files an index lists. */
export function isSdistFilename(filename: string): boolean {
  return /\.(tar\.gz|tgz|tar\.bz2|tar\.xz|zip|tar)$/i.test(filename);
}

/** Parses `{name}-{ver}(-{build})?-{py}-{abi}-{plat}.whl`; null when the name is not a wheel's. */
export function parseWheelFilename(filename: string): WheelFilename | null {
  // A file name, nothing else: an index's `filename` becomes a path in the wheelhouse, so a slash
  // or a leading dot ("../../x-1-py3-none-any.whl") must never get that far.
  if (!/^[A-Za-z0-9][A-Za-z0-9._+!-]*\.whl$/i.test(filename)) return null;
  const parts = filename.slice(0, -4).split("-");
  if (parts.length !== 5 && parts.length !== 6) return null;
  const [name, version] = parts as [string, string];
  const build = parts.length === 6 ? parts[2]! : null;
  if (build !== null && !/^\d/.test(build)) return null;
  const [py, abi, plat] = parts.slice(-3) as [string, string, string];
  if (!name || !version || !py || !abi || !plat) return null;
  return { name: normalizeName(name), version, build, pythonTags: py.split("."), abiTags: abi.split("."), platformTags: plat.split(".") };
}

/** Same as parseWheelFilename, throwing PACKAGE_INVALID naming the file. */
export function parseWheelFilenameOrThrow(filename: string): WheelFilename {
  const parsed = parseWheelFilename(filename);
  if (!parsed) throw new WasmboxError("PACKAGE_INVALID", `"${filename}" is not a wheel file name ({name}-{version}-{python}-{abi}-{platform}.whl)`);
  return parsed;
}

/** `py3`, `py3N`, `cp3N` (N up to the sandbox's minor) run pure code; `py2` alone does not. */
function pythonTagMinor(tag: string): { impl: "py" | "cp"; minor: number | null } | null {
  const m = /^(py|cp)3(\d*)$/.exec(tag);
  if (!m) return null;
  return { impl: m[1] as "py" | "cp", minor: m[2] === "" ? null : Number(m[2]) };
}

/**
 * How the wheel named `filename` runs in the sandbox, or null when it does not. Of a compressed
 * tag set (`py2.py3-none-any`) any one combination suffices, the best one counts.
 */
export function wheelFit(parsed: WheelFilename, target: SandboxTarget = sandboxTarget()): WheelFit | null {
  let best: WheelFit | null = null;
  const consider = (fit: WheelFit) => {
    if (best === null || FIT_PRIORITY[fit] > FIT_PRIORITY[best]) best = fit;
  };
  const exact = `cp${target.pythonMajor}${target.pythonMinor}`;
  for (const py of parsed.pythonTags) {
    const p = pythonTagMinor(py);
    if (!p || target.pythonMajor !== 3) continue;
    const minorOk = p.minor === null ? p.impl === "py" : p.minor <= target.pythonMinor;
    for (const abi of parsed.abiTags) {
      for (const plat of parsed.platformTags) {
        if (plat === "any" && abi === "none" && minorOk) consider("pure");
        else if (plat === target.platformTag) {
          if (abi === exact && py === exact) consider("native");
          else if (abi === "abi3" && p.impl === "cp" && p.minor !== null && minorOk) consider("abi3");
          else if (abi === "none" && minorOk) consider("native"); // Pyodide-only, interpreter-independent
        }
      }
    }
  }
  return best;
}

/** A file an index lists, as far as picking one goes. */
export interface NamedFile {
  filename: string;
}

/**
 * The wheel to install among the files of ONE version: native Pyodide build first, then abi3,
 * then pure; a higher build tag breaks ties. Null when none runs in the sandbox (sdists never do).
 */
export function bestWheel<T extends NamedFile>(files: readonly T[], target: SandboxTarget = sandboxTarget()): { file: T; fit: WheelFit } | null {
  let best: { file: T; fit: WheelFit; build: number } | null = null;
  for (const file of files) {
    const parsed = parseWheelFilename(file.filename);
    if (!parsed) continue;
    const fit = wheelFit(parsed, target);
    if (!fit) continue;
    const build = parsed.build === null ? -1 : Number(/^\d+/.exec(parsed.build)![0]);
    if (!best || FIT_PRIORITY[fit] > FIT_PRIORITY[best.fit] || (FIT_PRIORITY[fit] === FIT_PRIORITY[best.fit] && build > best.build)) {
      best = { file, fit, build };
    }
  }
  return best && { file: best.file, fit: best.fit };
}
