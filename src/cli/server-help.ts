/**
 * `--help` of the server commands. Their options come from the lists the parsers take
 * (SERVE_STDIO_FLAGS, HTTP_SERVE_FLAGS, MCP_FLAGS) and their lines from SERVER_OPTIONS, so the help
 * lists exactly what each command accepts.
 */
import { HTTP_SERVE_FLAGS } from "../http/http-command.js";
import { serverOptions } from "../http/server-args.js";
import { MCP_FLAGS, MCP_HTTP_ONLY_FLAGS } from "../mcp/mcp-command.js";
import type { CommandHelp } from "./command-help.js";
import { SERVE_STDIO_FLAGS, wantsHttp } from "./serve-command.js";

const STOPPING =
  "SIGTERM, SIGINT, SIGHUP or the exit of the process that started it stop it, leaving no executor behind; " +
  "it then exits 143, 130 or 129 (128 + the signal's number; a parent's exit counts as a hang-up).";

const STDIO_USAGE = "wasmbox serve --stdio [options]";
const HTTP_USAGE = "wasmbox serve --http PORT [options]";

const STDIO_ABOUT = [
  "serve --stdio reads one JSON request per line on stdin and writes one JSON reply per line, and",
  "nothing else, on stdout: runs, sessions, files, host functions and cancellation (the README's",
  '"JSON-lines server"). It stops after the runs in flight when its input ends or {"shutdown": true}',
  "arrives (exit 0).",
].join("\n");

const HTTP_ABOUT = [
  "serve --http is the HTTP API: POST /v1/run, sessions under /v1/sessions, /healthz, /metrics and",
  "/openapi.json (docs/mcp-and-http.md). It prints `wasmbox: listening on URL` on stderr once bound.",
].join("\n");

const STDIO_EXAMPLES = [
  { says: "one run, one reply line", command: `echo '{"code": "4 + 5"}' | wasmbox serve --stdio --pool 1` },
  { says: "a server for a program that talks JSON lines, with sympy in every run", command: "wasmbox serve --stdio --package sympy" },
];

const HTTP_EXAMPLES = [
  { says: "on localhost:8787, one executor kept warm", command: "wasmbox serve --http 8787 --pool 1" },
  { says: "on every interface, so a token is required", command: "WASMBOX_TOKEN=secret wasmbox serve --http 8787 --host 0.0.0.0" },
];

/** `wasmbox serve --stdio --help`. */
export const SERVE_STDIO_HELP: CommandHelp = {
  usage: [STDIO_USAGE],
  about: STDIO_ABOUT,
  sections: [{ title: "options:", options: serverOptions(SERVE_STDIO_FLAGS) }],
  notes: STOPPING,
  examples: [...STDIO_EXAMPLES, { says: "runs in one long-lived interpreter, reset between runs (trusted code only)", command: "wasmbox serve --stdio --isolation interpreter" }],
};

/** `wasmbox serve --http --help`. */
export const SERVE_HTTP_HELP: CommandHelp = {
  usage: [HTTP_USAGE],
  about: HTTP_ABOUT,
  sections: [{ title: "options:", options: serverOptions(HTTP_SERVE_FLAGS) }],
  notes: STOPPING,
  examples: [...HTTP_EXAMPLES, { says: "then, from another shell", command: `curl -s localhost:8787/v1/run -H 'content-type: application/json' -d '{"code": "6 * 7"}'` }],
};

/** `wasmbox serve --help`: both modes. */
export const SERVE_HELP: CommandHelp = {
  usage: [STDIO_USAGE, HTTP_USAGE],
  about: `${STDIO_ABOUT}\n\n${HTTP_ABOUT}`,
  sections: [
    { title: "serve --stdio options:", options: serverOptions(SERVE_STDIO_FLAGS) },
    { title: "serve --http options:", options: serverOptions(HTTP_SERVE_FLAGS) },
  ],
  notes: STOPPING,
  examples: [...STDIO_EXAMPLES, ...HTTP_EXAMPLES],
};

/** `wasmbox mcp --help`. */
export const MCP_HELP: CommandHelp = {
  usage: ["wasmbox mcp [options]", "wasmbox mcp --http PORT [options]"],
  about: [
    "An MCP server whose tools run code in the sandbox: run_code (every installed language; with",
    "session: true, a Python notebook per conversation) and session_reset. On stdio by default:",
    "stdout carries only protocol messages, diagnostics go to stderr, and it stops when its input",
    "ends (exit 0). With --http PORT it serves the streamable HTTP transport at",
    "http://HOST:PORT/mcp and prints `wasmbox: MCP endpoint URL` on stderr.",
  ].join("\n"),
  sections: [
    { title: "options:", options: serverOptions(MCP_FLAGS.filter((f) => !(MCP_HTTP_ONLY_FLAGS as readonly string[]).includes(f))) },
    { title: "with --http:", options: serverOptions(MCP_HTTP_ONLY_FLAGS) },
  ],
  notes: STOPPING,
  examples: [
    { says: "for an MCP client's configuration: command wasmbox, these args", command: "wasmbox mcp" },
    { says: "numpy importable in every run (after: wasmbox packages add numpy --pyodide-dist DIR)", command: "wasmbox mcp --package numpy" },
    { says: "streamable HTTP on localhost:8788", command: "wasmbox mcp --http 8788" },
  ],
};

/** The help `wasmbox serve ARGS --help` asks for: one mode's when ARGS name it, else both. */
export function serveHelp(args: readonly string[]): CommandHelp {
  return wantsHttp(args) ? SERVE_HTTP_HELP : args.includes("--stdio") ? SERVE_STDIO_HELP : SERVE_HELP;
}
