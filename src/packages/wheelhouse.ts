/**
 * The wheelhouse: a host directory of wheels that run inside the sandbox, downloaded on the host
 * (never from inside the sandbox) and recorded in a manifest the runtime reads on every request.
 *
 * Layout:
 *   DIR/wheelhouse.json   the manifest (version 1): { version: 1, packages: { [name]: InstalledPackage } }
 *   DIR/wheels/*.whl      the wheels (and Pyodide shared-library .zip files)
 *   DIR/wheelhouse.lock   held (O_EXCL) only while files are renamed in and the manifest rewritten
 *
 * Invariant: the manifest only names files that are complete and verified. `addPackages` resolves,
 * downloads and verifies everything into temporary files first, then, under the lock, renames them
 * in and writes the manifest (temp file + rename): on any failure the wheelhouse is unchanged.
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { WasmboxError } from "../core/errors.js";
import { cacheDir } from "../host/runtime-paths.js";
import { compareVersions, filterVersions, formatSpecifierSet, parseSpecifierSet, parseVersion, specifierSetContains, tryParseVersion, type SpecifierSet, type Version } from "./pep440.js";
import { PackageIndex, indexUrlFrom, type IndexFile } from "./pypi-index.js";
import { normalizeName, parseRequirement, requirementApplies, sandboxEnvironment, type MarkerEnvironment, type Requirement } from "./requirement.js";
import { sandboxTarget, targetFromLockInfo, type PyodideLockInfo, type SandboxTarget } from "./sandbox-target.js";
import { bestWheel, isSdistFilename, parseWheelFilename, wheelFit, type WheelFit } from "./wheel-tags.js";
import { openWheel, wheelMetadata, type OpenedWheel } from "./wheel-zip.js";

/** One package in the wheelhouse, as the manifest records it and the runtime mounts it. */
export interface InstalledPackage {
  /** PEP 503 normalized, e.g. "pydantic-core". */
  name: string;
  version: string;
  /** Wheel (or, for a Pyodide shared library, .zip) path RELATIVE to the wheelhouse dir, e.g. "wheels/six-1.17.0-py2.py3-none-any.whl". */
  file: string;
  /** Hex sha256 of the file. */
  sha256: string;
  /** Normalized names of runtime dependencies, markers evaluated for the sandbox, extras only as requested at add time. */
  requires: string[];
  /** Top-level importable module names, e.g. ["pydantic_core"]. */
  imports: string[];
  /** Contains .so files. */
  native: boolean;
  /** shared_library: a Pyodide distribution lib zip (install_dir "dynlib"), unpacked to /usr/lib. */
  kind: "package" | "shared_library";
  /** "pypi:<index url>", "pyodide:<dir>" or "file:<path>". */
  source: string;
  /** Size of the file, bytes. */
  sizeBytes?: number;
  /** The wheel's Requires-Dist lines as written (to re-evaluate when extras are added later). */
  requiresDist?: string[];
  /** Extras requested at add time, normalized. */
  extras?: string[];
}

export interface Wheelhouse {
  /** Absolute directory. */
  dir: string;
  /** By normalized name. A fresh Map per call; the entries are frozen. */
  packages: Map<string, InstalledPackage>;
}

export const MANIFEST_FILE = "wheelhouse.json";
export const WHEELS_SUBDIR = "wheels";
const LOCK_FILE = "wheelhouse.lock";
/** A lock older than this is taken to be left by a crashed process (it is held for milliseconds). */
const STALE_LOCK_MS = 30_000;
const LOCK_WAIT_MS = 60_000;
const MAX_RESOLUTION_RESTARTS = 50;

/**
 * The wheelhouse directory: `options.wheelhouse`, else $WASMBOX_WHEELHOUSE, else
 * `<cacheDir>/wheelhouse` (e.g. ~/.cache/wasmbox/wheelhouse). Absolute.
 */
export function wheelhouseDir(options: { wheelhouse?: string } = {}, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(options.wheelhouse || env.WASMBOX_WHEELHOUSE || join(cacheDir(env), "wheelhouse"));
}

// ---------------------------------------------------------------------------------------------
// Reading the manifest

interface Manifest {
  version: 1;
  packages: Record<string, InstalledPackage>;
}

const manifestCache = new Map<string, { mtimeMs: number; size: number; ino: number; packages: Map<string, InstalledPackage> }>();

function corrupted(path: string, why: string, cause?: unknown): WasmboxError {
  return new WasmboxError("PACKAGE_INVALID", `the wheelhouse manifest ${path} is corrupted (${why}); remove it and add the packages again`, { cause });
}

