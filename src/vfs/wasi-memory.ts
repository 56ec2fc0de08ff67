/**
 * Caps a WebAssembly module's linear memory. A module that defines its own memory grows it with the
 * `memory.grow` instruction, which no JavaScript hook sees; so the module is rewritten once (when it
 * is compiled) to import that memory instead, and each run supplies a `WebAssembly.Memory` whose
 * `maximum` is the run's memory limit. Past it `memory.grow` returns -1 and malloc fails inside the
 * guest, as it would on a machine without more memory.
 *
 * Binary format: https://webassembly.github.io/spec/core/binary/modules.html
 */

const WASM_PAGE_BYTES = 65536;
const SECTION_IMPORT = 2;
const SECTION_MEMORY = 5;
const IMPORT_KIND_MEMORY = 2;

/** Where the rewritten module expects its memory. */
export const MEMORY_IMPORT = { module: "wasmbox", name: "memory" } as const;

export interface MemoryShape {
  /** The import the memory must be supplied through. */
  module: string;
  name: string;
  /** Declared size in 64 KiB pages. */
  minPages: number;
  maxPages: number | null;
  shared: boolean;
}

export interface CappableModule {
  bytes: Uint8Array;
  /** null when the module has no memory at all. */
  memory: MemoryShape | null;
}

class Reader {
  constructor(
    readonly bytes: Uint8Array,
    public at = 0,
  ) {}
  byte(): number {
    if (this.at >= this.bytes.length) throw new RangeError("unexpected end of module");
    return this.bytes[this.at++]!;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return result;
      shift += 7;
      if (shift > 63) throw new RangeError("LEB128 too long");
    }
  }
  name(): string {
    const len = this.u32();
    const text = new TextDecoder().decode(this.bytes.subarray(this.at, this.at + len));
    this.at += len;
    return text;
  }
  /** Limits: flags, min, optional max (memory64 and shared flags kept as they are). */
  limits(): { flags: number; min: number; max: number | null } {
    const flags = this.byte();
    const min = this.u32();
    const max = flags & 1 ? this.u32() : null;
    return { flags, min, max };
  }
}

function u32(value: number): number[] {
  const out: number[] = [];
  do {
    let b = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) b |= 0x80;
    out.push(b);
  } while (value > 0);
  return out;
}

function nameBytes(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...u32(bytes.length), ...bytes];
}

interface Section {
  id: number;
  start: number; // payload start
  end: number; // payload end
}

function sections(bytes: Uint8Array): Section[] {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new TypeError("not a WebAssembly module (no \\0asm header)");
  }
  const r = new Reader(bytes, 8);
  const out: Section[] = [];
  while (r.at < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    out.push({ id, start: r.at, end: r.at + size });
    r.at += size;
  }
  return out;
}

/** Skips one import's description, returning the memory limits when it is a memory import. */
function readImportDesc(r: Reader, kind: number): { flags: number; min: number; max: number | null } | null {
  switch (kind) {
    case 0: // func: type index
      r.u32();
      return null;
    case 1: // table: reftype + limits
      r.byte();
      r.limits();
      return null;
    case IMPORT_KIND_MEMORY:
      return r.limits();
    case 3: // global: valtype + mut
      r.byte();
      r.byte();
      return null;
    case 4: // tag: attribute + type index
      r.byte();
      r.u32();
      return null;
    default:
      throw new TypeError(`unknown import kind ${kind}`);
  }
}

/**
 * Makes `bytes` take its memory as an import (MEMORY_IMPORT) when it defines one, so the caller can
 * decide its maximum per instance. A module that already imports its memory is returned unchanged,
 * with where it imports it from.
 */
