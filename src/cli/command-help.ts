/**
 * The shape of every subcommand's `--help`, from one table of options per command: the parser
 * accepts exactly the flags its table lists (anything else is "unknown option"), and the help
 * prints that same table, so the two cannot drift apart.
 */

/** A command-line mistake: the command prints it on one line and exits 2. */
export class UsageError extends Error {}

/** One option of a command: how it is spelled, what it takes, and its line in `--help`. */
export interface OptionSpec {
  /** The spelling, e.g. `--timeout`; a valued option also takes `--timeout=VALUE`. */
  readonly flag: string;
  /** The value's placeholder in the help (`T`, `N`, `DIR`); absent for a switch. */
  readonly value?: string;
  /** What it does, one sentence. */
  readonly help: string;
  /** The default as a user would type it or read it; absent when there is none. */
  readonly default?: string;
}

/** A group of options under a heading ("options:", "with --http:"). */
export interface OptionSection {
  readonly title: string;
  readonly options: readonly OptionSpec[];
}

/** Everything `wasmbox COMMAND --help` prints. */
export interface CommandHelp {
  /** Usage lines, without "usage: ". */
  readonly usage: readonly string[];
  /** What the command does: a few lines of prose. */
  readonly about: string;
  readonly sections: readonly OptionSection[];
  /** After the options, one paragraph (wrapped to fit): exit status and the like. */
  readonly notes?: string;
  /** Worked examples: what it does, then the command line. */
  readonly examples: readonly { readonly says: string; readonly command: string }[];
}

const WIDTH = 100;
const FLAG_COLUMN_MAX = 26;

/** Wraps `text` to WIDTH columns, every line after the first indented by `indent` spaces. */
function wrap(text: string, first: number, indent: number): string {
  const lines: string[] = [];
  let line = "";
  let room = WIDTH - first;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
      room = WIDTH - indent;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.join("\n" + " ".repeat(indent));
}

/** The option's line(s): `  --flag VALUE   meaning (default: D)`. */
function optionLines(spec: OptionSpec, column: number): string {
  const head = `  ${spec.flag}${spec.value ? ` ${spec.value}` : ""}`;
  const meaning = spec.default === undefined ? spec.help : `${spec.help} (default: ${spec.default})`;
  if (head.length + 2 > column) return `${head}\n${" ".repeat(column)}${wrap(meaning, column, column)}`;
  return `${head.padEnd(column)}${wrap(meaning, column, column)}`;
}

/** The text of `wasmbox COMMAND --help`. */
export function formatHelp(help: CommandHelp): string {
  const out: string[] = [];
  out.push(help.usage.map((line, i) => (i === 0 ? "usage: " : "       ") + line).join("\n"));
  out.push(help.about);
  const all = help.sections.flatMap((s) => s.options);
  const column = Math.min(FLAG_COLUMN_MAX, Math.max(...all.map((o) => o.flag.length + (o.value ? o.value.length + 1 : 0) + 2), 0) + 2);
  for (const section of help.sections) {
    if (section.options.length === 0) continue;
    out.push(`${section.title}\n${section.options.map((o) => optionLines(o, column)).join("\n")}`);
  }
  if (help.notes) out.push(wrap(help.notes, 0, 0));
  out.push(`examples:\n${help.examples.map((e) => `  # ${e.says}\n  ${e.command}`).join("\n")}`);
  return out.join("\n\n") + "\n";
}

/** The option `flag` of a table (`--flag=VALUE` is looked up as `--flag`), if it has one. */
export function findOption<T extends OptionSpec>(options: readonly T[], flag: string): T | undefined {
  return options.find((o) => o.flag === flag);
}

/**
 * Whether `--help` or `-h` stands among `args`' options. It wins over every other mistake in them,
 * so `wasmbox run --timeout soon --help` helps instead of complaining. With `program`, the options
 * end where the program does, as for `python`: at FILE, at `-` and after `-c CODE`; what follows
 * is the program's argv (`wasmbox run prog.py --help` passes --help to prog.py). Options end at
 * `--` in any case.
 */
export function helpRequested(args: readonly string[], options: readonly OptionSpec[], { program = false } = {}): boolean {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--help" || arg === "-h") return true;
    if (arg === "--") return false;
    if (program && (arg === "-" || !arg.startsWith("-"))) return false;
    if (program && arg === "-c") return false;
    // The value of a valued option is skipped, unless it is --help itself (nobody means a
    // timeout of "--help").
    const spec = findOption(options, arg);
    if (spec?.value !== undefined && args[i + 1] !== "--help" && args[i + 1] !== "-h") i++;
  }
  return false;
}
