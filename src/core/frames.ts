/**
 * Length-prefixed binary frames for the pipe between the host and an executor, in both directions.
 *
 *   frame  = u32 BE header length · [MAC: macBytes bytes] · header · blob 0 · blob 1 · …
 *   header = UTF-8 JSON object; its "$blobs" array gives each blob's length in bytes (and, in
 *            signed frames, its SHA-256 as hex: [[length, digest], …]); a binary value inside the
 *            header is {"$blob": index}, or {"$b64": text} for one small enough to inline (a
 *            signed frame then needs no digest: the MAC covers the header).
 *
 * Files and stdin travel as raw bytes, not base64 inside JSON, and a reader finds each frame's end
 * from its lengths instead of scanning for a newline, so a frame of any size is read in time
 * linear in its size, with each blob copied once into a buffer of its exact size.
 *
 * Imports nothing: the host (Node or Deno) and the executor (Deno) both use it.
 */

/** A binary value inside a header: a blob after it, or (small values) base64 inside the header itself. */
export type BlobRef = { $blob: number } | { $b64: string };

export interface Frame {
  header: Record<string, unknown>;
  blobs: Uint8Array[];
  /** The MAC that preceded the header (signed frames), else an empty array. */
  mac: Uint8Array;
  /** The header's bytes as received, which the MAC covers. */
  headerBytes: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Builds a frame's parts (to be written in order, without copying the blobs). `header` must not
 * hold `$blobs` itself; `blobEntries` is what goes there (lengths, or [length, digest] pairs).
 */
export function frameParts(header: object, blobs: readonly Uint8Array[], options: { mac?: Uint8Array; blobEntries?: unknown[] } = {}): Uint8Array[] {
  const headerBytes = encodeHeader(header, blobs, options.blobEntries);
  return framePartsFromHeader(headerBytes, blobs, options.mac);
}

/** The header's bytes as they will be sent: what a MAC is computed over. */
export function encodeHeader(header: object, blobs: readonly Uint8Array[], blobEntries?: unknown[]): Uint8Array {
  const withBlobs = blobs.length > 0 ? { ...header, $blobs: blobEntries ?? blobs.map((b) => b.length) } : header;
  return encoder.encode(JSON.stringify(withBlobs));
}

/** Blobs up to this many bytes in all are copied into the frame's first part: one write instead of several. */
const COALESCE_MAX_BYTES = 64 * 1024;

/**
 * The frame as parts to write in order: the prefix, MAC and header always in one part (a reader
 * woken for a 4-byte prefix alone costs a round trip per frame), small blobs with them, large blobs
 * as they are (never copied).
 */
export function framePartsFromHeader(headerBytes: Uint8Array, blobs: readonly Uint8Array[], mac?: Uint8Array): Uint8Array[] {
  const macBytes = mac?.length ?? 0;
  const nonEmpty = blobs.filter((b) => b.length > 0);
  const blobBytes = nonEmpty.reduce((n, b) => n + b.length, 0);
  const inline = blobBytes <= COALESCE_MAX_BYTES ? nonEmpty : [];
  const first = new Uint8Array(4 + macBytes + headerBytes.length + (inline.length ? blobBytes : 0));
  new DataView(first.buffer).setUint32(0, headerBytes.length);
  if (mac) first.set(mac, 4);
  first.set(headerBytes, 4 + macBytes);
  let offset = 4 + macBytes + headerBytes.length;
  for (const blob of inline) {
    first.set(blob, offset);
    offset += blob.length;
  }
  return inline.length ? [first] : [first, ...nonEmpty];
}

/**
 * Replaces Uint8Array values (at any depth) with {"$blob": i} and collects them, in order. With
 * `inline`, a value that `inline` turns into base64 (it decides which are small enough) stays in
 * the header as {"$b64": …} instead.
 */
export function extractBlobs<T>(value: T, options: { inline?: (bytes: Uint8Array) => string | null } = {}): { value: T; blobs: Uint8Array[] } {
  const blobs: Uint8Array[] = [];
  const walk = (v: unknown): unknown => {
    if (v instanceof Uint8Array) {
      const text = options.inline?.(v) ?? null;
      if (text !== null) return { $b64: text } satisfies BlobRef;
      blobs.push(v);
      return { $blob: blobs.length - 1 } satisfies BlobRef;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === "object" && v !== null) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x);
      return out;
    }
    return v;
  };
  return { value: walk(value) as T, blobs };
}

/**
 * Puts blobs back where {"$blob": i} stands, and decodes {"$b64": text} with `fromBase64`; an
 * index out of range or bad base64 throws.
 */
