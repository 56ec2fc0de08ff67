/**
 * Runs INSIDE the executor, in a Deno worker: languages "c" and "cpp". The program is compiled
 * inside the sandbox by Clang/LLD built for WebAssembly (@yowasp/clang, wasi-libc and libc++ for
 * wasm32-wasi), then run as a WASI command on wasmbox's own WASI host with the run's limits.
 * Compile time counts against the run's timeout (the host's watchdog sees one run); compiler
 * diagnostics go to stderr and a failed compile ends "error" with error.type "CompileError".
 */
import { readAsset, serveRuntime, type RunContext, type RunOutcome } from "../worker-kit.js";
import { prepareModule, runCommand } from "../wasi/run-wasi.js";

type Tree = { [name: string]: string | Uint8Array | Tree };
type RunClang = (
  args: string[] | null,
  files?: Tree,
  options?: { stdout?: (bytes: Uint8Array | null) => void; stderr?: (bytes: Uint8Array | null) => void; fetchProgress?: () => void; decodeASCII?: boolean },
) => Promise<Tree>;

let runClang: RunClang;
let language: "c" | "cpp" = "c";

const OUTPUT = "wasmbox-program.wasm";
/** The toolchain's libc++abi has no exception support for wasm32-wasip1: C++ builds without exceptions. */
const CXX_FLAGS = ["-fno-exceptions"];
/** wasi-libc's emulations of signal(), clock(), mmap() and getpid(), for ordinary POSIX-ish programs. */
const EMULATION_FLAGS = ["-D_WASI_EMULATED_SIGNAL", "-D_WASI_EMULATED_PROCESS_CLOCKS", "-D_WASI_EMULATED_MMAN", "-D_WASI_EMULATED_GETPID"];
const EMULATION_LIBS = ["-lwasi-emulated-signal", "-lwasi-emulated-process-clocks", "-lwasi-emulated-mman", "-lwasi-emulated-getpid"];

async function load(args: string[]): Promise<void> {
  // args: [language, @yowasp/clang package dir]
  language = args[0] === "cpp" ? "cpp" : "c";
  const dir = args[1]!;
  // The bundle reads process.env.JCO_DEBUG, and the executor denies env access (reading it would
  // throw NotCapable): give this worker an empty process.env.
  const proc = (globalThis as { process?: object }).process;
  if (proc) Object.defineProperty(proc, "env", { value: {}, configurable: true });
  const bundle = (await import(`file://${dir}/gen/bundle.js`)) as { runClang: RunClang };
  runClang = bundle.runClang;
  // Fetch and compile the toolchain now, quietly, so a run finds it ready.
  await runClang(null, {}, { fetchProgress: () => {} });
  await readAsset(`${dir}/package.json`); // fails early if the package went away
}

/** The run's files as the compiler's tree (headers and sources it may #include). */
function sourceTree(context: RunContext, main: string): Tree {
  const tree: Tree = {};
  for (const [path, bytes] of context.fs.files("/sandbox")) {
    const parts = path.split("/");
    let node = tree;
    for (const dir of parts.slice(0, -1)) node = (node[dir] ??= {}) as Tree;
    node[parts.at(-1)!] = bytes;
  }
  tree[main] = context.run.code;
  return tree;
}

async function compileAndRun(context: RunContext): Promise<RunOutcome> {
  const { run } = context;
  const ext = language === "cpp" ? ".cpp" : ".c";
  const main = run.filename === "<string>" ? `main${ext}` : run.filename;
  const programName = main.replace(/\.[^./]+$/, "");
  const diagnostics: Uint8Array[] = [];
  const stderr = (bytes: Uint8Array | null) => {
    if (!bytes || bytes.length === 0) return;
    diagnostics.push(bytes.slice());
    context.write(2, bytes);
  };
  const args = [language === "cpp" ? "clang++" : "clang", "-O2", ...(language === "cpp" ? CXX_FLAGS : []), ...EMULATION_FLAGS, main, "-o", OUTPUT, ...EMULATION_LIBS];
  let tree: Tree;
  try {
    tree = await runClang(args, sourceTree(context, main), { stdout: stderr, stderr, decodeASCII: false });
  } catch (error) {
    const code = (error as { code?: number }).code;
    if (typeof code !== "number") throw error;
    const text = new TextDecoder().decode(concat(diagnostics));
    const first = text.split("\n").find((line) => /\berror\b/.test(line)) ?? `the compiler exited with status ${code}`;
    return { status: "error", exitCode: 1, value: null, valueRepr: null, error: { type: "CompileError", message: first.trim(), traceback: text } };
  }
  const wasm = tree[OUTPUT];
  if (!(wasm instanceof Uint8Array)) throw new Error("the compiler produced no program");
  return runCommand(await prepareModule(wasm), context, { programName });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

serveRuntime({ load: ({ init }) => load(init.args), run: compileAndRun });
