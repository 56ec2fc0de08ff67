/**
 * PEP 508 requirements (`name[extra] (>=1,<2) ; marker`) and their environment markers, evaluated
 * for the SANDBOX (CPython 3.14 on Emscripten/wasm32), never for the host that runs wasmbox:
 * https://packaging.python.org/en/latest/specifications/dependency-specifiers/
 */
import { WasmboxError } from "../core/errors.js";
import { parseSpecifierSet, specifierSetContains, tryParseVersion, type SpecifierSet } from "./pep440.js";
import { sandboxTarget, type SandboxTarget } from "./sandbox-target.js";

/** PEP 503 name normalization: `Foo.Bar_baz` -> `foo-bar-baz`. */
export function normalizeName(name: string): string {
  return name.replace(/[-_.]+/g, "-").toLowerCase();
}

export type MarkerOperator = "<" | "<=" | "==" | "!=" | ">=" | ">" | "~=" | "===" | "in" | "not in";

export type MarkerValue = { variable: string } | { literal: string };

export type Marker =
  | { kind: "and" | "or"; left: Marker; right: Marker }
  | { kind: "compare"; left: MarkerValue; op: MarkerOperator; right: MarkerValue };

/** A parsed requirement. */
export interface Requirement {
  /** PEP 503 normalized name. */
  name: string;
  /** Extras, PEP 685 normalized (same rule as names), sorted, deduplicated. */
  extras: string[];
  specifier: SpecifierSet;
  marker: Marker | null;
  /** The text it was parsed from, trimmed. */
  text: string;
}

/** The values marker variables take, PEP 508's names. `extra` is given per evaluation. */
export type MarkerEnvironment = Readonly<Record<string, string>>;

/** The sandbox's marker environment: what `packaging.markers.default_environment()` says inside Pyodide. */
export function sandboxEnvironment(target: SandboxTarget = sandboxTarget()): MarkerEnvironment {
  return Object.freeze({
    python_version: `${target.pythonMajor}.${target.pythonMinor}`,
    python_full_version: target.pythonFullVersion,
    implementation_name: "cpython",
    implementation_version: target.pythonFullVersion,
    platform_python_implementation: "CPython",
    sys_platform: "emscripten",
    platform_system: "Emscripten",
    os_name: "posix",
    platform_machine: target.arch,
    platform_release: "",
    platform_version: "",
  });
}

const MARKER_VARIABLES = new Set([
  "python_version",
  "python_full_version",
  "implementation_name",
  "implementation_version",
  "platform_python_implementation",
  "sys_platform",
  "platform_system",
  "os_name",
  "platform_machine",
  "platform_release",
  "platform_version",
  "extra",
]);
/** Variables compared as versions when the other side is a version (PEP 508's "version" markers). */
const VERSION_VARIABLES = new Set(["python_version", "python_full_version", "implementation_version", "platform_release"]);
/** Legacy spellings some old metadata still carries (packaging accepts them). */
const ALIASES: Record<string, string> = {
  "os.name": "os_name",
  "sys.platform": "sys_platform",
  "platform.version": "platform_version",
  "platform.machine": "platform_machine",
  "platform.python_implementation": "platform_python_implementation",
  python_implementation: "platform_python_implementation",
};

function invalid(text: string, why: string): WasmboxError {
  return new WasmboxError("INVALID_REQUEST", `invalid requirement "${text}": ${why}`);
}

type Token = { type: "str"; value: string } | { type: "var"; value: string } | { type: "op"; value: MarkerOperator } | { type: "and" | "or" | "(" | ")" };

function tokenizeMarker(source: string, text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "(" || c === ")") {
      tokens.push({ type: c });
      i++;
    } else if (c === "'" || c === '"') {
      const end = source.indexOf(c, i + 1);
      if (end < 0) throw invalid(text, "unterminated string in the marker");
      tokens.push({ type: "str", value: source.slice(i + 1, end) });
      i = end + 1;
    } else {
      const op = /^(===|==|!=|<=|>=|~=|<|>)/.exec(source.slice(i));
      if (op) {
        tokens.push({ type: "op", value: op[1] as MarkerOperator });
        i += op[1]!.length;
        continue;
      }
      const word = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(source.slice(i));
      if (!word) throw invalid(text, `unexpected "${source.slice(i, i + 10)}" in the marker`);
      const w = word[0];
      i += w.length;
      if (w === "and" || w === "or") tokens.push({ type: w });
      else if (w === "in") tokens.push({ type: "op", value: "in" });
      else if (w === "not") {
        const rest = /^\s+in\b/.exec(source.slice(i));
        if (!rest) throw invalid(text, '"not" must be followed by "in" in a marker');
        i += rest[0].length;
        tokens.push({ type: "op", value: "not in" });
      } else {
        const name = ALIASES[w] ?? w;
        if (!MARKER_VARIABLES.has(name)) throw invalid(text, `unknown marker variable "${w}"`);
        tokens.push({ type: "var", value: name });
      }
    }
  }
  return tokens;
}