export function reviveBlobs<T>(value: unknown, blobs: readonly Uint8Array[], fromBase64?: (text: string) => Uint8Array): T {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === "object" && v !== null) {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === "$b64") {
        const text = (v as { $b64: unknown }).$b64;
        if (typeof text !== "string" || !fromBase64 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new RangeError("frame holds a malformed inline value");
        return fromBase64(text);
      }
      if (keys.length === 1 && keys[0] === "$blob") {
        const index = (v as { $blob: number }).$blob;
        if (!Number.isInteger(index) || index < 0 || index >= blobs.length) throw new RangeError(`frame refers to blob ${index}, which it does not carry`);
        return blobs[index];
      }
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x);
      return out;
    }
    return v;
  };
  return walk(value) as T;
}

export class FrameError extends Error {}

/**
 * Reads frames from a byte stream: push() chunks as they arrive, next() takes complete frames.
 * Memory held is the frame being read (its blobs preallocated at their exact size) plus at most
 * one chunk. Limits are checked from the lengths, before anything is allocated.
 */
export class FrameReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private state:
    | { at: "prefix" }
    | { at: "header"; headerLength: number }
    | { at: "blobs"; header: Record<string, unknown>; headerBytes: Uint8Array; mac: Uint8Array; blobs: Uint8Array[]; index: number; filled: number } = { at: "prefix" };
  private mac: Uint8Array = new Uint8Array(0);

  constructor(
    private readonly limits: { macBytes?: number; maxHeaderBytes: number; maxBlobBytes: number },
  ) {}

  /** Changes the limits for frames not yet started (e.g. per run). */
  setLimits(limits: { maxHeaderBytes: number; maxBlobBytes: number }): void {
    Object.assign(this.limits, limits);
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Whether a frame has been started but not finished. */
  get midFrame(): boolean {
    return this.state.at !== "prefix" || this.buffered > 0;
  }

  /** The next complete frame, or null until more bytes arrive. Throws FrameError on a malformed frame. */
  next(): Frame | null {
    const macBytes = this.limits.macBytes ?? 0;
    for (;;) {
      const state = this.state;
      if (state.at === "prefix") {
        if (this.buffered < 4 + macBytes) return null;
        const prefix = this.take(4 + macBytes);
        const headerLength = new DataView(prefix.buffer, prefix.byteOffset, 4).getUint32(0);
        if (headerLength > this.limits.maxHeaderBytes) throw new FrameError(`frame header of ${headerLength} bytes is over the limit of ${this.limits.maxHeaderBytes}`);
        this.mac = prefix.slice(4);
        this.state = { at: "header", headerLength };
        continue;
      }
      if (state.at === "header") {
        if (this.buffered < state.headerLength) return null;
        const headerBytes = this.take(state.headerLength);
        let header: unknown;
        try {
          header = JSON.parse(decoder.decode(headerBytes));
        } catch {
          throw new FrameError("frame header is not JSON");
        }
        if (typeof header !== "object" || header === null || Array.isArray(header)) throw new FrameError("frame header is not an object");
        const lengths = blobLengths((header as Record<string, unknown>).$blobs);
        const total = lengths.reduce((a, b) => a + b, 0);
        if (total > this.limits.maxBlobBytes) throw new FrameError(`frame carries ${total} bytes, over the limit of ${this.limits.maxBlobBytes}`);
        const blobs = lengths.map((n) => new Uint8Array(n));
        this.state = { at: "blobs", header: header as Record<string, unknown>, headerBytes, mac: this.mac, blobs, index: 0, filled: 0 };
        continue;
      }
      // Copy what has arrived straight into the blobs' own buffers.
      while (state.index < state.blobs.length) {
        const blob = state.blobs[state.index]!;
        if (state.filled === blob.length) {
          state.index++;
          state.filled = 0;
          continue;
        }
        if (this.buffered === 0) return null;
        state.filled += this.takeInto(blob, state.filled);
      }
      this.state = { at: "prefix" };
      return { header: state.header, blobs: state.blobs, mac: state.mac, headerBytes: state.headerBytes };
    }
  }

  /** Removes exactly `n` buffered bytes (n <= buffered) and returns them contiguous. */
  private take(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      this.advance(n);
      return out.slice(); // detach from the chunk, so the chunk can be freed
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) filled += this.takeInto(out, filled, n);
    return out;
  }

  /** Copies buffered bytes into target[offset..end); returns how many. */
  private takeInto(target: Uint8Array, offset: number, end = target.length): number {
    const first = this.chunks[0]!;
    const n = Math.min(first.length, end - offset);
    target.set(first.subarray(0, n), offset);
    this.advance(n);
    return n;
  }

  private advance(n: number): void {
    let left = n;
    while (left > 0) {
      const first = this.chunks[0]!;
      if (first.length <= left) {
        this.chunks.shift();
        left -= first.length;
      } else {
        this.chunks[0] = first.subarray(left);
        left = 0;
      }
    }
    this.buffered -= n;
  }
}

function blobLengths(raw: unknown): number[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new FrameError("frame $blobs is not an array");
  return raw.map((entry) => {
    const length = Array.isArray(entry) ? entry[0] : entry;
    if (!Number.isSafeInteger(length) || (length as number) < 0) throw new FrameError("frame $blobs holds a length that is not a whole number");
    return length as number;
  });
}
