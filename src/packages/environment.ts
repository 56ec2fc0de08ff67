/**
 * A package environment: the set of wheels one kind of executor starts with, unpacked into one
 * bundle file (runtimes/python/environment-bundle.ts) that executors mount read-only, and the
 * memory snapshot made after its pure-Python packages were imported (runtime-registry.ts). Both
 * are derived from the wheels' hashes and cached under the cache dir, like the base snapshot.
 *
 * Every Python executor has one: with no packages named it holds the IANA time-zone data (the
 * `tzdata` wheel wasmbox ships), so `zoneinfo` works out of the box.
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { WasmboxError } from "../core/errors.js";
import { encodeBundleHeader, SHARED_LIBRARY_DIR, SITE_PACKAGES, type BundleDir, type BundleFile, type BundleHeader } from "../core/environment-bundle.js";
import { ownedTempSibling } from "../host/host-temp.js";
import { openWheel } from "./wheel-zip.js";
import { resolvePackageSet, type InstalledPackage } from "./wheelhouse.js";
import { normalizeName } from "./requirement.js";

/** Bumped when the bundle's layout or what goes into it changes: old bundles are then not reused. */
const BUNDLE_FORMAT = 1;

/** One package set, resolved against a wheelhouse (or only the bundled tzdata). */
export interface PackageEnvironment {
  /** Content hash of the set (wheels' sha256) and of the bundle format: names its cached files. */
  id: string;
  /** What the caller named, normalized: imported ahead for them. */
  requested: string[];
  /** The whole set with dependencies, sorted by name. */
  packages: InstalledPackage[];
  /** Where each package's file lives (the wheelhouse, or wasmbox's own files for tzdata). */
  fileOf(pkg: InstalledPackage): string;
}

const BUNDLED_DIR = fileURLToPath(new URL("../runtimes/python/", import.meta.url));

let bundledCache: InstalledPackage[] | null = null;

/** The wheels wasmbox ships inside its own files (today: tzdata, the IANA time-zone database). */
function bundledPackages(): InstalledPackage[] {
  if (bundledCache) return bundledCache;
  bundledCache = readdirSync(BUNDLED_DIR)
    .filter((f) => /^tzdata-.*\.whl$/.test(f))
    .map((file) => ({
      name: "tzdata",
      version: file.split("-")[1]!,
      file,
      sha256: createHash("sha256").update(readFileSync(join(BUNDLED_DIR, file))).digest("hex"),
      requires: [],
      imports: ["tzdata"],
      native: false,
      kind: "package" as const,
      source: "wasmbox",
    }));
  return bundledCache;
}

/** Names that are top-level in some wheels but are never meant to be imported by users. */
const NOT_IMPORTED = new Set(["test", "tests", "testing", "docs", "doc", "examples", "benchmarks", "setup", "conftest"]);

/**
 * Resolves `names` (with optional version specifiers) against the wheelhouse: the environment a
 * run with these packages gets. Throws PACKAGE_NOT_FOUND (naming the command that adds it) before
 * any executor starts. No names: the base environment.
 */
export function resolveEnvironment(wheelhouse: string, names: readonly string[]): PackageEnvironment {
  const resolved = names.length > 0 ? resolvePackageSet(wheelhouse, [...names]) : [];
  const byName = new Map<string, InstalledPackage>();
  for (const pkg of bundledPackages()) byName.set(pkg.name, pkg);
  for (const pkg of resolved) byName.set(pkg.name, pkg); // a tzdata the user added wins over ours
  const packages = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // The names the caller gave (the closure holds their dependencies too): imported ahead for them.
  const requested = [...new Set(names.map(requirementName))].filter((name) => byName.has(name)).sort();
  const hash = createHash("sha256").update(`wasmbox-environment-${BUNDLE_FORMAT}\n`);
  for (const pkg of packages) hash.update(`${pkg.name}==${pkg.version} ${pkg.sha256}\n`);
  hash.update(`imports ${requested.join(",")}\n`);
  const bundledNames = new Set(bundledPackages().map((p) => p.file));
  return {
    id: hash.digest("hex").slice(0, 16),
    requested,
    packages,
    fileOf: (pkg) => (pkg.source === "wasmbox" && bundledNames.has(pkg.file) ? join(BUNDLED_DIR, pkg.file) : join(wheelhouse, pkg.file)),
  };
}

