import { WasmboxError } from "../core/errors.js";

const MAX_PATH_CHARS = 4096;

/**
 * Validates a path a caller wants placed under the sandbox directory and returns its normal form
 * ("a/b.txt"). Refuses, with INVALID_PATH, anything absolute, anything that climbs out with "..",
 * empty paths, NUL bytes, backslashes (ambiguous across platforms) and over-long paths.
 */
export function normalizeSandboxPath(path: unknown): string {
  if (typeof path !== "string") {
    throw new WasmboxError("INVALID_PATH", `file path must be a string, got ${typeof path}`);
  }
  const shown = JSON.stringify(path.length > 200 ? path.slice(0, 200) + "…" : path);
  if (path.length === 0) throw new WasmboxError("INVALID_PATH", "file path must not be empty");
  if (path.length > MAX_PATH_CHARS) {
    throw new WasmboxError("INVALID_PATH", `file path is longer than ${MAX_PATH_CHARS} characters`);
  }
  if (path.includes("\0")) throw new WasmboxError("INVALID_PATH", `file path ${shown} contains a NUL byte`);
  if (path.includes("\\")) {
    throw new WasmboxError("INVALID_PATH", `file path ${shown} contains a backslash; use "/"`);
  }
  if (path.startsWith("/")) {
    throw new WasmboxError(
      "INVALID_PATH",
      `file path ${shown} is absolute; give it relative to the sandbox directory /sandbox`,
    );
  }
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      throw new WasmboxError("INVALID_PATH", `file path ${shown} climbs out of the sandbox directory with ".."`);
    }
    parts.push(part);
  }
  if (parts.length === 0) throw new WasmboxError("INVALID_PATH", `file path ${shown} names no file`);
  return parts.join("/");
}

/**
 * Joins a result file's path onto a host directory, refusing any path that would land outside it.
 * `resolve` and `sep` come from the caller so this module stays free of node:* imports.
 */
export function containedHostPath(
  hostDir: string,
  sandboxPath: string,
  resolve: (...parts: string[]) => string,
  sep: string,
): string {
  const normal = normalizeSandboxPath(sandboxPath);
  const root = resolve(hostDir);
  const target = resolve(root, normal);
  if (!target.startsWith(root + sep)) {
    throw new WasmboxError("INVALID_PATH", `result file ${JSON.stringify(sandboxPath)} escapes ${hostDir}`);
  }
  return target;
}
