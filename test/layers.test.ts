/**
 * The layers of docs/architecture.md, checked on the source: an import that crosses a wall the
 * architecture forbids fails here, naming the file and the import. Type-only imports are erased at
 * build time and may cross where a value may not (the host reads the executor's message types).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "..", "src");

/** The layer a source file belongs to: its folder under src/, and "runtimes/<language>" for adapters. */
function layerOf(file: string): string {
  const parts = relative(SRC, file).split("/");
  if (parts.length === 1) return "index";
  if (parts[0] === "runtimes" && parts.length >= 3) return "runtimes/*";
  return parts[0]!;
}

interface Import {
  file: string;
  specifier: string;
  typeOnly: boolean;
}

function importsOf(file: string): Import[] {
  const text = readFileSync(file, "utf8");
  const found: Import[] = [];
  const statement = /^\s*(import|export)\s+(type\s+)?(?:[^;"']*?\s+from\s+)?["']([^"']+)["']/gm;
  for (const match of text.matchAll(statement)) found.push({ file, specifier: match[3]!, typeOnly: match[2] !== undefined });
  for (const match of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) found.push({ file, specifier: match[1]!, typeOnly: false });
  return found;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.ts$/.test(entry.name) && !/\.(test|d)\.ts$/.test(entry.name) ? [path] : [];
  });
}

/** What each layer may import as values: layers of ours by name, others as "node:" or "npm". */
const ALLOWED: Record<string, string[]> = {
  core: ["core"],
  vfs: ["core", "vfs"],
  protocol: ["core", "vfs", "protocol", "node:", "npm"],
  runtimes: ["core", "vfs", "runtimes"],
  "runtimes/*": ["core", "vfs", "runtimes", "runtimes/*", "npm"],
  executor: ["core", "executor"],
  // host starts executors with a package environment (packages/environment.ts), and the packages
  // layer reads pyodide's paths and the temp-name scheme from host's leaves (runtime-paths, host-temp).
  host: ["core", "vfs", "host", "packages", "node:", "npm"],
  // The host-side wheelhouse (`wasmbox packages`) and the environments made from it.
  packages: ["core", "host", "packages", "node:", "npm"],
  sandbox: ["core", "vfs", "protocol", "host", "packages", "sandbox", "node:", "npm"],
  service: ["core", "protocol", "sandbox", "service", "node:"],
  // Batches of jobs (`wasmbox batch`, `wasmbox worker`): files of jobs and results, the local loop, the queue.
  batch: ["core", "protocol", "sandbox", "batch", "node:", "npm"],
  cli: ["core", "vfs", "protocol", "sandbox", "service", "packages", "batch", "cli", "http", "mcp", "node:", "npm"],
  http: ["core", "vfs", "protocol", "sandbox", "service", "cli", "http", "node:", "npm"],
  mcp: ["core", "vfs", "protocol", "sandbox", "service", "http", "mcp", "node:", "npm"],
  index: ["core", "protocol", "sandbox"],
};
/** Type-only imports may also reach these (erased at build time). */
const TYPES_ALSO: Record<string, string[]> = {
  host: ["executor", "runtimes"],
  service: ["host"],
  cli: ["host"],
  batch: ["host"],
  http: ["host"],
  index: ["host"],
};

/**
 * The wall inside the executor: the trusted main isolate (src/executor/) shares no code with the
 * guest's realm but these layouts of the memory both sides use (the worker protocol's types, the
 * output ring, the host-call buffer). Each isolate loads its own copy of a module: sharing a file is
 * not sharing a realm.
 */
const EXECUTOR_MAY_IMPORT = ["runtimes/worker-protocol.ts", "runtimes/output-ring.ts", "runtimes/python/host-call-layout.ts"];

function crossesExecutorWall(imp: Import): boolean {
  const target = relative(SRC, resolve(dirname(imp.file), imp.specifier)).replace(/\.js$/, ".ts");
  return !EXECUTOR_MAY_IMPORT.includes(target);
}

function targetOf(imp: Import): string {
  if (imp.specifier.startsWith("node:")) return "node:";
  if (!imp.specifier.startsWith(".")) return "npm";
  return layerOf(resolve(dirname(imp.file), imp.specifier));
}

function violations(): string[] {
  const out: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const layer = layerOf(file);
    const allowed = ALLOWED[layer];
    if (!allowed) {
      out.push(`${relative(SRC, file)}: layer ${layer} is not in the architecture's table`);
      continue;
    }
    for (const imp of importsOf(file)) {
      const target = targetOf(imp);
      if (allowed.includes(target)) continue;
      if (layer === "executor" && target.startsWith("runtimes") && !crossesExecutorWall(imp)) continue;
      if (imp.typeOnly && TYPES_ALSO[layer]?.includes(target)) continue;
      out.push(`${relative(SRC, file)} (${layer}) imports ${imp.typeOnly ? "the types of " : ""}${imp.specifier} (${target})`);
    }
  }
  return out;
}

describe("layers", () => {
  test("no source file imports across a wall the architecture forbids", () => {
    assert.deepEqual(violations(), []);
  });

  test("the check finds what it is for: a file that never imports is not a pass by accident", () => {
    const executorMain = join(SRC, "executor", "main.ts");
    const seen = importsOf(executorMain).map((i) => targetOf(i));
    assert.ok(seen.includes("core") && seen.includes("runtimes"), `imports of executor/main.ts: ${seen.join(", ")}`);
    const hostProcess = importsOf(join(SRC, "host", "executor-process.ts"));
    assert.ok(hostProcess.some((i) => targetOf(i) === "executor" && i.typeOnly), "the host reads the executor's types");
  });
});
