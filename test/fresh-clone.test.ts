/**
 * A newcomer's path, followed literally from the README on a `git clone` of this repository in a
 * temporary directory: the Quick start's set-up and main job, packing and installing the tarball
 * (globally, and into another project), the MCP configuration started from a directory outside
 * the clone with the official MCP client, and the Python install. Commands are taken from the
 * README's blocks, not retyped here, so a README that drifts fails this test.
 *
 * It tests the committed HEAD (what a clone gets), not uncommitted edits.
 */
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "wasmbox-fresh-clone-"));
const clone = join(work, "wasmbox");
const globalPrefix = join(work, "global");
/** npm's -g goes to a prefix of the test's own; its bin/ comes first on PATH. */
const env: NodeJS.ProcessEnv = {
  ...process.env,
  npm_config_prefix: globalPrefix,
  npm_config_audit: "false",
  npm_config_fund: "false",
  PATH: `${join(globalPrefix, "bin")}${delimiter}${process.env.PATH}`,
};

after(() => rmSync(work, { recursive: true, force: true }));

interface Block {
  lang: string;
  body: string;
}

function readmeBlocks(readme: string, section: string): Block[] {
  const start = readme.indexOf(`\n## ${section}`);
  assert.ok(start >= 0, `README has a "## ${section}" section`);
  const end = readme.indexOf("\n## ", start + 4);
  const text = readme.slice(start, end < 0 ? undefined : end);
  return [...text.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, body: m[2]! }));
}

