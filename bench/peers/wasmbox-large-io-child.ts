/**
 * One large-I/O measurement of the wasmbox library, in a fresh process so its peak resident memory
 * (VmHWM) belongs to this measurement alone. Run by workloads/large-io.ts as
 *   node --import tsx wasmbox-large-io-child.ts stdin|file|out-zero|out-random SIZE_MIB
 * and prints one JSON line: wall time of the run, its durationMs, the host's resident memory just
 * before the run (input already allocated) and its peak, and whether the guest saw every byte.
 */
import { randomFillSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadWasmbox } from "./wasmbox-library.js";

const MIB = 1024 * 1024;
const [kind, sizeArg] = process.argv.slice(2) as [string, string];
const bytes = Number(sizeArg) * MIB;

function status(field: "VmRSS" | "VmHWM"): number {
  const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith(field + ":"));
  return Number(/(\d+)/.exec(line ?? "")?.[1] ?? 0) * 1024;
}

/** Reads stdin or a file in 1 MiB pieces: the guest's memory stays flat whatever the size. */
const READ_ALL = (open: string) => `import sys\nf = ${open}\nn = 0\nwhile True:\n    b = f.read(1 << 20)\n    if not b:\n        break\n    n += len(b)\nn`;

const { Sandbox, fileBytes } = await loadWasmbox();
const sandbox = await Sandbox.create({ poolSize: 1 });
try {
  await sandbox.run({ code: "1" }); // the pool's next executor starts warm
  const caps = { maxStdinBytes: 1024 * MIB, maxInputFileBytes: 1024 * MIB, maxInputBytes: 1024 * MIB, maxOutputFileBytes: 256 * MIB, maxOutputFilesTotalBytes: 256 * MIB };
  let request;
  if (kind === "stdin" || kind === "file") {
    const data = new Uint8Array(bytes);
    randomFillSync(data);
    request = kind === "stdin"
      ? { code: READ_ALL("sys.stdin.buffer"), stdin: data }
      : { code: READ_ALL("open('input.bin', 'rb')"), files: { "input.bin": data } };
  } else {
    const make = kind === "out-zero" ? `bytes(${bytes})` : `__import__('os').urandom(${bytes})`;
    request = { code: `open('output.bin', 'wb').write(${make})` };
  }
  // Let the warm executor settle, then measure from here.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const rssBefore = status("VmRSS");
  const started = performance.now();
  const result = await sandbox.run({ ...request, ...caps, memoryLimitBytes: 1024 * MIB, timeoutMs: 600_000 });
  const wallMs = performance.now() - started;
  const peakRss = status("VmHWM"); // before checking the bytes below, which makes copies of its own
  let exact = false;
  if (kind === "stdin" || kind === "file") exact = result.value === bytes;
  else exact = result.files.length === 1 && fileBytes(result.files[0]!).length === bytes;
  console.log(JSON.stringify({
    kind, bytes, status: result.status, error: result.error?.message ?? null, exact, wallMs, durationMs: result.durationMs,
    rssBefore, peakRss, encoding: result.files[0]?.encoding ?? null,
  }));
} finally {
  await sandbox.close();
}
