/**
 * A small ZIP reader for wheels (PEP 427), using only node:zlib and Buffer. Wheels come from the
 * network and are untrusted: every way a ZIP can lie is refused with WasmboxError "PACKAGE_INVALID"
 * naming the wheel, before any byte of it is used. Refused: zip64 and multi-disk archives,
 * encryption, methods other than stored/deflate, absolute paths, `..`/`.`/empty segments,
 * backslashes, NUL, duplicate paths, symlinks and other non-regular files, entries whose data
 * overlap (the overlapping-entry zip bomb), entries or archives past their size caps, compression
 * ratios past the cap, data that inflates to more or less than its declared size, and CRC-32
 * mismatches. Format: https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT
 */
import { inflateRawSync } from "node:zlib";
import { WasmboxError } from "../core/errors.js";

/** Default cap on the sum of the entries' uncompressed sizes: 256 MiB. */
export const DEFAULT_MAX_WHEEL_UNPACKED_BYTES = 256 * 1024 * 1024;
/** Default cap on one entry's uncompressed size: 64 MiB. */
export const DEFAULT_MAX_WHEEL_FILE_BYTES = 64 * 1024 * 1024;
/**
 * Default cap on an entry's uncompressed/compressed ratio, applied to entries over 1 MiB. Real
 * wheels stay far below it (text compresses ~3-10x); deflate's own ceiling is ~1030x.
 */
export const DEFAULT_MAX_COMPRESSION_RATIO = 200;
const RATIO_APPLIES_ABOVE_BYTES = 1024 * 1024;
const MAX_ENTRIES = 200_000;

export interface WheelLimits {
  /** Sum of uncompressed sizes, bytes (default 256 MiB). */
  maxUnpackedBytes?: number;
  /** One entry's uncompressed size, bytes (default 64 MiB). */
  maxFileBytes?: number;
  /** Uncompressed/compressed, for entries over 1 MiB (default 200). */
  maxCompressionRatio?: number;
}

/** One file in the archive, as its central directory declares it (checked against the data on read). */
export interface WheelEntry {
  /** Relative POSIX path, validated (no `..`, no leading `/`, no backslash). */
  path: string;
  /** Uncompressed size, bytes. */
  size: number;
  /** Compressed size, bytes. */
  compressedSize: number;
  /** 0 stored, 8 deflate. */
  method: 0 | 8;
  /** CRC-32 of the uncompressed data, unsigned. */
  crc32: number;
  /** Offset of the entry's local file header in the archive. */
  localHeaderOffset: number;
}

export interface OpenedWheel {
  /** What error messages call it (usually the file name). */
  label: string;
  /** Regular files only (directory entries are validated, then left out), in archive order. */
  entries: WheelEntry[];
  /** The entry's bytes, inflated and checked against its declared size and CRC-32. */
  read(entry: WheelEntry): Uint8Array;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE, as ZIP uses), unsigned. */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const utf8 = new TextDecoder("utf-8", { fatal: true });

function bad(label: string, why: string): WasmboxError {
  return new WasmboxError("PACKAGE_INVALID", `wheel ${label} is not a valid or safe zip archive: ${why}`);
}

/** Why a path inside an archive is refused, or null when it is a safe relative POSIX path. */
export function unsafeEntryPath(path: string): string | null {
  if (path === "") return "an empty path";
  if (path.includes("\0")) return "a NUL byte in a path";
  if (path.includes("\\")) return `a backslash in "${path}"`;
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path)) return `an absolute path "${path}"`;
  const segments = (path.endsWith("/") ? path.slice(0, -1) : path).split("/");
  for (const s of segments) {
    if (s === "..") return `a ".." segment in "${path}"`;
    if (s === "." || s === "") return `an empty or "." segment in "${path}"`;
  }
  return null;
}

/**
 * Parses a wheel's central directory and validates every entry. Throws PACKAGE_INVALID naming
 * `label` on anything malformed, truncated or unsafe. No data is inflated until `read`.
 */
