import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { processStartTicks } from "./host-temp.js";
import { onPreparation, type PreparationEvent } from "./preparation-progress.js";
import { ensureCompileCache, ensureSnapshot } from "./snapshot-cache.js";

const dir = mkdtempSync(join(tmpdir(), "wasmbox-cache-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function recordEvents(): { events: PreparationEvent[]; stop: () => void } {
  const events: PreparationEvent[] = [];
  const stop = onPreparation((event) => events.push(event));
  return { events, stop };
}

describe("the cache's build lock", () => {
  test("a missing snapshot is made once, reported as started then finished, and the lock is gone after", async () => {
    const path = join(dir, "a.snapshot");
    const { events, stop } = recordEvents();
    let calls = 0;
    const make = async (temp: string) => {
      calls++;
      assert.ok(existsSync(`${path}.lock`), "the lock is held while the snapshot is made");
      writeFileSync(temp, "snapshot");
    };
    await Promise.all([ensureSnapshot(path, make, { subject: "Python" }), ensureSnapshot(path, make, { subject: "Python" })]);
    stop();
    assert.equal(calls, 1);
    assert.equal(readFileSync(path, "utf8"), "snapshot");
    assert.equal(existsSync(`${path}.lock`), false);
    assert.deepEqual(events.filter((e) => e.path === path).map((e) => `${e.phase} ${e.step} ${e.subject}`), ["started snapshot Python", "finished snapshot Python"]);
  });

  test("a lock left by a process that died is removed and the snapshot is made", async () => {
    const path = join(dir, "b.snapshot");
    const dead = spawn("true");
    const deadPid = dead.pid!;
    await new Promise((resolve) => dead.on("exit", resolve));
    writeFileSync(`${path}.lock`, `${deadPid}.12345`);
    await ensureSnapshot(path, async (temp) => writeFileSync(temp, "made"));
    assert.equal(readFileSync(path, "utf8"), "made");
    assert.equal(existsSync(`${path}.lock`), false);
  });

  test("a lock held by a live process makes this one wait for that process's snapshot instead of making its own", async () => {
    const path = join(dir, "c.snapshot");
    const other = spawn("sleep", ["30"]);
    try {
      writeFileSync(`${path}.lock`, `${other.pid}.${processStartTicks(other.pid!)}`);
      const { events, stop } = recordEvents();
      let made = false;
      const waiting = ensureSnapshot(path, async (temp) => {
        made = true;
        writeFileSync(temp, "mine");
      });
      // The other process finishes its snapshot a little later.
      while (!events.some((e) => e.path === path && e.phase === "waiting")) await new Promise((r) => setTimeout(r, 20));
      writeFileSync(path, "theirs");
      await waiting;
      stop();
      assert.equal(made, false);
      assert.equal(readFileSync(path, "utf8"), "theirs");
      const mine = events.filter((e) => e.path === path);
      assert.deepEqual(mine.map((e) => e.phase), ["waiting", "finished"]);
      assert.equal(mine[0]!.ownerPid, other.pid);
      assert.ok(existsSync(`${path}.lock`), "another process's lock is left to it");
    } finally {
      other.kill("SIGKILL");
    }
  });

  test("a failed build is reported as failed, leaves no lock and no half file, and may be retried", async () => {
    const path = join(dir, "d.snapshot");
    const { events, stop } = recordEvents();
    await assert.rejects(
      ensureSnapshot(path, async (temp) => {
        writeFileSync(temp, "half");
        throw new Error("the executor crashed");
      }),
      (error: Error & { code?: string }) => error.code === "SNAPSHOT_FAILED" && /the executor crashed/.test(error.message),
    );
    stop();
    assert.equal(existsSync(path), false);
    assert.equal(existsSync(`${path}.lock`), false);
    assert.deepEqual(events.filter((e) => e.path === path).map((e) => e.phase), ["started", "failed"]);
    assert.match(events.at(-1)!.error ?? "", /the executor crashed/);
    await ensureSnapshot(path, async (temp) => writeFileSync(temp, "second try"));
    assert.equal(readFileSync(path, "utf8"), "second try");
  });

  test("a compile cache that cannot be made is null, and the lock is released", async () => {
    const path = join(dir, "e.deno-dir");
    assert.equal(await ensureCompileCache(path, async () => { throw new Error("no"); }), null);
    assert.equal(existsSync(`${path}.lock`), false);
    assert.equal(await ensureCompileCache(path, async (temp) => writeFileSync(join(temp, "x"), "1")), path);
  });
});
