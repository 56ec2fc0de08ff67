/** Seeded generator of random and mutated `serve --stdio` request lines (serve-stdio-fuzz.test.ts). */

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with WASMBOX_FUZZ_SEED. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Well-formed requests the mutations start from: every op and field the protocol has. */
const SEEDS: object[] = [
  { code: "4 + 5" },
  { id: 1, code: "print('x')", stream: true },
  { id: "s", op: "session.open", idleTimeoutMs: 60_000 },
  { id: 2, op: "session.run", sessionId: "nope", code: "1" },
  { id: 3, op: "session.close", sessionId: "nope" },
  { id: 4, op: "session.files.list", sessionId: "nope" },
  { id: 5, op: "session.files.read", sessionId: "nope", path: "a.txt" },
  { id: 6, op: "session.files.write", sessionId: "nope", path: "a.txt", content: "aGk=", encoding: "base64" },
  { id: 7, op: "cancel" },
  { id: 8, callId: "c0", result: 1 },
  { id: 9, code: "1", tools: ["lookup"] },
  { id: 10, code: "import sys\nsys.stdin.read()", stdin: { encoding: "base64", content: "aGVsbG8=" }, files: { "a.txt": "x" }, argv: ["a"], env: { K: "V" } },
  { id: 11, code: "1", timeoutMs: 1000, memoryLimitBytes: 67108864, maxOutputBytes: 1024 },
  { id: 12, language: "javascript", code: "1 + 1" },
  { id: 13, entryPath: "main.py", files: { "main.py": "print(1)" } },
];

const JUNK_VALUES: unknown[] = [
  null, true, false, 0, -1, 1e308, -1e308, 2 ** 53 + 1, 0.5, "", "x".repeat(300), "\u0000", "\ud800", "../../etc/passwd", "/abs",
  [], [1, [2, [3]]], {}, { a: { b: { c: {} } } }, "__proto__", { __proto__: { polluted: true } }, "constructor",
];

function isRun(seed: object): boolean {
  return "code" in seed || "entryPath" in seed;
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** One fuzz frame: raw noise, a byte-level mutation of a seed, or a structural one. */
export function fuzzFrame(random: () => number): string {
  const roll = random();
  if (roll < 0.15) {
    // Random bytes (no newline: each frame stays one line).
    const length = Math.floor(random() * 200);
    let out = "";
    for (let i = 0; i < length; i++) {
      const code = Math.floor(random() * 0x7f);
      out += code === 0x0a ? " " : String.fromCharCode(code);
    }
    return out;
  }
  // Seeds that run code are picked a tenth of the time: a mutation keeps about a quarter of them
  // valid, and each valid one is a real run in the sandbox, which bounds the fuzz's duration.
  const runs = SEEDS.filter(isRun);
  const seed = JSON.stringify(random() < 0.1 ? pick(random, runs) : pick(random, SEEDS.filter((s) => !isRun(s))));
  if (roll < 0.55) {
    // Byte-level: flip, delete, duplicate or truncate a few characters of a valid line.
    let text = seed;
    const edits = 1 + Math.floor(random() * 4);
    for (let i = 0; i < edits; i++) {
      const at = Math.floor(random() * text.length);
      const op = random();
      if (op < 0.3) text = text.slice(0, at) + String.fromCharCode(32 + Math.floor(random() * 95)) + text.slice(at + 1);
      else if (op < 0.55) text = text.slice(0, at) + text.slice(at + 1);
      else if (op < 0.8) text = text.slice(0, at) + text.slice(at, at + 5).repeat(2) + text.slice(at);
      else text = text.slice(0, at);
    }
    return text;
  }
  // Structural: a field replaced by a junk value of another type, or a junk field added.
  const value = JSON.parse(seed) as Record<string, unknown>;
  const keys = Object.keys(value);
  if (random() < 0.7 && keys.length > 0) value[pick(random, keys)] = pick(random, JUNK_VALUES);
  else value[pick(random, ["op", "id", "code", "files", "stdin", "sessionId", "callId", "tools", "stream", "zzz", "__proto__"])] = pick(random, JUNK_VALUES);
  return JSON.stringify(value);
}

