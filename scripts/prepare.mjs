// npm's `prepare` hook: builds dist/ in a clone (`npm install`, `npm ci`, a git dependency), where
// the TypeScript sources and the dev dependencies are present. A packed wasmbox (npm pack, the
// registry) ships dist/ already built and has no sources, so there is nothing to do; without this
// check an install that allowed the script would fail looking for tsc.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
if (existsSync(join(root, "tsconfig.json")) && existsSync(join(root, "src"))) {
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const build = spawnSync(npm, ["run", "build"], { cwd: root, stdio: "inherit" });
  process.exit(build.status ?? 1);
}
