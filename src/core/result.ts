/**
 * The result of one run: the wire contract, with the same field names in TypeScript, JSON and
 * (in snake_case) Python. What the guest did is data, never a host exception.
 */
export type RunStatus =
  | "ok"
  | "error"
  | "timeout"
  | "memory_limit"
  | "output_limit"
  | "crash"
  | "cancelled";

export const RUN_STATUSES: readonly RunStatus[] = [
  "ok",
  "error",
  "timeout",
  "memory_limit",
  "output_limit",
  "crash",
  "cancelled",
];

export interface GuestError {
  /** Exception class name, e.g. "ZeroDivisionError". */
  type: string;
  message: string;
  /** Python-style traceback pointing at the user's code, without Pyodide-internal frames. */
  traceback: string;
}

export interface OutputFile {
  /** Path relative to the sandbox working directory, with "/" separators. */
  path: string;
  size: number;
  encoding: "utf8" | "base64";
  content: string;
}

/**
 * One rich result (issue 16): an object the guest displayed (`display(obj)` in Python) or the
 * last expression's value when it offers more than text, as a bundle of every format it offers
 * through Jupyter's display protocol, keyed by MIME type like Jupyter's `display_data.data`:
 * `text/plain` (repr), `image/png` and `image/jpeg` (base64), `image/svg+xml`, `text/html`,
 * `text/markdown`, `text/latex` (text), `application/json` and `…+json` (a JSON value).
 * See richResultFormats() and the typed accessors below.
 */
export interface RichResult {
  data: Record<string, unknown>;
  /** The run's last expression (E2B's `is_main_result`); false for display() calls. */
  isMainResult: boolean;
  /** What went wrong making some formats (a `_repr_*_` that raised, returned the wrong type or was over the cap), else null. */
  error: string | null;
}

export interface RunResult {
  status: RunStatus;
  /** `sys.exit(n)` gives n; an uncaught exception gives 1; null when the run did not finish. */
  exitCode: number | null;
  /** UTF-8, invalid bytes replaced; capped together with stderr at maxOutputBytes. */
  stdout: string;
  stderr: string;
  /** The last expression as JSON where it converts, else null. */
  value: unknown;
  /**
   * The last expression in the lossless tagged form, where it converts (Python: big ints, floats
   * that are integral or not finite, tuples, dicts with other keys, bytes, sets, dates, decimals
   * keep their types; see docs/values.md and decodeLosslessValue()), else null.
   */
  valueLossless: unknown;
  /** repr() of the last expression, or null when there is none (or it is None). */
  valueRepr: string | null;
  error: GuestError | null;
  /** Regular files under the sandbox directory that the run created or changed. */
  files: OutputFile[];
  /** Rich results in the order displayed (always present; empty for runtimes without them). Counted against maxOutputBytes. */
  results: RichResult[];
  /** Wall-clock time from the request reaching an executor to the result, in milliseconds. */
  durationMs: number;
  /**
   * CPU time the run used, in milliseconds (10 ms resolution): the executor's, all its threads,
   * from the run's start to its result or its kill, read by the host from /proc. Null where the
   * host cannot read it (no /proc, e.g. macOS) or the run never started.
   */
  cpuTimeMs: number | null;
}

/** Exit codes the CLI uses for statuses that have no guest exit code. */
export const CLI_EXIT_CODES: Record<Exclude<RunStatus, "ok" | "error">, number> = {
  timeout: 124,
  memory_limit: 137,
  output_limit: 125,
  crash: 70,
  cancelled: 130,
};

/** Decodes an output file's content to bytes (linear, one buffer of the file's size). */
export function fileBytes(file: OutputFile): Uint8Array {
  if (file.encoding !== "base64") return new TextEncoder().encode(file.content);
  const native = (Uint8Array as { fromBase64?: (text: string) => Uint8Array }).fromBase64;
  if (native) return native(file.content);
  const binary = atob(file.content);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The MIME types a rich result carries, text/plain last. */
export function richResultFormats(result: RichResult): string[] {
  return Object.keys(result.data).sort((a, b) => Number(a === "text/plain") - Number(b === "text/plain"));
}

function textOf(result: RichResult, mime: string): string | undefined {
  const value = result.data[mime];
  return typeof value === "string" ? value : undefined;
}

function base64Bytes(text: string): Uint8Array {
  return fileBytes({ path: "", size: 0, encoding: "base64", content: text });
}

/**
 * Typed views of a rich result's formats; each is undefined when the result does not carry it.
 * `png`/`jpeg` decode the base64 to bytes.
 */
export const richResult = {
  text: (r: RichResult) => textOf(r, "text/plain"),
  html: (r: RichResult) => textOf(r, "text/html"),
  markdown: (r: RichResult) => textOf(r, "text/markdown"),
  latex: (r: RichResult) => textOf(r, "text/latex"),
  svg: (r: RichResult) => textOf(r, "image/svg+xml"),
  json: (r: RichResult): unknown => r.data["application/json"],
  png: (r: RichResult) => (textOf(r, "image/png") === undefined ? undefined : base64Bytes(textOf(r, "image/png")!)),
  jpeg: (r: RichResult) => (textOf(r, "image/jpeg") === undefined ? undefined : base64Bytes(textOf(r, "image/jpeg")!)),
};

/** Every image a run displayed, in order: PNG and JPEG as bytes, SVG as text. */
export function resultImages(result: Pick<RunResult, "results">): { mimeType: "image/png" | "image/jpeg" | "image/svg+xml"; data: Uint8Array | string }[] {
  const images: { mimeType: "image/png" | "image/jpeg" | "image/svg+xml"; data: Uint8Array | string }[] = [];
  for (const r of result.results) {
    const png = richResult.png(r);
    const jpeg = richResult.jpeg(r);
    const svg = richResult.svg(r);
    if (png) images.push({ mimeType: "image/png", data: png });
    else if (jpeg) images.push({ mimeType: "image/jpeg", data: jpeg });
    else if (svg !== undefined) images.push({ mimeType: "image/svg+xml", data: svg });
  }
  return images;
}
