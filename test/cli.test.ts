import assert from "node:assert/strict";
import { wasmbox } from "./helpers/cli.js";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

const tmp = () => mkdtempSync(join(tmpdir(), "wasmbox-cli-test-"));

describe("wasmbox run", () => {
  it("prints guest stdout and exits 0 like python -c", async () => {
    const r = await wasmbox(["run", "-c", "print('hello')"]);
    assert.equal(r.stdout, "hello\n");
    assert.equal(r.code, 0);
  });

  it("runs a host file, showing its name in tracebacks and exiting 1 on an exception", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "prog.py"), "import sys\nprint(sys.argv)\nraise ValueError('bad')\n");
    const r = await wasmbox(["run", join(dir, "prog.py"), "a", "--b"]);
    assert.equal(r.stdout, "['prog.py', 'a', '--b']\n");
    assert.match(r.stderr, /File "prog.py", line 3, in <module>/);
    assert.match(r.stderr, /ValueError: bad/);
    assert.equal(r.code, 1);
  });

  it("reads the program from stdin with -", async () => {
    const r = await wasmbox(["run", "-"], { stdin: "print(6 * 7)" });
    assert.equal(r.stdout, "42\n");
    assert.equal(r.code, 0);
  });

  it("passes arguments after -- as argv and exits with the guest's sys.exit code", async () => {
    const r = await wasmbox(["run", "--timeout", "10", "-c", "import sys; print(sys.argv[1:]); sys.exit(3)", "--", "x", "y"]);
    assert.equal(r.stdout, "['x', 'y']\n");
    assert.equal(r.code, 3);
  });

  it("gives piped stdin to the program, which then sees EOF", async () => {
    const r = await wasmbox(["run", "-c", "import sys; d = sys.stdin.read(); print(repr(d), repr(sys.stdin.read()))"], { stdin: "line1\nline2" });
    assert.equal(r.stdout, "'line1\\nline2' ''\n");
  });

  it("reads stdin from --stdin FILE", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "in.txt"), "from file");
    const r = await wasmbox(["run", "--stdin", join(dir, "in.txt"), "-c", "print(input())"]);
    assert.equal(r.stdout, "from file\n");
  });

  it("copies --file HOST and --file HOST:SANDBOX into the sandbox", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "a.txt"), "alpha");
    writeFileSync(join(dir, "b.bin"), Buffer.from([0, 255, 1]));
    const r = await wasmbox([
      "run", "--file", join(dir, "a.txt"), "--file", `${join(dir, "b.bin")}:data/b.bin`,
      "-c", "print(open('a.txt').read(), list(open('data/b.bin','rb').read()))",
    ]);
    assert.equal(r.stdout, "alpha [0, 255, 1]\n");
  });

  it("refuses a --file target that climbs out of the sandbox with exit code 2", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "a.txt"), "alpha");
    const r = await wasmbox(["run", "--file", `${join(dir, "a.txt")}:../etc/x`, "-c", "pass"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /climbs out/);
  });

  it("writes files the run created into --out DIR, keeping subdirectories and bytes", async () => {
    const out = tmp();
    const r = await wasmbox([
      "run", "--out", out,
      "-c", "import os; os.makedirs('d/e'); open('d/e/f.txt','w').write('deep'); open('g.bin','wb').write(bytes([0,200]))",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(out, "d/e/f.txt"), "utf8"), "deep");
    assert.deepEqual([...readFileSync(join(out, "g.bin"))], [0, 200]);
  });

  it("sets guest environment variables with --env and nothing else", async () => {
    const r = await wasmbox(["run", "--env", "A=1", "--env", "B=x=y", "-c", "import os; print(sorted(os.environ.items()))"]);
    assert.equal(r.stdout, "[('A', '1'), ('B', 'x=y')]\n");
  });

  it("prints only the result object with --json", async () => {
    const r = await wasmbox(["run", "--json", "-c", "print('hi')\n1 + 1"]);
    const result = JSON.parse(r.stdout);
    assert.equal(result.status, "ok");
    assert.equal(result.stdout, "hi\n");
    assert.equal(result.value, 2);
    assert.equal(r.stdout.trim().split("\n").length, 1);
    assert.equal(r.code, 0);
  });

  it("exits 124 on timeout, accepting --timeout in milliseconds", async () => {
    const r = await wasmbox(["run", "--timeout", "500ms", "-c", "while True: pass"]);
    assert.equal(r.code, 124);
    assert.match(r.stderr, /timeout/);
  });

  it("exits 124 at the CPU-time limit set with --cpu-time, saying it was the CPU time; a sleep within it exits 0", async () => {
    const spun = await wasmbox(["run", "--cpu-time", "300ms", "--timeout", "30s", "-c", "while True: pass"]);
    assert.equal(spun.code, 124);
    assert.match(spun.stderr, /timeout: the run exceeded its CPU-time limit of 0\.3 s/);
    const slept = await wasmbox(["run", "--cpu-time", "0.3", "--json", "-c", "import time; time.sleep(1)"]);
    assert.equal(slept.code, 0, slept.stderr);
    const result = JSON.parse(slept.stdout);
    assert.equal(result.status, "ok");
    assert.equal(typeof result.cpuTimeMs, "number");
  });

  it("exits 137 when the memory limit set with --memory is exceeded", async () => {
    const r = await wasmbox(["run", "--memory", "64", "-c", "x = bytearray(200 * 1024 * 1024)"]);
    assert.equal(r.code, 137);
  });

  it("exits 125 on the output limit set with --max-output, keeping the captured prefix", async () => {
    const r = await wasmbox(["run", "--max-output", "10", "-c", "print('0123456789abcdef')"]);
    assert.equal(r.code, 125);
    assert.equal(r.stdout, "0123456789");
  });

  for (const [args, pattern] of [
    [["run", "--nope", "-c", "1"], /unknown option --nope/],
    [["run", "--timeout"], /--timeout needs a value/],
    [["run", "--timeout", "soon", "-c", "1"], /cannot read a duration/],
    [["run", "--cpu-time", "soon", "-c", "1"], /--cpu-time: cannot read a duration/],
    [["run", "--memory", "lots", "-c", "1"], /cannot read a size/],
    [["run"], /nothing to run/],
    [["run", "/no/such/file.py"], /cannot read \/no\/such\/file.py/],
    [["run", "--env", "NOEQUALS", "-c", "1"], /expected K=V/],
    [["frobnicate"], /unknown command/],
    [["serve", "--stdio", "--isolation", "thread"], /--isolation: use process, isolate or interpreter/],
    [["serve", "--http", "0", "--isolation", "thread"], /--isolation: use process, isolate or interpreter/],
    [["mcp", "--isolation", "thread"], /--isolation: use process, isolate or interpreter/],
  ] as const) {
    it(`exits 2 with a one-line message for bad usage: ${args.join(" ")}`, async () => {
      const r = await wasmbox([...args]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split("\n").length, 1);
    });
  }

  it("prints its version with --version, -V and version", async () => {
    for (const spelling of ["--version", "-V", "version"]) {
      const r = await wasmbox([spelling]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^wasmbox \d+\.\d+\.\d+\n$/);
    }
  });

  it("leaves no file behind in --out when the run produced none", async () => {
    const out = tmp();
    await wasmbox(["run", "--out", out, "-c", "pass"]);
    assert.equal(existsSync(join(out, "anything")), false);
  });
});
