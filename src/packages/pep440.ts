/**
 * PEP 440 versions and specifier sets, as pip (the `packaging` library) reads them:
 * https://packaging.python.org/en/latest/specifications/version-specifiers/
 *
 * Pure functions on strings; no I/O. Invalid input throws WasmboxError "INVALID_REQUEST" (the
 * caller rewraps it when the text came from a wheel's metadata rather than from the user).
 */
import { WasmboxError } from "../core/errors.js";

/** A parsed PEP 440 version. Numbers are JavaScript numbers: release segments past 2^53 are not supported. */
export interface Version {
  epoch: number;
  release: number[];
  /** Pre-release: a (alpha), b (beta) or rc (c, pre, preview), with its number. */
  pre: ["a" | "b" | "rc", number] | null;
  post: number | null;
  dev: number | null;
  /** Local label segments (after `+`), numbers where the segment is all digits. */
  local: (string | number)[] | null;
}

// The regex of PEP 440's appendix (packaging's VERSION_PATTERN), anchored, case-insensitive.
const VERSION_RE = new RegExp(
  "^\\s*v?(?:(?:(?<epoch>[0-9]+)!)?(?<release>[0-9]+(?:\\.[0-9]+)*)" +
    "(?<pre>[-_.]?(?<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?<pre_n>[0-9]+)?)?" +
    "(?<post>(?:-(?<post_n1>[0-9]+))|(?:[-_.]?(?<post_l>post|rev|r)[-_.]?(?<post_n2>[0-9]+)?))?" +
    "(?<dev>[-_.]?(?<dev_l>dev)[-_.]?(?<dev_n>[0-9]+)?)?)" +
    "(?:\\+(?<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?\\s*$",
  "i",
);

/** Parses a version, or returns null when the text is not PEP 440 (PyPI still lists a few such). */
export function tryParseVersion(text: string): Version | null {
  const m = VERSION_RE.exec(text);
  if (!m?.groups) return null;
  const g = m.groups;
  const preLetter = g.pre_l?.toLowerCase();
  const pre: Version["pre"] = preLetter
    ? [preLetter === "alpha" || preLetter === "a" ? "a" : preLetter === "beta" || preLetter === "b" ? "b" : "rc", Number(g.pre_n ?? 0)]
    : null;
  const post = g.post ? Number(g.post_n1 ?? g.post_n2 ?? 0) : null;
  const dev = g.dev ? Number(g.dev_n ?? 0) : null;
  const local = g.local ? g.local.toLowerCase().split(/[-_.]/).map((s) => (/^[0-9]+$/.test(s) ? Number(s) : s)) : null;
  return { epoch: Number(g.epoch ?? 0), release: g.release!.split(".").map(Number), pre, post, dev, local };
}

/** Parses a version; throws WasmboxError "INVALID_REQUEST" naming the text when it is not PEP 440. */
export function parseVersion(text: string): Version {
  const version = tryParseVersion(text);
  if (!version) throw new WasmboxError("INVALID_REQUEST", `"${text}" is not a valid version (PEP 440)`);
  return version;
}

/** The normalized form: `1.0.0-RC1` -> `1.0.0rc1`, `1.0-r2` -> `1.0.post2`. */
export function formatVersion(v: Version): string {
  let s = v.epoch ? `${v.epoch}!` : "";
  s += v.release.join(".");
  if (v.pre) s += `${v.pre[0]}${v.pre[1]}`;
  if (v.post !== null) s += `.post${v.post}`;
  if (v.dev !== null) s += `.dev${v.dev}`;
  if (v.local) s += `+${v.local.join(".")}`;
  return s;
}

/** A pre-release or development release: PEP 440 excludes these unless asked for. */
export function isPrerelease(v: Version): boolean {
  return v.pre !== null || v.dev !== null;
}

function isPostrelease(v: Version): boolean {
  return v.post !== null;
}

function publicOf(v: Version): Version {
  return v.local ? { ...v, local: null } : v;
}

function baseOf(v: Version): Version {
  return { epoch: v.epoch, release: v.release, pre: null, post: null, dev: null, local: null };
}

function compareNumbers(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareRelease(a: number[], b: number[]): number {
  // Trailing zeros do not count: 1.0 == 1.0.0.
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareNumbers(a[i] ?? 0, b[i] ?? 0);
    if (c) return c;
  }
  return 0;
}

const PRE_ORDER = { a: 0, b: 1, rc: 2 } as const;

