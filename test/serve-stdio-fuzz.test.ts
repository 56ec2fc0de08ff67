/**
 * Fuzzes a real `wasmbox serve --stdio` with 100 000 random and mutated request lines, then checks
 * that it is still alive, that everything it wrote is one JSON object per line, and that it answers
 * every well-formed request (a run, a run with an id, a session's life, its files, an unknown op).
 *
 * The frames come from a seeded generator (the seed is in the failure message), so a failure can be
 * replayed. Frames that would stop the server on purpose (`"shutdown": true`) are left out: that is
 * the protocol working, not a fault.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { fuzzFrame, prng } from "./helpers/fuzz-frames.js";
import { descendants, waitUntil, alive, type Proc } from "./helpers/processes.js";

const BIN = fileURLToPath(new URL("../dist/cli/bin.js", import.meta.url));
const FRAMES = Number(process.env.WASMBOX_FUZZ_FRAMES ?? 100_000);
const SEED = Number(process.env.WASMBOX_FUZZ_SEED ?? Date.now() % 1_000_000);

describe("serve --stdio under fuzzing", () => {
  let child: ReturnType<typeof spawn>;
  const replies: Record<string, unknown>[] = [];
  const badLines: string[] = [];
  let waiters: (() => void)[] = [];
  let stdoutEnded = false;
  let spawned: Proc[] = [];

  before(() => {
    child = spawn(process.execPath, [BIN, "serve", "--stdio", "--pool", "1", "--isolation", "interpreter", "--max-sessions", "4"], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let pending = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      pending += chunk.toString("utf8");
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          const parsed = JSON.parse(line);
          if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) badLines.push(line);
          else replies.push(parsed);
        } catch {
          badLines.push(line);
        }
      }
      for (const w of waiters.splice(0)) w();
    });
    child.stdout!.on("end", () => (stdoutEnded = true));
    child.stderr!.resume();
  });

  after(async () => {
    if (child.exitCode === null) {
      child.stdin!.end();
      await new Promise((resolve) => child.once("close", resolve));
    }
    for (const p of spawned) assert.ok(!alive(p), `process ${p.pid} (${p.cmd.slice(0, 80)}) outlived the server`);
  });

  async function reply(predicate: (r: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const index = replies.findIndex(predicate);
      if (index >= 0) return replies.splice(index, 1)[0]!;
      assert.ok(!stdoutEnded && child.exitCode === null, `the server exited (code ${child.exitCode}) before answering ${what} (seed ${SEED})`);
      assert.ok(Date.now() < deadline, `no answer to ${what} (seed ${SEED})`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 1000);
      });
    }
  }

  test(`survives ${FRAMES} random and mutated frames, writes only JSON lines, and answers every well-formed request after`, { timeout: 600_000 }, async () => {
    const random = prng(SEED);
    let sent = 0;
    let batch = "";
    while (sent < FRAMES) {
      const line = fuzzFrame(random);
      if (/shutdown/.test(line)) continue;
      batch += line + "\n";
      sent++;
      if (batch.length > 64 * 1024 || sent === FRAMES) {
        if (!child.stdin!.write(batch)) await new Promise((resolve) => child.stdin!.once("drain", resolve));
        batch = "";
      }
    }
    spawned = descendants(child.pid!);
    // A marker after the flood: once it is answered, every frame before it has been read.
    child.stdin!.write(JSON.stringify({ id: "after-the-flood", op: "no-such-op" }) + "\n");
    const marker = await reply((r) => r.id === "after-the-flood", "the marker after the flood");
    assert.deepEqual(marker.error && (marker.error as { code: string }).code, "UNKNOWN_OP");

    const send = (message: object) => child.stdin!.write(JSON.stringify(message) + "\n");
    send({ id: "wellformed-run", code: "print('still here')\n6 * 7" });
    const run = await reply((r) => r.id === "wellformed-run" && r.event === undefined, "a run with an id");
    assert.equal(run.status, "ok", JSON.stringify(run));
    assert.equal(run.stdout, "still here\n");
    assert.equal(run.value, 42);

    send({ code: "4 + 5", env: { AFTER: "fuzz" } });
    const minimal = await reply((r) => r.output === 9, "a minimal request");
    assert.deepEqual(minimal, { output: 9 });

    // Ids from here on start with "wellformed-": a fuzzed line cannot produce one, so a late answer
    // to a fuzzed frame is never taken for the answer to a check.
    // Sessions the fuzz opened may still hold every slot: close them through their ids first.
    const openedIds = replies.filter((r) => typeof r.sessionId === "string").map((r) => r.sessionId as string);
    for (const [i, sessionId] of openedIds.entries()) {
      send({ id: `wellformed-close-${i}`, op: "session.close", sessionId });
      await reply((r) => r.id === `wellformed-close-${i}`, "closing a fuzzed session");
    }
    send({ id: "wellformed-open", op: "session.open" });
    const opened = await reply((r) => r.id === "wellformed-open", "session.open");
    const sessionId = opened.sessionId as string;
    assert.equal(typeof sessionId, "string", JSON.stringify(opened));
    const step = async (message: Record<string, unknown>, check: (r: Record<string, unknown>) => boolean) => {
      send(message);
      const answer = await reply((r) => r.id === message.id && r.event === undefined, String(message.op));
      assert.ok(check(answer), `${JSON.stringify(message)} got ${JSON.stringify(answer)} (seed ${SEED})`);
    };
    await step({ id: "wellformed-s1", op: "session.run", sessionId, code: "x = 20" }, (r) => r.status === "ok");
    await step({ id: "wellformed-w", op: "session.files.write", sessionId, path: "f.txt", content: "fuzzed" }, (r) => r.written === true);
    await step({ id: "wellformed-s2", op: "session.run", sessionId, code: "x + len(open('f.txt').read())" }, (r) => r.value === 26);
    await step({ id: "wellformed-c", op: "session.close", sessionId }, (r) => r.closed === true);

    assert.deepEqual(badLines.slice(0, 5), [], `the server wrote ${badLines.length} lines that are not JSON objects (seed ${SEED})`);
    assert.ok(replies.length > FRAMES / 2, `only ${replies.length} replies to ${FRAMES} frames (seed ${SEED})`);

    child.stdin!.end();
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    assert.equal(code, 0, `the server exited with ${code} (seed ${SEED})`);
    await waitUntil(() => spawned.every((p) => !alive(p)), "the server's executors to exit");
  });
});
