/**
 * Runs INSIDE the executor, in a Deno worker: language "php", the PHP 8.4 CLI compiled to wasm by
 * emscripten (@php-wasm/node-8-4, the asyncify build). Its emscripten glue is an ES module that
 * imports Node built-ins without the `node:` prefix, which the executor's loader refuses; it is
 * loaded from a blob: URL with those three imports rewritten (and its own URL kept for import.meta).
 *
 * Each run makes a fresh PHP instance (~0.2 s; the module is compiled once, at load) so that its
 * environment is the run's: emscripten fixes `environ` when the instance starts. Files are copied
 * into PHP's in-memory filesystem under /sandbox and back out after the run. The heap grows through
 * Memory.prototype.grow, capped by the worker kit; PHP's own memory_limit is the run's limit, so a
 * bomb ends in "Allowed memory size … exhausted" ("memory_limit"). There is no interrupt hook: a
 * loop is ended by the host's watchdog ("timeout"). Sockets fail (the executor has no network) and
 * the process functions are disabled (PROCESS_FUNCTIONS).
 */
import { readAsset, SANDBOX, serveRuntime, setGrowCap, type RunContext, type RunOutcome } from "../worker-kit.js";

// deno-lint-ignore no-explicit-any
type Emscripten = any;

let glue: { init(runtime: string, loader: object): unknown };
let compiled: WebAssembly.Module;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * PHP's process functions. php-wasm routes them to a spawn handler in the glue, which in a worker
 * waits for a process that can never start (the executor has no run permission), so a call would
 * block until the run's timeout. Disabled, each fails at once: "Call to undefined function
 * shell_exec()" (backticks are shell_exec).
 */
const PROCESS_FUNCTIONS = [
  "exec", "shell_exec", "system", "passthru", "proc_open", "popen", "pcntl_exec", "pcntl_fork", "proc_nice", "proc_terminate",
  "proc_close", "proc_get_status", "mail",
];

/** Room above the run's limit for PHP's own structures, so PHP's memory_limit is hit first. */
const HEAP_SLACK_BYTES = 64 * 1024 * 1024;

async function load(args: string[]): Promise<void> {
  // args: [@php-wasm/node-8-4 package dir]
  const dir = `${args[0]}/asyncify`;
  const jsPath = `${dir}/php_8_4.js`;
  const source = decoder
    .decode(await readAsset(jsPath))
    .replace("from 'module'", "from 'node:module'")
    .replace("from 'path'", "from 'node:path'")
    .replace("from 'url'", "from 'node:url'")
    .replaceAll("import.meta.url", JSON.stringify(`file://${jsPath}`));
  glue = (await import(URL.createObjectURL(new Blob([source], { type: "text/javascript" })))) as typeof glue;
  const wasmFile = /path\.join\(currentDirPath, '([^']+)', '([^']+\.wasm)'\)/.exec(source);
  if (!wasmFile) throw new Error("cannot find the PHP wasm file name in php_8_4.js");
  compiled = await WebAssembly.compile((await readAsset(`${dir}/${wasmFile[1]}/${wasmFile[2]}`)) as Uint8Array<ArrayBuffer>);
}

function copyIn(php: Emscripten, context: RunContext): void {
  php.FS.mkdirTree(SANDBOX);
  for (const [path, bytes] of context.fs.files(SANDBOX)) {
    const full = `${SANDBOX}/${path}`;
    php.FS.mkdirTree(full.slice(0, full.lastIndexOf("/")));
    php.FS.writeFile(full, bytes);
  }
}

function copyOut(php: Emscripten, context: RunContext): void {
  const walk = (dir: string) => {
    for (const name of php.FS.readdir(dir) as string[]) {
      if (name === "." || name === "..") continue;
      const full = `${dir}/${name}`;
      const stat = php.FS.lstat(full);
      if (php.FS.isDir(stat.mode)) walk(full);
      else if (php.FS.isFile(stat.mode)) context.fs.writeFile(full, php.FS.readFile(full));
    }
  };
  walk(SANDBOX);
}