export function makeMemoryImported(bytes: Uint8Array): CappableModule {
  const list = sections(bytes);
  const importSection = list.find((s) => s.id === SECTION_IMPORT);
  if (importSection) {
    const r = new Reader(bytes, importSection.start);
    const count = r.u32();
    for (let i = 0; i < count; i++) {
      const module = r.name();
      const name = r.name();
      const kind = r.byte();
      const limits = readImportDesc(r, kind);
      if (limits) {
        return { bytes, memory: { module, name, minPages: limits.min, maxPages: limits.max, shared: (limits.flags & 2) !== 0 } };
      }
    }
  }
  const memorySection = list.find((s) => s.id === SECTION_MEMORY);
  if (!memorySection) return { bytes, memory: null };
  const mr = new Reader(bytes, memorySection.start);
  const memoryCount = mr.u32();
  if (memoryCount !== 1) return { bytes, memory: null }; // multi-memory: left to the watchdog
  const limitsStart = mr.at;
  const limits = mr.limits();
  if (limits.flags & 4) return { bytes, memory: null }; // memory64: left to the watchdog
  const limitsBytes = [...bytes.subarray(limitsStart, mr.at)];
  const entry = [...nameBytes(MEMORY_IMPORT.module), ...nameBytes(MEMORY_IMPORT.name), IMPORT_KIND_MEMORY, ...limitsBytes];

  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  const section = (id: number, payload: number[] | Uint8Array) => {
    parts.push(new Uint8Array([id, ...u32(payload.length)]));
    parts.push(payload instanceof Uint8Array ? payload : new Uint8Array(payload));
  };
  let placed = false;
  const placeImports = () => {
    if (placed) return;
    placed = true;
    if (importSection) {
      const r = new Reader(bytes, importSection.start);
      const count = r.u32();
      const rest = bytes.subarray(r.at, importSection.end);
      const payload = new Uint8Array([...u32(count + 1), ...rest, ...entry]);
      section(SECTION_IMPORT, payload);
    } else {
      section(SECTION_IMPORT, [...u32(1), ...entry]);
    }
  };
  for (const s of list) {
    // The import section belongs after the type section (id 1) and before anything numbered higher;
    // custom sections (id 0) may sit anywhere.
    if (s.id === SECTION_IMPORT) {
      placeImports();
      continue;
    }
    if (s.id !== 0 && s.id > SECTION_IMPORT) placeImports();
    if (s.id === SECTION_MEMORY) continue;
    parts.push(rawSection(bytes, s));
  }
  placeImports();
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return {
    bytes: out,
    memory: { ...MEMORY_IMPORT, minPages: limits.min, maxPages: limits.max, shared: (limits.flags & 2) !== 0 },
  };
}

/** A section as it was: id, size and payload. */
function rawSection(bytes: Uint8Array, s: Section): Uint8Array {
  const size = u32(s.end - s.start);
  const out = new Uint8Array(1 + size.length + (s.end - s.start));
  out[0] = s.id;
  out.set(size, 1);
  out.set(bytes.subarray(s.start, s.end), 1 + size.length);
  return out;
}

/**
 * A memory for one instance of `shape`, capped at `limitBytes` (and at the module's own maximum).
 * Throws RangeError when the module needs more memory to start than the limit allows.
 */
export function cappedMemory(shape: MemoryShape, limitBytes: number): WebAssembly.Memory {
  const capPages = Math.min(Math.floor(limitBytes / WASM_PAGE_BYTES), 65536, shape.maxPages ?? 65536);
  if (shape.minPages > capPages) {
    throw new RangeError(`the module needs ${shape.minPages * WASM_PAGE_BYTES} bytes of memory to start, more than the limit of ${limitBytes}`);
  }
  return new WebAssembly.Memory({ initial: shape.minPages, maximum: capPages, shared: shape.shared } as WebAssembly.MemoryDescriptor);
}

/**
 * Whether a failed run ran out of memory: its memory is (nearly) at its maximum. A malloc of a big
 * block can fail with some room left, so "nearly" allows the larger of 16 MiB and a tenth.
 */
export function nearMemoryCap(memory: WebAssembly.Memory, limitBytes: number): boolean {
  const used = memory.buffer.byteLength;
  const cap = Math.min(Math.floor(limitBytes / WASM_PAGE_BYTES) * WASM_PAGE_BYTES, 4 * 1024 * 1024 * 1024);
  return cap - used <= Math.max(16 * 1024 * 1024, cap / 10);
}