/** The pre-release slot of the sort key, as in packaging's _cmpkey. */
function preKey(v: Version): [number, number] {
  // 1.0.dev0 sorts before 1.0a0: a dev release with no pre/post sorts before every pre-release.
  if (v.pre === null && v.post === null && v.dev !== null) return [-Infinity, 0];
  if (v.pre === null) return [Infinity, 0];
  return [PRE_ORDER[v.pre[0]], v.pre[1]];
}

function compareLocal(a: Version["local"], b: Version["local"]): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined) return -1; // a shorter local label with equal prefix sorts first
    if (y === undefined) return 1;
    if (typeof x === "number" && typeof y === "number") {
      const c = compareNumbers(x, y);
      if (c) return c;
    } else if (typeof x === "number") return 1; // numeric segments sort after alphanumeric ones
    else if (typeof y === "number") return -1;
    else if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Total order of PEP 440: negative when a < b, 0 when equal (1.0 == 1.0.0), positive when a > b. */
export function compareVersions(a: Version, b: Version): number {
  let c = compareNumbers(a.epoch, b.epoch) || compareRelease(a.release, b.release);
  if (c) return c;
  const [ap, an] = preKey(a);
  const [bp, bn] = preKey(b);
  c = compareNumbers(ap, bp) || compareNumbers(an, bn);
  if (c) return c;
  c = compareNumbers(a.post ?? -Infinity, b.post ?? -Infinity);
  if (c) return c;
  c = compareNumbers(a.dev ?? Infinity, b.dev ?? Infinity);
  if (c) return c;
  return compareLocal(a.local, b.local);
}

export type SpecifierOperator = "==" | "!=" | "<" | "<=" | ">" | ">=" | "~=" | "===";

/** One clause of a specifier set, e.g. `>=1.2` or `==1.2.*`. */
export interface Specifier {
  operator: SpecifierOperator;
  /** The version text as written, without `.*`. */
  version: string;
  /** `==1.2.*` / `!=1.*`: a prefix match. */
  wildcard: boolean;
  /** The parsed version; null only for `===` with text that is not PEP 440. */
  parsed: Version | null;
}

/** A comma-separated list of specifiers, all of which must match. Empty matches everything. */
export interface SpecifierSet {
  specifiers: Specifier[];
}

const SPECIFIER_RE = /^\s*(===|==|!=|<=|>=|~=|<|>)\s*([^\s,;]+)\s*$/;

/** Parses one specifier clause such as `>= 1.2` or `==1.*`. */
export function parseSpecifier(text: string): Specifier {
  const m = SPECIFIER_RE.exec(text);
  if (!m) throw new WasmboxError("INVALID_REQUEST", `"${text.trim()}" is not a version specifier (expected e.g. >=1.2, ==1.4.*, ~=2.0)`);
  const operator = m[1] as SpecifierOperator;
  let version = m[2]!;
  if (operator === "===") return { operator, version, wildcard: false, parsed: tryParseVersion(version) };
  const wildcard = version.endsWith(".*");
  if (wildcard) {
    if (operator !== "==" && operator !== "!=") throw new WasmboxError("INVALID_REQUEST", `"${text.trim()}": a .* suffix is allowed only with == and !=`);
    version = version.slice(0, -2);
  }
  const parsed = parseVersion(version);
  if (wildcard && parsed.local) throw new WasmboxError("INVALID_REQUEST", `"${text.trim()}": a prefix match cannot carry a local version`);
  if (parsed.local && operator !== "==" && operator !== "!=") {
    throw new WasmboxError("INVALID_REQUEST", `"${text.trim()}": a local version (+...) is allowed only with == and !=`);
  }
  if (operator === "~=" && parsed.release.length < 2) {
    throw new WasmboxError("INVALID_REQUEST", `"${text.trim()}": ~= needs at least two release segments (e.g. ~=1.4)`);
  }
  return { operator, version, wildcard, parsed };
}

/** Parses `>=1.0, <2` (an empty string is the set that matches every version). */
export function parseSpecifierSet(text: string): SpecifierSet {
  const parts = text.split(",").map((s) => s.trim());
  if (parts.length === 1 && parts[0] === "") return { specifiers: [] };
  return { specifiers: parts.map(parseSpecifier) };
}

export function formatSpecifierSet(set: SpecifierSet): string {
  return set.specifiers.map((s) => `${s.operator}${s.version}${s.wildcard ? ".*" : ""}`).join(",");
}

