import * as nodeBuffer from "node:buffer";
import { Buffer } from "node:buffer";
import type { OutputFile } from "../core/result.js";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Whether `bytes` as a JSON string body (control characters, quotes and backslashes escaped) is
 * at most `budget` bytes longer than the bytes themselves. Stops as soon as it is not: a file of
 * NUL bytes is decided after a fifteenth of it.
 */
function escapesWithin(bytes: Uint8Array, budget: number): boolean {
  let extra = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b < 0x20) extra += b === 0x0a || b === 0x0d || b === 0x09 || b === 0x08 || b === 0x0c ? 1 : 5; // \n … or \u00XX
    else if (b === 0x22 || b === 0x5c) extra += 1;
    else continue;
    if (extra > budget) return false;
  }
  return true;
}

/**
 * A file the run gave back, encoded as whichever of UTF-8 text and base64 is smaller once written
 * as JSON, and lossless either way: text that is valid UTF-8 and mostly printable goes as "utf8";
 * binary data, and text that JSON would blow up (20 MiB of NUL bytes is 120 MiB as "\u0000"
 * escapes), goes as "base64" (4/3 of its size).
 */
export function encodeOutputFile(path: string, data: Uint8Array): OutputFile {
  const base64Bytes = Math.ceil(data.length / 3) * 4;
  // Binary data usually fails UTF-8 within its first bytes: ask the native check first, where there is one.
  const isUtf8 = (nodeBuffer as { isUtf8?: (input: Uint8Array) => boolean }).isUtf8;
  if ((!isUtf8 || isUtf8(data)) && escapesWithin(data, base64Bytes - data.length)) {
    try {
      return { path, size: data.length, encoding: "utf8", content: strictUtf8.decode(data) };
    } catch {
      // not UTF-8: base64 below
    }
  }
  return { path, size: data.length, encoding: "base64", content: Buffer.from(data.buffer, data.byteOffset, data.length).toString("base64") };
}
