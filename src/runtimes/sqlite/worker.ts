/**
 * Runs INSIDE the executor, in a Deno worker: language "sqlite", an SQL script run by SQLite
 * compiled to wasm (sql.js). Statements run in order; each one that returns rows prints them as a
 * table (sqlite3's `.mode table`); the first error stops the script (like `sqlite3 -bail`).
 *
 * - The database is in memory, unless argv[0] names a file of the run (e.g. "data.db"): that file is
 *   opened, and comes back in `files` when the script changed it.
 * - Like the sqlite3 shell's fileio functions: readfile(path) and writefile(path, data) reach the
 *   run's files; stdin() returns all of stdin as text; argv(n) and getenv(name) the run's arguments
 *   and environment.
 * - value: the rows of the last statement that returned rows, as objects.
 * - Memory: sql.js grows its heap through Memory.prototype.grow, capped by the worker kit, so a bomb
 *   ends in SQLite's "out of memory" ("memory_limit"). sql.js exposes no progress handler, so a
 *   query that never ends is stopped by the host's watchdog ("timeout").
 */
import { readAsset, SANDBOX, serveRuntime, type RunContext, type RunOutcome } from "../worker-kit.js";

// deno-lint-ignore no-explicit-any
type SqlJs = any;
// deno-lint-ignore no-explicit-any
type Database = any;

let SQL: SqlJs;
let kept: { db: Database; path: string | null } | null = null;
let sqliteVersion = "";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Rows laid out together; past this many, later rows stream with the widths already chosen. */
const LAYOUT_ROWS = 1000;
const MAX_CELL_CHARS = 200;
/** argv[0] names a database to open when it is one of the run's files or looks like one. */
const DATABASE_NAME = /\.(db|db3|sqlite|sqlite3)$/i;