async function runPhp(context: RunContext): Promise<RunOutcome> {
  const { run } = context;
  setGrowCap(run.memoryLimitBytes + HEAP_SLACK_BYTES);
  let stdinOffset = 0;
  const output: Record<1 | 2, string> = { 1: "", 2: "" };
  const line = (fd: 1 | 2) => (text: string) => {
    output[fd] = (output[fd] + text + "\n").slice(-4096); // the tail, to find PHP's error message
    context.write(fd, encoder.encode(text + "\n"));
  };
  const chunkTo = (fd: 1 | 2, chunk: Uint8Array | string) => {
    const bytes = typeof chunk === "string" ? encoder.encode(chunk) : new Uint8Array(chunk);
    if (bytes.length === 0) return;
    output[fd] = (output[fd] + decoder.decode(bytes)).slice(-4096);
    context.write(fd, bytes);
  };
  const loader: Record<string, unknown> = {
    noInitialRun: true,
    print: line(1),
    printErr: line(2),
    // php-wasm's own stdio hooks (without them it writes to the process's stdout, which carries
    // the executor's signed frames).
    onStdout: (chunk: Uint8Array | string) => chunkTo(1, chunk),
    onStderr: (chunk: Uint8Array | string) => chunkTo(2, chunk),
    onHeaders: () => {},
    stdin: () => (stdinOffset < run.stdin.length ? run.stdin[stdinOffset++] : null),
    instantiateWasm(imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void) {
      WebAssembly.instantiate(compiled, imports).then((instance) => done(instance, compiled));
      return {};
    },
    preRun: [
      (php: Emscripten) => {
        // The guest's environment is the run's, and nothing else.
        for (const key of Object.keys(php.ENV ?? {})) delete php.ENV[key];
        for (const key of ["USER", "LOGNAME", "PATH", "PWD", "HOME", "LANG", "_"]) php.ENV[key] = undefined;
        Object.assign(php.ENV, run.env);
      },
    ],
  };
  const php: Emscripten = await new Promise((resolve, reject) => {
    loader.onRuntimeInitialized = () => resolve(loader);
    loader.onAbort = (why: unknown) => reject(new Error(`PHP failed to start: ${String(why)}`));
    // Not "NODE": in that mode the glue reads the process's stdin and can spawn processes itself.
    Promise.resolve(glue.init("WORKER", loader)).catch(reject);
  });
  copyIn(php, context);
  php.FS.chdir(SANDBOX);
  // Code given inline lives outside /sandbox, so it is not reported as a file the run wrote.
  const script = run.filename === "<string>" ? "/main.php" : `${SANDBOX}/${run.filename}`;
  if (run.filename === "<string>") php.FS.writeFile(script, run.code);
  const args = [
    "php", "-d", `memory_limit=${run.memoryLimitBytes}`, "-d", "display_errors=stderr", "-d", "html_errors=0",
    "-d", `disable_functions=${PROCESS_FUNCTIONS.join(",")}`, script, ...run.argv,
  ];
  for (const arg of args) php.ccall("wasm_add_cli_arg", null, ["string"], [arg]);
  let exitCode: number;
  try {
    exitCode = Number(await php.ccall("run_cli", "number", [], [], { async: true }));
  } catch (error) {
    const status = (error as { status?: unknown }).status;
    if (typeof status !== "number") {
      if (error instanceof RangeError || error instanceof WebAssembly.RuntimeError) {
        return { status: "memory_limit", exitCode: null, value: null, valueRepr: null, error: { type: "MemoryLimit", message: String((error as Error).message), traceback: "" } };
      }
      throw error;
    }
    exitCode = status;
  }
  try {
    copyOut(php, context);
  } catch {
    // an instance that ran out of memory may not walk its filesystem: no files then
  }
  const tail = `${output[2]}\n${output[1]}`;
  if (/Allowed memory size of \d+ bytes exhausted|Out of memory/.test(tail)) {
    return { status: "memory_limit", exitCode: null, value: null, valueRepr: null, error: { type: "MemoryLimit", message: /PHP Fatal error: .*|Fatal error: .*/.exec(tail)?.[0] ?? "out of memory", traceback: "" } };
  }
  if (exitCode === 0) return { status: "ok", exitCode: 0, value: null, valueRepr: null, error: null };
  const fatal = /(?:PHP )?(?:Fatal error|Parse error): *(?:Uncaught )?([A-Za-z_\\]+)?:? ?(.*)/.exec(tail);
  return {
    status: "error",
    exitCode,
    value: null,
    valueRepr: null,
    error: {
      type: fatal?.[1] && /^[A-Z]/.test(fatal[1]) ? fatal[1] : "PHPError",
      message: (fatal?.[2] ?? `exit status ${exitCode}`).trim(),
      traceback: tail.trim().split("\n").slice(-20).join("\n"),
    },
  };
}

serveRuntime({ load: ({ init }) => load(init.args), run: runPhp });
