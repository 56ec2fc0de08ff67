/**
 * Runs INSIDE the executor's Python worker: file-system work of wasmbox's own (listing a session's
 * files, saving and restoring them, the interpreter-mode reset) done as the file system's owner,
 * whatever permissions the guest set (`os.chmod(d, 0)` once crashed the executor at its session's
 * next listing), and Emscripten's errors said in words.
 */

// deno-lint-ignore no-explicit-any
type EmscriptenFs = any;

/** Runs `task` with Emscripten's permission checks off, putting them back after. */
export function asFileSystemOwner<T>(FS: EmscriptenFs, task: () => T): T {
  const before = FS.ignorePermissions;
  FS.ignorePermissions = true;
  try {
    return task();
  } finally {
    FS.ignorePermissions = before;
  }
}

/** An error's words: Emscripten's file system throws ErrnoError objects, which are not Errors and have no message. */
export function fsErrorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  const errno = (error as { errno?: unknown } | null)?.errno;
  return typeof errno === "number" ? `errno ${errno}` : String(error);
}
