import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { encodeHeader, extractBlobs, FrameError, FrameReader, frameParts, framePartsFromHeader, reviveBlobs } from "./frames.js";

const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
};

function roundTrip(message: object, chunkBytes: number): Record<string, unknown>[] {
  const { value, blobs } = extractBlobs(message);
  const bytes = concat([...frameParts(value, blobs), ...frameParts({ t: "second" }, [])]);
  const reader = new FrameReader({ maxHeaderBytes: 1 << 20, maxBlobBytes: 1 << 24 });
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < bytes.length; i += chunkBytes) {
    reader.push(bytes.subarray(i, i + chunkBytes));
    for (let f = reader.next(); f; f = reader.next()) out.push(reviveBlobs(f.header, f.blobs));
  }
  assert.equal(reader.midFrame, false);
  return out;
}

describe("frames", () => {
  test("a frame with blobs reads back the same whatever the chunk boundaries", () => {
    const big = new Uint8Array(300_000).map((_, i) => i % 253);
    const message = { t: "run", code: "print(1)", files: [["a.bin", big], ["e", new Uint8Array(0)]], stdin: new Uint8Array([1, 2, 3]) };
    for (const chunk of [1, 3, 4, 7, 4096, 65536, 1 << 22]) {
      const [first, second] = roundTrip(message, chunk);
      assert.deepEqual(first, { ...message, $blobs: [300_000, 0, 3] }, `chunk ${chunk}`);
      assert.deepEqual(second, { t: "second" });
    }
  });

  test("small blobs are written in the same part as the header, large ones as they are", () => {
    const small = framePartsFromHeader(encodeHeader({ t: "x" }, [new Uint8Array(10)]), [new Uint8Array(10)]);
    assert.equal(small.length, 1);
    const blob = new Uint8Array(100_000);
    const large = framePartsFromHeader(encodeHeader({ t: "x" }, [blob]), [blob]);
    assert.equal(large.length, 2);
    assert.equal(large[1], blob, "a large blob is not copied");
  });

  test("values inlined as base64 come back as bytes, and a malformed inline value throws", () => {
    const { value, blobs } = extractBlobs({ data: new Uint8Array([104, 105]) }, { inline: (b) => Buffer.from(b).toString("base64") });
    assert.deepEqual(blobs, []);
    assert.deepEqual(value, { data: { $b64: "aGk=" } });
    const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));
    assert.deepEqual(reviveBlobs(value, [], fromBase64), { data: new Uint8Array([104, 105]) });
    assert.throws(() => reviveBlobs({ data: { $b64: "not base64!" } }, [], fromBase64), RangeError);
    assert.throws(() => reviveBlobs({ data: { $blob: 3 } }, []), RangeError);
  });

  test("a header or blobs past the reader's limits, a header that is not JSON, and bad lengths are refused before anything is allocated", () => {
    const over = new FrameReader({ maxHeaderBytes: 10, maxBlobBytes: 100 });
    over.push(concat(frameParts({ t: "a header longer than ten bytes" }, [])));
    assert.throws(() => over.next(), FrameError);

    const blobs = new FrameReader({ maxHeaderBytes: 1000, maxBlobBytes: 100 });
    blobs.push(encodeHeaderOnly({ t: "x", $blobs: [2 ** 40] }));
    assert.throws(() => blobs.next(), /over the limit/);

    const notJson = new FrameReader({ maxHeaderBytes: 1000, maxBlobBytes: 100 });
    const junk = new TextEncoder().encode("{nope");
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setUint32(0, junk.length);
    notJson.push(concat([prefix, junk]));
    assert.throws(() => notJson.next(), /not JSON/);

    const negative = new FrameReader({ maxHeaderBytes: 1000, maxBlobBytes: 100 });
    negative.push(encodeHeaderOnly({ t: "x", $blobs: [-1] }));
    assert.throws(() => negative.next(), /whole number/);
  });

  test("a signed frame carries its MAC between the prefix and the header", () => {
    const mac = new Uint8Array(32).fill(9);
    const headerBytes = encodeHeader({ seq: 0, t: "ready" }, []);
    const reader = new FrameReader({ macBytes: 32, maxHeaderBytes: 1000, maxBlobBytes: 0 });
    reader.push(concat(framePartsFromHeader(headerBytes, [], mac)));
    const frame = reader.next()!;
    assert.deepEqual(frame.mac, mac);
    assert.deepEqual(frame.headerBytes, headerBytes);
    assert.deepEqual(frame.header, { seq: 0, t: "ready" });
  });
});

function encodeHeaderOnly(header: object): Uint8Array {
  const bytes = new TextEncoder().encode(JSON.stringify(header));
  const prefix = new Uint8Array(4);
  new DataView(prefix.buffer).setUint32(0, bytes.length);
  return concat([prefix, bytes]);
}
