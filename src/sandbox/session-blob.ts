/**
 * A saved session as one self-contained blob (issue 19), and the checks a blob passes before any
 * executor sees it. A blob is untrusted input: whoever restores one may have received it from
 * anyone, so every length, count and name is checked, the whole blob is checksummed, and the state
 * is decompressed to at most the size the header declares (itself bounded).
 *
 * Layout (docs/sessions.md):
 *
 *     "WASMBOX-SESSION\n"            16 bytes, the magic
 *     u32 LE header length
 *     header: JSON (SessionBlobHeader)
 *     state: the executor's state bytes (memory difference, files, descriptors) in chunks of
 *            STATE_CHUNK_BYTES, each raw DEFLATE on its own (compressed and inflated in parallel),
 *            their compressed lengths in the header
 *     SHA-256 of everything above    32 bytes
 *
 * The checksum detects damage; it is not a signature (anyone can make a valid blob). What makes a
 * crafted blob harmless is that its state only ever runs as guest code: in a fresh session's
 * executor, with the limits and host functions of the call that restores it, never the blob's.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { deflateRaw, inflateRaw, constants as zlibConstants } from "node:zlib";
import { WasmboxError } from "../core/errors.js";
import type { Language } from "../core/request.js";

const deflateRawAsync = promisify(deflateRaw);
const inflateRawAsync = promisify(inflateRaw);

const MAGIC = new TextEncoder().encode("WASMBOX-SESSION\n");
/** The blob layout's version: a blob of another one is refused with SESSION_BLOB_INCOMPATIBLE. */
export const SESSION_BLOB_FORMAT = 1;
const MAX_HEADER_BYTES = 64 * 1024;
const CHECKSUM_BYTES = 32;
/**
 * Chunks compress on libuv's thread pool at once: a 300 MB state takes ~2.3 s to deflate on one
 * core, about half that on two.
 */
const STATE_CHUNK_BYTES = 8 * 1024 * 1024;
/**
 * The largest state a blob may declare: a wasm32 heap (4 GiB) is past what one buffer holds in
 * Node, so this is the buffer limit. Restores take a smaller `maxStateBytes` where callers upload.
 */
export const MAX_SESSION_STATE_BYTES = 4 * 1024 ** 3 - 1;
/**
 * The state a restore accepts unless told otherwise (`maxStateBytes`): a blob of a few megabytes of
 * deflated zeros can declare gigabytes, which the host inflates before any executor sees them.
 */
export const DEFAULT_MAX_SESSION_STATE_BYTES = 2 * 1024 ** 3;

export interface SessionBlobHeader {
  format: number;
  /** The wasmbox version that saved it (for messages; `runtime` is what must match). */
  wasmbox: string;
  /** The runtime's identity: Pyodide's version, a hash of the executor code, the package environment. */
  runtime: string;
  /** SHA-256 of the snapshot file whose memory the state is a difference from. */
  baseSha256: string;
  session: {
    language: Language;
    /** The packages it was opened with (the restoring sandbox must have them). */
    packages: string[];
    /** Names of the host functions it was opened with: the restoring call binds them again. */
    tools: string[];
  };
  state: {
    bytes: number;
    compressedBytes: number;
    /** Raw bytes per chunk (the last may be shorter). */
    chunkBytes: number;
    /** Each chunk's compressed length, in order. */
    chunks: number[];
  };
  savedAt: string;
}

function wasmboxVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/** Makes a blob of an executor's state. */
export async function encodeSessionBlob(
  state: Uint8Array,
  identity: { runtime: string; baseSha256: string },
  session: SessionBlobHeader["session"],
): Promise<Uint8Array> {
  // Level 1: memory compresses about as well at level 1 as at 6, several times faster.
  const parts: Uint8Array[] = [];
  for (let at = 0; at < state.length; at += STATE_CHUNK_BYTES) parts.push(state.subarray(at, at + STATE_CHUNK_BYTES));
  const chunks = await Promise.all(parts.map((part) => deflateRawAsync(part, { level: 1 })));
  const compressedBytes = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const header: SessionBlobHeader = {
    format: SESSION_BLOB_FORMAT,
    wasmbox: wasmboxVersion(),
    runtime: identity.runtime,
    baseSha256: identity.baseSha256,
    session,
    state: { bytes: state.length, compressedBytes, chunkBytes: STATE_CHUNK_BYTES, chunks: chunks.map((chunk) => chunk.length) },
    savedAt: new Date().toISOString(),
  };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(MAGIC.length + 4 + headerBytes.length + compressedBytes + CHECKSUM_BYTES);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, headerBytes.length, true);
  out.set(headerBytes, MAGIC.length + 4);
  let at = MAGIC.length + 4 + headerBytes.length;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  const end = out.length - CHECKSUM_BYTES;
  out.set(createHash("sha256").update(out.subarray(0, end)).digest(), end);
  return out;
}

function invalid(message: string): WasmboxError {
  return new WasmboxError("INVALID_SESSION_BLOB", `not a usable saved session: ${message}`);
}

const isStringList = (value: unknown, max: number): value is string[] =>
  Array.isArray(value) && value.length <= max && value.every((item) => typeof item === "string" && item.length > 0 && item.length <= 256);

/**
 * Reads and checks a blob's header and checksum (nothing is decompressed). Throws
 * INVALID_SESSION_BLOB (damaged, truncated, not a blob) or SESSION_BLOB_INCOMPATIBLE (another format).
 */
