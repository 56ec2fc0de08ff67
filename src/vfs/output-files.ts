/**
 * Which files a run gives back: regular files under the sandbox directory that are new or differ
 * from what the run started with, in path order, as raw bytes, within the run's output caps. A file
 * past a cap is named with its size and not read at all, so a run that wrote a huge file costs no
 * copy of it. Used by every runtime worker (guest realm: the host checks the caps again).
 */

export interface FileListing {
  path: string;
  size: number;
  /** Reads the file's bytes: a copy, for files that are carried. */
  read(): Uint8Array;
  /** The file's bytes without a copy, to compare (valid until the file changes); read() when absent. */
  peek?(): Uint8Array;
}

export interface OutputCaps {
  maxOutputFileBytes: number;
  maxOutputFilesTotalBytes: number;
}

export interface CollectedFiles {
  files: { path: string; data: Uint8Array }[];
  overLimit: { path: string; size: number; cap: "maxOutputFileBytes" | "maxOutputFilesTotalBytes" }[];
}

/** Byte equality, four bytes at a time where both are aligned (an unchanged 100 MiB input is compared in tens of ms). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let i = 0;
  if (a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0) {
    const words = a.length >>> 2;
    const a32 = new Uint32Array(a.buffer, a.byteOffset, words);
    const b32 = new Uint32Array(b.buffer, b.byteOffset, words);
    for (; i < words; i++) if (a32[i] !== b32[i]) return false;
    i = words << 2;
  }
  for (; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function collectOutputFiles(listing: Iterable<FileListing>, before: ReadonlyMap<string, Uint8Array>, caps: OutputCaps): CollectedFiles {
  const out: CollectedFiles = { files: [], overLimit: [] };
  let total = 0;
  const sorted = [...listing].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const entry of sorted) {
    // Names the wire cannot carry as sandbox paths (a backslash) are left out rather than failing the result.
    if (entry.path.includes("\\")) continue;
    const previous = before.get(entry.path);
    if (previous && previous.length === entry.size && sameBytes(previous, entry.peek?.() ?? entry.read())) continue;
    if (entry.size > caps.maxOutputFileBytes) {
      out.overLimit.push({ path: entry.path, size: entry.size, cap: "maxOutputFileBytes" });
      continue;
    }
    if (total + entry.size > caps.maxOutputFilesTotalBytes) {
      out.overLimit.push({ path: entry.path, size: entry.size, cap: "maxOutputFilesTotalBytes" });
      continue;
    }
    const data = entry.read();
    total += data.length;
    out.files.push({ path: entry.path, data });
  }
  return out;
}
