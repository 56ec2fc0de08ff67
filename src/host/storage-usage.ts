import * as fs from "node:fs";
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { PrivateStorage } from "./executor-launch.js";

/** More entries than this in an executor's private storage count as over any budget (inode exhaustion). */
const MAX_ENTRIES = 20_000;

/**
 * Bytes an executor's private storage holds now, or null when it cannot be measured here.
 * A tmpfs inside bubblewrap is read through /proc/<pid>/root of a process in its mount namespace
 * (one statfs call); a host directory is walked (bounded: MAX_ENTRIES).
 */
export function storageBytes(storage: PrivateStorage, pids: readonly number[]): number | null {
  if (storage.kind === "tmpfs") {
    // The innermost processes (bwrap's init, Deno) share the sandbox's mount namespace; the outer bwrap does not.
    for (let i = pids.length - 1; i >= 0; i--) {
      try {
        // A namespace import: a host runtime without statfsSync measures nothing and keeps the tmpfs's own size cap.
        const stats = (fs as { statfsSync?: typeof fs.statfsSync }).statfsSync?.(`/proc/${pids[i]}/root${storage.path}`);
        if (!stats) return null;
        return (stats.blocks - stats.bfree) * stats.bsize;
      } catch {
        // gone, or not in the namespace: try the next
      }
    }
    return null;
  }
  let total = 0;
  let entries = 0;
  const walk = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (++entries > MAX_ENTRIES) throw new RangeError("too many entries");
      const path = join(dir, name);
      try {
        const stat = lstatSync(path);
        if (stat.isDirectory()) walk(path);
        else total += stat.size;
      } catch (error) {
        if (error instanceof RangeError) throw error;
      }
    }
  };
  try {
    walk(storage.path);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
  return total;
}
