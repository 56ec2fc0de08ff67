/**
 * Pure-Python CPU workloads. Each defines `bench()`, which returns a checksum so that every peer's
 * answer can be checked against native CPython's. They avoid classes and `random` so that Monty
 * (which has neither) can run as many as it can; data comes from a small LCG instead.
 */

export interface CpuWorkload {
  name: string;
  what: string;
  source: string;
}

export const CPU_WORKLOADS: CpuWorkload[] = [
  {
    name: "fib",
    what: "recursion: fib(25)",
    source: `
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def bench():
    return fib(25)
`,
  },
  {
    name: "loops",
    what: "nested integer loops, 500k iterations",
    source: `
def bench():
    total = 0
    for i in range(500):
        for j in range(1000):
            total += (i * j) & 255
    return total
`,
  },
  {
    name: "strings",
    what: "string building, split/join, re.findall/re.sub",
    source: `
import re

def bench():
    words = []
    x = 12345
    for i in range(20000):
        x = (x * 1103515245 + 12345) % 2147483648
        words.append("w" + str(x % 1000) + ("-" if x % 7 == 0 else ""))
    text = " ".join(words)
    found = re.findall(r"w(\\d+)-", text)
    swapped = re.sub(r"w(\\d)(\\d*)", r"\\2\\1", text)
    parts = swapped.split(" ")
    upper = text.upper().count("W1")
    return len(found) + len(parts) + upper + sum([len(p) for p in parts])
`,
  },
  {
    name: "json",
    what: "json.dumps/json.loads of 2000 records, 5 times",
    source: `
import json

def bench():
    data = [{"id": i, "name": "item" + str(i), "tags": ["a", "b", str(i % 10)], "score": i * 0.5, "ok": i % 2 == 0} for i in range(2000)]
    total = 0
    for _ in range(5):
        text = json.dumps(data)
        back = json.loads(text)
        total += len(text) + len(back)
    return total
`,
  },
  {
    name: "sort",
    what: "sorted() of 50k ints, with a key, and of strings",
    source: `
def bench():
    x = 42
    nums = []
    for i in range(50000):
        x = (x * 1103515245 + 12345) % 2147483648
        nums.append(x)
    a = sorted(nums)
    b = sorted(nums, key=lambda v: (v % 1000, -v))
    strs = sorted([str(v) for v in nums[:20000]])
    return a[500] + b[500] + len(strs[100]) + int(strs[0][:3])
`,
  },
  {
    name: "nbody",
    what: "n-body simulation, 5000 steps (floats, lists)",
    source: `
def bench():
    pi = 3.14159265358979323
    solar_mass = 4 * pi * pi
    dpy = 365.24
    bodies = [
        [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], solar_mass],
        [[4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01],
         [1.66007664274403694e-03 * dpy, 7.69901118419740425e-03 * dpy, -6.90460016972063023e-05 * dpy],
         9.54791938424326609e-04 * solar_mass],
        [[8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01],
         [-2.76742510726862411e-03 * dpy, 4.99852801234917238e-03 * dpy, 2.30417297573763929e-05 * dpy],
         2.85885980666130812e-04 * solar_mass],
        [[1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01],
         [2.96460137564761618e-03 * dpy, 2.37847173959480950e-03 * dpy, -2.96589568540237556e-05 * dpy],
         4.36624404335156298e-05 * solar_mass],
        [[1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01],
         [2.68067772490389322e-03 * dpy, 1.62824170038242295e-03 * dpy, -9.51592254519715870e-05 * dpy],
         5.15138902046611451e-05 * solar_mass],
    ]
    pairs = []
    for i in range(len(bodies)):
        for j in range(i + 1, len(bodies)):
            pairs.append((bodies[i], bodies[j]))
    px = 0.0
    py = 0.0
    pz = 0.0
    for b in bodies:
        px -= b[1][0] * b[2]
        py -= b[1][1] * b[2]
        pz -= b[1][2] * b[2]
    bodies[0][1][0] = px / solar_mass
    bodies[0][1][1] = py / solar_mass
    bodies[0][1][2] = pz / solar_mass
    dt = 0.01
    for step in range(5000):
        for pair in pairs:
            b1 = pair[0]
            b2 = pair[1]
            r1 = b1[0]
            v1 = b1[1]
            r2 = b2[0]
            v2 = b2[1]
            dx = r1[0] - r2[0]
            dy = r1[1] - r2[1]
            dz = r1[2] - r2[2]
            mag = dt * ((dx * dx + dy * dy + dz * dz) ** -1.5)
            m1 = b1[2] * mag
            m2 = b2[2] * mag
            v1[0] -= dx * m2
            v1[1] -= dy * m2
            v1[2] -= dz * m2
            v2[0] += dx * m1
            v2[1] += dy * m1
            v2[2] += dz * m1
        for b in bodies:
            r = b[0]
            v = b[1]
            r[0] += dt * v[0]
            r[1] += dt * v[1]
            r[2] += dt * v[2]
    e = 0.0
    for pair in pairs:
        r1 = pair[0][0]
        r2 = pair[1][0]
        dx = r1[0] - r2[0]
        dy = r1[1] - r2[1]
        dz = r1[2] - r2[2]
        e -= (pair[0][2] * pair[1][2]) / ((dx * dx + dy * dy + dz * dz) ** 0.5)
    for b in bodies:
        v = b[1]
        e += b[2] * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) / 2.0
    return round(e, 9)
`,
  },
  {
    name: "matmul",
    what: "pure-Python 80×80 float matrix multiply",
    source: `
def bench():
    n = 80
    a = [[(i * j) % 7 + 1.0 for j in range(n)] for i in range(n)]
    b = [[(i + j) % 5 + 1.0 for j in range(n)] for i in range(n)]
    c = [[0.0] * n for _ in range(n)]
    for i in range(n):
        ai = a[i]
        ci = c[i]
        for k in range(n):
            aik = ai[k]
            bk = b[k]
            for j in range(n):
                ci[j] += aik * bk[j]
    return sum([sum(row) for row in c])
`,
  },
];

/** CPython/Pyodide form: times bench() inside the guest and prints one JSON line {ms, check}. */
export function timedSource(workload: CpuWorkload): string {
  return `${workload.source}
import time as _bench_time, json as _bench_json
_bench_t0 = _bench_time.perf_counter()
_bench_r = bench()
_bench_t1 = _bench_time.perf_counter()
print(_bench_json.dumps({"ms": (_bench_t1 - _bench_t0) * 1000.0, "check": _bench_r}))
`;
}

/** Monty form: the program's value is bench()'s result; the host times run(). */
export function montySource(workload: CpuWorkload): string {
  return `${workload.source}\nbench()\n`;
}

/** Reads the {ms, check} line a timed run printed. */
export function parseTimed(line: string): { ms: number; check: unknown } {
  const parsed = JSON.parse(line.trim().split("\n").pop()!) as { ms: number; check: unknown };
  if (typeof parsed.ms !== "number") throw new Error(`no timing in ${line.slice(0, 200)}`);
  return parsed;
}

/** Whether two checksums agree (floats to a relative 1e-9). */
export function sameCheck(a: unknown, b: unknown): boolean {
  if (typeof a === "number" && typeof b === "number") return a === b || Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));
  if (typeof a === "bigint" || typeof b === "bigint") return String(a) === String(b);
  return JSON.stringify(a) === JSON.stringify(b);
}

export const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