async function load(args: string[]): Promise<void> {
  const dir = args[0]!;
  const source = decoder.decode(await readAsset(`${dir}/dist/sql-wasm.js`));
  const wasmBinary = await readAsset(`${dir}/dist/sql-wasm.wasm`);
  // sql-wasm.js is a CommonJS/UMD script whose emscripten glue looks for Node through
  // globalThis.process (and would then require("fs")). Evaluated while that is hidden, it takes the
  // plain path and uses the wasm bytes given here; the property is put back afterwards.
  const module = { exports: {} as unknown };
  const saved = Object.getOwnPropertyDescriptor(globalThis, "process");
  Object.defineProperty(globalThis, "process", { value: undefined, configurable: true, writable: true });
  try {
    new Function("module", "exports", "require", source)(module, module.exports, undefined);
    const initSqlJs = module.exports as (config: object) => Promise<SqlJs>;
    SQL = await initSqlJs({ wasmBinary, print: () => {}, printErr: () => {} });
  } finally {
    if (saved) Object.defineProperty(globalThis, "process", saved);
  }
  const probe = new SQL.Database();
  sqliteVersion = String(probe.exec("select sqlite_version()")[0]?.values[0]?.[0] ?? "");
  probe.close();
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return "NULL";
  if (value instanceof Uint8Array) {
    const hex = Array.from(value.subarray(0, 64), (b) => b.toString(16).padStart(2, "0")).join("");
    return `x'${hex}${value.length > 64 ? "…" : ""}'`;
  }
  const text = String(value).replace(/[\n\r\t]/g, (c) => (c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\t"));
  return text.length > MAX_CELL_CHARS ? text.slice(0, MAX_CELL_CHARS - 1) + "…" : text;
}

function jsonCell(value: unknown): unknown {
  if (value instanceof Uint8Array) return cell(value);
  return value ?? null;
}

/** Prints rows as sqlite3's table mode does, streaming once the layout is fixed. */
class TablePrinter {
  private rows: string[][] = [];
  private widths: number[] | null = null;
  private numeric: boolean[];

  constructor(
    private readonly columns: string[],
    private readonly write: (text: string) => void,
  ) {
    this.numeric = columns.map(() => true);
  }

  private rule(): string {
    return "+" + this.widths!.map((w) => "-".repeat(w + 2)).join("+") + "+\n";
  }

  private line(cells: string[], header = false): string {
    return (
      "|" +
      cells
        .map((c, i) => {
          const w = this.widths![i]!;
          const text = c.length > w ? c.slice(0, w - 1) + "…" : c;
          return " " + (!header && this.numeric[i] ? text.padStart(w) : text.padEnd(w)) + " ";
        })
        .join("|") +
      "|\n"
    );
  }

  private layout(): void {
    this.widths = this.columns.map((c, i) => Math.max(c.length, ...this.rows.map((r) => r[i]!.length)));
    this.write(this.rule() + this.line(this.columns, true) + this.rule() + this.rows.map((r) => this.line(r)).join(""));
    this.rows = [];
  }

  add(values: unknown[]): void {
    values.forEach((v, i) => {
      if (typeof v !== "number" && typeof v !== "bigint" && v !== null) this.numeric[i] = false;
    });
    const cells = values.map(cell);
    if (this.widths) this.write(this.line(cells));
    else {
      this.rows.push(cells);
      if (this.rows.length >= LAYOUT_ROWS) this.layout();
    }
  }

  end(): void {
    if (!this.widths) this.layout();
    this.write(this.rule());
  }
}

function sandboxPath(path: string): string {
  return path.startsWith("/") ? path : `${SANDBOX}/${path}`;
}

function runScript(context: RunContext): RunOutcome {
  const { run, fs } = context;
  let out = "";
  const flushOut = () => {
    if (out) context.write(1, encoder.encode(out));
    out = "";
  };
  const write = (text: string) => {
    out += text;
    if (out.length >= 16 * 1024) flushOut();
  };

  // The database: argv[0] when it names a file of the run or a database file name, else in memory.
  const first = run.argv[0];
  const isFile = (path: string) => {
    try {
      return fs.lookup(sandboxPath(path)).kind === "file";
    } catch {
      return false;
    }
  };
  const dbPath = first && (isFile(first) || DATABASE_NAME.test(first)) ? sandboxPath(first) : null;
  let original: Uint8Array | null = null;
  let db: Database;
  if (kept && run.keepState) {
    db = kept.db;
  } else {
    if (dbPath) {
      try {
        original = fs.readFile(dbPath);
      } catch {
        original = null; // a new database file, like `sqlite3 new.db`
      }
    }
    db = new SQL.Database(original ?? undefined);
    if (run.keepState) kept = { db, path: dbPath };
  }
  const path = run.keepState && kept ? kept.path : dbPath;
  const stdinText = decoder.decode(run.stdin);
  db.create_function("stdin", () => stdinText);
  db.create_function("argv", (n: unknown) => (typeof n === "number" && Number.isInteger(n) ? (run.argv[n] ?? null) : null));
  db.create_function("argc", () => run.argv.length);
  db.create_function("getenv", (name: unknown) => (typeof name === "string" && Object.hasOwn(run.env, name) ? run.env[name] : null));
  db.create_function("readfile", (name: unknown) => {
    try {
      return fs.readFile(sandboxPath(String(name)));
    } catch {
      return null;
    }
  });
  db.create_function("writefile", (name: unknown, data: unknown) => {
    const bytes = data instanceof Uint8Array ? data : encoder.encode(data === null || data === undefined ? "" : String(data));
    fs.writeFile(sandboxPath(String(name)), bytes);
    return bytes.length;
  });

  let lastRows: Record<string, unknown>[] | null = null;
  let failure: { message: string } | null = null;
  try {
    for (const statement of db.iterateStatements(run.code)) {
      try {
        const columns: string[] = statement.getColumnNames();
        if (columns.length === 0) {
          while (statement.step()) {
            // statements without result columns (INSERT, CREATE, …)
          }
          continue;
        }
        const printer = new TablePrinter(columns, write);
        const rows: Record<string, unknown>[] = [];
        let any = false;
        while (statement.step()) {
          const values: unknown[] = statement.get();
          any = true;
          printer.add(values);
          if (rows.length < LAYOUT_ROWS) rows.push(Object.fromEntries(columns.map((c, i) => [c, jsonCell(values[i])])));
          if (context.interrupted()) throw new Error("interrupted");
        }
        if (any) printer.end();
        lastRows = rows;
        flushOut(); // each statement's output is seen before the next one runs
      } finally {
        statement.free();
      }
    }
  } catch (error) {
    failure = { message: (error as Error).message ?? String(error) };
  }
  flushOut();

  if (path) {
    // export() also closes and reopens the database; the functions above are made again per run.
    const bytes: Uint8Array = db.export();
    if (!original || !sameBytes(original, bytes)) fs.writeFile(path, bytes);
  }
  if (failure) {
    const outOfMemory = /out of memory|memory limit/i.test(failure.message);
    context.write(2, encoder.encode(`Error: ${failure.message}\n`));
    return {
      status: outOfMemory ? "memory_limit" : "error",
      exitCode: outOfMemory ? null : 1,
      value: null,
      valueRepr: null,
      error: { type: outOfMemory ? "MemoryLimit" : "SQLiteError", message: failure.message, traceback: "" },
    };
  }
  return { status: "ok", exitCode: 0, value: lastRows, valueRepr: null, error: null };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

serveRuntime({ load: ({ init }) => load(init.args), run: runScript });
