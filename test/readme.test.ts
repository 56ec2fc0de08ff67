/**
 * Executes the README's examples, so it cannot rot: every fenced block that states expected output
 * (`# → line` after a shell command, `// → line` in JavaScript) is run and its stdout compared.
 * The JavaScript examples run as plain `.mjs` files (no TypeScript loader) on every Node the tests
 * know: this one and those listed in WASMBOX_TEST_NODES (.ci/run installs Node 22 and 24 from npm).
 * `<number>` in an expectation matches any number (timings).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { testNodes } from "./helpers/node-versions.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");

interface Block {
  lang: string;
  body: string;
  line: number;
}

function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  const re = /^```(\w*)\n([\s\S]*?)^```$/gm;
  let match: RegExpExecArray | null;
  while ((match = re.exec(markdown))) {
    out.push({ lang: match[1]!, body: match[2]!, line: markdown.slice(0, match.index).split("\n").length });
  }
  return out;
}

function matches(actual: string, expected: string): boolean {
  const pattern = expected
    .split("<number>")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join("-?\\d+(?:\\.\\d+)?");
  return new RegExp(`^${pattern}$`).test(actual);
}

function assertOutput(stdout: string, expected: string[], where: string): void {
  const actual = stdout.replace(/\n$/, "").split("\n");
  assert.equal(actual.length, expected.length, `${where}: expected ${expected.length} lines, got:\n${stdout}`);
  expected.forEach((line, i) => assert.ok(matches(actual[i]!, line), `${where}: line ${i + 1}\n  got:      ${actual[i]}\n  expected: ${line}`));
}

/** Whether something accepts connections on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

// The MCP configuration is started from outside a clone, as a user would: test/fresh-clone.test.ts.
const examples = blocks(README).filter((b) => /^(# |\/\/ )→/m.test(b.body));

describe("README examples", () => {
  it("has runnable examples for the command line, the library and the JSON-lines server", () => {
    assert.ok(examples.filter((b) => b.lang === "sh").length >= 2);
    assert.ok(examples.filter((b) => b.lang === "js").length >= 2);
    assert.deepEqual(examples.filter((b) => b.lang === "ts").map((b) => b.line), [], "library examples are plain JavaScript");
  });

  for (const block of examples.filter((b) => b.lang === "sh" && /&\s*$/m.test(b.body))) {
    // A block that starts a server in the background runs as one script, which ends the way its
    // reader would: `kill %1`. That signals npm only (`npx wasmbox ... &` is npm exec -> sh -c ->
    // node); npm passes SIGTERM to its sh, and the server, its parent gone, stops (issue 17). The
    // test then checks that nothing listens on the block's port. No job control (`set -m`): the
    // script stays in this test's process group, so a runner that kills the group kills the
    // server with it (with a group of its own, it outlived such a kill, still bound to the port).
    it(`README line ${block.line}: the server example prints what the README says, and the server stops after kill %1`, async () => {
      const expected = block.body.split("\n").filter((l) => l.startsWith("# → ")).map((l) => l.slice(4));
      const script = `trap 'kill %1 2>/dev/null; wait' EXIT\n${block.body}`;
      const result = spawnSync("bash", ["-c", script], { cwd: ROOT, encoding: "utf8", input: "", timeout: 180_000 });
      assertOutput(result.stdout, expected, `server example at README line ${block.line}`);
      const ports = [...new Set([...block.body.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])))];
      assert.ok(ports.length > 0, "the example names the address it serves on");
      for (const port of ports) {
        const end = Date.now() + 30_000; // a failure bound, not a timing claim
        while (await listening(port)) {
          assert.ok(Date.now() < end, `the README's server still listens on 127.0.0.1:${port} after kill %1`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    });
  }

  for (const block of examples.filter((b) => b.lang === "sh" && !/&\s*$/m.test(b.body))) {
    const commands: { command: string; expected: string[] }[] = [];
    for (const line of block.body.split("\n")) {
      if (line.startsWith("# → ")) commands.at(-1)!.expected.push(line.slice(4));
      else if (line.trim() && !line.startsWith("#")) commands.push({ command: line, expected: [] });
    }
    for (const { command, expected } of commands) {
      it(`README line ${block.line}: \`${command}\` prints what the README says`, () => {
        const result = spawnSync("bash", ["-c", command], { cwd: ROOT, encoding: "utf8", input: "", timeout: 120_000 });
        assertOutput(result.stdout, expected, command);
      });
    }
  }

  for (const node of testNodes()) {
    for (const block of examples.filter((b) => b.lang === "js")) {
      it(`README line ${block.line}: the JavaScript example prints what the README says, as a plain .mjs on Node ${node.version}`, () => {
        const dir = fileURLToPath(new URL("./.readme-tmp/", import.meta.url));
        mkdirSync(dir, { recursive: true });
        const file = `${dir}/example-${block.line}-${node.version}.mjs`;
        writeFileSync(file, block.body);
        try {
          const result = spawnSync(node.path, [file], { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
          assert.equal(result.status, 0, result.stderr);
          const expected = block.body.split("\n").filter((l) => l.startsWith("// → ")).map((l) => l.slice(5));
          assertOutput(result.stdout, expected, `JavaScript example at README line ${block.line} on Node ${node.version}`);
        } finally {
          rmSync(file, { force: true });
        }
      });
    }
  }
});
