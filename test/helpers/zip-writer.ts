/**
 * A tiny ZIP writer for tests: builds wheels in memory, including malicious ones (lying sizes,
 * symlinks, duplicate or escaping paths), which no real zip tool would write.
 */
import { deflateRawSync } from "node:zlib";
import { crc32 } from "../../src/packages/wheel-zip.js";

export interface ZipEntrySpec {
  path: string;
  data: Uint8Array | string;
  /** Default 8 (deflate). */
  method?: 0 | 8;
  /** Lies for the central directory (default: the truth). */
  declaredSize?: number;
  declaredCrc32?: number;
  /** Unix mode, e.g. 0o120777 for a symlink (default 0o100644). */
  unixMode?: number;
}

export function makeZip(specs: ZipEntrySpec[], options: { truncateTo?: number } = {}): Uint8Array {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const spec of specs) {
    const data = typeof spec.data === "string" ? Buffer.from(spec.data) : Buffer.from(spec.data);
    const method = spec.method ?? 8;
    const body = method === 8 ? deflateRawSync(data) : data;
    const name = Buffer.from(spec.path, "utf8");
    const crc = spec.declaredCrc32 ?? crc32(data);
    const size = spec.declaredSize ?? data.length;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((spec.unixMode ?? 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(specs.length, 8);
  eocd.writeUInt16LE(specs.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  const zip = Buffer.concat([...locals, cd, eocd]);
  return new Uint8Array(options.truncateTo === undefined ? zip : zip.subarray(0, options.truncateTo));
}

/** A minimal valid wheel: METADATA, WHEEL, RECORD and the given files. */
export function makeWheel(name: string, version: string, files: Record<string, string | Uint8Array>, metadata: { requiresDist?: string[]; requiresPython?: string; topLevel?: string[] } = {}): Uint8Array {
  const distInfo = `${name.replace(/-/g, "_")}-${version}.dist-info`;
  const meta = [
    "Metadata-Version: 2.1",
    `Name: ${name}`,
    `Version: ${version}`,
    ...(metadata.requiresPython ? [`Requires-Python: ${metadata.requiresPython}`] : []),
    ...(metadata.requiresDist ?? []).map((r) => `Requires-Dist: ${r}`),
    "",
    "A description.",
  ].join("\n");
  const specs: ZipEntrySpec[] = Object.entries(files).map(([path, data]) => ({ path, data }));
  specs.push({ path: `${distInfo}/METADATA`, data: meta });
  specs.push({ path: `${distInfo}/WHEEL`, data: "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n" });
  if (metadata.topLevel) specs.push({ path: `${distInfo}/top_level.txt`, data: metadata.topLevel.join("\n") + "\n" });
  specs.push({ path: `${distInfo}/RECORD`, data: "" });
  return makeZip(specs);
}
