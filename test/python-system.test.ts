/**
 * The system a Python program asks about answers like a small, anonymous Linux container, and no
 * call of the standard library ends the executor (issue 14). test/fixtures/python-system-calls.json
 * is the sweep: ~200 calls that reach the operating system (users, hosts, CPUs, clocks, signals,
 * processes, sockets, terminals, locales, ...), gathered by running each alone in a fresh sandbox;
 * the ones that used to crash the executor were os.getuid(), anything that listens on a socket
 * (socket.socketpair(), http.server, asyncio.SelectorEventLoop) and os.abort(), and reading
 * /dev/tty (getpass.getpass()) used to hang until the run was killed.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { Sandbox } from "../dist/index.js";

const CALLS: [string, string][] = JSON.parse(readFileSync(new URL("./fixtures/python-system-calls.json", import.meta.url), "utf8"));

/** Runs each call in a fresh namespace; records "ok" or the exception's type. Signal handlers are put back after each. */
const WALK = `
import json, signal, sys
calls = json.loads(sys.stdin.read())
seen = []
for label, code in calls:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        exec(code, {"__name__": "__walk__"})
        seen.append([label, "ok"])
    except BaseException as e:
        seen.append([label, type(e).__name__])
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
print("walked", len(seen))
seen
`;

let sandbox: Sandbox;
before(async () => {
  sandbox = await Sandbox.create({ poolSize: 1 });
});
after(async () => {
  await sandbox?.close();
});

