import assert from "node:assert/strict";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { encodeHeader, framePartsFromHeader } from "../core/frames.js";
import { ChannelFault, ExecutorChannel } from "./executor-channel.js";

/** A frame as the executor's main isolate signs it: HMAC over the header, SHA-256 of each blob named there. */
function signed(key: Uint8Array, header: object, blobs: Uint8Array[] = [], tamper?: (parts: Uint8Array[]) => void): Uint8Array {
  const entries = blobs.map((b) => [b.length, createHash("sha256").update(b).digest("hex")]);
  const headerBytes = encodeHeader(header, blobs, entries);
  const mac = createHmac("sha256", key).update(headerBytes).digest();
  const parts = framePartsFromHeader(headerBytes, blobs, mac);
  tamper?.(parts);
  return Buffer.concat(parts);
}

describe("ExecutorChannel", () => {
  test("passes frames signed with its key, in sequence, with their blobs as bytes", () => {
    const key = randomBytes(32);
    const channel = new ExecutorChannel(key);
    const data = new Uint8Array([1, 2, 3]);
    const bytes = Buffer.concat([signed(key, { t: "ready", seq: 0 }), signed(key, { t: "out", seq: 1, fd: 1, data: { $blob: 0 } }, [data])]);
    // Split anywhere: frames come out only once complete.
    const first = channel.push(bytes.subarray(0, 7));
    const rest = channel.push(bytes.subarray(7));
    const frames = [...first, ...rest] as { t: string; data?: Uint8Array }[];
    assert.deepEqual(frames.map((f) => f.t), ["ready", "out"]);
    assert.deepEqual([...frames[1]!.data!], [1, 2, 3]);
  });

  test("refuses a frame signed with another key (output forged by guest code on the executor's stdout)", () => {
    const channel = new ExecutorChannel(randomBytes(32));
    assert.throws(() => channel.push(signed(randomBytes(32), { t: "ready", seq: 0 })), (e: Error) => e instanceof ChannelFault && /bad signature/.test(e.message));
  });

  test("refuses a replayed frame and a blob whose bytes were changed after signing", () => {
    const key = randomBytes(32);
    const replay = new ExecutorChannel(key);
    const frame = signed(key, { t: "ready", seq: 0 });
    replay.push(frame);
    assert.throws(() => replay.push(frame), /out of sequence/);
    const swapped = new ExecutorChannel(key);
    const data = new Uint8Array(100_000).fill(7); // large enough to travel as its own part
    const tampered = signed(key, { t: "out", seq: 0, fd: 1, data: { $blob: 0 } }, [data], (parts) => parts.at(-1)!.fill(8));
    assert.throws(() => swapped.push(tampered), /does not match its signature/);
  });

  test("refuses a malformed frame", () => {
    const channel = new ExecutorChannel(randomBytes(32));
    const notJson = Buffer.concat([Buffer.from([0, 0, 0, 8]), Buffer.alloc(32), Buffer.from("notjson!")]);
    assert.throws(() => channel.push(notJson), (e: Error) => e instanceof ChannelFault && /malformed frame: frame header is not JSON/.test(e.message));
    const huge = Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.alloc(40)]);
    assert.throws(() => new ExecutorChannel(randomBytes(32)).push(huge), /over the limit/);
  });
});
