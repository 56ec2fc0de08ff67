/**
 * `--help` on every subcommand (issue 17): usage, every option with its meaning and default, worked
 * examples, on stdout, exit 0; and the parsers take exactly the options their help lists.
 */
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { BATCH_OPTIONS, BATCH_QUEUE_OPTIONS, parseBatchArgs } from "../src/cli/batch-command.js";
import { parseWorkerArgs, WORKER_OPTIONS } from "../src/cli/worker-command.js";
import { findOption, type OptionSpec } from "../src/cli/command-help.js";
import { LANGUAGES_OPTIONS } from "../src/cli/languages-command.js";
import { parseRunArgs, RUN_OPTIONS } from "../src/cli/run-command.js";
import { SERVE_STDIO_FLAGS } from "../src/cli/serve-command.js";
import { HTTP_SERVE_FLAGS } from "../src/http/http-command.js";
import { parseServerArgs, SERVER_OPTIONS, serverOptions, type ServerFlag } from "../src/http/server-args.js";
import { MCP_FLAGS, MCP_HTTP_ONLY_FLAGS } from "../src/mcp/mcp-command.js";
import { wasmbox } from "./helpers/cli.js";

const THIS_FILE = fileURLToPath(import.meta.url);

/** Each help: the arguments that ask for it, the usage it starts with, the options it must list. */
const HELPS: { args: string[]; usage: string; options: readonly OptionSpec[] }[] = [
  { args: ["run"], usage: "wasmbox run [options] (FILE | -c CODE | -)", options: RUN_OPTIONS },
  { args: ["batch"], usage: "wasmbox batch [options] JOBS.jsonl -o RESULTS.jsonl", options: [...BATCH_OPTIONS, ...BATCH_QUEUE_OPTIONS] },
  { args: ["worker"], usage: "wasmbox worker --queue redis://HOST:PORT/DB [options]", options: WORKER_OPTIONS },
  { args: ["serve"], usage: "wasmbox serve --stdio [options]", options: serverOptions([...SERVE_STDIO_FLAGS, ...HTTP_SERVE_FLAGS]) },
  { args: ["serve", "--stdio"], usage: "wasmbox serve --stdio [options]", options: serverOptions(SERVE_STDIO_FLAGS) },
  { args: ["serve", "--http"], usage: "wasmbox serve --http PORT [options]", options: serverOptions(HTTP_SERVE_FLAGS) },
  { args: ["mcp"], usage: "wasmbox mcp [options]", options: serverOptions(MCP_FLAGS) },
  { args: ["languages"], usage: "wasmbox languages [--json]", options: LANGUAGES_OPTIONS },
  { args: ["packages"], usage: "wasmbox packages add SPEC...", options: [] },
  { args: ["packages", "add"], usage: "wasmbox packages add SPEC...", options: [] },
  { args: ["packages", "list"], usage: "wasmbox packages list", options: [] },
  { args: ["packages", "remove"], usage: "wasmbox packages remove NAME...", options: [] },
];

/** The line of `spec` in a help: `  --flag VALUE  meaning…`, its default where it has one. */
function assertListed(stdout: string, spec: OptionSpec, where: string): void {
  const head = `  ${spec.flag}${spec.value ? ` ${spec.value}` : ""}`;
  const at = stdout.split("\n").findIndex((line) => line === head || line.startsWith(head + " "));
  assert.ok(at >= 0, `${where} does not list ${head}:\n${stdout}`);
  if (spec.default !== undefined) {
    // The default closes the option's entry, which may wrap onto the following lines.
    const entry = stdout.split("\n").slice(at, at + 5).join(" ").replace(/\s+/g, " ");
    assert.ok(entry.includes(`(default: ${spec.default.replace(/\s+/g, " ")})`), `${where}: ${spec.flag} does not show its default ${spec.default}`);
  }
}

