/**
 * Security corpus: one guest program per escape or exhaustion technique, each with the verdict it
 * must get. After every case: the host is alive, no host file changed, no planted secret appears in
 * the result, and the next run on the same Sandbox sees a pristine interpreter.
 *
 * Guest code attacks through the open route to JavaScript (see helpers/guest.ts) on purpose: the
 * walls under test are Deno's permissions, the allow-listed environment, bubblewrap and the host's
 * watchdog, each designed as if the guest runs arbitrary JavaScript in the executor (it does).
 *
 * It imports the built package, not src/: the executor is spawned from dist/executor/main.js, and
 * resolving it from src/ finds no main.js. Run `npm run build` first.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Sandbox, WasmboxError, fileBytes, type RunOptions, type RunRequest, type RunResult } from "../dist/index.js";
import { GROW_MODULE_BYTES, attempt, attemptAsync, guest, inNestedWorker, js, verdicts } from "./helpers/guest.js";
import { compileCacheFiles, fingerprint, listDir, plantCanaries, readText, snapshotFiles, startWitness, type Witness } from "./helpers/host.js";

const J = JSON.stringify;
const repoDir = fileURLToPath(new URL("..", import.meta.url));
const require = createRequire(import.meta.url);
const pyodideDir = dirname(require.resolve("pyodide/package.json"));
const cacheDir = process.env.WASMBOX_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "wasmbox");

// Planted before any Sandbox exists, so an executor that inherited the host's environment would see them.
const canaries = plantCanaries();
// Counts every connection to a loopback port; started now because the case table names its port.
const witness: Witness = await startWitness();
let hostFiles: Record<string, string> = {};

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Checks that follow every case
// ---------------------------------------------------------------------------------------------

/** What a fresh run observes about its interpreter; compared with the first run of the file. */
const CLEAN_CHECK = guest(
  `import builtins, json, os, sys`,
  `state = {`,
  `  "sandbox": sorted(os.listdir("/sandbox")),`,
  `  "tmp": sorted(os.listdir("/tmp")),`,
  `  "environ": dict(os.environ),`,
  `  "builtins_marker": hasattr(builtins, "wasmbox_pwned"),`,
  `  "print_is_builtin": type(builtins.print).__name__ == "builtin_function_or_method",`,
  `  "modules_marker": sorted(m for m in sys.modules if "wasmbox_pwned" in m),`,
  `  "path_marker": [p for p in sys.path if "wasmbox_pwned" in p],`,
  `  "first_meta_path_finder": type(sys.meta_path[0]).__name__,`,
  `  "js_global_marker": ${js(`return Object.getOwnPropertyNames(globalThis).filter((n) => n.includes("wasmbox_pwned")).join(",")`)},`,
  `  "object_prototype_marker": ${js(`return "wasmbox_pwned" in Object.prototype`)},`,
  `  "grow_capped": ${js(`return String(WebAssembly.Memory.prototype.grow).includes("memory limit")`)},`,
  `  "post_message_original": ${js(`return String(self.postMessage).includes("DedicatedWorkerGlobalScope")`)},`,
  `}`,
  `print(json.dumps(state, sort_keys=True))`,
);

let cleanBaseline: Record<string, unknown> | null = null;

async function cleanState(sandbox: Sandbox): Promise<Record<string, unknown>> {
  const result = await sandbox.run({ code: CLEAN_CHECK, timeoutMs: 20_000 });
  assertNoSecrets(result);
  assert.equal(result.status, "ok", `clean check did not run: ${result.status} ${result.error?.message} ${result.stderr}`);
  assert.equal(result.stderr, "");
  return JSON.parse(result.stdout);
}

/** The host still runs guests, and the next run sees none of what earlier runs left behind. */
async function assertNextRunClean(sandbox: Sandbox): Promise<void> {
  assert.ok(cleanBaseline, "baseline missing");
  assert.deepEqual(await cleanState(sandbox), cleanBaseline, "the next run is not clean");
}

/** No planted secret anywhere in what the guest got back (stdout, stderr, value, error, files). */
function assertNoSecrets(result: RunResult): void {
  const text = JSON.stringify(result);
  assert.ok(!text.includes(canaries.envSecret), "the host's WASMBOX_TEST_SECRET leaked into the result");
  assert.ok(!text.includes(canaries.fileSecret), "the host's secret file leaked into the result");
  for (const file of result.files) {
    const content = Buffer.from(fileBytes(file)).toString("latin1");
    assert.ok(!content.includes(canaries.envSecret) && !content.includes(canaries.fileSecret), "a secret leaked into a result file");
  }
}

/** Host files a guest tried to read, write or replace are as they were. */
function assertHostUntouched(): void {
  assert.deepEqual(listDir(canaries.fileDir), ["secret.txt"], "a file appeared next to the host secret");
  assert.equal(readText(canaries.filePath), canaries.fileSecret, "the host secret file changed");
  for (const path of canaries.writeTargets) assert.ok(!existsSync(path), `guest created ${path} on the host`);
  assert.deepEqual(listDir(canaries.hostileDenoDir), [], "an executor used the DENO_DIR of the host's environment");
  const now = fingerprint(Object.keys(hostFiles));
  for (const [path, print] of Object.entries(now)) assert.equal(print, hostFiles[path], `${path} changed`);
}

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

type Expect = (result: RunResult) => void | Promise<void>;

interface Case {
  name: string;
  code: string;
  request?: Omit<RunRequest, "code">;
  options?: RunOptions;
  expect: Expect;
  todo?: string;
}

const denial = (what: string) => new RegExp(`^DENIED (NotCapable|PermissionDenied): .*${what}`);
const READ = denial("Requires read access");
const WRITE = denial("Requires write access");
const NET = denial("Requires net access");
const ENV = denial("Requires env access");
const RUN = denial("Requires run access");
const SYS = denial("Requires sys access");
const FFI = denial("Requires ffi access");

function describeResult(result: RunResult): string {
  return `status ${result.status}; error ${result.error?.type}: ${result.error?.message}; stdout ${J(result.stdout.slice(0, 2000))}; stderr ${J(result.stderr.slice(-1000))}`;
}

/** The guest ran to completion and every labelled attempt was refused for the given reason. */
function allDenied(expected: Record<string, RegExp>, then?: Expect): Expect {
  return async (result) => {
    assert.equal(result.status, "ok", describeResult(result));
    const seen = verdicts(result.stdout);
    for (const [label, pattern] of Object.entries(expected)) {
      const verdict = seen.get(label);
      assert.ok(verdict, `no verdict for ${label}: ${describeResult(result)}`);
      assert.match(verdict, pattern, `${label}: ${verdict}`);
    }
    await then?.(result);
  };
}

function hasStatus(status: RunResult["status"], then?: Expect): Expect {
  return async (result) => {
    assert.equal(result.status, status, describeResult(result));
    await then?.(result);
  };
}

function noWitnessConnections(): void {
  assert.equal(witness.connections, 0, "the loopback witness server received a connection from a guest");
}