export function readSessionBlobHeader(blob: Uint8Array, maxStateBytes = DEFAULT_MAX_SESSION_STATE_BYTES): { header: SessionBlobHeader; payload: Uint8Array } {
  if (!(blob instanceof Uint8Array)) throw new WasmboxError("INVALID_REQUEST", "restore must be the bytes of a saved session (a Uint8Array)");
  if (blob.length < MAGIC.length + 4 + CHECKSUM_BYTES || !MAGIC.every((byte, i) => blob[i] === byte)) {
    throw invalid("it does not start like one (wrong magic bytes; is this the file session.save() wrote?)");
  }
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const headerLength = view.getUint32(MAGIC.length, true);
  if (headerLength === 0 || headerLength > MAX_HEADER_BYTES) throw invalid(`its header length (${headerLength} bytes) is out of range`);
  const headerEnd = MAGIC.length + 4 + headerLength;
  if (headerEnd + CHECKSUM_BYTES > blob.length) throw invalid(`it is truncated (${blob.length} bytes)`);
  const end = blob.length - CHECKSUM_BYTES;
  const digest = createHash("sha256").update(blob.subarray(0, end)).digest();
  const checksumOk = digest.every((byte, i) => blob[end + i] === byte);
  let header: SessionBlobHeader | null = null;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(blob.subarray(MAGIC.length + 4, headerEnd)));
  } catch {
    // told below
  }
  const payloadLength = end - headerEnd;
  if (!checksumOk) {
    const declared = (header as { state?: { compressedBytes?: unknown } } | null)?.state?.compressedBytes;
    if (typeof declared === "number" && declared > payloadLength) {
      throw invalid(`it is truncated (${blob.length} bytes, ${declared - payloadLength} missing)`);
    }
    throw invalid("it is damaged (checksum mismatch)");
  }
  if (typeof header !== "object" || header === null) throw invalid("its header is not a JSON object");
  if (header.format !== SESSION_BLOB_FORMAT) {
    throw new WasmboxError("SESSION_BLOB_INCOMPATIBLE", `this saved session has format ${JSON.stringify(header.format)} (from wasmbox ${String(header.wasmbox)}); this wasmbox reads format ${SESSION_BLOB_FORMAT}`);
  }
  const state = header.state;
  if (!state || !Number.isSafeInteger(state.compressedBytes) || state.compressedBytes !== payloadLength) throw invalid("its header's sizes do not match its length");
  if (!Number.isSafeInteger(state.bytes) || state.bytes <= 0) throw invalid("its header's state size is not a positive whole number");
  const chunkCount = Number.isSafeInteger(state.chunkBytes) && state.chunkBytes > 0 ? Math.ceil(state.bytes / state.chunkBytes) : -1;
  if (
    chunkCount < 1 || state.chunkBytes > 256 * 1024 * 1024 || !Array.isArray(state.chunks) || state.chunks.length !== chunkCount ||
    !state.chunks.every((length) => Number.isSafeInteger(length) && length > 0) || state.chunks.reduce((sum, length) => sum + length, 0) !== payloadLength
  ) {
    throw invalid("its header's state chunks do not match its sizes");
  }
  if (state.bytes > Math.min(maxStateBytes, MAX_SESSION_STATE_BYTES)) {
    throw new WasmboxError("REQUEST_TOO_LARGE", `this saved session's state is ${state.bytes} bytes, over the limit of ${maxStateBytes}`);
  }
  const session = header.session;
  if (
    typeof header.runtime !== "string" || header.runtime.length > 512 || typeof header.baseSha256 !== "string" || !/^[0-9a-f]{64}$/.test(header.baseSha256) ||
    !session || typeof session.language !== "string" || !isStringList(session.packages, 1000) || !isStringList(session.tools, 1000)
  ) {
    throw invalid("its header is malformed");
  }
  return { header, payload: blob.subarray(headerEnd, end) };
}

/**
 * Decompresses a checked blob's state to exactly the size its header declares: each chunk to
 * exactly its share, in parallel.
 */
export async function inflateSessionState(header: SessionBlobHeader, payload: Uint8Array): Promise<Uint8Array> {
  const { bytes, chunkBytes, chunks } = header.state;
  const state = new Uint8Array(bytes);
  let offset = 0;
  await Promise.all(
    chunks.map(async (length, i) => {
      const start = offset;
      offset += length;
      const want = Math.min(chunkBytes, bytes - i * chunkBytes);
      let part: Uint8Array;
      try {
        // maxOutputLength stops a chunk crafted to inflate past its share (a decompression bomb).
        part = await inflateRawAsync(payload.subarray(start, start + length), { maxOutputLength: want, finishFlush: zlibConstants.Z_SYNC_FLUSH });
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === "ERR_BUFFER_TOO_LARGE") throw invalid(`its state inflates past the ${bytes} bytes its header declares`);
        throw invalid(`its state does not decompress (${(error as Error).message})`);
      }
      if (part.length !== want) throw invalid(`its state inflates to other than the ${bytes} bytes its header declares`);
      state.set(part, i * chunkBytes);
    }),
  );
  return state;
}

/** Refuses a blob made by another runtime than this sandbox's, saying which. */
export function checkBlobRuntime(header: SessionBlobHeader, identity: { runtime: string; baseSha256: string }): void {
  if (header.runtime !== identity.runtime) {
    throw new WasmboxError(
      "SESSION_BLOB_INCOMPATIBLE",
      `this session was saved by wasmbox ${header.wasmbox} with runtime ${header.runtime}; this sandbox runs ${identity.runtime}: restore it with the same wasmbox version and packages`,
    );
  }
  if (header.baseSha256 !== identity.baseSha256) {
    throw new WasmboxError(
      "SESSION_BLOB_INCOMPATIBLE",
      `this session was saved against a different Python snapshot (same runtime ${header.runtime}, made on another machine with different bytes): ` +
        "restore it where it was saved, or copy that machine's snapshot (WASMBOX_CACHE_DIR)",
    );
  }
}