describe("wasmbox COMMAND --help", () => {
  for (const { args, usage, options } of HELPS) {
    test(`wasmbox ${args.join(" ")} --help and -h print its usage, every option with its default, and examples on stdout, and exit 0`, async () => {
      for (const flag of ["--help", "-h"]) {
        const r = await wasmbox([...args, flag]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, "");
        assert.ok(r.stdout.startsWith(`usage: ${usage}`), r.stdout);
        for (const spec of options) assertListed(r.stdout, spec, `wasmbox ${args.join(" ")} ${flag}`);
        const examples = r.stdout.slice(r.stdout.indexOf("\nexamples:\n"));
        assert.ok(r.stdout.includes("\nexamples:\n"), "it has examples");
        const commands = examples.split("\n").filter((line) => /^ {2}\S/.test(line) && !line.startsWith("  #"));
        assert.ok(commands.length >= 2 && commands.length <= 4, `2 to 4 worked examples, got ${commands.length}`);
        assert.ok(commands.some((c) => c.includes(`wasmbox ${args[0]}`)), `an example uses the command: ${commands.join(" | ")}`);
      }
    });
  }

  test("--help wins over every other mistake among a command's options", async () => {
    for (const args of [
      ["run", "--timeout", "soon", "--help"],
      ["run", "--bogus", "-h"],
      ["run", "--timeout", "--help"],
      ["serve", "--http", "not-a-port", "--help"],
      ["serve", "--bogus", "--help"],
      ["mcp", "--isolation", "thread", "-h"],
      ["languages", "--bogus", "--help"],
      ["packages", "list", "--bogus", "--help"],
    ]) {
      const r = await wasmbox(args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: wasmbox ${args[0]} `), args.join(" "));
    }
  });

  test("--help after the program is the program's own argument, as with python", async () => {
    const r = await wasmbox(["run", "-c", "import sys; print(sys.argv)", "--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "['-c', '--help']\n");
  });

  test("wasmbox --help lists every command with one line and says how to get a command's help", async () => {
    for (const args of [["--help"], ["-h"], ["help"]]) {
      const r = await wasmbox(args);
      assert.equal(r.code, 0);
      for (const command of ["run", "serve", "mcp", "languages", "packages", "help", "version"]) {
        assert.match(r.stdout, new RegExp(`^ {2}${command} +\\S`, "m"), `${args.join(" ")} lists ${command}`);
      }
      assert.match(r.stdout, /wasmbox COMMAND --help/);
    }
  });

  test("wasmbox help COMMAND prints what wasmbox COMMAND --help prints, and an unknown command exits 2", async () => {
    for (const args of [["run"], ["batch"], ["worker"], ["serve"], ["serve", "--http"], ["mcp"], ["languages"], ["packages"], ["packages", "add"]]) {
      const viaHelp = await wasmbox(["help", ...args]);
      const viaFlag = await wasmbox([...args, "--help"]);
      assert.equal(viaHelp.code, 0, viaHelp.stderr);
      assert.equal(viaHelp.stdout, viaFlag.stdout, `wasmbox help ${args.join(" ")}`);
    }
    const unknown = await wasmbox(["help", "frobnicate"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command frobnicate/);
  });

  test("a usage error names the command's own --help", async () => {
    for (const [args, hint] of [
      [["run", "--bogus"], "wasmbox run --help"],
      [["serve", "--bogus"], "wasmbox serve --help"],
      [["batch", "--bogus"], "wasmbox batch --help"],
      [["batch"], "wasmbox batch --help"],
      [["worker"], "wasmbox worker --help"],
      [["serve"], "wasmbox serve --help"],
      [["mcp", "--bogus"], "wasmbox mcp --help"],
      [["languages", "--bogus"], "wasmbox languages --help"],
    ] as const) {
      const r = await wasmbox([...args]);
      assert.equal(r.code, 2);
      assert.ok(r.stderr.includes(`(see ${hint})`), r.stderr);
    }
  });
});

/** A value each option's parser can read, or at least reach its own check with. */
function sample(spec: OptionSpec): string[] {
  const values: Record<string, string> = {
    "--language": "python", "--os-sandbox": "off", "--isolation": "process", "--env": "K=V", "--host": "127.0.0.1",
    "--file": THIS_FILE, "--stdin": THIS_FILE, "--out": tmpdir(), "--wheelhouse": tmpdir(), "--package": "six",
    "--timeout": "1s", "--max-timeout": "1s", "--max-memory": "64m", "--queue": "redis://127.0.0.1:6379/0", "--header-timeout": "1s", "--request-timeout": "1s", "--grace": "1s", "--memory": "64m", "--token": "t",
  };
  return spec.value === undefined ? [spec.flag] : [spec.flag, values[spec.flag] ?? "1"];
}

describe("the parsers take exactly the options their help lists", () => {
  test("wasmbox run reads every option of RUN_OPTIONS and calls anything else unknown", () => {
    for (const spec of RUN_OPTIONS) {
      const args = spec.flag === "-c" ? ["-c", "1"] : [...sample(spec), "-c", "1"];
      assert.doesNotThrow(() => parseRunArgs(args), `wasmbox run ${args.join(" ")}`);
    }
    assert.throws(() => parseRunArgs(["--max-queue", "1", "-c", "1"]), /unknown option --max-queue/);
  });

  test("wasmbox batch reads every option of BATCH_OPTIONS and calls anything else unknown", () => {
    for (const spec of BATCH_OPTIONS) {
      const args = [...sample(spec), "jobs.jsonl"];
      assert.doesNotThrow(() => parseBatchArgs(args), `wasmbox batch ${args.join(" ")}`);
    }
    assert.throws(() => parseBatchArgs(["--max-queue", "1", "jobs.jsonl"]), /unknown option --max-queue/);
    assert.doesNotThrow(() => parseBatchArgs(["--queue", "redis://127.0.0.1:6379/0", "--name", "grading-1", "jobs.jsonl"]));
    assert.throws(() => parseBatchArgs(["--queue", "redis://127.0.0.1:6379/0", "--concurrency", "2", "jobs.jsonl"]), /--concurrency is a worker's option with --queue/);
    assert.throws(() => parseBatchArgs(["--queue", "http://127.0.0.1/", "jobs.jsonl"]), /redis:\/\/ or rediss:\/\//);
    assert.throws(() => parseBatchArgs(["--queue", "redis://127.0.0.1:6379/0", "--name", "a:b", "jobs.jsonl"]), /--name/);
  });

  test("wasmbox worker reads every option of WORKER_OPTIONS and needs --queue", () => {
    for (const spec of WORKER_OPTIONS) {
      const args = spec.flag === "--queue" ? ["--queue", "rediss://user:pw@host:6380/2"] : [...sample(spec), "--queue", "redis://h:1/0"];
      assert.doesNotThrow(() => parseWorkerArgs(args), `wasmbox worker ${args.join(" ")}`);
    }
    assert.throws(() => parseWorkerArgs([]), /give the queue/);
    assert.throws(() => parseWorkerArgs(["--queue", "redis://h:1/0", "--bogus"]), /unknown option --bogus/);
  });

  const commands: [string, readonly ServerFlag[]][] = [
    ["serve --stdio", SERVE_STDIO_FLAGS],
    ["serve --http", HTTP_SERVE_FLAGS],
    ["mcp", MCP_FLAGS],
  ];
  for (const [name, flags] of commands) {
    test(`wasmbox ${name} reads every option its help lists and calls every other server option unknown`, () => {
      for (const flag of flags) {
        const args = sample(findOption(SERVER_OPTIONS, flag)!);
        assert.doesNotThrow(() => parseServerArgs(args, flags, {}), `wasmbox ${name} ${args.join(" ")}`);
      }
      for (const spec of SERVER_OPTIONS.filter((o) => !flags.includes(o.flag))) {
        assert.throws(() => parseServerArgs(sample(spec), flags, {}), new RegExp(`unknown option ${spec.flag}`), `wasmbox ${name} ${spec.flag}`);
      }
    });
  }

  test("every option of mcp --help's 'with --http' section is one mcp takes", () => {
    for (const flag of MCP_HTTP_ONLY_FLAGS) assert.ok((MCP_FLAGS as readonly string[]).includes(flag), flag);
  });
});
