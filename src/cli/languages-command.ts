/**
 * `wasmbox languages [--json]`: which languages are installed, their versions, and how to add the
 * others. It only lists, it runs nothing.
 */
import type { Language } from "../core/request.js";
import { listLanguages } from "../sandbox/languages.js";

/** File extensions the CLI maps to a language when no --language is given. */
export const LANGUAGE_BY_EXTENSION: Readonly<Record<string, Language>> = {
  ".py": "python",
  ".js": "javascript",
  ".mjs": "javascript",
  ".cjs": "javascript",
  ".rb": "ruby",
  ".c": "c",
  ".cpp": "cpp",
  ".cc": "cpp",
  ".cxx": "cpp",
  ".sql": "sqlite",
  ".php": "php",
  ".lua": "lua",
  ".wasm": "wasi",
};

/** The language of a program file, from its extension; null when the extension is unknown. */
export function languageForFile(path: string): Language | null {
  const dot = path.lastIndexOf(".");
  if (dot < 0 || dot < path.lastIndexOf("/")) return null;
  return LANGUAGE_BY_EXTENSION[path.slice(dot).toLowerCase()] ?? null;
}

export function languagesCommand(args: string[], out: NodeJS.WritableStream = process.stdout): number {
  const json = args.includes("--json");
  const unknown = args.find((a) => a !== "--json");
  if (unknown !== undefined) {
    process.stderr.write(`wasmbox: unknown option ${unknown} (usage: wasmbox languages [--json])\n`);
    return 2;
  }
  const languages = listLanguages();
  if (json) {
    out.write(JSON.stringify(languages) + "\n");
    return 0;
  }
  const width = Math.max(...languages.map((l) => l.name.length)) + 2;
  const versionWidth = Math.max(...languages.map((l) => (l.version ?? "-").length)) + 2;
  for (const l of languages) {
    const status = l.installed ? "installed" : `not installed: ${l.install}`;
    out.write(`${l.name.padEnd(width)}${(l.version ?? "-").padEnd(versionWidth)}${status}\n`);
  }
  return 0;
}