/** Parses a marker expression (the part after `;`). */
export function parseMarker(source: string, text = source): Marker {
  const tokens = tokenizeMarker(source, text);
  let pos = 0;
  const peek = () => tokens[pos];
  const value = (): MarkerValue => {
    const t = tokens[pos++];
    if (t?.type === "str") return { literal: t.value };
    if (t?.type === "var") return { variable: t.value };
    throw invalid(text, "expected a marker variable or a quoted string");
  };
  const atom = (): Marker => {
    if (peek()?.type === "(") {
      pos++;
      const inner = or();
      if (peek()?.type !== ")") throw invalid(text, "unbalanced parentheses in the marker");
      pos++;
      return inner;
    }
    const left = value();
    const op = tokens[pos++];
    if (op?.type !== "op") throw invalid(text, "expected a comparison operator in the marker");
    const right = value();
    return { kind: "compare", left, op: op.value, right };
  };
  const and = (): Marker => {
    let left = atom();
    while (peek()?.type === "and") {
      pos++;
      left = { kind: "and", left, right: atom() };
    }
    return left;
  };
  const or = (): Marker => {
    let left = and();
    while (peek()?.type === "or") {
      pos++;
      left = { kind: "or", left, right: and() };
    }
    return left;
  };
  const marker = or();
  if (pos !== tokens.length) throw invalid(text, "unexpected text after the marker");
  return marker;
}

/**
 * Parses one PEP 508 requirement. The URL form (`name @ https://...`) is refused: the wheelhouse
 * takes packages from an index, a Pyodide distribution, or a local wheel file.
 */
export function parseRequirement(input: string): Requirement {
  const text = input.trim();
  const m = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*/.exec(text);
  if (!m) throw invalid(text, "it does not start with a package name");
  let rest = text.slice(m[0].length);
  const name = normalizeName(m[1]!);
  let extras: string[] = [];
  if (rest.startsWith("[")) {
    const end = rest.indexOf("]");
    if (end < 0) throw invalid(text, "unclosed [ in the extras");
    const list = rest.slice(1, end).split(",").map((s) => s.trim()).filter((s) => s !== "");
    for (const extra of list) if (!/^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(extra)) throw invalid(text, `"${extra}" is not an extra name`);
    extras = [...new Set(list.map(normalizeName))].sort();
    rest = rest.slice(end + 1).trimStart();
  }
  if (rest.startsWith("@")) throw invalid(text, "direct URL requirements (name @ url) are not supported; give a name and version, or a local .whl path");
  const semi = rest.indexOf(";");
  let specText = (semi >= 0 ? rest.slice(0, semi) : rest).trim();
  const markerText = semi >= 0 ? rest.slice(semi + 1).trim() : null;
  if (specText.startsWith("(")) {
    if (!specText.endsWith(")")) throw invalid(text, "unbalanced parentheses around the version");
    specText = specText.slice(1, -1).trim();
  }
  let specifier: SpecifierSet;
  try {
    specifier = parseSpecifierSet(specText);
  } catch (error) {
    throw invalid(text, (error as Error).message);
  }
  if (markerText === "") throw invalid(text, "empty marker after ;");
  return { name, extras, specifier, marker: markerText === null ? null : parseMarker(markerText, text), text };
}

function resolveValue(value: MarkerValue, env: MarkerEnvironment): string {
  if ("literal" in value) return value.literal;
  const v = env[value.variable];
  if (v === undefined) throw new WasmboxError("INVALID_REQUEST", `marker variable ${value.variable} has no value`);
  return v;
}

function compareStrings(left: string, op: MarkerOperator, right: string): boolean {
  switch (op) {
    case "==":
    case "===":
      return left === right;
    case "!=":
      return left !== right;
    case "<":
      return left < right;
    case "<=":
      return left <= right;
    case ">":
      return left > right;
    case ">=":
      return left >= right;
    case "in":
      return right.includes(left);
    case "not in":
      return !right.includes(left);
    case "~=":
      return false; // ~= between non-versions is undefined; packaging raises, a marker that cannot hold is false here
  }
}

function evaluateCompare(marker: Extract<Marker, { kind: "compare" }>, env: MarkerEnvironment): boolean {
  let left = resolveValue(marker.left, env);
  let right = resolveValue(marker.right, env);
  const isExtra = ("variable" in marker.left && marker.left.variable === "extra") || ("variable" in marker.right && marker.right.variable === "extra");
  if (isExtra) {
    // PEP 685: extras compare normalized.
    left = normalizeName(left);
    right = normalizeName(right);
  }
  const versionLike =
    ("variable" in marker.left && VERSION_VARIABLES.has(marker.left.variable)) || ("variable" in marker.right && VERSION_VARIABLES.has(marker.right.variable));
  if (versionLike && marker.op !== "in" && marker.op !== "not in") {
    // As packaging does: `lhs op rhs` is the specifier `op rhs` applied to lhs (pre-releases allowed),
    // falling back to string comparison when either side is not a version.
    const candidate = tryParseVersion(left);
    if (candidate) {
      try {
        return specifierSetContains(parseSpecifierSet(`${marker.op}${right}`), candidate, { prereleases: true }, left);
      } catch {
        // not a version specifier: compare as strings
      }
    }
  }
  return compareStrings(left, marker.op, right);
}

/** Evaluates a marker against an environment (which includes `extra`, "" when none). */
export function evaluateMarker(marker: Marker, env: MarkerEnvironment): boolean {
  switch (marker.kind) {
    case "and":
      return evaluateMarker(marker.left, env) && evaluateMarker(marker.right, env);
    case "or":
      return evaluateMarker(marker.left, env) || evaluateMarker(marker.right, env);
    case "compare":
      return evaluateCompare(marker, env);
  }
}

/**
 * Whether a dependency (a Requires-Dist line) applies in the sandbox when its dependent was asked
 * for with `extras`: the marker holds with extra "" or with any one of the requested extras (pip).
 */
export function requirementApplies(requirement: Requirement, extras: readonly string[] = [], env: MarkerEnvironment = sandboxEnvironment()): boolean {
  if (!requirement.marker) return true;
  for (const extra of ["", ...extras]) if (evaluateMarker(requirement.marker, { ...env, extra })) return true;
  return false;
}