export function openWheel(bytes: Uint8Array, label: string, limits: WheelLimits = {}): OpenedWheel {
  const maxUnpacked = limits.maxUnpackedBytes ?? DEFAULT_MAX_WHEEL_UNPACKED_BYTES;
  const maxFile = limits.maxFileBytes ?? DEFAULT_MAX_WHEEL_FILE_BYTES;
  const maxRatio = limits.maxCompressionRatio ?? DEFAULT_MAX_COMPRESSION_RATIO;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 22) throw bad(label, `only ${buf.length} bytes (truncated?)`);

  // The end-of-central-directory record: the last signature within the final 64 KiB + 22 bytes.
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === EOCD_SIGNATURE && i + 22 + buf.readUInt16LE(i + 20) === buf.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad(label, "no end-of-central-directory record (truncated or not a zip)");
  const disk = buf.readUInt16LE(eocd + 4);
  const cdDisk = buf.readUInt16LE(eocd + 6);
  const entriesOnDisk = buf.readUInt16LE(eocd + 8);
  const entryCount = buf.readUInt16LE(eocd + 10);
  const cdSize = buf.readUInt32LE(eocd + 12);
  const cdOffset = buf.readUInt32LE(eocd + 16);
  if (entryCount === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff || (eocd >= 20 && buf.readUInt32LE(eocd - 20) === ZIP64_LOCATOR_SIGNATURE)) {
    throw bad(label, "zip64 archives are not supported");
  }
  if (disk !== 0 || cdDisk !== 0 || entriesOnDisk !== entryCount) throw bad(label, "multi-disk archives are not supported");
  if (entryCount > MAX_ENTRIES) throw bad(label, `${entryCount} entries (at most ${MAX_ENTRIES})`);
  if (cdOffset + cdSize > eocd) throw bad(label, "the central directory lies outside the archive (truncated?)");

  const entries: WheelEntry[] = [];
  const all: WheelEntry[] = [];
  const seen = new Set<string>();
  let total = 0;
  let p = cdOffset;
  for (let n = 0; n < entryCount; n++) {
    if (p + 46 > cdOffset + cdSize || buf.readUInt32LE(p) !== CENTRAL_SIGNATURE) throw bad(label, `central directory entry ${n} is damaged`);
    const madeBy = buf.readUInt16LE(p + 4);
    const flags = buf.readUInt16LE(p + 8);
    const method = buf.readUInt16LE(p + 10);
    const crc = buf.readUInt32LE(p + 16);
    const compressedSize = buf.readUInt32LE(p + 20);
    const size = buf.readUInt32LE(p + 24);
    const nameLength = buf.readUInt16LE(p + 28);
    const extraLength = buf.readUInt16LE(p + 30);
    const commentLength = buf.readUInt16LE(p + 32);
    const externalAttributes = buf.readUInt32LE(p + 38);
    const localHeaderOffset = buf.readUInt32LE(p + 42);
    const nameEnd = p + 46 + nameLength;
    if (nameEnd + extraLength + commentLength > cdOffset + cdSize) throw bad(label, `central directory entry ${n} runs past the directory`);
    let path: string;
    try {
      path = utf8.decode(buf.subarray(p + 46, nameEnd));
    } catch {
      throw bad(label, `entry ${n} has a name that is not UTF-8`);
    }
    p = nameEnd + extraLength + commentLength;

    const unsafe = unsafeEntryPath(path);
    if (unsafe) throw bad(label, unsafe);
    if (seen.has(path)) throw bad(label, `the path "${path}" appears twice`);
    seen.add(path);
    if (flags & 0x1) throw bad(label, `"${path}" is encrypted`);
    if (method !== 0 && method !== 8) throw bad(label, `"${path}" uses compression method ${method} (only stored and deflate)`);
    if (size === 0xffffffff || compressedSize === 0xffffffff || localHeaderOffset === 0xffffffff) throw bad(label, "zip64 archives are not supported");
    // Unix mode in the high 16 bits when the archive was made on Unix (3): regular files and
    // directories only; symlinks (0o120000) and devices are refused.
    const hostSystem = madeBy >> 8;
    const fileType = (externalAttributes >>> 16) & 0o170000;
    if (hostSystem === 3 && fileType !== 0 && fileType !== 0o100000 && fileType !== 0o040000) {
      throw bad(label, fileType === 0o120000 ? `"${path}" is a symbolic link` : `"${path}" is not a regular file`);
    }
    if (size > maxFile) throw bad(label, `"${path}" is ${size} bytes uncompressed (at most ${maxFile} per file)`);
    if (method === 0 && compressedSize !== size) throw bad(label, `"${path}" is stored but its sizes differ`);
    if (size > RATIO_APPLIES_ABOVE_BYTES && size > compressedSize * maxRatio) {
      throw bad(label, `"${path}" would inflate ${compressedSize} bytes to ${size} (ratio over ${maxRatio}: a zip bomb?)`);
    }
    total += size;
    if (total > maxUnpacked) throw bad(label, `its files add up to more than ${maxUnpacked} bytes uncompressed`);
    if (localHeaderOffset + 30 > cdOffset) throw bad(label, `"${path}" has its data outside the archive (truncated?)`);
    const entry: WheelEntry = { path, size, compressedSize, method: method as 0 | 8, crc32: crc, localHeaderOffset };
    all.push(entry);
    const isDirectory = path.endsWith("/");
    if (isDirectory && size !== 0) throw bad(label, `the directory entry "${path}" has contents`);
    if (!isDirectory) entries.push(entry);
  }

  // Each entry's local header and data must fit before the next one's and before the central
  // directory: overlapping entries are how non-recursive zip bombs reuse one compressed stream.
  const dataStart = new Map<WheelEntry, number>();
  const byOffset = [...all].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  for (let i = 0; i < byOffset.length; i++) {
    const e = byOffset[i]!;
    const o = e.localHeaderOffset;
    if (buf.readUInt32LE(o) !== LOCAL_SIGNATURE) throw bad(label, `"${e.path}" has no local file header at its offset`);
    const nameLength = buf.readUInt16LE(o + 26);
    const extraLength = buf.readUInt16LE(o + 28);
    const start = o + 30 + nameLength + extraLength;
    if (start > cdOffset || buf.subarray(o + 30, o + 30 + nameLength).toString("utf8") !== e.path) {
      throw bad(label, `"${e.path}" has a local header that disagrees with the central directory`);
    }
    const end = start + e.compressedSize;
    const limit = i + 1 < byOffset.length ? byOffset[i + 1]!.localHeaderOffset : cdOffset;
    if (end > limit) throw bad(label, end > cdOffset ? `"${e.path}" is truncated` : `"${e.path}" overlaps the next entry`);
    dataStart.set(e, start);
  }

  const read = (entry: WheelEntry): Uint8Array => {
    const start = dataStart.get(entry);
    if (start === undefined) throw new TypeError(`not an entry of ${label}: ${entry.path}`);
    const raw = buf.subarray(start, start + entry.compressedSize);
    let data: Buffer;
    if (entry.method === 0) data = raw;
    else {
      try {
        // One byte past the declared size: more output than declared means the header lied.
        data = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size + 1) });
      } catch (cause) {
        const why = cause instanceof RangeError || (cause as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE" ? "inflates past its declared size" : "has corrupt deflate data";
        throw new WasmboxError("PACKAGE_INVALID", `wheel ${label} is not a valid or safe zip archive: "${entry.path}" ${why}`, { cause });
      }
    }
    if (data.length !== entry.size) throw bad(label, `"${entry.path}" inflates to ${data.length} bytes, not the ${entry.size} declared`);
    if (crc32(data) !== entry.crc32) throw bad(label, `"${entry.path}" fails its CRC-32 check`);
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  };
  return { label, entries, read };
}

