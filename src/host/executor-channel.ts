/**
 * The host's end of the pipe to one executor: frames in (read, verified, decoded) and out. A frame
 * from the executor counts only with a valid HMAC over its header (the key went to the executor's
 * trusted main isolate before any guest code existed), blobs matching the SHA-256 the header names,
 * and the next sequence number. Anything else is a fault: the executor is given up on.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { extractBlobs, FrameError, FrameReader, frameParts, reviveBlobs, type Frame } from "../core/frames.js";
import type { ExecutorFrame } from "../executor/protocol.js";

/** Largest frame parts accepted between runs; a run raises them to what its caps allow. */
export const IDLE_MAX_HEADER_BYTES = 64 * 1024 * 1024;
export const IDLE_MAX_BLOB_BYTES = 1024 * 1024 * 1024;

/** Why the channel gave up: a message for the run's crash or the start's error. */
export class ChannelFault extends Error {}

export class ExecutorChannel {
  private readonly reader = new FrameReader({ macBytes: 32, maxHeaderBytes: IDLE_MAX_HEADER_BYTES, maxBlobBytes: IDLE_MAX_BLOB_BYTES });
  private nextSeq = 0;

  constructor(private readonly key: Uint8Array) {}

  /** Caps on the next frames (a run's result may carry its output caps' worth of files). */
  setLimits(limits: { maxHeaderBytes: number; maxBlobBytes: number }): void {
    this.reader.setLimits(limits);
  }

  /**
   * Takes bytes read from the executor's stdout and returns every complete frame they finish,
   * verified and decoded, in order. Throws ChannelFault for the first frame that does not verify.
   */
  push(chunk: Uint8Array): ExecutorFrame[] {
    this.reader.push(chunk);
    const frames: ExecutorFrame[] = [];
    for (;;) {
      let frame: Frame | null;
      try {
        frame = this.reader.next();
      } catch (error) {
        throw new ChannelFault(error instanceof FrameError ? `executor sent a malformed frame: ${error.message}` : "executor sent a malformed frame");
      }
      if (!frame) return frames;
      frames.push(this.verify(frame));
    }
  }

  /** The parts of one frame to the executor; bytes in the message go as blobs, without a copy. */
  encode(message: object): Uint8Array[] {
    const { value, blobs } = extractBlobs(message);
    return frameParts(value, blobs);
  }

  private verify(received: Frame): ExecutorFrame {
    const expected = createHmac("sha256", this.key).update(received.headerBytes).digest();
    if (received.mac.length !== expected.length || !timingSafeEqual(received.mac, expected)) {
      throw new ChannelFault("executor sent a frame with a bad signature (forged output?)");
    }
    const entries = received.header.$blobs;
    if (entries !== undefined) {
      if (!Array.isArray(entries) || entries.length !== received.blobs.length) throw new ChannelFault("executor sent a frame with malformed blobs");
      for (let i = 0; i < entries.length; i++) {
        const digest = createHash("sha256").update(received.blobs[i]!).digest("hex");
        if (!Array.isArray(entries[i]) || entries[i][1] !== digest) throw new ChannelFault("executor sent a frame whose data does not match its signature");
      }
    }
    let frame: ExecutorFrame;
    try {
      const { $blobs: _, ...header } = received.header;
      frame = reviveBlobs<ExecutorFrame>(header, received.blobs, (text) => new Uint8Array(Buffer.from(text, "base64")));
    } catch {
      throw new ChannelFault("executor sent a frame with malformed blobs");
    }
    if (frame.seq !== this.nextSeq) throw new ChannelFault("executor frames out of sequence (replayed?)");
    this.nextSeq++;
    return frame;
  }
}
