/**
 * The lossless form of a run's value (`RunResult.valueLossless`, docs/values.md): JSON where JSON
 * is exact, and a one-key object `{"$tag": ...}` where it is not, so Python's types survive the
 * trip (big ints, non-finite and integral floats, tuples, dicts with non-string keys, bytes, sets,
 * dates, decimals). The Python runner makes it; the host checks its shape before passing it on (it
 * comes from the guest's realm); clients rebuild values from it (the Python client: the exact
 * Python value; TypeScript: decodeLosslessValue()).
 */

/** The tags and what each carries. */
export const LOSSLESS_TAGS = {
  $int: "string", // decimal digits, beyond ±(2**53 - 1)
  $float: "string", // Python's repr: "2.0", "-0.0", "nan", "inf", "-inf", "1e+300"
  $tuple: "array",
  $dict: "pairs", // [[key, value], ...]: keys that are not strings, or start with "$"
  $bytes: "base64",
  $bytearray: "base64",
  $set: "array",
  $frozenset: "array",
  $complex: "pair", // [real, imag], each a number or a $float
  $datetime: "string", // ISO 8601, as datetime.isoformat()
  $date: "string",
  $time: "string",
  $timedelta: "ints", // [days, seconds, microseconds]
  $decimal: "string",
  $fraction: "pair", // [numerator, denominator], each an int or $int
  $uuid: "string",
} as const;

type Tag = keyof typeof LOSSLESS_TAGS;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Whether `value` is a well-formed lossless value (depth-bounded): what the host lets through. */
export function isLosslessValue(value: unknown, depth = 0): boolean {
  if (depth > 200) return false;
  if (value === null || typeof value === "boolean" || typeof value === "string") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => isLosslessValue(v, depth + 1));
  if (typeof value !== "object") return false;
  const keys = Object.keys(value);
  const tagged = keys.length === 1 && keys[0]!.startsWith("$");
  if (!tagged) return keys.every((k) => !k.startsWith("$") && isLosslessValue((value as Record<string, unknown>)[k], depth + 1));
  const tag = keys[0] as Tag;
  const body = (value as Record<string, unknown>)[tag];
  switch (LOSSLESS_TAGS[tag]) {
    case "string":
      return typeof body === "string";
    case "base64":
      return typeof body === "string" && BASE64.test(body);
    case "array":
      return Array.isArray(body) && body.every((v) => isLosslessValue(v, depth + 1));
    case "pairs":
      return Array.isArray(body) && body.every((p) => Array.isArray(p) && p.length === 2 && isLosslessValue(p[0], depth + 1) && isLosslessValue(p[1], depth + 1));
    case "pair":
      return Array.isArray(body) && body.length === 2 && body.every((v) => isLosslessValue(v, depth + 1));
    case "ints":
      return Array.isArray(body) && body.length === 3 && body.every((v) => Number.isSafeInteger(v));
    default:
      return false;
  }
}

function floatOf(text: string): number {
  if (text === "inf") return Number.POSITIVE_INFINITY;
  if (text === "-inf") return Number.NEGATIVE_INFINITY;
  return Number(text); // "nan" gives NaN too
}

function bytesOf(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * The lossless form as JavaScript values: `$int` a bigint, `$float` a number (NaN, ±Infinity, -0),
 * `$tuple` an array, `$dict` a Map, `$bytes`/`$bytearray` a Uint8Array, `$set`/`$frozenset` a Set,
 * `$complex` `{real, imag}`, `$fraction` `{numerator, denominator}` (bigints), `$timedelta`
 * `{days, seconds, microseconds}`; dates, times, decimals and UUIDs stay their exact strings.
 */
export function decodeLosslessValue(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(decodeLosslessValue);
  const keys = Object.keys(value);
  const record = value as Record<string, unknown>;
  if (!(keys.length === 1 && keys[0]!.startsWith("$"))) {
    return Object.fromEntries(keys.map((k) => [k, decodeLosslessValue(record[k])]));
  }
  const tag = keys[0] as Tag;
  const body = record[tag] as never;
  const list = () => (body as unknown[]).map(decodeLosslessValue);
  const integer = (v: unknown) => (typeof v === "number" ? BigInt(v) : BigInt((v as { $int: string }).$int));
  switch (tag) {
    case "$int":
      return BigInt(body as string);
    case "$float":
      return floatOf(body as string);
    case "$tuple":
      return list();
    case "$dict":
      return new Map((body as [unknown, unknown][]).map(([k, v]) => [decodeLosslessValue(k), decodeLosslessValue(v)]));
    case "$bytes":
    case "$bytearray":
      return bytesOf(body as string);
    case "$set":
    case "$frozenset":
      return new Set(list());
    case "$complex": {
      const [real, imag] = list() as [number, number];
      return { real, imag };
    }
    case "$fraction": {
      const [numerator, denominator] = body as [unknown, unknown];
      return { numerator: integer(numerator), denominator: integer(denominator) };
    }
    case "$timedelta": {
      const [days, seconds, microseconds] = body as [number, number, number];
      return { days, seconds, microseconds };
    }
    default:
      return body; // $datetime, $date, $time, $decimal, $uuid: their exact text
  }
}
