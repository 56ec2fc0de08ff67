import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { ExecutorMeter } from "./executor-meter.js";
import { canMeasureMemory } from "./process-memory.js";

const state = (pid: number) => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[0];

describe("ExecutorMeter", { skip: !canMeasureMemory && "needs Linux /proc" }, () => {
  test("reads a process tree's memory from outside it, names a limit it crossed, and stops and continues it", async () => {
    const child = spawn("sleep", ["30"], { detached: true, stdio: "ignore" });
    try {
      await new Promise((resolve) => child.once("spawn", resolve));
      const meter = new ExecutorMeter(child.pid!, null);
      meter.calibrate();
      assert.deepEqual(meter.pids, [child.pid]);
      assert.ok(meter.baselineBytes > 0);
      assert.equal(meter.overLimit(meter.baselineBytes * 100, true), null);
      assert.match(meter.overLimit(1, true)!, /^its resident memory reached \d+ bytes$/);
      assert.equal(meter.storageGrowthBytes(), 0);
      meter.signalAll("SIGSTOP");
      for (let i = 0; i < 100 && state(child.pid!) !== "T"; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(state(child.pid!), "T");
      assert.deepEqual(meter.runningPids(), []);
      meter.signalAll("SIGCONT");
      for (let i = 0; i < 100 && state(child.pid!) === "T"; i++) await new Promise((r) => setTimeout(r, 10));
      assert.notEqual(state(child.pid!), "T");
    } finally {
      child.kill("SIGKILL");
    }
  });
});
