/**
 * The `wasmbox` command: dispatches to its subcommands and answers `--help` for each (COMMANDS).
 * Input is validated in each command, at the edge; the facade does the rest.
 */
import { readFileSync } from "node:fs";
import { WasmboxError } from "../core/errors.js";
import { formatHelp, helpRequested, UsageError, type CommandHelp } from "./command-help.js";
import { LANGUAGES_HELP, LANGUAGES_OPTIONS } from "./languages-command.js";
import { showPreparation } from "./preparation-display.js";
import { BATCH_HELP, BATCH_OPTIONS } from "./batch-command.js";
import { RUN_HELP, RUN_OPTIONS, runCommand } from "./run-command.js";
import { WORKER_HELP, WORKER_OPTIONS } from "./worker-command.js";

interface Command {
  name: string;
  /** Its line in `wasmbox --help`. */
  summary: string;
  /** Its help when ARGS ask for it (--help or -h among its options), else null. */
  help(args: string[]): CommandHelp | null | Promise<CommandHelp | null>;
  run(args: string[]): Promise<number>;
}

const anyHelp = (args: readonly string[]) => helpRequested(args, []);

/** The subcommands (the servers and their help load when asked for: `run` starts without the MCP SDK), in the order `wasmbox --help` lists them. */
const COMMANDS: Command[] = [
  {
    name: "run",
    summary: "run one program (Python, JavaScript, Ruby, C, ...) like python would: output, exit status",
    help: (args) => (helpRequested(args, RUN_OPTIONS, { program: true }) ? RUN_HELP : null),
    run: runCommand,
  },
  {
    name: "batch",
    summary: "run a JSON-lines file of jobs, one result line each, resumable (--queue: across machines)",
    help: (args) => (helpRequested(args, BATCH_OPTIONS) ? BATCH_HELP : null),
    run: async (args) => (await import("./batch-command.js")).batchCommand(args),
  },
  {
    name: "worker",
    summary: "take the jobs of batch --queue from Redis (BullMQ) and run them here; one per machine",
    help: (args) => (helpRequested(args, WORKER_OPTIONS) ? WORKER_HELP : null),
    run: async (args) => (await import("./worker-command.js")).workerCommand(args),
  },
  {
    name: "serve",
    summary: "a server: JSON lines on stdin/stdout (--stdio) or the HTTP API (--http PORT)",
    help: async (args) => (anyHelp(args) ? (await import("./server-help.js")).serveHelp(args) : null),
    run: async (args) => (await import("./serve-command.js")).serveCommand(args),
  },
  {
    name: "mcp",
    summary: "an MCP server whose tools run code, on stdio (or streamable HTTP with --http PORT)",
    help: async (args) => (anyHelp(args) ? (await import("./server-help.js")).MCP_HELP : null),
    run: async (args) => (await import("../mcp/mcp-command.js")).mcpCommand(args),
  },
  {
    name: "languages",
    summary: "list the languages, their runtimes and versions, and how to install the others",
    help: (args) => (helpRequested(args, LANGUAGES_OPTIONS) ? LANGUAGES_HELP : null),
    run: async (args) => (await import("./languages-command.js")).languagesCommand(args),
  },
  {
    name: "packages",
    summary: "add, list and remove the Python packages (wheels) runs can import",
    help: () => null, // packages answers its own --help, one per add, list and remove
    run: async (args) => (await import("./packages-command.js")).packagesCommand(args),
  },
];

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  const line = (name: string, summary: string) => `  ${name.padEnd(width)}${summary}`;
  return [
    "usage: wasmbox COMMAND [options]",
    "",
    "Runs untrusted code in a zero-permission WebAssembly sandbox.",
    "",
    "commands:",
    ...COMMANDS.map((c) => line(c.name, c.summary)),
    line("help", "help on a command: wasmbox help COMMAND (the same as wasmbox COMMAND --help)"),
    line("version", "print the version (also --version, -V)"),
    "",
    "Run `wasmbox COMMAND --help` for a command's options and examples.",
    "",
    "examples:",
    `  wasmbox run -c "print('hello')"`,
    "  wasmbox serve --http 8787",
    "  wasmbox help run",
    "",
  ].join("\n");
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return `wasmbox ${pkg.version}\n`;
}

/** `wasmbox ARGS`: returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === "--version" || command === "-V" || command === "version") {
      process.stdout.write(version());
      return 0;
    }
    if (command === "--help" || command === "-h" || (command === "help" && rest.length === 0)) {
      process.stdout.write(topHelp());
      return 0;
    }
    if (command === "help") {
      // `wasmbox help serve --http` is `wasmbox serve --http --help`; packages reads its own.
      const [of, ...more] = rest;
      return await main(of === "packages" ? [of, ...(more.length ? more : ["help"]), "--help"] : [of!, "--help", ...more]);
    }
    const entry = COMMANDS.find((c) => c.name === command);
    if (!entry) throw new UsageError(command ? `unknown command ${command}` : "no command given");
    const help = await entry.help(rest);
    if (help) {
      process.stdout.write(formatHelp(help));
      return 0;
    }
    // The first start on a machine makes the snapshot (seconds): say so on stderr, not silence.
    if (["run", "batch", "worker", "serve", "mcp"].includes(entry.name)) showPreparation();
    return await entry.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      const known = COMMANDS.some((c) => c.name === command);
      process.stderr.write(`wasmbox: ${error.message} (see wasmbox ${known ? `${command} ` : ""}--help)\n`);
      return 2;
    }
    if (error instanceof WasmboxError && ["INVALID_REQUEST", "INVALID_PATH", "UNSUPPORTED_LANGUAGE", "REQUEST_TOO_LARGE", "PACKAGE_NOT_FOUND"].includes(error.code)) {
      // The code last: the Python client reads it from this line when the host exits at start
      // (a `--package` the wheelhouse lacks) and raises the matching error.
      process.stderr.write(`wasmbox: ${error.message} [${error.code}]\n`);
      return 2;
    }
    const code = error instanceof WasmboxError ? ` [${error.code}]` : "";
    process.stderr.write(`wasmbox: ${error instanceof Error ? error.message : String(error)}${code}\n`);
    return 70;
  }
}