/** A relative path inside the wheelhouse that cannot leave it. */
function safeRelativeFile(file: unknown): file is string {
  return typeof file === "string" && file !== "" && !file.startsWith("/") && !file.includes("\\") && !file.includes("\0") && file.split("/").every((s) => s !== ".." && s !== "." && s !== "");
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

function validateManifest(raw: unknown, path: string): Map<string, InstalledPackage> {
  if (typeof raw !== "object" || raw === null) throw corrupted(path, "not a JSON object");
  const m = raw as { version?: unknown; packages?: unknown };
  if (m.version !== 1) throw corrupted(path, `version ${JSON.stringify(m.version)}, expected 1`);
  if (typeof m.packages !== "object" || m.packages === null || Array.isArray(m.packages)) throw corrupted(path, `no "packages" object`);
  const packages = new Map<string, InstalledPackage>();
  for (const [key, value] of Object.entries(m.packages as Record<string, unknown>)) {
    const p = value as Partial<InstalledPackage>;
    const where = `package "${key}"`;
    if (typeof p !== "object" || p === null) throw corrupted(path, `${where} is not an object`);
    if (p.name !== key || normalizeName(key) !== key) throw corrupted(path, `${where} has name ${JSON.stringify(p.name)}`);
    if (typeof p.version !== "string" || p.version === "") throw corrupted(path, `${where} has no version`);
    if (!safeRelativeFile(p.file)) throw corrupted(path, `${where} has an unsafe or missing file path`);
    if (typeof p.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(p.sha256)) throw corrupted(path, `${where} has no sha256`);
    if (!isStringArray(p.requires) || !isStringArray(p.imports)) throw corrupted(path, `${where} lacks requires or imports`);
    if (typeof p.native !== "boolean" || (p.kind !== "package" && p.kind !== "shared_library") || typeof p.source !== "string") {
      throw corrupted(path, `${where} lacks native, kind or source`);
    }
    if (p.requiresDist !== undefined && !isStringArray(p.requiresDist)) throw corrupted(path, `${where} has a bad requiresDist`);
    if (p.extras !== undefined && !isStringArray(p.extras)) throw corrupted(path, `${where} has bad extras`);
    packages.set(key, deepFreeze({ ...p } as InstalledPackage));
  }
  return packages;
}

function deepFreeze<T extends object>(value: T): T {
  for (const v of Object.values(value)) if (Array.isArray(v)) Object.freeze(v);
  return Object.freeze(value);
}

/** Reads the manifest now, bypassing the cache (used under the lock). Missing = empty. */
function loadManifest(dir: string): Map<string, InstalledPackage> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw new WasmboxError("PACKAGE_INVALID", `cannot read the wheelhouse manifest ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`, { cause: error });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw corrupted(path, "not valid JSON", cause);
  }
  return validateManifest(raw, path);
}

/**
 * The wheelhouse's packages. A missing directory or manifest is an empty wheelhouse; a corrupted
 * manifest is WasmboxError "PACKAGE_INVALID" saying so. Cached by the manifest's mtime, size and
 * inode (every write replaces the file by rename), so calling it per request costs one stat.
 */
export function readWheelhouse(dir: string): Wheelhouse {
  const absolute = resolve(dir);
  const path = join(absolute, MANIFEST_FILE);
  let st;
  try {
    st = statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") return { dir: absolute, packages: new Map() };
    throw new WasmboxError("PACKAGE_INVALID", `cannot read the wheelhouse manifest ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`, { cause: error });
  }
  const cached = manifestCache.get(path);
  if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size && cached.ino === st.ino) return { dir: absolute, packages: new Map(cached.packages) };
  const packages = loadManifest(absolute);
  manifestCache.set(path, { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino, packages });
  return { dir: absolute, packages: new Map(packages) };
}

/** A shell-safe rendering of one argument for the commands error messages suggest. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_.\/:@+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function addCommand(dir: string, spec: string): string {
  const custom = dir !== wheelhouseDir() ? ` --wheelhouse ${shellWord(dir)}` : "";
  return `wasmbox packages add ${shellWord(spec)}${custom}`;
}

/**
 * The packages a run needs: each name (optionally with a version spec: "sympy", "sympy==1.14.0",
 * "Pydantic>=2") and everything it requires, transitively; sorted by name, each once. Extras in a
 * name are ignored here (dependencies were fixed when the package was added). Throws
 * PACKAGE_NOT_FOUND naming the package and the command that adds it when a name is not installed,
 * installed at a version the spec rejects, or a recorded dependency is missing.
 */
