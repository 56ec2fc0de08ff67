/**
 * One cold build of a package environment, in a fresh process. Run by workloads/packages.ts as
 *   node --import tsx wasmbox-packages-build-child.ts WHEELHOUSE NAME...
 * Deletes the environment's files from the cache (WASMBOX_CACHE_DIR; the base snapshot and compile
 * cache stay), then times making its bundle (ensureBundle), a Sandbox.create() that makes its
 * snapshot, and one more that finds both cached. Prints one JSON line.
 *
 * A process per build: ensureBundle remembers a bundle it made for the life of the process (its
 * in-flight entry is never cleared), so a second build in one process would find no bundle file.
 */
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ensureBundle, environmentsDir, resolveEnvironment } from "../../dist/packages/environment.js";
import { cacheDir } from "../../dist/host/runtime-paths.js";
import { loadWasmbox } from "./wasmbox-library.js";

const [wheelhouse, ...packages] = process.argv.slice(2) as [string, ...string[]];
const { Sandbox } = await loadWasmbox();
const cache = cacheDir();
const environment = resolveEnvironment(wheelhouse, packages);
const dir = environmentsDir(cache);

// Untimed: what a process does once whatever the environment (bubblewrap probe, base snapshot lookup).
await (await Sandbox.create({ poolSize: 0 })).close();

const create = async () => {
  const started = performance.now();
  const sandbox = await Sandbox.create({ poolSize: 0, packages, wheelhouse });
  const ms = performance.now() - started;
  await sandbox.close();
  return ms;
};

if (existsSync(dir)) {
  for (const name of readdirSync(dir)) if (name.startsWith(environment.id)) rmSync(join(dir, name), { recursive: true, force: true });
}
const started = performance.now();
const bundle = await ensureBundle(cache, environment);
const bundleMs = performance.now() - started;
const coldMs = await create();
const warmMs = await create();
const files = readdirSync(dir).filter((name) => name.startsWith(environment.id));
console.log(JSON.stringify({ id: environment.id, bundle, bundleMs, coldMs, warmMs, files }));
