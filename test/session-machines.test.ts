/**
 * A saved session moving between machines (issue 19): each "machine" is a host process with a
 * snapshot cache of its own, made from nothing. By default two machines make different snapshots
 * (entropy and the clock while the interpreter starts), so a blob from one is refused on the other
 * with SESSION_BLOB_INCOMPATIBLE; with the same WASMBOX_SNAPSHOT_SEED their snapshots are
 * byte-identical and the session continues there. Makes four snapshots (~5 s each).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const CHILD = fileURLToPath(new URL("./helpers/session-machine-child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));

let work: string;

/** Runs one machine's command; its environment: a cache of its own and, maybe, a seed. */
function machine(name: string, seed: string | null, args: string[]): Record<string, unknown> {
  const env: NodeJS.ProcessEnv = { ...process.env, WASMBOX_CACHE_DIR: join(work, name) };
  delete env.WASMBOX_SNAPSHOT_SEED;
  if (seed !== null) env.WASMBOX_SNAPSHOT_SEED = seed;
  const run = spawnSync(process.execPath, ["--import", "tsx", CHILD, ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 180_000 });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout.trim().split("\n").at(-1)!) as Record<string, unknown>;
}

function snapshotDigest(name: string): string {
  const dir = join(work, name);
  const file = readdirSync(dir).find((f) => /^python-.*\.snapshot$/.test(f))!;
  return createHash("sha256").update(readFileSync(join(dir, file))).digest("hex");
}

const BUILD = "import random\nrandom.seed(11)\nclass Ledger:\n    def __init__(self):\n        self.rows = {'rent': 900}\nledger = Ledger()";
const CHECK = "ledger.rows['food'] = 250\n(sorted(ledger.rows.items()), round(random.random(), 6))";

describe("a saved session between machines", () => {
  before(() => {
    work = mkdtempSync(join(tmpdir(), "wasmbox-machines-"));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it("is refused with SESSION_BLOB_INCOMPATIBLE where the snapshot's bytes differ (no seed), saying why", () => {
    const saved = machine("a", null, ["save", join(work, "a.session"), BUILD]);
    assert.equal(saved.status, "ok");
    const other = machine("b", null, ["restore", join(work, "a.session"), CHECK]);
    assert.notEqual(snapshotDigest("a"), snapshotDigest("b"));
    assert.equal(other.error, "SESSION_BLOB_INCOMPATIBLE");
    assert.match(String(other.message), /different Python snapshot/);
  });

  it("continues on another machine whose WASMBOX_SNAPSHOT_SEED is the same, whose snapshot is then byte-identical", () => {
    const saved = machine("c", "fleet-secret", ["save", join(work, "c.session"), BUILD]);
    assert.equal(saved.status, "ok");
    const here = machine("c", "fleet-secret", ["restore", join(work, "c.session"), CHECK]);
    const there = machine("d", "fleet-secret", ["restore", join(work, "c.session"), CHECK]);
    assert.equal(snapshotDigest("c"), snapshotDigest("d"));
    assert.equal(there.status, "ok", JSON.stringify(there));
    assert.deepEqual(there.value, here.value);
    assert.deepEqual((there.value as unknown[])[0], [["food", 250], ["rent", 900]]);
    // Another seed is another runtime: refused by name, not restored against the wrong bytes.
    const foreign = machine("e", "another-secret", ["restore", join(work, "c.session"), CHECK]);
    assert.equal(foreign.error, "SESSION_BLOB_INCOMPATIBLE");
  });
});
