/**
 * Per-language start-up and hello-world rows: `npm run build && node --import tsx bench/languages.ts`.
 * Benchmarks, not tests: nothing here asserts a time.
 *
 * For every installed language, `--reps N` (default 5) hello-world runs on a Sandbox that keeps no
 * warm executor (poolSize 0), so each run starts its own executor:
 *   - start-up = the run's wall time minus its durationMs (spawning Deno, loading and compiling the
 *     runtime: what a warm pool hides),
 *   - hello    = durationMs (the request reaching a ready executor to its result: for c and cpp
 *     this includes compiling the program inside the sandbox).
 * Medians, with the ratio to Python's measured in the same run. Prints one markdown table; with
 * `--json` prints the rows as JSON instead.
 */
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import { listLanguages } from "../dist/index.js";
import { Sandbox, type RunRequest } from "../dist/index.js";

const HELLO: Record<string, RunRequest> = {
  python: { code: 'print("hello, world")' },
  javascript: { code: 'console.log("hello, world")' },
  ruby: { code: 'puts "hello, world"' },
  c: { code: '#include <stdio.h>\nint main(void) { puts("hello, world"); return 0; }' },
  cpp: { code: '#include <cstdio>\nint main() { std::puts("hello, world"); }' },
  sqlite: { code: "SELECT 'hello, world' AS greeting;" },
  php: { code: '<?php echo "hello, world\\n";' },
  lua: { code: 'print("hello, world")' },
};

/** A WASI hello world, assembled from text with wabt (a devDependency); null without it. */
async function wasiHello(): Promise<Uint8Array | null> {
  try {
    type Wabt = { parseWat(name: string, text: string): { toBinary(o: object): { buffer: Uint8Array } } };
    const wabt = await (createRequire(import.meta.url)("wabt") as () => Promise<Wabt>)();
    return wabt
      .parseWat(
        "hello.wat",
        `(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 16) "hello, world\\n")
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 13))
            (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`,
      )
      .toBinary({}).buffer;
  } catch {
    return null;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface LanguageRow {
  language: string;
  version: string;
  startupMs: number;
  helloMs: number;
  startupVsPython: number | null;
  helloVsPython: number | null;
  ok: boolean;
}

/** Measures every installed language; `reps` hello-world runs each. */
export async function benchLanguages(reps = 5): Promise<LanguageRow[]> {
  const wasm = await wasiHello();
  const requests: Record<string, RunRequest> = { ...HELLO };
  if (wasm) requests.wasi = { wasm };
  const rows: LanguageRow[] = [];
  const sandbox = await Sandbox.create({ poolSize: 0, maxConcurrency: 1 });
  try {
    for (const info of listLanguages()) {
      const request = requests[info.name];
      if (!info.installed || !request) continue;
      const startups: number[] = [];
      const hellos: number[] = [];
      let ok = true;
      for (let i = 0; i < reps + 1; i++) {
        const started = performance.now();
        const result = await sandbox.run({ ...request, language: info.name, timeoutMs: 120_000 });
        const wall = performance.now() - started;
        ok &&= result.status === "ok" && result.stdout.includes("hello, world");
        if (i === 0) continue; // the first run also prepares the language (e.g. the Python snapshot)
        startups.push(wall - result.durationMs);
        hellos.push(result.durationMs);
      }
      rows.push({ language: info.name, version: info.version ?? "", startupMs: median(startups), helloMs: median(hellos), startupVsPython: null, helloVsPython: null, ok });
    }
  } finally {
    await sandbox.close();
  }
  const python = rows.find((r) => r.language === "python");
  for (const row of rows) {
    row.startupVsPython = python ? row.startupMs / python.startupMs : null;
    row.helloVsPython = python ? row.helloMs / python.helloMs : null;
  }
  return rows;
}

export function languagesTable(rows: LanguageRow[]): string {
  const ratio = (r: number | null) => (r === null ? "–" : `${r.toFixed(2)}×`);
  const lines = [
    "| language | runtime | start-up (ms) | vs python | hello world (ms) | vs python | ok |",
    "|---|---|---:|---:|---:|---:|---|",
    ...rows.map(
      (r) =>
        `| ${r.language} | ${r.version} | ${r.startupMs.toFixed(0)} | ${ratio(r.startupVsPython)} | ${r.helloMs.toFixed(1)} | ${ratio(r.helloVsPython)} | ${r.ok ? "yes" : "NO"} |`,
    ),
  ];
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const repsAt = args.indexOf("--reps");
  const reps = repsAt >= 0 ? Number(args[repsAt + 1]) : Number(process.env.WASMBOX_BENCH_REPS ?? 5);
  const rows = await benchLanguages(Number.isInteger(reps) && reps > 0 ? reps : 5);
  process.stdout.write((args.includes("--json") ? JSON.stringify(rows, null, 2) : languagesTable(rows)) + "\n");
}
