import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, it } from "node:test";
import { denoBinary, distDir, pyodideDir } from "../../host/runtime-paths.js";

const FIXTURE = fileURLToPath(new URL("../../../test/fixtures/pristine-memory.mjs", import.meta.url));

describe("pristine state (real Pyodide under Deno)", () => {
  it("puts wasm memory back byte for byte, zeroes what grew, cancels timers, and refuses after JS-bridge use or growth past the smallest limit", () => {
    const dir = pyodideDir().replace(/\/?$/, "/");
    const moduleUrl = pathToFileURL(join(distDir(), "runtimes", "python", "pristine-state.js")).href;
    const child = spawnSync(denoBinary(), ["run", "--no-prompt", "--allow-read", FIXTURE, dir, moduleUrl], {
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(child.status, 0, child.stderr);
    const report = JSON.parse(child.stdout.trim().split("\n").at(-1)!);
    assert.ok(report.markersBeforeRestore >= 100, "the run's data was in memory before the restore");
    assert.ok(report.grewBy > 0, "the run grew memory");
    assert.equal(report.restore, null);
    assert.equal(report.markersAfterRestore, 0);
    assert.equal(report.memoryEqualsPristine, true);
    assert.equal(report.printedAfterRestore, "", "the run's timer and immediate never fired");
    assert.match(report.restoreAfterBridge, /JavaScript bridge/);
    assert.equal(report.heldAfterRestore, false);
    assert.match(report.restoreAfterBigGrowth, /memory grew/);
  });
});
