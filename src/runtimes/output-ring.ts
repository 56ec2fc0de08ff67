/**
 * Guest output travels from a runtime worker to the executor's main isolate through a ring buffer in
 * shared memory instead of one message per write: a print loop costs a copy, not a postMessage,
 * and a full ring makes the guest wait for the main isolate to drain it (backpressure), so memory
 * stays bounded however fast the guest writes. Records are [fd: u8][length: u32 LE][bytes].
 *
 * Header (Int32): [0] bytes written in total, [1] bytes read in total (both wrap at 2**31; only
 * their difference matters), [2] set to 1 by the main isolate when the worker must stop waiting.
 */
export const OUTPUT_RING_HEADER_BYTES = 16;
export const OUTPUT_RING_DATA_BYTES = 1024 * 1024;
const RECORD_HEADER_BYTES = 5;
const MAX_RECORD_DATA_BYTES = 64 * 1024;
const WRAP = 2 ** 31;

export function createOutputRing(): SharedArrayBuffer {
  return new SharedArrayBuffer(OUTPUT_RING_HEADER_BYTES + OUTPUT_RING_DATA_BYTES);
}

function views(ring: SharedArrayBuffer) {
  return { header: new Int32Array(ring, 0, 4), data: new Uint8Array(ring, OUTPUT_RING_HEADER_BYTES) };
}

function copyIn(data: Uint8Array, at: number, bytes: Uint8Array): void {
  const first = Math.min(bytes.length, data.length - at);
  data.set(bytes.subarray(0, first), at);
  if (first < bytes.length) data.set(bytes.subarray(first), 0);
}

function copyOut(data: Uint8Array, at: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const first = Math.min(length, data.length - at);
  out.set(data.subarray(at, at + first));
  if (first < length) out.set(data.subarray(0, length - first), first);
  return out;
}

/** The worker's side: append output, waiting while the ring is full. Returns false when told to stop. */
export function ringWriter(ring: SharedArrayBuffer): (fd: 1 | 2, bytes: Uint8Array) => boolean {
  const { header, data } = views(ring);
  const record = new Uint8Array(RECORD_HEADER_BYTES);
  return (fd, bytes) => {
    for (let offset = 0; offset < bytes.length; offset += MAX_RECORD_DATA_BYTES) {
      const chunk = bytes.subarray(offset, offset + MAX_RECORD_DATA_BYTES);
      const need = RECORD_HEADER_BYTES + chunk.length;
      for (;;) {
        if (Atomics.load(header, 2) === 1) return false;
        const written = Atomics.load(header, 0);
        const read = Atomics.load(header, 1);
        const used = (written - read + WRAP) % WRAP;
        if (data.length - used >= need) break;
        Atomics.wait(header, 1, read, 50);
      }
      const written = Atomics.load(header, 0);
      const at = written % data.length;
      record[0] = fd;
      new DataView(record.buffer).setUint32(1, chunk.length, true);
      copyIn(data, at, record);
      copyIn(data, (at + RECORD_HEADER_BYTES) % data.length, chunk);
      Atomics.store(header, 0, (written + need) % WRAP);
    }
    return true;
  };
}

/** The main isolate's side: take every complete record, in order. */
export function drainRing(ring: SharedArrayBuffer): { fd: 1 | 2; bytes: Uint8Array }[] {
  const { header, data } = views(ring);
  const out: { fd: 1 | 2; bytes: Uint8Array }[] = [];
  let read = Atomics.load(header, 1);
  const written = Atomics.load(header, 0);
  while (read !== written) {
    const at = read % data.length;
    const head = copyOut(data, at, RECORD_HEADER_BYTES);
    const fd = head[0] === 2 ? 2 : 1;
    const length = new DataView(head.buffer).getUint32(1, true);
    // The worker's realm is the guest's: never trust a record to be well-formed.
    if (length > MAX_RECORD_DATA_BYTES || RECORD_HEADER_BYTES + length > (written - read + WRAP) % WRAP) {
      throw new Error("output ring is corrupt");
    }
    out.push({ fd, bytes: copyOut(data, (at + RECORD_HEADER_BYTES) % data.length, length) });
    read = (read + RECORD_HEADER_BYTES + length) % WRAP;
  }
  Atomics.store(header, 1, read);
  Atomics.notify(header, 1);
  return out;
}

/** Tells a worker blocked on a full ring to give up (the run is over). */
export function releaseRing(ring: SharedArrayBuffer): void {
  const { header } = views(ring);
  Atomics.store(header, 2, 1);
  Atomics.notify(header, 1);
}

/** Lets the worker write again (a new run). */
export function resetRingRelease(ring: SharedArrayBuffer): void {
  Atomics.store(views(ring).header, 2, 0);
}