export function resolvePackageSet(dir: string, names: string[]): InstalledPackage[] {
  const house = readWheelhouse(dir);
  const out = new Map<string, InstalledPackage>();
  const queue: { name: string; neededBy: string | null }[] = [];
  for (const text of names) {
    const req = parseRequirement(text);
    const pkg = house.packages.get(req.name);
    if (!pkg) {
      throw new WasmboxError("PACKAGE_NOT_FOUND", `package "${req.text}" is not in the wheelhouse (${house.dir}): add it with \`${addCommand(house.dir, req.text)}\``);
    }
    const version = tryParseVersion(pkg.version);
    if (req.specifier.specifiers.length > 0 && (!version || !specifierSetContains(req.specifier, version, { prereleases: true }, pkg.version))) {
      throw new WasmboxError(
        "PACKAGE_NOT_FOUND",
        `package "${req.text}" is not in the wheelhouse (${house.dir}), which has ${pkg.name} ${pkg.version}: add it with \`${addCommand(house.dir, req.text)}\``,
      );
    }
    queue.push({ name: req.name, neededBy: null });
  }
  while (queue.length > 0) {
    const { name, neededBy } = queue.shift()!;
    if (out.has(name)) continue;
    const pkg = house.packages.get(name);
    if (!pkg) {
      throw new WasmboxError(
        "PACKAGE_NOT_FOUND",
        `package "${name}" (required by ${neededBy}) is not in the wheelhouse (${house.dir}): add it with \`${addCommand(house.dir, name)}\``,
      );
    }
    out.set(name, pkg);
    for (const dep of pkg.requires) if (!out.has(dep)) queue.push({ name: dep, neededBy: name });
  }
  return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// The lock

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Runs `fn` holding DIR/wheelhouse.lock (created with O_EXCL). A lock whose process is gone, or
 * older than 30 s (it is held for the milliseconds of a rename and a manifest write), is stale and
 * taken over. Synchronous on purpose: nothing else in this process runs while it is held.
 */
function withLock<T>(dir: string, fn: () => T): T {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw new WasmboxError("PACKAGE_INVALID", `cannot lock the wheelhouse ${dir}: ${(error as NodeJS.ErrnoException).code ?? error}`, { cause: error });
      let stale = false;
      try {
        const holder = JSON.parse(readFileSync(path, "utf8")) as { pid?: number };
        const age = Date.now() - statSync(path).mtimeMs;
        stale = age > STALE_LOCK_MS || (typeof holder.pid === "number" && !processAlive(holder.pid));
      } catch {
        // Being written this instant, or just removed: look again shortly. A lock file that stays
        // unreadable is stale by age.
        try {
          stale = Date.now() - statSync(path).mtimeMs > STALE_LOCK_MS;
        } catch {
          continue;
        }
      }
      if (stale) {
        // Rename first: of two processes taking over the same stale lock, only one succeeds.
        const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
        try {
          renameSync(path, aside);
          unlinkSync(aside);
        } catch {
          // someone else took it over
        }
        continue;
      }
      if (Date.now() > deadline) throw new WasmboxError("PACKAGE_INVALID", `the wheelhouse ${dir} stayed locked for ${LOCK_WAIT_MS / 1000} s (${path})`);
      sleepSync(10 + Math.random() * 20);
      continue;
    }
    try {
      writeSync(fd, JSON.stringify({ pid: process.pid, createdAt: new Date().toISOString() }));
    } finally {
      closeSync(fd);
    }
    try {
      return fn();
    } finally {
      rmSync(path, { force: true });
    }
  }
}