/** The PEP 503 name of a requirement ("Pydantic>=2" -> "pydantic"). */
export function requirementName(spec: string): string {
  return normalizeName(/^\s*([A-Za-z0-9][A-Za-z0-9._-]*)/.exec(spec)?.[1] ?? spec);
}

/**
 * Which modules the snapshot imports and which each executor imports when it starts: a requested
 * package whose dependency closure holds a WebAssembly library (pydantic -> pydantic-core) cannot
 * be imported before the snapshot. `nativeAtImport` are modules an earlier attempt found loading
 * a library anyway (an undeclared optional dependency): moved to the start too.
 */
export function importPlan(environment: PackageEnvironment, nativeAtImport: readonly string[] = []): Pick<BundleHeader, "snapshotImports" | "startImports"> {
  const byName = new Map(environment.packages.map((p) => [p.name, p]));
  const nativeClosure = (name: string, seen = new Set<string>()): boolean => {
    if (seen.has(name)) return false;
    seen.add(name);
    const pkg = byName.get(name);
    return !!pkg && (pkg.native || pkg.requires.some((dep) => nativeClosure(dep, seen)));
  };
  const snapshotImports: string[] = [];
  const startImports: string[] = [];
  for (const name of environment.requested) {
    const pkg = byName.get(name)!;
    const native = nativeClosure(name);
    for (const module of pkg.imports) {
      if (NOT_IMPORTED.has(module) || module.startsWith("_")) continue;
      (native || nativeAtImport.includes(module) ? startImports : snapshotImports).push(module);
    }
  }
  return { snapshotImports, startImports };
}

/** Where the environment's derived files live: one directory, pruned by age. */
export function environmentsDir(cache: string): string {
  return join(cache, "environments");
}

/** Bundles and snapshots of environments not used for this long are removed when a new one is made. */
const PRUNE_UNUSED_FOR_MS = 7 * 24 * 60 * 60 * 1000;
/**
 * Environments kept on disk (each a bundle and a 30-100 MB snapshot): past it the least recently
 * used go. Callers of a server choose package sets, so without a bound every subset of a
 * wheelhouse could be made and kept.
 */
const MAX_ENVIRONMENTS = 16;

/** Removes environments unused for a week, and the least recently used beyond MAX_ENVIRONMENTS; never `keep`'s. */
export function pruneEnvironments(dir: string, keep: string): void {
  try {
    const now = Date.now();
    const lastUse = new Map<string, number>();
    const files = new Map<string, string[]>();
    for (const name of readdirSync(dir)) {
      const id = /^([0-9a-f]{16})[-.]/.exec(name)?.[1];
      if (!id) continue;
      const stat = statSync(join(dir, name));
      lastUse.set(id, Math.max(lastUse.get(id) ?? 0, stat.mtimeMs, stat.atimeMs));
      files.set(id, [...(files.get(id) ?? []), name]);
    }
    const byRecency = [...lastUse.entries()].filter(([id]) => id !== keep).sort((a, b) => b[1] - a[1]);
    byRecency.forEach(([id, used], index) => {
      if (index >= MAX_ENVIRONMENTS - 1 || now - used > PRUNE_UNUSED_FOR_MS) {
        for (const name of files.get(id) ?? []) rmSync(join(dir, name), { recursive: true, force: true });
      }
    });
  } catch {
    // best effort: another host may be pruning too
  }
}

/** Upper bound on a bundle: every wheel's files unpacked. */
const MAX_BUNDLE_BYTES = 2 * 1024 * 1024 * 1024;

/**
 * The environment's bundle file, made when missing: every wheel unpacked (the files of
 * `*.data/purelib` and `*.data/platlib` into site-packages, scripts and headers left out; a
 * Pyodide shared library into /usr/lib). Written to a temporary name and renamed, so a concurrent
 * host never reads half a bundle. A wheel that is corrupted, or two that install the same file,
 * make a PACKAGE_INVALID error and no bundle. (Synchronous: two callers in one process cannot
 * interleave, so there is no in-flight table to keep.)
 */