/** A block's commands, one per line, without their comments and expected-output lines. */
function commands(block: Block): string[] {
  return block.body
    .split("\n")
    .filter((line) => line.trim() && !line.startsWith("#"))
    .map((line) => line.replace(/\s+# .*$/, ""));
}

function sh(command: string, cwd: string, timeoutMs = 600_000): SpawnSyncReturns<string> {
  const result = spawnSync("bash", ["-c", command], { cwd, env, encoding: "utf8", input: "", timeout: timeoutMs });
  assert.equal(result.status, 0, `\`${command}\` in ${cwd} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result;
}

let readme = "";

describe("a fresh clone, following the README", { timeout: 30 * 60_000 }, () => {
  before(() => {
    const cloned = spawnSync("git", ["clone", "--quiet", ROOT, clone], { encoding: "utf8" });
    assert.equal(cloned.status, 0, cloned.stderr);
    readme = readFileSync(join(clone, "README.md"), "utf8");
  });

  it("Quick start: the set-up command installs and builds, leaves the lock file unchanged, and the main job prints hello", () => {
    const [setup, mainJob, tests] = commands(readmeBlocks(readme, "Quick start")[0]!);
    assert.match(setup!, /^npm (install|ci)\b/);
    assert.match(tests!, /^npm test\b/); // not run here: this is the test suite
    const installed = sh(setup!, clone);
    assert.doesNotMatch(installed.stderr, /EBADENGINE|Unsupported engine/, "no engine warnings on this Node");
    assert.ok(existsSync(join(clone, "dist", "cli", "bin.js")), "the set-up built dist/");
    const status = spawnSync("git", ["status", "--porcelain"], { cwd: clone, encoding: "utf8" });
    assert.equal(status.stdout, "", "the set-up changed no tracked file (package-lock.json) and left nothing untracked");
    assert.equal(sh(mainJob!, clone).stdout, "hello\n");
  });

  it("npm ci works on the clone too", () => {
    const ci = sh("npm ci --no-audit --no-fund", clone);
    assert.doesNotMatch(ci.stderr, /EBADENGINE|Missing: .* from lock file/);
    assert.equal(spawnSync("git", ["status", "--porcelain"], { cwd: clone, encoding: "utf8" }).stdout, "");
  });

  it("the packed tarball installs globally and the wasmbox command runs from any directory", () => {
    const block = readmeBlocks(readme, "Quick start").find((b) => b.body.includes("npm pack"));
    assert.ok(block, "the Quick start shows how to install outside the clone");
    const lines = commands(block);
    const out = sh(lines.join("\n"), clone).stdout.trim().split("\n");
    assert.equal(out.at(-1), "installed");
    const tarball = /\.\/(wasmbox-[\d.]+\.tgz)/.exec(block.body)![1]!;
    const version = (JSON.parse(readFileSync(join(clone, "package.json"), "utf8")) as { version: string }).version;
    assert.equal(tarball, `wasmbox-${version}.tgz`, "the README names the tarball npm pack makes");
    const elsewhere = mkdtempSync(join(work, "elsewhere-"));
    assert.equal(sh(`wasmbox run -c "import os; print(os.getcwd())"`, elsewhere).stdout, "/sandbox\n");
    assert.match(sh("wasmbox --version", elsewhere).stdout, new RegExp(`^wasmbox ${version.replace(/\./g, "\\.")}$`, "m"));
  });

  it("the tarball installs into another project, where npx wasmbox and the README's first library example work", () => {
    const project = join(work, "project");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "my-agent", version: "1.0.0", type: "module" }));
    const version = (JSON.parse(readFileSync(join(clone, "package.json"), "utf8")) as { version: string }).version;
    sh(`npm install ${join(clone, `wasmbox-${version}.tgz`)}`, project);
    assert.equal(sh(`npx wasmbox run -c "print(2 ** 10)"`, project).stdout, "1024\n");
    const example = readmeBlocks(readme, "Library").find((b) => b.lang === "js")!;
    writeFileSync(join(project, "example.mjs"), example.body);
    const expected = example.body.split("\n").filter((l) => l.startsWith("// → ")).map((l) => l.slice(5));
    assert.deepEqual(sh("node example.mjs", project).stdout.trim().split("\n"), expected);
  });

  it("the README's Python install builds a working package in a venv: the wasmbox command and the README's Python example", () => {
    const venv = join(work, "venv");
    sh(`python3 -m venv ${venv}`, work);
    const [install] = commands(readmeBlocks(readme, "Python").find((b) => b.lang === "sh")!);
    assert.match(install!, /^pip install \.\/python$/);
    const venvEnv = `PATH=${join(venv, "bin")}${delimiter}"$PATH"`;
    sh(`${venvEnv} ${install}`, clone);
    const elsewhere = mkdtempSync(join(work, "py-elsewhere-"));
    assert.equal(sh(`${join(venv, "bin", "wasmbox")} run -c "print('from pip')"`, elsewhere).stdout, "from pip\n");
    const example = readmeBlocks(readme, "Python").find((b) => b.lang === "python")!;
    writeFileSync(join(elsewhere, "example.py"), example.body);
    sh(`${join(venv, "bin", "python")} example.py`, elsewhere);
  });

  it("the README's MCP configuration starts a server from a directory outside the clone that the official MCP client uses", async () => {
    const block = readmeBlocks(readme, "Use it from an agent: MCP").find((b) => b.lang === "json" && b.body.includes("mcpServers"));
    assert.ok(block, "the README has an MCP client configuration");
    const configured = JSON.parse(block.body).mcpServers.wasmbox as { command: string; args: string[] };
    // The variant without installing: the clone's CLI by its absolute path, as the README words it.
    const absolute = /"command": "(node)", "args":\s*\[\s*"\/absolute\/path\/to\/wasmbox(\/[^"]+)", "mcp"\]/.exec(readme.replace(/\n/g, " "));
    assert.ok(absolute, "the README shows the absolute-path configuration");
    const variants = [configured, { command: absolute[1]!, args: [join(clone, absolute[2]!), "mcp"] }];
    const { Client } = await import("@modelcontextprotocol/sdk/client/index.js");
    const { StdioClientTransport } = await import("@modelcontextprotocol/sdk/client/stdio.js");
    for (const { command, args } of variants) {
      const cwd = mkdtempSync(join(work, "agent-"));
      const client = new Client({ name: "fresh-clone-test", version: "1.0.0" });
      await client.connect(new StdioClientTransport({ command, args, cwd, env: env as Record<string, string>, stderr: "ignore" }));
      try {
        const tools = (await client.listTools()).tools.map((t) => t.name);
        assert.ok(tools.includes("run_python"), `${command}: ${tools.join(", ")}`);
        const result = await client.callTool({ name: "run_python", arguments: { code: "print('from mcp')\n6 * 7" } });
        assert.equal(result.isError ?? false, false, JSON.stringify(result));
        assert.equal((result.structuredContent as { stdout: string }).stdout, "from mcp\n");
        assert.deepEqual((result.structuredContent as { value: unknown }).value, 42);
      } finally {
        await client.close();
      }
    }
  });
});