// ---------------------------------------------------------------------------------------------
// The corpus (bubblewrap + Deno permissions + watchdog: the default configuration)
// ---------------------------------------------------------------------------------------------

const PY_TRY = (label: string, statement: string) =>
  [
    `try:`,
    `    _r = ${statement}`,
    `    print(${J(label)} + ": ALLOWED " + repr(_r)[:300])`,
    `except BaseException as _e:`,
    `    print(${J(label)} + ": DENIED " + type(_e).__name__ + ": " + str(_e)[:300])`,
  ].join("\n");

function forgedResult(files: object[], extra: Record<string, unknown> = {}): string {
  const outcome = { status: "ok", exitCode: 0, value: null, valueRepr: null, error: null, files, ...extra };
  return js(`self.postMessage({ t: "result", outcome: ${J(outcome)} })`);
}

function corpus(): Case[] {
  const port = witness.port;
  const snapshots = snapshotFiles(cacheDir);
  return [
    // --- the JS bridges ------------------------------------------------------------------
    {
      name: "guest cannot import the js or pyodide_js modules, nor use pyodide.code.run_js",
      code: [
        PY_TRY("import_js", `__import__("js")`),
        PY_TRY("import_pyodide_js", `__import__("pyodide_js")`),
        PY_TRY("run_js", `__import__("pyodide.code", fromlist=["run_js"]).run_js`),
      ].join("\n"),
      expect: (r) => {
        assert.equal(r.status, "ok", describeResult(r));
        const seen = verdicts(r.stdout);
        assert.match(seen.get("import_js") ?? "", /^DENIED ImportError: module 'js' is not available/);
        assert.match(seen.get("import_pyodide_js") ?? "", /^DENIED ImportError: module 'pyodide_js' is not available/);
        assert.match(seen.get("run_js") ?? "", /^DENIED AttributeError/);
      },
    },
    {
      // The precondition of every JS attack below: the route is open, so their denials mean something.
      name: "guest still reaches the worker's Deno object through a proxy's Function constructor",
      code: guest(`print(${js(`return typeof Deno`)})`),
      expect: hasStatus("ok", (r) => assert.equal(r.stdout, "object\n")),
    },
    {
      name: "guest that re-registers the js module through pyodide.ffi still cannot read host files",
      code: guest(
        `import sys`,
        `from pyodide.ffi import register_js_module`,
        `sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_BlockedImports"]`,
        `register_js_module("js", ${js(`return globalThis`)})`,
        `import js as jsmod`,
        PY_TRY("reregistered", `jsmod.Deno.readTextFileSync("/etc/hostname")`),
      ),
      expect: (r) => {
        assert.equal(r.status, "ok", describeResult(r));
        assert.match(verdicts(r.stdout).get("reregistered") ?? "", /^DENIED JsException: NotCapable: Requires read access/);
      },
    },

    // --- host files ----------------------------------------------------------------------
    {
      name: "guest cannot read host files through Deno.readTextFileSync and friends",
      code: guest(
        attempt("etc_hostname", `Deno.readTextFileSync("/etc/hostname")`),
        attempt("etc_passwd", `Deno.readTextFileSync("/etc/passwd")`),
        attempt("home_secret", `Deno.readTextFileSync(${J(canaries.filePath)})`),
        attempt("home_listing", `[...Deno.readDirSync(${J(canaries.fileDir)})].map((e) => e.name).join(",")`),
        attempt("root_listing", `[...Deno.readDirSync("/")].map((e) => e.name).join(",")`),
        attempt("stat_shadow", `Deno.statSync("/etc/shadow").size`),
        attempt("exe_link", `Deno.readLinkSync("/proc/self/exe")`),
        attempt("open_sync", `Deno.openSync(${J(canaries.filePath)}).rid`),
        attemptAsync("read_async", `return await Deno.readTextFile(${J(canaries.filePath)})`),
      ),
      expect: allDenied({
        etc_hostname: READ, etc_passwd: READ, home_secret: READ, home_listing: READ, root_listing: READ,
        stat_shadow: READ, exe_link: READ, open_sync: READ, read_async: READ,
      }),
    },
    {
      name: "guest cannot read host files through Python's open",
      code: [
        `import os`,
        PY_TRY("py_secret", `open(${J(canaries.filePath)}).read()`),
        PY_TRY("py_listing", `os.listdir(${J(canaries.fileDir)})`),
      ].join("\n"),
      expect: (r) => {
        assert.equal(r.status, "ok", describeResult(r));
        const seen = verdicts(r.stdout);
        assert.match(seen.get("py_secret") ?? "", /^DENIED FileNotFoundError/);
        assert.match(seen.get("py_listing") ?? "", /^DENIED FileNotFoundError/);
      },
    },
    {
      name: "guest cannot overwrite the memory snapshot or the runtime assets that later runs load",
      code: guest(
        ...snapshots.flatMap((path, i) => [
          attempt(`snapshot${i}_write`, `Deno.writeFileSync(${J(path)}, new Uint8Array(8))`),
          attempt(`snapshot${i}_truncate`, `Deno.truncateSync(${J(path)}, 0)`),
          attempt(`snapshot${i}_remove`, `Deno.removeSync(${J(path)})`),
        ]),
        attempt("asset_write", `Deno.writeTextFileSync(${J(join(pyodideDir, "pyodide.mjs"))}, "throw 1")`),
        attempt("compile_cache_write", `Deno.writeFileSync("/tmp/deno-dir/v8_code_cache_v2", new Uint8Array(8))`),
        ...compileCacheFiles(cacheDir).slice(0, 3).map((path, i) => attempt(`seed${i}_write`, `Deno.writeFileSync(${J(path)}, new Uint8Array(8))`)),
        attempt("asset_rename", `Deno.renameSync(${J(join(pyodideDir, "pyodide.asm.wasm"))}, "/tmp/x.wasm")`),
      ),
      expect: allDenied({
        ...Object.fromEntries(snapshots.flatMap((_, i) => [
          [`snapshot${i}_write`, WRITE], [`snapshot${i}_truncate`, WRITE], [`snapshot${i}_remove`, WRITE],
        ])),
        asset_write: WRITE,
        compile_cache_write: /^DENIED (NotCapable|PermissionDenied)/,
        ...Object.fromEntries(compileCacheFiles(cacheDir).slice(0, 3).map((_, i) => [`seed${i}_write`, WRITE])),
        asset_rename: /^DENIED (NotCapable|PermissionDenied): Requires (read|write) access/,
      }, () => assert.ok(snapshots.length > 0, `no snapshot found in ${cacheDir}: nothing was attacked`)),
    },
    {
      name: "guest cannot write, remove or chmod host files",
      code: guest(
        attempt("write_home", `Deno.writeTextFileSync(${J(canaries.writeTargets[0])}, "pwned")`),
        attempt("write_tmp", `Deno.writeTextFileSync(${J(canaries.writeTargets[1])}, "pwned")`),
        attempt("remove_secret", `Deno.removeSync(${J(canaries.filePath)})`),
        attempt("truncate_secret", `Deno.truncateSync(${J(canaries.filePath)}, 0)`),
        attempt("chmod_secret", `Deno.chmodSync(${J(canaries.filePath)}, 0o777)`),
        attempt("mkdir", `Deno.mkdirSync(${J(canaries.writeTargets[1])})`),
        attempt("symlink", `Deno.symlinkSync("/etc/passwd", ${J(canaries.writeTargets[1])})`),
        attemptAsync("write_async", `await Deno.writeTextFile(${J(canaries.writeTargets[0])}, "pwned"); return "written"`),
      ),
      expect: allDenied({
        write_home: WRITE, write_tmp: WRITE, remove_secret: WRITE, truncate_secret: WRITE,
        chmod_secret: WRITE, mkdir: WRITE, symlink: /^DENIED (NotCapable|PermissionDenied): /, write_async: WRITE,
      }),
    },

    // --- environment ---------------------------------------------------------------------
    {
      name: "guest cannot read the host environment through Deno.env or /proc/self/environ",
      code: guest(
        attempt("env_secret", `Deno.env.get("WASMBOX_TEST_SECRET")`),
        attempt("env_all", `JSON.stringify(Deno.env.toObject())`),
        attempt("env_deno_dir", `Deno.env.get("DENO_DIR")`),
        attempt("proc_environ", `Deno.readTextFileSync("/proc/self/environ")`),
        attempt("proc_parent_environ", `Deno.readTextFileSync("/proc/" + Deno.ppid + "/environ")`),
      ),
      expect: allDenied({ env_secret: ENV, env_all: ENV, env_deno_dir: ENV, proc_environ: READ, proc_parent_environ: READ }),
    },
    {
      name: "Pyodide os.environ holds exactly the request's env and nothing of the host's",
      code: [
        `import json, os`,
        `print("environ: " + json.dumps(dict(os.environ), sort_keys=True))`,
        PY_TRY("py_proc_environ", `open("/proc/self/environ", "rb").read()`),
      ].join("\n"),
      request: { env: { GREETING: "hello" } },
      expect: (r) => {
        assert.equal(r.status, "ok", describeResult(r));
        assert.ok(r.stdout.startsWith(`environ: {"GREETING": "hello"}\n`), r.stdout);
      },
    },
    {
      name: "a data: module imported by the guest gets no permission either",
      code: guest(
        attemptAsync("data_plain", `return (await import("data:text/javascript,export const x = 42")).x`),
        attemptAsync("data_env", `return (await import("data:text/javascript,export const x = Deno.env.get('WASMBOX_TEST_SECRET')")).x`),
        attemptAsync("data_read", `return (await import("data:text/javascript,export const x = Deno.readTextFileSync('/etc/hostname')")).x`),
      ),
      expect: (r) => {
        assert.equal(r.status, "ok", describeResult(r));
        const seen = verdicts(r.stdout);
        assert.equal(seen.get("data_plain"), "ALLOWED 42"); // the loader works, so the denials below are permissions
        assert.match(seen.get("data_env") ?? "", ENV);
        assert.match(seen.get("data_read") ?? "", READ);
      },
    },

    // --- network -------------------------------------------------------------------------
    {
      name: "guest cannot reach the host's loopback through fetch, sockets, WebSocket or DNS",
      code: guest(
        attemptAsync("fetch", `return (await fetch("http://127.0.0.1:${port}/leak")).status`),
        attemptAsync("connect", `await Deno.connect({ hostname: "127.0.0.1", port: ${port} }); return "connected"`),
        attemptAsync("connect_tls", `await Deno.connectTls({ hostname: "127.0.0.1", port: ${port} }); return "connected"`),
        attemptAsync("websocket", `return await new Promise((resolve, reject) => { const ws = new WebSocket("ws://127.0.0.1:${port}/"); ws.onopen = () => resolve("open"); ws.onerror = () => reject(new Error("ws error")); })`),
        attemptAsync("dns", `return JSON.stringify(await Deno.resolveDns("wasmbox.invalid", "A", { nameServer: { ipAddr: "127.0.0.1", port: ${port} } }))`),
        attempt("listen", `Deno.listen({ port: 0 }).addr.port`),
        attempt("serve", `Deno.serve({ port: 0, onListen() {} }, () => new Response("x")) && "serving"`),
      ),
      expect: allDenied(
        { fetch: NET, connect: NET, connect_tls: NET, websocket: NET, dns: NET, listen: NET, serve: NET },
        noWitnessConnections,
      ),
    },
    {
      name: "guest cannot open network connections from Python",
      code: [
        // urllib, http.client and requests all end in socket.create_connection.
        `import socket`,
        PY_TRY("py_socket", `socket.create_connection(("127.0.0.1", ${port}), timeout=2)`),
        PY_TRY("py_socket_raw", `socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("127.0.0.1", ${port}))`),
      ].join("\n"),
      expect: (r) => {
        assert.equal(r.status, "ok", describeResult(r));
        const seen = verdicts(r.stdout);
        assert.match(seen.get("py_socket") ?? "", /^DENIED /);
        assert.match(seen.get("py_socket_raw") ?? "", /^DENIED /);
        noWitnessConnections();
      },
    },

    // --- subprocesses and signals --------------------------------------------------------
    {
      name: "guest cannot start a subprocess or signal the host",
      code: guest(
        attempt("command_sync", `new TextDecoder().decode(new Deno.Command("/bin/sh", { args: ["-c", "echo pwned"] }).outputSync().stdout)`),
        attemptAsync("command_spawn", `const child = new Deno.Command("/usr/bin/id").spawn(); return (await child.status).code`),
        attempt("kill_parent", `Deno.kill(Deno.ppid, "SIGCONT")`),
        attempt("kill_init", `Deno.kill(1, "SIGCONT")`),
      ),
      expect: allDenied({ command_sync: RUN, command_spawn: RUN, kill_parent: RUN, kill_init: RUN }),
    },
    {
      name: "guest cannot start a subprocess from Python",
      code: [
        `import os, subprocess`,
        PY_TRY("py_subprocess", `subprocess.run(["id"], capture_output=True).stdout`),
        PY_TRY("py_system", `os.system("id") or "no-op"`),
      ].join("\n"),
      expect: (r) => {
        // os.system reaches emscripten's system(), which touches the environment; Deno refuses that and
        // Pyodide treats it as fatal, so today the run ends as "crash". Either way no program ran.
        assert.ok(r.status === "ok" || r.status === "crash", describeResult(r));
        const seen = verdicts(r.stdout);
        assert.match(seen.get("py_subprocess") ?? "", /^DENIED OSError/);
        assert.ok(!seen.get("py_system")?.startsWith("ALLOWED"), r.stdout);
        assert.ok(!r.stdout.includes("uid="), r.stdout);
      },
    },

    // --- the module loader ---------------------------------------------------------------
    {
      name: "guest cannot import remote modules (--no-remote, --deny-import) or local files",
      code: guest(
        attemptAsync("https", `return Object.keys(await import("https://deno.land/std@0.224.0/version.ts")).join(",")`),
        attemptAsync("http_loopback", `return Object.keys(await import("http://127.0.0.1:${port}/mod.js")).join(",")`),
        attemptAsync("jsr", `return Object.keys(await import("jsr:@std/path")).join(",")`),
        attemptAsync("file", `return Object.keys(await import("file:///etc/passwd")).join(",")`),
        attemptAsync("home_file", `return Object.keys(await import(${J("file://" + canaries.filePath)})).join(",")`),
      ),
      expect: allDenied(
        {
          https: /^DENIED TypeError: .*(Requires import access|--no-remote)/,
          http_loopback: /^DENIED TypeError: .*(Requires import access|--no-remote)/,
          jsr: /^DENIED TypeError: .*(Requires import access|--no-remote)/,
          file: /^DENIED TypeError: Requires read access/,
          home_file: /^DENIED TypeError: Requires read access/,
        },
        noWitnessConnections,
      ),
    },
    {
      name: "guest cannot import npm packages (--no-npm)",
      code: guest(attemptAsync("npm", `return Object.keys(await import("npm:left-pad")).join(",")`)),
      expect: allDenied({ npm: /^DENIED TypeError: .*--no-npm/ }),
    },

    // --- ffi and sys ---------------------------------------------------------------------
    {
      name: "guest cannot load native code through Deno.dlopen",
      code: guest(
        attempt("dlopen_libc", `Deno.dlopen("/lib/x86_64-linux-gnu/libc.so.6", { getpid: { parameters: [], result: "i32" } }) && "loaded"`),
        attempt("dlopen_self", `Deno.dlopen(Deno.execPath(), {}) && "loaded"`),
      ),
      expect: allDenied({ dlopen_libc: FFI, dlopen_self: FFI }),
    },
    {
      name: "guest cannot read system information (--deny-sys)",
      code: guest(
        attempt("os_release", `Deno.osRelease()`),
        attempt("memory_info", `JSON.stringify(Deno.systemMemoryInfo())`),
        attempt("hostname", `Deno.hostname()`),
        attempt("loadavg", `Deno.loadavg()`),
        attempt("interfaces", `JSON.stringify(Deno.networkInterfaces())`),
        attempt("uptime", `Deno.osUptime()`),
        attempt("uid", `Deno.uid()`),
        attempt("gid", `Deno.gid()`),
      ),
      expect: allDenied({
        os_release: SYS, memory_info: SYS, hostname: SYS, loadavg: SYS, interfaces: SYS, uptime: SYS, uid: SYS, gid: SYS,
      }),
    },

    // --- workers -------------------------------------------------------------------------
    {
      name: "a worker started by the guest has no more permission than the guest",
      code: guest(
        attemptAsync(
          "nested_worker",
          `return await new Promise((resolve, reject) => {
            const source = "let r; try { r = 'ALLOWED ' + Deno.readTextFileSync('/etc/hostname') + Deno.env.get('WASMBOX_TEST_SECRET'); } catch (e) { r = e.name + ': ' + e.message; } postMessage(r);";
            const worker = new Worker("data:text/javascript," + encodeURIComponent(source), { type: "module" });
            worker.onmessage = (event) => { worker.terminate(); if (event.data.startsWith("ALLOWED")) resolve(event.data); else reject(new Error("nested: " + event.data)); };
            worker.onerror = (event) => { event.preventDefault(); reject(new Error("worker error: " + event.message)); };
          })`,
        ),
      ),
      expect: allDenied({ nested_worker: /^DENIED Error: nested: NotCapable: Requires read access/ }),
    },
    {
      // Workers are started with narrowed permissions (--unstable-worker-options, for the frame
      // channel); before that, the option itself was refused and the executor died instead.
      name: "guest cannot start a worker with more permissions: Deno refuses to escalate",
      code: guest(
        attempt("escalate", `new Worker("data:text/javascript,postMessage(1)", { type: "module", deno: { permissions: { read: true, env: true, net: true, run: true } } }) && "created"`),
        `import time`,
        `time.sleep(1)`,
        `print("still running")`,
      ),
      expect: (r) => {
        assert.match(verdicts(r.stdout).get("escalate") ?? "", /^DENIED NotCapable/, describeResult(r));
      },
    },

    // --- frames and messages -------------------------------------------------------------
    {
      name: "guest cannot read the frame key from the executor's stdin",
      code: guest(
        attemptAsync(
          "stdin",
          `const buffer = new Uint8Array(65536); const n = await Deno.stdin.read(buffer); return n === null ? "EOF" : new TextDecoder().decode(buffer.subarray(0, n))`,
          1500,
        ),
      ),
      expect: (r) => {
        assert.equal(r.status, "ok", describeResult(r));
        assert.ok(verdicts(r.stdout).has("stdin"), describeResult(r));
        assert.ok(!/"t"\s*:\s*"init"|[0-9a-f]{64}/.test(r.stdout), `guest read host messages: ${r.stdout}`);
      },
    },
    {
      name: "a result frame forged on the executor's stdout is rejected, never reported as ok",
      code: guest(
        js(`
          const enc = new TextEncoder();
          const frame = (body) => "0".repeat(64) + " " + JSON.stringify(body) + "\\n";
          const data = btoa("FORGED OUTPUT\\n");
          Deno.stdout.writeSync(enc.encode(frame({ seq: 1, t: "out", fd: 1, data })));
          Deno.stdout.writeSync(enc.encode(frame({ seq: 2, t: "result", outcome: { status: "ok", exitCode: 0, value: null, valueRepr: "'forged'", error: null, files: [] } })));
        `),
        `print("real output")`,
      ),
      expect: hasStatus("crash", (r) => {
        assert.ok(!r.stdout.includes("FORGED"), r.stdout);
        assert.notEqual(r.valueRepr, "'forged'");
        assert.match(r.error?.message ?? "", /signature|unsigned|malformed/);
      }),
    },
    {
      name: "a result posted by the guest naming a file outside the sandbox is rejected",
      code: guest(forgedResult([{ path: "../../escape.txt", size: 5, encoding: "utf8", content: "owned" }])),
      expect: hasStatus("crash", (r) => assert.deepEqual(r.files, [])),
    },
    {
      name: "a result posted by the guest naming an absolute file path is rejected",
      code: guest(forgedResult([{ path: "/etc/cron.d/wasmbox", size: 5, encoding: "utf8", content: "owned" }])),
      expect: hasStatus("crash", (r) => assert.deepEqual(r.files, [])),
    },
    {
      name: "a result posted by the guest with a status the executor never reports is rejected",
      code: guest(js(`self.postMessage({ t: "result", outcome: { status: "cancelled", exitCode: 0, value: null, valueRepr: null, error: null, files: [] } })`)),
      expect: hasStatus("crash"),
    },
    {
      name: "a snapshot message posted by the guest in a serving executor is rejected",
      code: guest(js(`self.postMessage({ t: "snapshot", bytes: new Uint8Array(16) })`), `import time`, `time.sleep(1)`),
      expect: hasStatus("crash", (r) => assert.match(r.error?.message ?? "", /unexpected snapshot/)),
    },
    {
      name: "an unknown message posted by the guest ends the run as a crash",
      code: guest(js(`self.postMessage({ t: "sign-this", body: "x" })`), `import time`, `time.sleep(1)`),
      expect: hasStatus("crash"),
    },
    {
      name: "a result posted by the guest cannot carry a valueRepr beyond the runner's cap",
      code: guest(forgedResult([], { valueRepr: "x".repeat(4 * MiB) })),
      request: { maxOutputBytes: 10_000 },
      expect: (r) => {
        assert.ok((r.valueRepr ?? "").length <= 65_537, `valueRepr of ${(r.valueRepr ?? "").length} chars accepted (status ${r.status})`);
      },
    },
    {
      name: "a result posted by the guest cannot declare a file size that differs from its content",
      code: guest(forgedResult([{ path: "big.txt", size: 1, encoding: "utf8", content: "y".repeat(MiB) }])),
      expect: (r) => {
        for (const file of r.files) assert.equal(file.size, fileBytes(file).length, `file ${file.path} declares ${file.size} bytes, holds ${fileBytes(file).length}`);
      },
    },

    // --- interrupt-resistant loops -------------------------------------------------------
    {
      name: "a Python loop that swallows every BaseException ends as timeout",
      code: `while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n`,
      request: { timeoutMs: 1500 },
      expect: hasStatus("timeout"),
    },
    {
      name: "a Python loop that ignores SIGINT ends as timeout",
      code: `import signal\nsignal.signal(signal.SIGINT, lambda *args: None)\nwhile True:\n    pass\n`,
      request: { timeoutMs: 1500 },
      expect: hasStatus("timeout"),
    },
    {
      name: "a guest that survives the interrupt and then finishes is still reported as timeout",
      code: `try:\n    while True:\n        pass\nexcept KeyboardInterrupt:\n    pass\nprint("finished after the interrupt")\n`,
      request: { timeoutMs: 1500 },
      expect: hasStatus("timeout"),
    },
    {
      name: "a pure JavaScript infinite loop ends as timeout",
      code: guest(js(`while (true) {}`)),
      request: { timeoutMs: 1500 },
      expect: hasStatus("timeout"),
    },
    {
      name: "a worker blocked forever in Atomics.wait ends as timeout",
      code: guest(js(`Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)`)),
      request: { timeoutMs: 1500 },
      expect: hasStatus("timeout"),
    },
    {
      name: "a guest that swallows its own result message ends as timeout",
      code: guest(js(`self.postMessage = () => {}`)),
      request: { timeoutMs: 1500 },
      expect: hasStatus("timeout"),
    },
    {
      name: "a guest that calls Deno.exit in its worker never yields an ok result",
      code: guest(js(`Deno.exit(0)`), `print("after exit")`),
      request: { timeoutMs: 1500 },
      expect: (r) => {
        assert.ok(r.status === "timeout" || r.status === "crash", describeResult(r));
        assert.ok(!r.stdout.includes("after exit"));
      },
    },

    // --- memory --------------------------------------------------------------------------
    {
      name: "a Python allocation loop ends as memory_limit",
      code: `x = []\nwhile True:\n    x.append(bytearray(10**6))\n`,
      request: { memoryLimitBytes: 64 * MiB, timeoutMs: 20_000 },
      expect: hasStatus("memory_limit", (r) => assert.equal(r.error?.type, "MemoryError")),
    },
    {
      name: "a single huge Python allocation ends as memory_limit",
      code: `x = bytearray(10**9)\n`,
      request: { memoryLimitBytes: 64 * MiB, timeoutMs: 20_000 },
      expect: hasStatus("memory_limit"),
    },
    {
      name: "JavaScript typed arrays outside the wasm heap end as memory_limit",
      code: guest(js(`const keep = []; for (let i = 0; i < 64; i++) { const a = new Uint8Array(1 << 26); a.fill(1); keep.push(a); }`), `print("survived")`),
      request: { memoryLimitBytes: 64 * MiB, timeoutMs: 20_000 },
      expect: hasStatus("memory_limit", (r) => assert.ok(!r.stdout.includes("survived"))),
    },
    {
      name: "a large WebAssembly.Memory created and touched by the guest ends as memory_limit",
      code: guest(js(`const keep = []; for (let i = 0; i < 16; i++) { const m = new WebAssembly.Memory({ initial: 4096, maximum: 4096 }); new Uint8Array(m.buffer).fill(1); keep.push(m); }`), `print("survived")`),
      request: { memoryLimitBytes: 64 * MiB, timeoutMs: 20_000 },
      expect: hasStatus("memory_limit", (r) => assert.ok(!r.stdout.includes("survived"))),
    },
    {
      name: "many WebAssembly.Memory objects each grown under the per-memory cap end as memory_limit",
      code: guest(js(`const keep = []; for (let i = 0; i < 64; i++) { const m = new WebAssembly.Memory({ initial: 1, maximum: 2048 }); m.grow(900); new Uint8Array(m.buffer).fill(1); keep.push(m); }`), `print("survived")`),
      request: { memoryLimitBytes: 64 * MiB, timeoutMs: 20_000 },
      expect: hasStatus("memory_limit", (r) => assert.ok(!r.stdout.includes("survived"))),
    },
    {
      name: "memory grown by the wasm memory.grow instruction (bypassing the JS grow cap) ends as memory_limit",
      code: guest(
        js(`
          const { instance } = { instance: new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(${J(GROW_MODULE_BYTES)}))) };
          for (let i = 0; i < 64; i++) {
            if (instance.exports.g(1024) < 0) throw new Error("grow refused at " + i);
            new Uint8Array(instance.exports.m.buffer).fill(1);
          }
        `),
        `print("survived")`,
      ),
      request: { memoryLimitBytes: 64 * MiB, timeoutMs: 20_000 },
      expect: hasStatus("memory_limit", (r) => assert.ok(!r.stdout.includes("survived"))),
    },
    {
      name: "memory allocated by a worker the guest started ends as memory_limit",
      code: guest(
        js(`
          const source = "const keep = []; for (let i = 0; i < 64; i++) { const a = new Uint8Array(1 << 26); a.fill(1); keep.push(a); } postMessage(keep.length);";
          new Worker("data:text/javascript," + encodeURIComponent(source), { type: "module" });
        `),
        `import time`,
        `time.sleep(15)`,
        `print("survived")`,
      ),
      request: { memoryLimitBytes: 64 * MiB, timeoutMs: 20_000 },
      expect: hasStatus("memory_limit", (r) => assert.ok(!r.stdout.includes("survived"))),
    },
    {
      // memoryLimitBytes is large here, so what stops the bomb is V8's --max-old-space-size, not the watchdog.
      name: "the JavaScript heap is capped by V8 even when the memory limit is large",
      code: guest(
        js(`
          const post = self.postMessage.bind(self); const enc = new TextEncoder();
          const keep = []; let next = 0;
          for (let i = 0; ; i++) {
            keep.push(new Array(1 << 20).fill(i)); // 8 MiB on the V8 heap, not in an ArrayBuffer
            const used = Deno.memoryUsage().heapUsed;
            if (used > next) { post({ t: "out", fd: 1, data: enc.encode("heapUsed " + used + "\\n") }); next = used + 16 * 1024 * 1024; }
          }
        `),
      ),
      request: { memoryLimitBytes: 2048 * MiB, timeoutMs: 60_000 },
      expect: hasStatus("memory_limit", (r) => {
        const used = [...r.stdout.matchAll(/^heapUsed (\d+)$/gm)].map((m) => Number(m[1]));
        const peak = Math.max(0, ...used);
        assert.ok(peak > 128 * MiB, `the heap bomb never got going (peak ${peak})`);
        assert.ok(peak < 512 * MiB, `the JS heap reached ${peak} bytes: no V8 heap cap`);
      }),
    },

    // --- output --------------------------------------------------------------------------
    {
      name: "a print flood ends as output_limit and keeps the captured prefix",
      code: `while True:\n    print("x" * 999)\n`,
      request: { maxOutputBytes: 10_000, timeoutMs: 20_000 },
      expect: hasStatus("output_limit", (r) => {
        assert.equal(r.stdout, ("x".repeat(999) + "\n").repeat(10).slice(0, 10_000));
        assert.equal(r.stderr, "");
      }),
    },
    {
      // The usual runaway loop, with the default 1 MiB cap: output goes through a shared ring that
      // the executor's main isolate drains and frames in batches, so the host sees the cap crossed
      // while the guest is still printing (a print costs ~10-30 µs in Pyodide: ~150k of them here).
      name: "a runaway print(i) loop with default limits ends as output_limit, not timeout",
      code: `i = 0\nwhile True:\n    print(i)\n    i += 1\n`,
      expect: hasStatus("output_limit", (r) => {
        assert.equal(Buffer.byteLength(r.stdout), 1024 * 1024);
        assert.ok(r.stdout.startsWith("0\n1\n2\n3\n"));
      }),
    },
    {
      name: "one huge write ends as output_limit with exactly the cap kept",
      code: `import sys\nsys.stdout.write("y" * 4_000_000)\nsys.stdout.flush()\n`,
      request: { maxOutputBytes: 10_000, timeoutMs: 20_000 },
      expect: hasStatus("output_limit", (r) => assert.equal(r.stdout, "y".repeat(10_000))),
    },
    {
      name: "stdout and stderr together are capped at maxOutputBytes",
      code: `import sys\nwhile True:\n    sys.stdout.write("o" * 100)\n    sys.stdout.flush()\n    sys.stderr.write("e" * 100)\n    sys.stderr.flush()\n`,
      request: { maxOutputBytes: 10_000, timeoutMs: 20_000 },
      expect: hasStatus("output_limit", (r) => {
        assert.equal(Buffer.byteLength(r.stdout) + Buffer.byteLength(r.stderr), 10_000);
        assert.match(r.stdout, /^o+$/);
        assert.match(r.stderr, /^e+$/);
      }),
    },
    {
      name: "output messages posted straight from JavaScript are capped too",
      code: guest(js(`const post = self.postMessage.bind(self); const chunk = new TextEncoder().encode("z".repeat(1 << 20)); for (let i = 0; i < 64; i++) post({ t: "out", fd: 1, data: chunk.slice() });`), `import time`, `time.sleep(5)`),
      request: { maxOutputBytes: 10_000, timeoutMs: 20_000 },
      expect: hasStatus("output_limit", (r) => assert.equal(r.stdout, "z".repeat(10_000))),
    },
    {
      name: "writes to the executor's own stderr never reach the result",
      code: guest(js(`const chunk = new TextEncoder().encode("WASMBOX_STDERR_MARKER ".repeat(50000)); for (let i = 0; i < 8; i++) Deno.stderr.writeSync(chunk);`), `print("done")`),
      expect: hasStatus("ok", (r) => {
        assert.equal(r.stdout, "done\n");
        assert.ok(!JSON.stringify(r).includes("WASMBOX_STDERR_MARKER"));
      }),
    },

    // --- files the guest hands back ------------------------------------------------------
    {
      name: "files outside /sandbox and symlinks in it are never returned",
      code: [
        `import os`,
        `open("/tmp/outside.txt", "w").write("tmp")`,
        `open("/outside.txt", "w").write("root")`,
        `os.symlink("/etc/passwd", "/sandbox/link-to-passwd")`,
        `os.symlink("/", "/sandbox/link-to-root")`,
        `open("/sandbox/inside.txt", "w").write("kept")`,
      ].join("\n"),
      expect: hasStatus("ok", (r) => assert.deepEqual(r.files.map((f) => f.path), ["inside.txt"])),
    },
    {
      name: "a guest file whose name is not a valid sandbox path never reaches the result",
      code: `open("/sandbox/a\\\\..\\\\..\\\\escape.txt", "w").write("x")\nopen("/sandbox/ok.txt", "w").write("ok")\n`,
      expect: (r) => {
        // Today the whole outcome is rejected (status "crash"); skipping the bad name would also be safe.
        for (const file of r.files) {
          assert.ok(!file.path.includes("\\") && !file.path.split("/").includes("..") && !file.path.startsWith("/"), file.path);
        }
        assert.ok(r.status === "crash" || r.status === "ok", describeResult(r));
      },
    },

    // --- host functions -------------------------------------------------------------------
    {
      name: "guest cannot call host functions that were not registered, inherited names included",
      code: [
        `import _wasmbox_runner, json`,
        ...["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "__defineGetter__", "rm_rf"].map(
          (name) => `print(${J(name)} + ": " + _wasmbox_runner._host_call(${J(name)}, "{}"))`,
        ),
        `print("echo: " + _wasmbox_runner._host_call("echo", json.dumps({"__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}})))`,
      ].join("\n"),
      options: { tools: { echo: (args) => ({ keys: Object.keys(args) }) } },
      expect: (r) => {
        assert.equal(r.status, "ok", describeResult(r));
        for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "__defineGetter__", "rm_rf"]) {
          const line = r.stdout.split("\n").find((l) => l.startsWith(name + ": "));
          assert.ok(line, `no reply for ${name}`);
          const reply = JSON.parse(line.slice(name.length + 2));
          assert.equal(reply.ok, false, `${name} was callable: ${line}`);
          assert.match(reply.error, /no host function named/);
        }
        assert.ok(r.stdout.includes(`echo: {"ok": true`) || r.stdout.includes(`echo: {"ok":true`), r.stdout);
        assert.equal(({} as Record<string, unknown>).polluted, undefined, "a host function call polluted Object.prototype in the host");
      },
    },
    // --- state left for the next run -----------------------------------------------------
    {
      name: "state a guest leaves behind is not visible to the next run",
      code: guest(
        `import builtins, os, sys, types`,
        `builtins.wasmbox_pwned = True`,
        `sys.modules["wasmbox_pwned"] = types.ModuleType("wasmbox_pwned")`,
        `os.makedirs("/tmp/wasmbox_pwned", exist_ok=True)`,
        `open("/tmp/wasmbox_pwned/evil.py", "w").write("x = 1")`,
        `sys.path.insert(0, "/tmp/wasmbox_pwned")`,
        `open("/sandbox/wasmbox_pwned.txt", "w").write("left behind")`,
        `os.environ["WASMBOX_PWNED"] = "1"`,
        `wasmbox_pwned_global = 1`,
        attemptAsync("cache_put", inNestedWorker(`const cache = await caches.open("wasmbox_pwned"); await cache.put("https://wasmbox.invalid/x", new Response("left")); return "stored"`)),
        js(`globalThis.wasmbox_pwned = 1; Object.prototype.wasmbox_pwned = 1; WebAssembly.Memory.prototype.grow = function grow() { return 0; };`),
        `sys.meta_path.clear()`,
        `builtins.print = lambda *args, **kwargs: None`,
      ),
      expect: async (r) => {
        assert.equal(r.status, "ok", describeResult(r));
        // The Web Cache API is refused outright (security-limits.test.ts); were it not, the probe below still holds.
        assert.match(verdicts(r.stdout).get("cache_put") ?? "", /^(ALLOWED stored|DENIED \w+: Failed to create cache storage directory)/);
        // Twice: once on an executor started before this run, once on one started during it.
        await assertNextRunClean(sandbox);
        const probe = await sandbox.run({ code: guest(attemptAsync("cache_has", inNestedWorker(`return await caches.has("wasmbox_pwned")`))) });
        assert.match(verdicts(probe.stdout).get("cache_has") ?? "", /^(ALLOWED false|DENIED \w+: Failed to create cache storage directory)/, describeResult(probe));
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------

let sandbox: Sandbox;

before(() => {
  hostFiles = fingerprint([
    ...snapshotFiles(cacheDir),
    join(pyodideDir, "pyodide.mjs"),
    join(pyodideDir, "pyodide.asm.wasm"),
    join(pyodideDir, "python_stdlib.zip"),
  ]);
});

after(async () => {
  await witness.close();
  canaries.cleanup();
});

describe("security corpus: default sandbox (bubblewrap when available, Deno permissions, watchdog)", () => {
  before(async () => {
    sandbox = await Sandbox.create({ poolSize: 2 });
    // Made by the first Sandbox.create on a fresh machine: fingerprinted once it exists.
    hostFiles = { ...hostFiles, ...fingerprint(compileCacheFiles(cacheDir)) };
    assert.ok(compileCacheFiles(cacheDir).length > 0, `no compile cache in ${cacheDir}: nothing is guarded`);
    cleanBaseline = await cleanState(sandbox);
    // The baseline itself must be pristine, or every later comparison is meaningless.
    assert.deepEqual(cleanBaseline.environ, {});
    assert.deepEqual(cleanBaseline.sandbox, []);
    assert.equal(cleanBaseline.builtins_marker, false);
    assert.equal(cleanBaseline.print_is_builtin, true);
    assert.deepEqual(cleanBaseline.modules_marker, []);
    assert.equal(cleanBaseline.first_meta_path_finder, "_BlockedImports");
    assert.equal(cleanBaseline.js_global_marker, "");
    assert.equal(cleanBaseline.object_prototype_marker, false);
    assert.equal(cleanBaseline.grow_capped, true);
    assert.equal(cleanBaseline.post_message_original, true);
  });

  after(async () => {
    await sandbox?.close();
  });

  test("sandbox.layers names every active layer, bubblewrap included", () => {
    assert.equal(sandbox.osSandboxed, true, "bubblewrap is installed on this machine but not in use");
    for (const layer of [
      "every permission denied",
      "environment built from an allow-list",
      "a private DENO_DIR per executor",
      "host watchdog (time, resident memory, output)",
      "bubblewrap",
    ]) {
      assert.ok(sandbox.layers.includes(layer), `layers do not mention ${layer}: ${sandbox.layers}`);
    }
    assert.ok(!sandbox.layers.includes("Not active"), sandbox.layers);
  });

  for (const c of corpus()) {
    test(c.name, c.todo ? { todo: c.todo } : {}, async () => {
      const result = await sandbox.run({ timeoutMs: 20_000, ...c.request, code: c.code }, c.options);
      assertNoSecrets(result);
      await c.expect(result);
      assertHostUntouched();
      await assertNextRunClean(sandbox);
    });
  }

  test("two sessions never see each other's state", async () => {
    const a = await sandbox.session();
    const b = await sandbox.session();
    try {
      const left = await a.run({
        code: guest(
          `import builtins`,
          `wasmbox_pwned = "session-a"`,
          `builtins.wasmbox_pwned = True`,
          `open("/sandbox/wasmbox_pwned.txt", "w").write("a")`,
          js(`globalThis.wasmbox_pwned = 1`),
          `print("left")`,
        ),
      });
      assert.equal(left.status, "ok", describeResult(left));
      const again = await a.run({ code: `print(wasmbox_pwned)` });
      assert.equal(again.stdout, "session-a\n", "the session did not keep its own state (the check below would prove nothing)");
      const other = await b.run({ code: CLEAN_CHECK });
      assert.equal(other.status, "ok", describeResult(other));
      const state = JSON.parse(other.stdout);
      assert.deepEqual(state.sandbox, []);
      assert.equal(state.builtins_marker, false);
      assert.equal(state.js_global_marker, "");
      const probe = await b.run({ code: `print("wasmbox_pwned" in globals())` });
      assert.equal(probe.stdout, "False\n");
    } finally {
      await a.close();
      await b.close();
    }
    assertHostUntouched();
    await assertNextRunClean(sandbox);
  });

  const traversals: { name: string; request: RunRequest }[] = [
    { name: "a files path that climbs with .. is rejected with INVALID_PATH", request: { code: "1", files: { "../escape.txt": "x" } } },
    { name: "an absolute files path is rejected with INVALID_PATH", request: { code: "1", files: { "/etc/cron.d/wasmbox": "x" } } },
    { name: "a files path that climbs after a directory is rejected with INVALID_PATH", request: { code: "1", files: { "a/../../escape.txt": "x" } } },
    { name: "a files path with backslashes is rejected with INVALID_PATH", request: { code: "1", files: { "a\\..\\..\\escape.txt": "x" } } },
    { name: "a files path with a NUL byte is rejected with INVALID_PATH", request: { code: "1", files: { "ok.txt\0../../x": "x" } } },
    { name: "an entryPath that climbs out is rejected with INVALID_PATH", request: { entryPath: "../main.py", files: { "main.py": "print(1)" } } },
  ];
  for (const t of traversals) {
    test(t.name, async () => {
      await assert.rejects(sandbox.run(t.request), (error: unknown) => {
        assert.ok(error instanceof WasmboxError, `not a WasmboxError: ${error}`);
        assert.equal(error.code, "INVALID_PATH");
        return true;
      });
    });
  }

  test("after the rejected paths the host is alive and the next run is clean", async () => {
    assertHostUntouched();
    await assertNextRunClean(sandbox);
  });

  test("wasmbox run --out writes nothing when the guest forges a result file outside the directory", async () => {
    const work = mkdtempSync(join(tmpdir(), "wasmbox-out-"));
    try {
      const outDir = join(work, "out");
      mkdirSync(outDir);
      const code = guest(forgedResult([
        { path: "inside.txt", size: 2, encoding: "utf8", content: "ok" },
        { path: "../escape.txt", size: 5, encoding: "utf8", content: "owned" },
      ]));
      const { exitCode, stdout } = await new Promise<{ exitCode: number | null; stdout: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          [join(repoDir, "dist/cli/bin.js"), "run", "--json", "--out", outDir, "-c", code],
          { env: process.env, timeout: 120_000, maxBuffer: 16 * MiB },
          (_error, stdout) => resolve({ exitCode: child.exitCode, stdout }),
        );
        child.stdin?.end();
      });
      const result = JSON.parse(stdout) as RunResult;
      assertNoSecrets(result);
      assert.equal(result.status, "crash", describeResult(result));
      assert.equal(exitCode, 70);
      assert.deepEqual(readdirSync(work).sort(), ["out"], "a file escaped the --out directory");
      assert.deepEqual(readdirSync(outDir), []);
      assertHostUntouched();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Deno's permission layer alone (osSandbox "off"), run from a copy of dist/ that carries a hostile
// deno.json: Deno looks for a config file from the entry script's directory upwards, so without
// --no-config its import map would resolve "wasmbox-evil".
// ---------------------------------------------------------------------------------------------

describe("security corpus: Deno permission layer alone (osSandbox off)", () => {
  let bare: Sandbox;
  let copyRoot: string;

  before(async () => {
    copyRoot = mkdtempSync(join(tmpdir(), "wasmbox-copy-"));
    cpSync(join(repoDir, "dist"), join(copyRoot, "dist"), { recursive: true });
    symlinkSync(join(repoDir, "node_modules"), join(copyRoot, "node_modules"));
    writeFileSync(join(copyRoot, "package.json"), J({ type: "module" }));
    writeFileSync(
      join(copyRoot, "dist", "deno.json"),
      J({ imports: { "wasmbox-evil": "data:text/javascript,export default 'config-was-read'" } }),
    );
    const copy = (await import(join(copyRoot, "dist", "index.js"))) as { Sandbox: typeof Sandbox };
    bare = await copy.Sandbox.create({ poolSize: 1, osSandbox: "off" });
  });

  after(async () => {
    await bare?.close();
    if (copyRoot) rmSync(copyRoot, { recursive: true, force: true });
  });

  test("sandbox.layers says bubblewrap is not active when it is turned off", () => {
    assert.equal(bare.osSandboxed, false);
    assert.ok(bare.layers.includes("Not active: bubblewrap (turned off by the caller)"), bare.layers);
    assert.ok(bare.layers.includes("every permission denied"), bare.layers);
  });

  const cases = (): Case[] => [
    {
      name: "without bubblewrap, guest still cannot read /etc/hostname, /root files or /proc/self/environ",
      code: guest(
        attempt("etc_hostname", `Deno.readTextFileSync("/etc/hostname")`),
        attempt("home_secret", `Deno.readTextFileSync(${J(canaries.filePath)})`),
        attempt("home_listing", `[...Deno.readDirSync(${J(homedir())})].map((e) => e.name).join(",")`),
        attempt("proc_environ", `Deno.readTextFileSync("/proc/self/environ")`),
        attempt("parent_environ", `Deno.readTextFileSync("/proc/" + Deno.ppid + "/environ")`),
        attempt("parent_cmdline", `Deno.readTextFileSync("/proc/" + Deno.ppid + "/cmdline")`),
      ),
      expect: allDenied({
        etc_hostname: READ, home_secret: READ, home_listing: READ, proc_environ: READ, parent_environ: READ, parent_cmdline: READ,
      }),
    },
    {
      name: "without bubblewrap, guest still cannot read the host environment",
      code: guest(
        attempt("env_secret", `Deno.env.get("WASMBOX_TEST_SECRET")`),
        attempt("env_all", `JSON.stringify(Deno.env.toObject())`),
        `import json, os`,
        `print("environ: " + json.dumps(dict(os.environ)))`,
      ),
      expect: allDenied({ env_secret: ENV, env_all: ENV }, (r) => assert.ok(r.stdout.includes("environ: {}\n"), r.stdout)),
    },
    {
      name: "without bubblewrap, guest still cannot reach the host's loopback",
      code: guest(
        attemptAsync("fetch", `return (await fetch("http://127.0.0.1:${witness.port}/leak")).status`),
        attemptAsync("connect", `await Deno.connect({ hostname: "127.0.0.1", port: ${witness.port} }); return "connected"`),
        attemptAsync("import_http", `return Object.keys(await import("http://127.0.0.1:${witness.port}/mod.js")).join(",")`),
      ),
      expect: allDenied(
        { fetch: NET, connect: NET, import_http: /^DENIED TypeError: .*(Requires import access|--no-remote)/ },
        noWitnessConnections,
      ),
    },
    {
      name: "without bubblewrap, guest still cannot write host files, run programs or signal the host",
      code: guest(
        attempt("write_home", `Deno.writeTextFileSync(${J(canaries.writeTargets[0])}, "pwned")`),
        attempt("write_tmp", `Deno.writeTextFileSync(${J(canaries.writeTargets[1])}, "pwned")`),
        attempt("command", `new Deno.Command("/bin/sh", { args: ["-c", "touch ${canaries.writeTargets[1]}"] }).outputSync().code`),
        attempt("kill_host", `Deno.kill(Deno.ppid, "SIGCONT")`),
        attempt("dlopen", `Deno.dlopen("/lib/x86_64-linux-gnu/libc.so.6", {}) && "loaded"`),
        attempt("hostname", `Deno.hostname()`),
      ),
      expect: allDenied({ write_home: WRITE, write_tmp: WRITE, command: RUN, kill_host: RUN, dlopen: FFI, hostname: SYS }),
    },
    {
      name: "the executor ignores a deno.json next to its code (--no-config)",
      code: guest(attemptAsync("config_import", `return (await import("wasmbox-evil")).default`)),
      expect: allDenied({ config_import: /^DENIED TypeError: .*wasmbox-evil/ }),
    },
  ];

  for (const c of cases()) {
    test(c.name, async () => {
      const result = await bare.run({ timeoutMs: 20_000, ...c.request, code: c.code });
      assertNoSecrets(result);
      await c.expect(result);
      assertHostUntouched();
      await assertNextRunClean(bare);
    });
  }

  test("executors never used the DENO_DIR of the host's environment (each gets a fresh one)", () => {
    // Deno writes caches into its DENO_DIR on every start, so an inherited DENO_DIR would not stay empty.
    assert.deepEqual(listDir(canaries.hostileDenoDir), []);
  });
});
