import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { SANDBOX_DIR } from "../core/limits.js";
import type { OutputFile, RunResult, RunStatus } from "../core/result.js";

const MIME_TYPES: Record<string, string> = {
  txt: "text/plain", md: "text/markdown", csv: "text/csv", tsv: "text/tab-separated-values", json: "application/json",
  html: "text/html", xml: "application/xml", svg: "image/svg+xml", py: "text/x-python", log: "text/plain",
  png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp", pdf: "application/pdf",
};

function mimeType(file: OutputFile): string {
  const ext = /\.([a-z0-9]+)$/i.exec(file.path)?.[1]?.toLowerCase();
  return (ext && MIME_TYPES[ext]) || (file.encoding === "utf8" ? "text/plain" : "application/octet-stream");
}

/** What each status means, worded for a model deciding what to do next. */
function headline(result: RunResult): string {
  const ms = `${Math.round(result.durationMs)} ms`;
  const status: RunStatus = result.status;
  switch (status) {
    case "ok":
      return `status: ok (exit code ${result.exitCode ?? 0}, ${ms})`;
    case "error":
      return `status: error (exit code ${result.exitCode ?? 1}, ${ms}): the program raised an exception or exited non-zero`;
    case "timeout":
      return `status: timeout (${ms}): the run was stopped at its time limit; make it faster or raise timeoutMs`;
    case "memory_limit":
      return `status: memory_limit (${ms}): the run was stopped for using too much memory`;
    case "output_limit":
      return `status: output_limit (${ms}): the run was stopped for printing too much; print less`;
    case "crash":
      return `status: crash (${ms}): the interpreter died; this is not your code's exception`;
    case "cancelled":
      return `status: cancelled (${ms}): the run was cancelled`;
    default: {
      const unreachable: never = status;
      return `status: ${String(unreachable)}`;
    }
  }
}

/** Plain text a model reads: status, stdout, stderr, the value, the error with its traceback, files. */
export function resultText(result: RunResult): string {
  const sections = [headline(result)];
  const block = (title: string, body: string) => sections.push(`--- ${title} ---\n${body.replace(/\n$/, "")}`);
  if (result.stdout) block("stdout", result.stdout);
  // The traceback usually also ends stderr: show it once, under error.
  const traceback = result.error?.traceback ?? "";
  const stderr = traceback && result.stderr.endsWith(traceback) ? result.stderr.slice(0, -traceback.length) : result.stderr;
  if (stderr) block("stderr", stderr);
  if (result.valueRepr !== null) block("value (last expression)", result.valueRepr);
  if (result.error) block("error", traceback || `${result.error.type}: ${result.error.message}`);
  if (result.files.length > 0) {
    block("files (attached as resources)", result.files.map((f) => `${SANDBOX_DIR}/${f.path} (${f.size} bytes)`).join("\n"));
  }
  if (result.results.length > 0) {
    block("rich results (attached after this text)", result.results.map((r, i) => `${i + 1}${r.isMainResult ? " (last expression)" : ""}: ${Object.keys(r.data).join(", ")}${r.error ? `; error: ${r.error}` : ""}`).join("\n"));
  }
  if (!result.stdout && !stderr && result.valueRepr === null && !result.error && result.results.length === 0) {
    sections.push("(no output: print() something, or end the code with an expression to see its value)");
  }
  return sections.join("\n");
}

/**
 * A run result as an MCP tool result: text for the model, every produced file as an embedded
 * resource, and the whole RunResult as structuredContent. Any status but "ok" is `isError: true`:
 * the tool worked, the guest did not.
 */
export function toCallToolResult(result: RunResult): CallToolResult {
  const content: CallToolResult["content"] = [{ type: "text", text: resultText(result) }];
  content.push(...richResultContent(result));
  for (const file of result.files) {
    const uri = `file://${SANDBOX_DIR}/${file.path.split("/").map(encodeURIComponent).join("/")}`;
    content.push({
      type: "resource",
      resource: file.encoding === "utf8"
        ? { uri, mimeType: mimeType(file), text: file.content }
        : { uri, mimeType: mimeType(file), blob: file.content },
    });
  }
  return {
    content,
    structuredContent: result as unknown as Record<string, unknown>,
    isError: result.status !== "ok",
  };
}

/** Bytes of rich-result content one tool result carries as images and text (clients cap a tool result's size; all of it is also in structuredContent). */
export const MCP_RICH_CONTENT_MAX_BYTES = 4 * 1024 * 1024;

const TEXT_FORMATS = ["text/html", "text/markdown", "image/svg+xml", "text/latex"] as const;

/**
 * Rich results as content a model can use: each PNG or JPEG as an image block (a model sees it),
 * else the first of HTML, markdown, SVG and LaTeX as text, else JSON as text; text/plain alone
 * adds nothing (the text summary lists it). Within MCP_RICH_CONTENT_MAX_BYTES, in order; past it a
 * text block says what was left out.
 */
export function richResultContent(result: RunResult): CallToolResult["content"] {
  const content: CallToolResult["content"] = [];
  let budget = MCP_RICH_CONTENT_MAX_BYTES;
  result.results.forEach((r, i) => {
    const label = `rich result ${i + 1}${r.isMainResult ? " (last expression)" : ""}`;
    const image = (["image/png", "image/jpeg"] as const).find((m) => typeof r.data[m] === "string");
    let block: CallToolResult["content"][number] | null = null;
    let size = 0;
    if (image) {
      const data = r.data[image] as string;
      block = { type: "image", data, mimeType: image };
      size = data.length;
    } else {
      const mime = TEXT_FORMATS.find((m) => typeof r.data[m] === "string");
      const text = mime ? (r.data[mime] as string) : r.data["application/json"] !== undefined ? JSON.stringify(r.data["application/json"]) : null;
      if (text !== null) {
        block = { type: "text", text: `--- ${label}: ${mime ?? "application/json"} ---\n${text}` };
        size = text.length;
      }
    }
    if (block === null) return;
    if (size > budget) {
      content.push({ type: "text", text: `(${label} is ${size} bytes: over what this tool result shows, ${MCP_RICH_CONTENT_MAX_BYTES} bytes; it is in the structured result)` });
      return;
    }
    budget -= size;
    content.push(block);
  });
  return content;
}

/**
 * A request the sandbox refused (bad path, unknown language...) or a host failure, as a tool error
 * the model can read and correct: MCP asks for tool errors in the result, not as JSON-RPC errors.
 */
export function errorToolResult(code: string, message: string): CallToolResult {
  return {
    // No structuredContent: clients validate it against the tool's output schema (a RunResult).
    content: [{ type: "text", text: `status: not run: ${code}: ${message}` }],
    isError: true,
  };
}
