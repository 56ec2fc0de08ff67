import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createOutputRing, drainRing, releaseRing, resetRingRelease, ringWriter, OUTPUT_RING_DATA_BYTES } from "./output-ring.js";

describe("output ring", () => {
  it("delivers records in order with their stream, across the wrap-around point", () => {
    const ring = createOutputRing();
    const write = ringWriter(ring);
    const seen: string[] = [];
    const chunk = new Uint8Array(300_000).fill(97);
    for (let round = 0; round < 10; round++) {
      assert.equal(write(1, chunk), true);
      assert.equal(write(2, new TextEncoder().encode(`e${round}`)), true);
      for (const { fd, bytes } of drainRing(ring)) seen.push(`${fd}:${bytes.length}:${bytes[0]}`);
    }
    assert.equal(seen.length, 20 + 40); // each 300 000-byte write is split into 64 KiB records
    assert.deepEqual(seen.filter((s) => s.startsWith("2:")), Array.from({ length: 10 }, (_, i) => `2:2:${"e".charCodeAt(0)}`));
    const total = seen.filter((s) => s.startsWith("1:")).reduce((n, s) => n + Number(s.split(":")[1]), 0);
    assert.equal(total, 3_000_000);
  });

  it("makes a writer give up, instead of waiting for room, once released", () => {
    const ring = createOutputRing();
    const write = ringWriter(ring);
    const big = new Uint8Array(60_000);
    let accepted = 0;
    while (accepted < OUTPUT_RING_DATA_BYTES / 60_000 - 1) {
      assert.equal(write(1, big), true);
      accepted++;
    }
    releaseRing(ring);
    assert.equal(write(1, big), false);
    resetRingRelease(ring);
    drainRing(ring);
    assert.equal(write(1, big), true);
  });

  it("refuses a record whose length was tampered with", () => {
    const ring = createOutputRing();
    ringWriter(ring)(1, new Uint8Array([1, 2, 3]));
    new DataView(ring, 16 + 1).setUint32(0, 10_000_000, true);
    assert.throws(() => drainRing(ring), /corrupt/);
  });
});