export function ensureBundle(cache: string, environment: PackageEnvironment, nativeAtImport: readonly string[] = []): string {
  const dir = environmentsDir(cache);
  const suffix = nativeAtImport.length > 0 ? `-${createHash("sha256").update(nativeAtImport.join(",")).digest("hex").slice(0, 8)}` : "";
  const path = join(dir, `${environment.id}${suffix}.bundle`);
  if (existsSync(path)) {
    touch(path);
    return path;
  }
  mkdirSync(dir, { recursive: true });
  const temp = ownedTempSibling(path, randomBytes(4).toString("hex"));
  try {
    writeBundle(temp, environment, nativeAtImport);
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  pruneEnvironments(dir, environment.id);
  return path;
}

/** Marks a cached file as used (pruning goes by the last use). */
function touch(path: string): void {
  try {
    const now = new Date();
    utimesSync(path, now, now);
  } catch {
    // read-only cache: pruning is best effort anyway
  }
}

function writeBundle(path: string, environment: PackageEnvironment, nativeAtImport: readonly string[]): void {
  const roots: Record<string, BundleDir> = { [SITE_PACKAGES]: {} };
  const chunks: Uint8Array[] = [];
  const owners = new Map<string, string>();
  const sharedLibraries: string[] = [];
  let offset = 0;

  const add = (root: string, relative: string, bytes: Uint8Array, owner: string) => {
    const key = `${root}/${relative}`;
    const previous = owners.get(key);
    if (previous !== undefined) {
      throw new WasmboxError("PACKAGE_INVALID", `packages ${previous} and ${owner} both install ${key}: they cannot be used together`);
    }
    owners.set(key, owner);
    const parts = relative.split("/");
    let dir = (roots[root] ??= {});
    for (const part of parts.slice(0, -1)) {
      const next: BundleDir | BundleFile = (dir[part] ??= {});
      if (Array.isArray(next)) throw new WasmboxError("PACKAGE_INVALID", `${owner} installs ${key} under a file of another package`);
      dir = next;
    }
    const name = parts.at(-1)!;
    if (Object.hasOwn(dir, name)) throw new WasmboxError("PACKAGE_INVALID", `${owner} installs ${key} twice`);
    dir[name] = [offset, bytes.length];
    chunks.push(bytes);
    offset += bytes.length;
    if (offset > MAX_BUNDLE_BYTES) throw new WasmboxError("PACKAGE_INVALID", `the package set unpacks to more than ${MAX_BUNDLE_BYTES} bytes`);
  };

  for (const pkg of environment.packages) {
    const label = `${pkg.name} ${pkg.version}`;
    const file = environment.fileOf(pkg);
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch (cause) {
      throw new WasmboxError("PACKAGE_NOT_FOUND", `the wheel of ${label} is missing from the wheelhouse (${file}): add it again with \`wasmbox packages add ${pkg.name}==${pkg.version}\``, { cause });
    }
    const digest = createHash("sha256").update(bytes).digest("hex");
    if (digest !== pkg.sha256) {
      throw new WasmboxError("PACKAGE_INVALID", `the wheel of ${label} (${file}) does not match its recorded sha256: it changed after it was added; add it again with \`wasmbox packages add ${pkg.name}==${pkg.version}\``);
    }
    const wheel = openWheel(bytes, file);
    for (const entry of wheel.entries) {
      if (entry.path.endsWith("/")) continue;
      if (pkg.kind === "shared_library") {
        add(SHARED_LIBRARY_DIR, entry.path, wheel.read(entry), label);
        if (/\.so(\.\d+)*$/.test(entry.path)) sharedLibraries.push(`${SHARED_LIBRARY_DIR}/${entry.path}`);
        continue;
      }
      const data = /^[^/]+\.data\/([^/]+)\/(.+)$/.exec(entry.path);
      if (data) {
        // purelib/platlib go to site-packages; scripts, headers and data have no place in the sandbox.
        if (data[1] === "purelib" || data[1] === "platlib") add(SITE_PACKAGES, data[2]!, wheel.read(entry), label);
        continue;
      }
      add(SITE_PACKAGES, entry.path, wheel.read(entry), label);
    }
  }

  const header: BundleHeader = { roots, ...importPlan(environment, nativeAtImport), sharedLibraries };
  const fd = openSync(path, "w");
  try {
    writeSync(fd, encodeBundleHeader(header));
    for (const chunk of chunks) writeSync(fd, chunk);
  } finally {
    closeSync(fd);
  }
}