describe("Python's view of the system", () => {
  test("walks every call of the sweep in one run: none ends the executor, hangs, or dumps a stack into stdout", async () => {
    const result = await sandbox.run({ code: WALK, stdin: JSON.stringify(CALLS), timeoutMs: 60_000 });
    assert.equal(result.status, "ok", `${result.error?.type}: ${result.error?.message}\n${result.stderr.slice(-2000)}`);
    assert.ok(result.stdout.endsWith(`walked ${CALLS.length}\n`), result.stdout.slice(-500));
    assert.ok(!result.stdout.includes("Stack (most recent call first)"));
    const seen = new Map(result.value as [string, string][]);
    // The calls that used to crash or hang now answer, or raise what a program can handle.
    for (const [label, expected] of [
      ["os.getuid()", "ok"],
      ["os.getuid() caught by try/except", "ok"],
      ["os.geteuid()", "ok"],
      ["os.getgroups()", "ok"],
      ["getpass.getuser()", "ok"],
      ["pwd.getpwuid(0)", "ok"],
      ["grp.getgrgid(0)", "ok"],
      ["resource.getrlimit", "ok"],
      ["pathlib.Path.home()", "ok"],
      ["socket.socketpair()", "PermissionError"],
      ["socket bind+listen", "PermissionError"],
      ["http.server.HTTPServer(('127.0.0.1', 0))", "PermissionError"],
      ["asyncio.SelectorEventLoop()", "PermissionError"],
      ["getpass.getpass()", "EOFError"],
      ["threading.Thread.start()", "RuntimeError"],
      ["ThreadPoolExecutor.map", "ok"],
      ["asyncio.run(coro)", "ok"],
      ["hashlib.pbkdf2_hmac", "ok"],
    ] as const) {
      assert.equal(seen.get(label), expected, label);
    }
  });

  test("answers like a small anonymous container: root, a fixed host name, one CPU, no load, a home directory", async () => {
    const result = await sandbox.run({
      code: [
        "import os, getpass, pwd, grp, socket, platform, pathlib, resource",
        "(os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), getpass.getuser(), pwd.getpwuid(os.getuid()).pw_dir,",
        " grp.getgrgid(os.getgid()).gr_name, socket.gethostname(), platform.node(), os.uname().nodename,",
        " os.cpu_count(), os.getloadavg(), str(pathlib.Path.home()), os.path.isdir(os.path.expanduser('~')),",
        " resource.getrlimit(resource.RLIMIT_NOFILE))",
      ].join("\n"),
    });
    assert.equal(result.status, "ok", result.stderr);
    assert.deepEqual(result.value, [0, 0, 0, [0], "root", "/root", "root", "sandbox", "sandbox", "sandbox", 1, [0, 0, 0], "/root", true, [1024, 1048576]]);
  });

  test("there is no terminal: /dev/tty does not exist, so getpass reads stdin instead of blocking on the executor's pipe", async () => {
    const result = await sandbox.run({
      code: "import getpass, os\nprint(os.path.exists('/dev/tty'))\ngetpass.getpass('pw: ')",
      stdin: "s3cret\n",
    });
    assert.equal(result.status, "ok", result.stderr);
    assert.equal(result.stdout, "False\n");
    assert.equal(result.value, "s3cret");
  });

  test("hashlib.pbkdf2_hmac, missing from this build (no OpenSSL), gives CPython's bytes", async () => {
    const code = "import hashlib\nhashlib.pbkdf2_hmac('sha256', b'password', b'salt', 2000, 40).hex()";
    const native = execFileSync("python3", ["-c", `${code.split("\n")[0]}\nprint(${code.split("\n")[1]})`], { encoding: "utf8" }).trim();
    const result = await sandbox.run({ code });
    assert.equal(result.value, native);
  });

  test("a socket that tries to listen gets an OSError that says why, and connecting still fails as unreachable", async () => {
    const result = await sandbox.run({
      code: "import socket\ntry:\n    socket.create_server(('127.0.0.1', 8080))\nexcept OSError as e:\n    print(e)\ntry:\n    socket.create_connection(('127.0.0.1', 80), timeout=1)\nexcept OSError as e:\n    print(type(e).__name__)",
    });
    assert.equal(result.status, "ok", result.stderr);
    assert.match(result.stdout, /no network: sockets cannot listen or connect\n/);
  });

  test("from the CLI: os.getuid() exits 0, and top-level await gives its value", () => {
    const cli = fileURLToPath(new URL("../dist/cli/bin.js", import.meta.url));
    assert.equal(execFileSync(process.execPath, [cli, "run", "-c", "import os; print(os.getuid())"], { encoding: "utf8" }), "0\n");
    const json = execFileSync(process.execPath, [cli, "run", "--json", "-c", "import asyncio\nawait asyncio.sleep(0.01)\n(1, 2.0)"], { encoding: "utf8" });
    const result = JSON.parse(json);
    assert.equal(result.status, "ok", result.stderr);
    assert.deepEqual(result.valueLossless, { $tuple: [1, { $float: "2.0" }] });
  });

  test("the timeout interrupts time.sleep and asyncio.sleep with KeyboardInterrupt, as it does running code", async () => {
    // Emscripten's sleep was a busy loop that no interrupt reached: the run went on until the hard
    // kill, and the program never saw KeyboardInterrupt.
    for (const code of [
      "import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print('interrupted')",
      "import asyncio\nasync def main():\n    await asyncio.sleep(60)\ntry:\n    asyncio.run(main())\nexcept KeyboardInterrupt:\n    print('interrupted')",
    ]) {
      const result = await sandbox.run({ code, timeoutMs: 1000 });
      assert.equal(result.status, "timeout");
      assert.equal(result.stdout, "interrupted\n", code);
    }
  });

  test("the statements of a cell with top-level await run as one coroutine, so asyncio.run() among them fails as in Jupyter", async () => {
    const result = await sandbox.run({ code: "import asyncio\nawait asyncio.sleep(0)\nx = asyncio.run(asyncio.sleep(0))" });
    assert.equal(result.error?.type, "RuntimeError");
    assert.match(result.error?.message ?? "", /cannot be called from a running event loop/);
  });

  test("a session survives os.getuid(), which used to end its executor", async () => {
    await using session = await sandbox.session();
    assert.equal((await session.run({ code: "x = 41\nimport os\nos.getuid()" })).value, 0);
    assert.equal((await session.run({ code: "x + 1" })).value, 42);
  });
});
