// Copies the non-TypeScript sources the build needs next to their compiled JavaScript: the Python
// the executor puts into the interpreter (src/**/*.py, not the tests) and the wheels wasmbox bundles (tzdata). `node scripts/copy-assets.mjs [outDir]`
// (default dist/); tsc does not copy them.
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "src");
const out = resolve(process.argv[2] ?? join(root, "dist"));

function walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path);
    else if ((entry.name.endsWith(".py") && !entry.name.startsWith("test_")) || entry.name.endsWith(".whl")) {
      const target = join(out, relative(src, path));
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(path, target);
    }
  }
}
walk(src);