function prefixMatches(prefix: Version, candidate: Version): boolean {
  // `==1.2.*` matches 1.2, 1.2.0, 1.2.5, 1.2rc1, 1.2.post1 (the candidate's release padded with
  // zeros to the prefix's length, then compared segment by segment).
  if (prefix.epoch !== candidate.epoch) return false;
  for (let i = 0; i < prefix.release.length; i++) if ((candidate.release[i] ?? 0) !== prefix.release[i]) return false;
  if (prefix.pre || prefix.post !== null || prefix.dev !== null) {
    // A prefix that itself goes past the release (rare: ==1.0rc1.*) must then match exactly there.
    if (candidate.release.length > prefix.release.length && candidate.release.slice(prefix.release.length).some((n) => n !== 0)) return false;
    if (prefix.pre && (candidate.pre?.[0] !== prefix.pre[0] || candidate.pre?.[1] !== prefix.pre[1])) return false;
    if (prefix.post !== null && candidate.post !== prefix.post) return false;
    if (prefix.dev !== null && candidate.dev !== prefix.dev) return false;
  }
  return true;
}

function equalMatches(spec: Specifier, candidate: Version): boolean {
  const target = spec.parsed!;
  if (spec.wildcard) return prefixMatches(target, publicOf(candidate));
  // ==1.0 matches 1.0+local; ==1.0+local matches only that local label.
  return compareVersions(target.local ? candidate : publicOf(candidate), target) === 0;
}

/** Does `candidate` satisfy the one clause `spec`? Pre-release policy is the set's business. */
export function specifierMatches(spec: Specifier, candidate: Version, candidateText?: string): boolean {
  if (spec.operator === "===") {
    // Arbitrary equality: the strings, case-insensitively (PEP 440 says so).
    const text = candidateText ?? formatVersion(candidate);
    return text.trim().toLowerCase() === spec.version.toLowerCase();
  }
  const target = spec.parsed!;
  const pub = publicOf(candidate);
  switch (spec.operator) {
    case "==":
      return equalMatches(spec, candidate);
    case "!=":
      return !equalMatches(spec, candidate);
    case "<=":
      return compareVersions(pub, target) <= 0;
    case ">=":
      return compareVersions(pub, target) >= 0;
    case "<":
      if (compareVersions(pub, target) >= 0) return false;
      // <3.1 excludes 3.1.0a1 unless the specifier is itself a pre-release.
      if (!isPrerelease(target) && isPrerelease(pub) && compareVersions(baseOf(pub), baseOf(target)) === 0) return false;
      return true;
    case ">":
      if (compareVersions(pub, target) <= 0) return false;
      // >3.1 excludes 3.1.post1 unless the specifier is a post-release, and 3.1+local.
      if (!isPostrelease(target) && isPostrelease(pub) && compareVersions(baseOf(pub), baseOf(target)) === 0) return false;
      if (candidate.local && compareVersions(baseOf(candidate), baseOf(target)) === 0) return false;
      return true;
    case "~=": {
      // ~=2.2.1 is >=2.2.1, ==2.2.*.
      if (compareVersions(pub, target) < 0) return false;
      const prefix: Version = { ...baseOf(target), release: target.release.slice(0, -1) };
      return prefixMatches(prefix, pub);
    }
  }
}

/** Does the set name a pre-release itself (then pre-releases are allowed, as pip does)? */
export function setAsksForPrereleases(set: SpecifierSet): boolean {
  return set.specifiers.some((s) => s.operator !== "!=" && s.parsed !== null && isPrerelease(s.parsed));
}

export interface PrereleaseOptions {
  /** true: always admit pre-releases; false: never; undefined (default): PEP 440's rule. */
  prereleases?: boolean;
}

/**
 * Whether one version satisfies every clause. With the default policy, a pre-release matches only
 * when the set names a pre-release itself (use filterVersions for the "only match" rule).
 */
export function specifierSetContains(set: SpecifierSet, candidate: Version, options: PrereleaseOptions = {}, candidateText?: string): boolean {
  const allowPre = options.prereleases ?? setAsksForPrereleases(set);
  if (!allowPre && isPrerelease(candidate)) return false;
  return set.specifiers.every((s) => specifierMatches(s, candidate, candidateText));
}

/**
 * The candidates that satisfy the set, in their given order. PEP 440: pre-releases are left out
 * unless the set names one or options.prereleases is true, or unless they are the only matches.
 */
export function filterVersions<T>(set: SpecifierSet, candidates: readonly T[], versionOf: (candidate: T) => Version, options: PrereleaseOptions = {}): T[] {
  const matching = candidates.filter((c) => set.specifiers.every((s) => specifierMatches(s, versionOf(c))));
  const allowPre = options.prereleases ?? setAsksForPrereleases(set);
  if (allowPre) return matching;
  const finals = matching.filter((c) => !isPrerelease(versionOf(c)));
  if (finals.length > 0 || options.prereleases === false) return finals;
  return matching;
}
