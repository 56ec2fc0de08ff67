/**
 * The Python the worker puts into the interpreter before the memory snapshot is taken: the
 * `_wasmbox_runner` module (runner.py) and what it installs (compat.py), the `wasmbox` module guests import (wasmbox_guest.py), and
 * the stdlib modules imported ahead so every executor starts with them. The .py files are copied
 * next to this module's JavaScript by the build (scripts/copy-assets.mjs) and read from there.
 */
import { ERROR_MESSAGE_MAX_CHARS, TRACEBACK_MAX_CHARS, VALUE_REPR_MAX_CHARS } from "../../core/limits.js";

declare const Deno: { readTextFileSync(path: URL): string };

export const PRELOADED_MODULES = [
  // concurrent.futures.thread: compat.py patches its ThreadPoolExecutor when each executor starts,
  // and importing it then cost ~30 ms of every start.
  "ast", "base64", "collections", "concurrent.futures.thread", "dataclasses", "datetime", "decimal", "fractions", "functools",
  "hashlib", "heapq", "io", "itertools", "json", "linecache", "math", "operator", "os", "random",
  "re", "statistics", "string", "textwrap", "traceback", "types", "typing",
];

/** The Python that runs before the snapshot, as one program (module sources as string literals). */
export function snapshotSetupSource(): string {
  const read = (name: string) => Deno.readTextFileSync(new URL(`./${name}`, import.meta.url));
  return `
import sys, types
for _name in ${JSON.stringify(PRELOADED_MODULES)}:
    __import__(_name)
_compat = types.ModuleType("_wasmbox_compat")
exec(compile(${JSON.stringify(read("compat.py"))}, "<wasmbox>", "exec"), _compat.__dict__)
sys.modules["_wasmbox_compat"] = _compat
_runner = types.ModuleType("_wasmbox_runner")
exec(compile(${JSON.stringify(read("runner.py"))}, "<wasmbox>", "exec"), _runner.__dict__)
_runner.configure(${VALUE_REPR_MAX_CHARS}, ${ERROR_MESSAGE_MAX_CHARS}, ${TRACEBACK_MAX_CHARS})
sys.modules["_wasmbox_runner"] = _runner
_guest = types.ModuleType("wasmbox")
exec(compile(${JSON.stringify(read("wasmbox_guest.py"))}, "<wasmbox>", "exec"), _guest.__dict__)
sys.modules["wasmbox"] = _guest
del _compat, _runner, _guest, _name
`;
}
