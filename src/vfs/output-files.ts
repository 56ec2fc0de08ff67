/**
 * Which files a run gives back: regular files under the sandbox directory that are new or differ
 * from what the run started with, in path order, as raw bytes, within the run's output caps. A file
 * past a cap is named with its size and not read at all, so a run that wrote a huge file costs no
 * copy of it. Used by every runtime worker (guest realm: the host checks the caps again).
 */

export interface FileListing {
  path: string;
  size: number;
  /** Reads the file's bytes (called only for files that are carried or compared). */
  read(): Uint8Array;
}

export interface OutputCaps {
  maxOutputFileBytes: number;
  maxOutputFilesTotalBytes: number;
}

export interface CollectedFiles {
  files: { path: string; data: Uint8Array }[];
  overLimit: { path: string; size: number; cap: "maxOutputFileBytes" | "maxOutputFilesTotalBytes" }[];
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
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
    if (previous && previous.length === entry.size && sameBytes(previous, entry.read())) continue;
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
