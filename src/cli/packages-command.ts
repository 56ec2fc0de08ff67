/**
 * `wasmbox packages add|list|remove`: the host-side wheelhouse of third-party Python packages the
 * sandbox can import. Parses arguments here, at the edge; src/packages/wheelhouse.ts does the work.
 * Exit status: 0 done, 1 a package error (`wasmbox: <message>`), 2 bad arguments.
 */
import { WasmboxError } from "../core/errors.js";
import { addPackages, formatSize, readWheelhouse, removePackages, wheelhouseDir, type InstalledPackage } from "../packages/wheelhouse.js";
import { findOption, formatHelp, UsageError, type CommandHelp, type OptionSpec } from "./command-help.js";

const WHEELHOUSE = { flag: "--wheelhouse", value: "DIR", help: "the wheelhouse", default: "$WASMBOX_WHEELHOUSE, else <cache>/wasmbox/wheelhouse" } as const;

/** The options of `packages add`, `list` and `remove`: what each parser takes and its --help lists. */
const ADD_OPTIONS = [
  WHEELHOUSE,
  { flag: "--index-url", value: "URL", help: "a PEP 691 Simple API index", default: "$WASMBOX_INDEX_URL, else https://pypi.org/simple" },
  {
    flag: "--pyodide-dist",
    value: "DIR",
    help: "an unpacked Pyodide release (pyodide-lock.json and its wheels): packages it holds come from it, which is how native packages such as numpy are added",
  },
] as const satisfies readonly OptionSpec[];
const LIST_OPTIONS = [{ flag: "--json", help: "print {dir, packages: [...]} as JSON instead" }, WHEELHOUSE] as const satisfies readonly OptionSpec[];
const REMOVE_OPTIONS = [WHEELHOUSE] as const satisfies readonly OptionSpec[];

const ADD_USAGE = "wasmbox packages add SPEC... [--wheelhouse DIR] [--index-url URL] [--pyodide-dist DIR]";
const LIST_USAGE = "wasmbox packages list [--json] [--wheelhouse DIR]";
const REMOVE_USAGE = "wasmbox packages remove NAME... [--wheelhouse DIR]";

const ADD_EXAMPLES = [
  { says: "sympy and what it needs, from PyPI", command: "wasmbox packages add sympy" },
  { says: "numpy, from Pyodide's release", command: "wasmbox packages add numpy --pyodide-dist ./pyodide" },
];
const LIST_EXAMPLES = [{ says: "what the wheelhouse holds", command: "wasmbox packages list" }];
const REMOVE_EXAMPLES = [{ says: "take sympy out again", command: "wasmbox packages remove sympy" }];

const HELP: CommandHelp = {
  usage: [ADD_USAGE, LIST_USAGE, REMOVE_USAGE],
  about: "Keeps the wheelhouse: Python packages (wheels) the sandbox can import, downloaded on this host.",
  sections: [
    { title: "add options:", options: ADD_OPTIONS },
    { title: "list options:", options: LIST_OPTIONS },
    { title: "remove options:", options: REMOVE_OPTIONS },
  ],
  examples: [...ADD_EXAMPLES, ...LIST_EXAMPLES, { says: "then use it", command: `wasmbox run --package sympy -c "import sympy; print(sympy.factor('x**2 - 1'))"` }],
};

const ADD_HELP: CommandHelp = {
  usage: [ADD_USAGE],
  about: [
    "Adds packages and their dependencies to the wheelhouse. SPEC is a requirement (sympy,",
    "'sympy==1.14.0', 'pydantic>=2', 'requests[socks]') or the path of a local .whl file.",
    "Only wheels that run in the sandbox are taken: pure Python, or built for Pyodide.",
  ].join("\n"),
  sections: [{ title: "options:", options: ADD_OPTIONS }],
  examples: [...ADD_EXAMPLES, { says: "a pinned version, into another wheelhouse", command: "wasmbox packages add 'sympy==1.14.0' --wheelhouse ./wheels" }],
};

const LIST_HELP: CommandHelp = {
  usage: [LIST_USAGE],
  about: [
    "Lists the wheelhouse: its directory on the first line, then name, version, native or pure, size",
    "and importable modules of each package.",
  ].join("\n"),
  sections: [{ title: "options:", options: LIST_OPTIONS }],
  examples: [...LIST_EXAMPLES, { says: "the names, with jq", command: "wasmbox packages list --json | jq -r '.packages[].name'" }],
};

const REMOVE_HELP: CommandHelp = {
  usage: [REMOVE_USAGE],
  about: [
    "Removes packages and their files. Their dependencies stay; a package another one requires is",
    "refused unless that one is removed too.",
  ].join("\n"),
  sections: [{ title: "options:", options: REMOVE_OPTIONS }],
  examples: [...REMOVE_EXAMPLES, { says: "two at once, from another wheelhouse", command: "wasmbox packages remove sympy mpmath --wheelhouse ./wheels" }],
};


