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
 *     state: raw DEFLATE of the executor's state bytes (memory pages, files, descriptors)
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
  state: { bytes: number; compressedBytes: number };
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
  // Level 1: memory pages compress about as well at level 1 as at 6, several times faster.
  const compressed = await deflateRawAsync(state, { level: 1 });
  const header: SessionBlobHeader = {
    format: SESSION_BLOB_FORMAT,
    wasmbox: wasmboxVersion(),
    runtime: identity.runtime,
    baseSha256: identity.baseSha256,
    session,
    state: { bytes: state.length, compressedBytes: compressed.length },
    savedAt: new Date().toISOString(),
  };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(MAGIC.length + 4 + headerBytes.length + compressed.length + CHECKSUM_BYTES);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, headerBytes.length, true);
  out.set(headerBytes, MAGIC.length + 4);
  out.set(compressed, MAGIC.length + 4 + headerBytes.length);
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

/** Decompresses a checked blob's state to exactly the size its header declares. */
export async function inflateSessionState(header: SessionBlobHeader, payload: Uint8Array): Promise<Uint8Array> {
  let state: Uint8Array;
  try {
    // maxOutputLength stops a blob crafted to inflate past what it declares (a decompression bomb).
    state = await inflateRawAsync(payload, { maxOutputLength: Math.max(1, header.state.bytes), finishFlush: zlibConstants.Z_SYNC_FLUSH });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ERR_BUFFER_TOO_LARGE") throw invalid(`its state inflates past the ${header.state.bytes} bytes its header declares`);
    throw invalid(`its state does not decompress (${(error as Error).message})`);
  }
  if (state.length !== header.state.bytes) throw invalid(`its state is ${state.length} bytes, not the ${header.state.bytes} its header declares`);
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
