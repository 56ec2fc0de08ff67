/**
 * `wasmbox languages [--json]`: which languages are installed, their versions, and how to add the
 * others. It only lists, it runs nothing.
 */
import type { Language } from "../core/request.js";
import { listLanguages } from "../sandbox/languages.js";
import { findOption, type CommandHelp, type OptionSpec } from "./command-help.js";

/** Every option of `wasmbox languages`. */
export const LANGUAGES_OPTIONS = [
  { flag: "--json", help: "print the list as JSON: [{name, version, installed, install}, ...]" },
] as const satisfies readonly OptionSpec[];

/** `wasmbox languages --help`. */
export const LANGUAGES_HELP: CommandHelp = {
  usage: ["wasmbox languages [--json]"],
  about: [
    "Lists the languages wasmbox runs: each one's name (what --language takes), the runtime and its",
    "version, and whether it is installed, or the command that installs it. It runs nothing.",
  ].join("\n"),
  sections: [{ title: "options:", options: LANGUAGES_OPTIONS }],
  examples: [
    { says: "what is installed here", command: "wasmbox languages" },
    { says: "the names of the installed languages, with jq", command: "wasmbox languages --json | jq -r '.[] | select(.installed) | .name'" },
  ],
};

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

/** `wasmbox languages ARGS`: returns the exit status. */
export function languagesCommand(args: string[], out: NodeJS.WritableStream = process.stdout): number {
  const json = args.includes("--json");
  const unknown = args.find((a) => !findOption(LANGUAGES_OPTIONS, a));
  if (unknown !== undefined) {
    process.stderr.write(`wasmbox: ${unknown.startsWith("-") ? "unknown option" : "languages takes no arguments, got"} ${unknown} (see wasmbox languages --help)\n`);
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