interface ParsedArgs {
  positional: string[];
  flags: Map<string, string | true>;
}

/** Splits `args` into positionals and the flags `options` lists (`--flag VALUE`, `--flag=VALUE`, switches). */
function parseArgs(args: string[], options: readonly OptionSpec[]): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const spec = findOption(options, flag);
    if (spec && spec.value === undefined) {
      if (eq > 0) throw new UsageError(`${flag} takes no value`);
      flags.set(flag, true);
    } else if (spec) {
      const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (value === undefined || value === "") throw new UsageError(`${flag} needs a value`);
      flags.set(flag, value);
    } else throw new UsageError(`unknown option ${arg}`);
  }
  return { positional, flags };
}

function flagValue(parsed: ParsedArgs, flag: string): string | undefined {
  const v = parsed.flags.get(flag);
  return typeof v === "string" ? v : undefined;
}

async function add(args: string[], err: NodeJS.WritableStream, out: NodeJS.WritableStream): Promise<number> {
  const parsed = parseArgs(args, ADD_OPTIONS);
  if (parsed.positional.length === 0) throw new UsageError("packages add: name at least one package");
  const dir = wheelhouseDir({ wheelhouse: flagValue(parsed, "--wheelhouse") });
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const before = readWheelhouse(dir).packages;
  let result: InstalledPackage[];
  try {
    result = await addPackages(dir, parsed.positional, {
      indexUrl: flagValue(parsed, "--index-url"),
      pyodideDist: flagValue(parsed, "--pyodide-dist"),
      onProgress: (line) => err.write(line + "\n"),
      signal: controller.signal,
    });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  const added = result.filter((p) => before.get(p.name)?.sha256 !== p.sha256);
  const present = result.length - added.length;
  const names = added.map((p) => `${p.name} ${p.version}`).join(", ");
  err.write(`added ${added.length} package${added.length === 1 ? "" : "s"}${names ? ` (${names})` : ""}${present ? `, ${present} already present` : ""} in ${dir}\n`);
  void out;
  return 0;
}

function list(args: string[], out: NodeJS.WritableStream): number {
  const parsed = parseArgs(args, LIST_OPTIONS);
  if (parsed.positional.length > 0) throw new UsageError(`packages list takes no arguments (got ${parsed.positional[0]})`);
  const house = readWheelhouse(wheelhouseDir({ wheelhouse: flagValue(parsed, "--wheelhouse") }));
  const packages = [...house.packages.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  if (parsed.flags.has("--json")) {
    out.write(JSON.stringify({ dir: house.dir, packages }) + "\n");
    return 0;
  }
  out.write(`${house.dir}${packages.length === 0 ? " (empty)" : ""}\n`);
  if (packages.length === 0) return 0;
  const rows = packages.map((p) => [p.name, p.version, p.kind === "shared_library" ? "shared lib" : p.native ? "native" : "pure", p.sizeBytes === undefined ? "-" : formatSize(p.sizeBytes), p.imports.join(", ") || "-"]);
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((r) => r[column]!.length)));
  for (const row of rows) out.write(row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]! + 2))).join("").trimEnd() + "\n");
  return 0;
}

function remove(args: string[], err: NodeJS.WritableStream): number {
  const parsed = parseArgs(args, REMOVE_OPTIONS);
  if (parsed.positional.length === 0) throw new UsageError("packages remove: name at least one package");
  const dir = wheelhouseDir({ wheelhouse: flagValue(parsed, "--wheelhouse") });
  const removed = removePackages(dir, parsed.positional);
  err.write(`removed ${removed.join(", ")} from ${dir}\n`);
  return 0;
}

/** `wasmbox packages ...`: returns the exit status. */
export async function packagesCommand(args: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const [sub, ...rest] = args;
  const help = rest.includes("--help") || rest.includes("-h");
  const print = (text: CommandHelp) => (out.write(formatHelp(text)), 0);
  try {
    switch (sub) {
      case "add":
        if (help) return print(ADD_HELP);
        return await add(rest, err, out);
      case "list":
        if (help) return print(LIST_HELP);
        return list(rest, out);
      case "remove":
        if (help) return print(REMOVE_HELP);
        return remove(rest, err);
      case "--help":
      case "-h":
      case "help": {
        // `wasmbox help packages add` arrives as `packages add --help`; this is `packages help add`.
        const of = rest[0];
        return print(of === "add" ? ADD_HELP : of === "list" ? LIST_HELP : of === "remove" ? REMOVE_HELP : HELP);
      }
      default:
        throw new UsageError(sub ? `unknown packages command ${sub}` : "packages needs a command: add, list or remove");
    }
  } catch (error) {
    if (error instanceof UsageError) {
      err.write(`wasmbox: ${error.message} (see wasmbox packages ${sub && ["add", "list", "remove"].includes(sub) ? `${sub} ` : ""}--help)\n`);
      return 2;
    }
    if (error instanceof WasmboxError) {
      err.write(`wasmbox: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