/** What a wheel says about itself: its METADATA and the modules it installs. */
export interface WheelMetadata {
  /** As written in METADATA (not normalized). */
  name: string;
  version: string;
  /** Requires-Dist lines, unparsed, in order. */
  requiresDist: string[];
  /** Requires-Python, or null when absent. */
  requiresPython: string | null;
  /** Top-level importable module names, sorted. */
  imports: string[];
  /** Whether the wheel contains any shared library (`.so`). */
  native: boolean;
  /** The `*.dist-info` directory name. */
  distInfo: string;
}

/** The core metadata fields wasmbox uses from an RFC 822-style METADATA (or PKG-INFO) text. */
export interface CoreMetadata {
  name: string;
  version: string;
  requiresDist: string[];
  requiresPython: string | null;
}

/**
 * Parses core metadata (https://packaging.python.org/en/latest/specifications/core-metadata/):
 * headers up to the first blank line, continuation lines indented. Throws PACKAGE_INVALID naming
 * `label` when Name or Version is missing.
 */
export function parseCoreMetadata(text: string, label: string): CoreMetadata {
  const headers: [string, string][] = [];
  for (const line of text.replace(/\r\n?/g, "\n").split("\n")) {
    if (line === "") break; // the body (description) follows
    if (/^[ \t]/.test(line) && headers.length > 0) {
      headers[headers.length - 1]![1] += "\n" + line.trim();
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
  }
  const first = (key: string) => headers.find(([k]) => k === key)?.[1] ?? null;
  const name = first("name");
  const version = first("version");
  if (!name || !version) throw new WasmboxError("PACKAGE_INVALID", `${label}: the metadata has no Name or Version`);
  return {
    name,
    version,
    requiresDist: headers.filter(([k]) => k === "requires-dist").map(([, v]) => v.replace(/\n/g, " ")),
    requiresPython: first("requires-python"),
  };
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The top-level module name a file at the archive's root provides, or null. */
function rootModuleName(file: string): string | null {
  const m = /^([^.]+)(?:\.[^/]*)?\.(py|so|pyd)$/.exec(file);
  if (!m) return null;
  if (m[2] === "py" && file !== `${m[1]}.py`) return null;
  return IDENTIFIER.test(m[1]!) ? m[1]! : null;
}

/**
 * Reads `*.dist-info/METADATA` and works out the wheel's importable names: `top_level.txt` when
 * present, else the root's packages (directories holding `.py`/`.so` files, which includes
 * namespace packages without `__init__.py`) and modules (`x.py`, `x.cpython-314-*.so`),
 * never `*.dist-info`, `*.data` or `__pycache__`.
 */
export function wheelMetadata(wheel: OpenedWheel): WheelMetadata {
  const metadataEntries = wheel.entries.filter((e) => /^[^/]+\.dist-info\/METADATA$/.test(e.path));
  if (metadataEntries.length !== 1) {
    throw new WasmboxError("PACKAGE_INVALID", `wheel ${wheel.label} has ${metadataEntries.length === 0 ? "no" : "more than one"} *.dist-info/METADATA`);
  }
  const metadataEntry = metadataEntries[0]!;
  const distInfo = metadataEntry.path.slice(0, metadataEntry.path.indexOf("/"));
  const core = parseCoreMetadata(Buffer.from(wheel.read(metadataEntry)).toString("utf8"), `wheel ${wheel.label}`);
  const native = wheel.entries.some((e) => e.path.endsWith(".so"));

  const imports = new Set<string>();
  const topLevel = wheel.entries.find((e) => e.path === `${distInfo}/top_level.txt`);
  if (topLevel) {
    for (const line of Buffer.from(wheel.read(topLevel)).toString("utf8").split(/\r?\n/)) {
      const name = line.trim().split("/")[0]!;
      if (IDENTIFIER.test(name)) imports.add(name);
    }
  }
  if (imports.size === 0) {
    for (const e of wheel.entries) {
      const slash = e.path.indexOf("/");
      if (slash < 0) {
        const name = rootModuleName(e.path);
        if (name) imports.add(name);
        continue;
      }
      const dir = e.path.slice(0, slash);
      if (dir.endsWith(".dist-info") || dir.endsWith(".data") || dir === "__pycache__" || !IDENTIFIER.test(dir)) continue;
      if (/\.(py|so)$/.test(e.path)) imports.add(dir);
    }
  }
  return { ...core, imports: [...imports].sort(), native, distInfo };
}