function writeManifest(dir: string, packages: Map<string, InstalledPackage>): void {
  const sorted = Object.fromEntries([...packages.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const manifest: Manifest = { version: 1, packages: sorted };
  const path = join(dir, MANIFEST_FILE);
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  writeFileSync(temp, JSON.stringify(manifest, null, 2) + "\n");
  renameSync(temp, path);
}

/** Deletes the files of `dropped` entries that no remaining entry uses. */
function deleteUnusedFiles(dir: string, dropped: InstalledPackage[], remaining: Map<string, InstalledPackage>): void {
  const used = new Set([...remaining.values()].map((p) => p.file));
  for (const p of dropped) if (!used.has(p.file)) rmSync(join(dir, p.file), { force: true });
}

// ---------------------------------------------------------------------------------------------
// Removing

/**
 * Removes the named packages and their files. Dependencies are NOT removed with them (they may
 * serve other packages; `packages list` shows what is left). A package another remaining package
 * requires is refused (INVALID_REQUEST naming the dependents), so the wheelhouse never holds a
 * package whose dependency is gone: remove them together. Unknown name: PACKAGE_NOT_FOUND.
 * Returns the normalized names removed.
 */
export function removePackages(dir: string, names: string[]): string[] {
  const absolute = resolve(dir);
  const targets = [...new Set(names.map((n) => normalizeName(n.trim())))];
  if (!existsSync(join(absolute, MANIFEST_FILE))) {
    throw new WasmboxError("PACKAGE_NOT_FOUND", `package "${targets[0]}" is not in the wheelhouse (${absolute})`);
  }
  return withLock(absolute, () => {
    const packages = loadManifest(absolute);
    for (const name of targets) if (!packages.has(name)) throw new WasmboxError("PACKAGE_NOT_FOUND", `package "${name}" is not in the wheelhouse (${absolute})`);
    const removing = new Set(targets);
    for (const name of targets) {
      const dependents = [...packages.values()].filter((p) => !removing.has(p.name) && p.requires.includes(name)).map((p) => p.name);
      if (dependents.length > 0) {
        throw new WasmboxError(
          "INVALID_REQUEST",
          `cannot remove ${name}: ${dependents.join(", ")} ${dependents.length === 1 ? "requires" : "require"} it; remove them together: wasmbox packages remove ${[...targets, ...dependents].join(" ")}`,
        );
      }
    }
    const dropped = targets.map((n) => packages.get(n)!);
    for (const name of targets) packages.delete(name);
    writeManifest(absolute, packages);
    deleteUnusedFiles(absolute, dropped, packages);
    return targets.sort();
  });
}

// ---------------------------------------------------------------------------------------------
// Adding: sources

interface LockEntry {
  name: string;
  version: string;
  file_name: string;
  sha256: string;
  depends: string[];
  imports: string[];
  package_type?: string;
  install_dir?: string;
}

interface PyodideDist {
  dir: string;
  packages: Map<string, LockEntry>;
}

/** The sandbox's Pyodide lock info, for comparing a distribution's with. */
function loadPyodideDist(dir: string, target: SandboxTarget): PyodideDist {
  const absolute = resolve(dir);
  const path = join(absolute, "pyodide-lock.json");
  let lock: { info?: PyodideLockInfo; packages?: Record<string, LockEntry> };
  try {
    lock = JSON.parse(readFileSync(path, "utf8")) as typeof lock;
  } catch (cause) {
    throw new WasmboxError("PACKAGE_INVALID", `--pyodide-dist ${absolute}: cannot read ${path} (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, { cause });
  }
  const theirs = targetFromLockInfo(lock.info ?? {}, path);
  if (theirs.abiVersion !== target.abiVersion || theirs.arch !== target.arch || theirs.pythonMajor !== target.pythonMajor || theirs.pythonMinor !== target.pythonMinor) {
    throw new WasmboxError(
      "PACKAGE_INVALID",
      `the Pyodide distribution ${absolute} is for Python ${theirs.pythonFullVersion}, ABI ${theirs.platformTag}; the sandbox runs Python ${target.pythonFullVersion}, ABI ${target.platformTag}: use the distribution of the same Pyodide release`,
    );
  }
  const packages = new Map<string, LockEntry>();
  for (const entry of Object.values(lock.packages ?? {})) {
    if (typeof entry?.name !== "string" || typeof entry.version !== "string" || typeof entry.file_name !== "string" || typeof entry.sha256 !== "string") continue;
    packages.set(normalizeName(entry.name), entry);
  }
  return { dir: absolute, packages };
}

/** A version of a package that can satisfy a requirement, from one of the sources. */
interface Candidate {
  name: string;
  version: string;
  parsed: Version;
  origin: "installed" | "pyodide" | "file" | "index";
  kind: "package" | "shared_library";
  /** Requirement texts (Requires-Dist; the lock's plain `depends` names for Pyodide). */
  requiresDist: string[];
  installed?: InstalledPackage;
  lockEntry?: LockEntry;
  localPath?: string;
  localBytes?: Uint8Array;
  indexFile?: IndexFile;
  fit?: WheelFit;
}

interface Needed {
  req: Requirement;
  /** Who asked: "the command line" or "<name> <version>". */
  from: string;
}

interface Chosen {
  candidate: Candidate;
  extras: Set<string>;
}

class Conflict extends Error {
  constructor(
    readonly name: string,
    readonly needed: Needed,
  ) {
    super(`conflict on ${name}`);
  }
}

function describeNeeds(needs: Needed[]): string {
  return needs.map((n) => `${n.from} requires ${n.req.name}${formatSpecifierSet(n.req.specifier) || " (any version)"}`).join("; ");
}

/** A size for progress lines: "6.3 MB", "40 kB". */
export function formatSize(bytes: number): string {
  return bytes >= 1_000_000 ? `${(bytes / 1_000_000).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1000))} kB`;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Reads every entry (sizes and CRC-32 checked): the whole archive is verified before it is kept. */
function verifyArchive(bytes: Uint8Array, label: string): OpenedWheel {
  const wheel = openWheel(bytes, label);
  for (const entry of wheel.entries) wheel.read(entry);
  return wheel;
}

function requiresPythonAdmits(spec: string | null, target: SandboxTarget): boolean {
  if (!spec) return true;
  let set: SpecifierSet;
  try {
    set = parseSpecifierSet(spec);
  } catch {
    return true; // an unreadable Requires-Python is ignored, as pip does with a warning
  }
  return specifierSetContains(set, parseVersion(target.pythonFullVersion), { prereleases: true });
}

export interface AddPackagesOptions {
  /** Simple API index (default: $WASMBOX_INDEX_URL, else https://pypi.org/simple). */
  indexUrl?: string;
  /** A Pyodide distribution directory (pyodide-lock.json and its wheels): names in its lock come from it. */
  pyodideDist?: string;
  /** One line per file fetched or copied. */
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
  /** Per HTTP request, milliseconds (default 5 minutes). */
  timeoutMs?: number;
  /** Largest wheel accepted, bytes (default 256 MiB). */
  maxWheelBytes?: number;
}

/**
 * Resolves `specs` (PEP 508 requirements like "sympy", "pydantic>=2", "requests[socks]", or paths
 * of local .whl files) with their dependencies for the sandbox, downloads and verifies what the
 * wheelhouse lacks, and records it. Per requirement: the newest version whose specifiers all match
 * (PEP 440's pre-release rule), that has a wheel running in the sandbox and whose Requires-Python
 * admits the sandbox's Python; yanked files only when pinned with ==. A package already in the
 * wheelhouse that satisfies the requirement is reused without network; a Pyodide distribution's
 * lock is preferred over the index for the names it holds. A version chosen earlier that a later
 * requirement rejects restarts resolution with that requirement known up front (simple
 * backtracking); when no version satisfies all, the error names the requirements.
 *
 * Nothing is written unless the whole resolution and every download succeeded. Returns every
 * package of the resolved set (added or already present), sorted by name.
 */
export async function addPackages(dir: string, specs: string[], options: AddPackagesOptions = {}): Promise<InstalledPackage[]> {
  const absolute = resolve(dir);
  const target = sandboxTarget();
  const env = sandboxEnvironment(target);
  const indexUrl = indexUrlFrom(options.indexUrl);
  const progress = options.onProgress ?? (() => {});
  const index = new PackageIndex(indexUrl, {
    signal: options.signal,
    timeoutMs: options.timeoutMs,
    maxWheelBytes: options.maxWheelBytes,
    onDownload: (file) => {
      const parsed = parseWheelFilename(file.filename);
      progress(`fetching ${parsed?.name ?? file.filename} ${parsed?.version ?? ""} (${file.size === null ? "size unknown" : formatSize(file.size)}) from ${file.url}`.replace("  ", " "));
    },
  });
  const dist = options.pyodideDist ? loadPyodideDist(options.pyodideDist, target) : null;
  sweepStaging(absolute);
  const installed = readWheelhouse(absolute).packages;

  // Local wheel files: read and checked now; they answer for their name.
  const local = new Map<string, Candidate>();
  const topLevel: Needed[] = [];
  for (const spec of specs) {
    if (/\.whl$/i.test(spec.trim())) {
      const candidate = localWheelCandidate(spec.trim(), target);
      local.set(candidate.name, candidate);
      topLevel.push({ req: parseRequirement(`${candidate.name}==${candidate.version}`), from: "the command line" });
    } else {
      topLevel.push({ req: parseRequirement(spec), from: "the command line" });
    }
  }

  const candidatesFor = async (name: string, needs: Needed[]): Promise<Candidate> => {
    const set: SpecifierSet = { specifiers: needs.flatMap((n) => n.req.specifier.specifiers) };
    const admits = (c: { parsed: Version; version: string }) => specifierSetContains(set, c.parsed, { prereleases: true }, c.version);
    const fromLocal = local.get(name);
    if (fromLocal) {
      if (!admits(fromLocal)) throw new WasmboxError("PACKAGE_NOT_FOUND", `conflict: the wheel ${fromLocal.localPath} is ${name} ${fromLocal.version}, but ${describeNeeds(needs)}`);
      return fromLocal;
    }
    const have = installed.get(name);
    const haveVersion = have ? tryParseVersion(have.version) : null;
    if (have && haveVersion && admits({ parsed: haveVersion, version: have.version })) {
      return { name, version: have.version, parsed: haveVersion, origin: "installed", kind: have.kind, requiresDist: have.requiresDist ?? have.requires, installed: have };
    }
    const entry = dist?.packages.get(name);
    const entryVersion = entry ? tryParseVersion(entry.version) : null;
    if (entry && entryVersion) {
      if (admits({ parsed: entryVersion, version: entry.version })) {
        return {
          name,
          version: entry.version,
          parsed: entryVersion,
          origin: "pyodide",
          kind: entry.package_type === "shared_library" ? "shared_library" : "package",
          requiresDist: (entry.depends ?? []).map(normalizeName),
          lockEntry: entry,
        };
      }
      progress(`the Pyodide distribution has ${name} ${entry.version}, which does not satisfy ${describeNeeds(needs)}; trying ${indexUrl}`);
    }
    return indexCandidate(name, needs, set);
  };

  const indexCandidate = async (name: string, needs: Needed[], set: SpecifierSet): Promise<Candidate> => {
    const neededBy = needs.find((n) => n.from !== "the command line");
    const context = neededBy ? ` (required by ${neededBy.from})` : "";
    const project = await index.project(name);
    if (!project) throw new WasmboxError("PACKAGE_NOT_FOUND", `no package named "${name}" on ${indexUrl}${context}`);
    const pinned = set.specifiers.some((s) => (s.operator === "==" && !s.wildcard) || s.operator === "===");
    const byVersion = new Map<string, { parsed: Version; text: string; files: IndexFile[] }>();
    for (const file of project.files) {
      const wheel = parseWheelFilename(file.filename);
      const versionText = wheel?.version ?? /^.+?-(\d[^-]*?)\.(?:tar\.gz|zip|tar\.bz2|tgz)$/i.exec(file.filename)?.[1];
      const parsed = versionText ? tryParseVersion(versionText) : null;
      if (!parsed || !versionText) continue;
      const key = parsed.epoch + "!" + parsed.release.join(".") + JSON.stringify([parsed.pre, parsed.post, parsed.dev, parsed.local]);
      const slot = byVersion.get(key) ?? { parsed, text: versionText, files: [] };
      slot.files.push(file);
      byVersion.set(key, slot);
    }
    const all = [...byVersion.values()].sort((a, b) => compareVersions(b.parsed, a.parsed));
    const specMatching = filterVersions(set, all, (v) => v.parsed);
    const usable: { parsed: Version; text: string; file: IndexFile; fit: WheelFit }[] = [];
    for (const v of specMatching) {
      const files = v.files.filter((f) => (pinned || !f.yanked) && !isSdistFilename(f.filename) && requiresPythonAdmits(f.requiresPython, target));
      const best = bestWheel(files, target);
      if (best) usable.push({ parsed: v.parsed, text: v.text, file: best.file, fit: best.fit });
    }
    if (usable.length === 0) {
      if (specMatching.length === 0) {
        const newest = all.find((v) => v.parsed.pre === null && v.parsed.dev === null) ?? all[0];
        throw new WasmboxError(
          "PACKAGE_NOT_FOUND",
          `no version of "${name}" on ${indexUrl} satisfies ${describeNeeds(needs)}${newest ? ` (the newest is ${newest.text})` : " (it lists no files)"}`,
        );
      }
      const newest = specMatching[0]!;
      const kinds = newest.files.map((f) => f.filename).slice(0, 4).join(", ");
      throw new WasmboxError(
        "PACKAGE_NOT_FOUND",
        `"${name}"${context} has no wheel that runs in the sandbox (pure Python py3-none-any, or ${target.platformTag} for CPython ${target.pythonMajor}.${target.pythonMinor}) on ${indexUrl}; ` +
          `${newest.text} has only ${kinds}${newest.files.length > 4 ? ", ..." : ""}. Native packages are built by Pyodide: add it from a Pyodide distribution with --pyodide-dist DIR (the unpacked pyodide release tarball)`,
      );
    }
    const rejected: string[] = [];
    for (const u of usable.slice(0, 8)) {
      const meta = await index.metadata(u.file);
      if (normalizeName(meta.name) !== name) {
        throw new WasmboxError("PACKAGE_INVALID", `${u.file.filename} from ${indexUrl} says it is "${meta.name}", not ${name}`);
      }
      if (!requiresPythonAdmits(meta.requiresPython, target)) {
        rejected.push(`${u.text} (Requires-Python ${meta.requiresPython})`);
        continue;
      }
      return { name, version: u.text, parsed: u.parsed, origin: "index", kind: "package", requiresDist: meta.requiresDist, indexFile: u.file, fit: u.fit };
    }
    throw new WasmboxError("PACKAGE_NOT_FOUND", `no version of "${name}"${context} on ${indexUrl} admits Python ${target.pythonFullVersion}: ${rejected.join(", ")}`);
  };

  /** The candidate's dependencies that apply in the sandbox with these extras. */
  const dependenciesOf = (candidate: Candidate, extras: Iterable<string>, envFor: MarkerEnvironment): Requirement[] => {
    const out: Requirement[] = [];
    for (const text of candidate.requiresDist) {
      let req: Requirement;
      try {
        req = parseRequirement(text);
      } catch (cause) {
        throw new WasmboxError("PACKAGE_INVALID", `${candidate.name} ${candidate.version} has an unreadable requirement "${text}": ${(cause as Error).message}`, { cause });
      }
      if (requirementApplies(req, [...extras], envFor)) out.push(req);
    }
    return out;
  };

  const resolveOnce = async (learnt: Map<string, Needed[]>): Promise<Map<string, Chosen>> => {
    const chosen = new Map<string, Chosen>();
    const needsOf = new Map<string, Needed[]>();
    const queue: Needed[] = [...topLevel];
    while (queue.length > 0) {
      options.signal?.throwIfAborted();
      const needed = queue.shift()!;
      const { req } = needed;
      const needs = needsOf.get(req.name) ?? [];
      needs.push(needed);
      needsOf.set(req.name, needs);
      const existing = chosen.get(req.name);
      if (existing) {
        if (!specifierSetContains(req.specifier, existing.candidate.parsed, { prereleases: true }, existing.candidate.version)) throw new Conflict(req.name, needed);
        const fresh = req.extras.filter((e) => !existing.extras.has(e));
        if (fresh.length > 0) {
          for (const e of fresh) existing.extras.add(e);
          const from = `${existing.candidate.name} ${existing.candidate.version}`;
          for (const dep of dependenciesOf(existing.candidate, existing.extras, env)) queue.push({ req: dep, from });
        }
        continue;
      }
      const candidate = await candidatesFor(req.name, [...needs, ...(learnt.get(req.name) ?? [])]);
      const extras = new Set(req.extras);
      chosen.set(req.name, { candidate, extras });
      const from = `${candidate.name} ${candidate.version}`;
      for (const dep of dependenciesOf(candidate, extras, env)) queue.push({ req: dep, from });
    }
    return chosen;
  };

  // Simple backtracking: a conflict teaches the resolver a requirement it then applies from the
  // start. Each restart re-reads nothing from the network (the index client caches).
  const learnt = new Map<string, Needed[]>();
  let chosen: Map<string, Chosen> | null = null;
  for (let attempt = 0; attempt <= MAX_RESOLUTION_RESTARTS && !chosen; attempt++) {
    try {
      chosen = await resolveOnce(learnt);
    } catch (error) {
      if (!(error instanceof Conflict)) throw error;
      const known = learnt.get(error.name) ?? [];
      if (known.some((n) => n.req.text === error.needed.req.text && n.from === error.needed.from)) {
        throw new WasmboxError("PACKAGE_NOT_FOUND", `conflict: no version of ${error.name} satisfies ${describeNeeds([...known, error.needed])}`);
      }
      known.push(error.needed);
      learnt.set(error.name, known);
    }
  }
  if (!chosen) throw new WasmboxError("PACKAGE_NOT_FOUND", `conflict: resolving ${specs.join(" ")} did not settle after ${MAX_RESOLUTION_RESTARTS} attempts`);

  // Fetch and verify into temporary files; nothing is visible until the commit below.
  // They are staged in a directory of their own inside DIR (a rename needs the same file
  // system), removed on failure together with DIR itself when this call created it.
  const wheelsDir = join(absolute, WHEELS_SUBDIR);
  const dirExisted = existsSync(absolute);
  let staging: string | null = null;
  let committed = false;
  const staged: { entry: InstalledPackage; temp: string | null }[] = [];
  try {
    for (const { candidate, extras } of chosen.values()) {
      const requires = [...new Set(dependenciesOf(candidate, extras, env).map((r) => r.name))].sort();
      const extrasList = [...extras].sort();
      if (candidate.origin === "installed") {
        const have = candidate.installed!;
        const merged = [...new Set([...(have.extras ?? []), ...extrasList])].sort();
        const mergedRequires = [...new Set([...have.requires, ...requires])].sort();
        const changed = merged.length !== (have.extras ?? []).length || mergedRequires.length !== have.requires.length;
        staged.push({ entry: changed ? { ...have, extras: merged, requires: mergedRequires } : have, temp: null });
        continue;
      }
      const { bytes, filename, source } = await fetchCandidate(candidate);
      const label = filename;
      const archive = verifyArchive(bytes, label);
      let imports: string[] = [];
      let native = archive.entries.some((e) => e.path.endsWith(".so"));
      let requiresDist = candidate.requiresDist;
      if (candidate.kind === "package" && filename.toLowerCase().endsWith(".whl")) {
        const meta = wheelMetadata(archive);
        if (normalizeName(meta.name) !== candidate.name || compareVersions(parseVersion(meta.version), candidate.parsed) !== 0) {
          throw new WasmboxError("PACKAGE_INVALID", `${filename} contains ${meta.name} ${meta.version}, not ${candidate.name} ${candidate.version}`);
        }
        imports = meta.imports;
        native = meta.native;
        if (candidate.origin !== "pyodide") requiresDist = meta.requiresDist;
      }
      if (candidate.lockEntry && candidate.lockEntry.imports?.length) imports = [...candidate.lockEntry.imports].sort();
      if (!staging) {
        mkdirSync(absolute, { recursive: true });
        staging = join(absolute, `.staging-${process.pid}-${randomBytes(6).toString("hex")}`);
        mkdirSync(staging);
      }
      const temp = join(staging, filename);
      writeFileSync(temp, bytes);
      staged.push({
        entry: {
          name: candidate.name,
          version: candidate.version,
          file: `${WHEELS_SUBDIR}/${filename}`,
          sha256: sha256Hex(bytes),
          requires: candidate.origin === "pyodide" ? [...new Set(candidate.requiresDist)].sort() : requires,
          imports,
          native,
          kind: candidate.kind,
          source,
          sizeBytes: bytes.byteLength,
          requiresDist,
          extras: extrasList,
        },
        temp,
      });
    }
    options.signal?.throwIfAborted();

    // Commit: rename the files in and rewrite the manifest, under the lock, re-reading the
    // manifest there so a concurrent add's entries are kept.
    withLock(absolute, () => {
      const packages = loadManifest(absolute);
      if (staging) mkdirSync(wheelsDir, { recursive: true });
      const replaced: InstalledPackage[] = [];
      for (const { entry, temp } of staged) {
        if (temp) renameSync(temp, join(absolute, entry.file));
        const old = packages.get(entry.name);
        if (old && old.file !== entry.file) replaced.push(old);
        packages.set(entry.name, entry);
      }
      writeManifest(absolute, packages);
      deleteUnusedFiles(absolute, replaced, packages);
    });
    committed = true;
  } finally {
    if (staging) rmSync(staging, { recursive: true, force: true });
    if (!committed && !dirExisted) {
      try {
        rmdirSync(absolute); // only when empty: this call made it
      } catch {
        // not empty: something else wrote there meanwhile
      }
    }
  }
  return staged.map((s) => s.entry).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  async function fetchCandidate(candidate: Candidate): Promise<{ bytes: Uint8Array; filename: string; source: string }> {
    if (candidate.origin === "file") {
      return { bytes: candidate.localBytes!, filename: basename(candidate.localPath!), source: `file:${candidate.localPath}` };
    }
    if (candidate.origin === "pyodide") {
      const entry = candidate.lockEntry!;
      const filename = entry.file_name;
      if (!safeRelativeFile(filename) || filename.includes("/")) throw new WasmboxError("PACKAGE_INVALID", `the Pyodide lock names an unsafe file "${filename}" for ${candidate.name}`);
      const path = join(dist!.dir, filename);
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(path);
      } catch (cause) {
        throw new WasmboxError("PACKAGE_NOT_FOUND", `the Pyodide distribution ${dist!.dir} lists ${candidate.name} ${candidate.version} but has no ${filename}`, { cause });
      }
      progress(`copying ${candidate.name} ${candidate.version} (${formatSize(bytes.byteLength)}) from ${path}`);
      const actual = sha256Hex(bytes);
      if (actual !== entry.sha256.toLowerCase()) {
        throw new WasmboxError("PACKAGE_INVALID", `${path} has sha256 ${actual}, but pyodide-lock.json says ${entry.sha256}; it was not kept`);
      }
      return { bytes, filename, source: `pyodide:${dist!.dir}` };
    }
    const file = candidate.indexFile!;
    return { bytes: await index.download(file), filename: file.filename, source: `pypi:${indexUrl}` };
  }
}

/** Removes staging directories (`.staging-<pid>-*`) that a killed `addPackages` left behind. */
function sweepStaging(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^\.staging-(\d+)-[0-9a-f]+$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

/** Reads a local wheel given as a spec and checks it runs in the sandbox. */
function localWheelCandidate(spec: string, target: SandboxTarget): Candidate {
  const path = resolve(spec);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (cause) {
    throw new WasmboxError("PACKAGE_NOT_FOUND", `cannot read the wheel ${path}: ${(cause as NodeJS.ErrnoException).code ?? cause}`, { cause });
  }
  const filename = basename(path);
  const parsed = parseWheelFilename(filename);
  if (!parsed) throw new WasmboxError("PACKAGE_INVALID", `"${filename}" is not a wheel file name ({name}-{version}-{python}-{abi}-{platform}.whl)`);
  const fit = wheelFit(parsed, target);
  if (!fit) {
    throw new WasmboxError(
      "PACKAGE_INVALID",
      `${filename} does not run in the sandbox: it needs pure Python (py3-none-any) or ${target.platformTag} for CPython ${target.pythonMajor}.${target.pythonMinor}`,
    );
  }
  const meta = wheelMetadata(verifyArchive(bytes, filename));
  const version = parseVersion(meta.version);
  if (normalizeName(meta.name) !== parsed.name) throw new WasmboxError("PACKAGE_INVALID", `${filename} contains ${meta.name}, not ${parsed.name}`);
  return { name: parsed.name, version: meta.version, parsed: version, origin: "file", kind: "package", requiresDist: meta.requiresDist, localPath: path, localBytes: bytes, fit };
}
