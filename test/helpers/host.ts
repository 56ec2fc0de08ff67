/**
 * Host-side witnesses for the security corpus: secrets planted where a guest must not reach them,
 * a loopback server that counts every connection, and fingerprints of host files that must not change.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

export interface Canaries {
  /** Value of WASMBOX_TEST_SECRET in the host's environment. */
  envSecret: string;
  /** Content of a host file under the user's home directory (/root when run as root). */
  fileSecret: string;
  fileDir: string;
  filePath: string;
  /** Host paths a guest tries to create; they must never exist. */
  writeTargets: string[];
  /** A DENO_DIR planted in the host environment; executors must not use (or write to) it. */
  hostileDenoDir: string;
  cleanup(): void;
}

/** Plants the secrets. Call before Sandbox.create, so a leak through the environment would be possible. */
export function plantCanaries(): Canaries {
  const token = randomBytes(12).toString("hex");
  const envSecret = `wasmbox-env-secret-${token}`;
  const fileSecret = `wasmbox-file-secret-${randomBytes(12).toString("hex")}`;
  const fileDir = mkdtempSync(join(homedir(), ".wasmbox-security-"));
  const filePath = join(fileDir, "secret.txt");
  writeFileSync(filePath, fileSecret);
  const hostileDenoDir = mkdtempSync(join(tmpdir(), "wasmbox-hostile-deno-dir-"));
  process.env.WASMBOX_TEST_SECRET = envSecret;
  process.env.DENO_DIR = hostileDenoDir;
  return {
    envSecret,
    fileSecret,
    fileDir,
    filePath,
    writeTargets: [join(fileDir, "pwned.txt"), join(tmpdir(), `wasmbox-pwned-${token}`)],
    hostileDenoDir,
    cleanup() {
      rmSync(fileDir, { recursive: true, force: true });
      rmSync(hostileDenoDir, { recursive: true, force: true });
      for (const path of this.writeTargets) rmSync(path, { force: true });
      delete process.env.WASMBOX_TEST_SECRET;
      delete process.env.DENO_DIR;
    },
  };
}

/** mtime and size of files that every run depends on; a guest must not be able to change them. */
export function fingerprint(paths: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const path of paths) {
    if (!existsSync(path)) continue;
    const stat = statSync(path);
    out[path] = `${stat.size}:${stat.mtimeMs}`;
  }
  return out;
}

/** The memory snapshots in the wasmbox cache (existing ones are immutable by name). */
export function snapshotFiles(cacheDir: string): string[] {
  if (!existsSync(cacheDir)) return [];
  return readdirSync(cacheDir).filter((name) => name.endsWith(".snapshot")).map((name) => join(cacheDir, name));
}

/** Files of the compile caches executors start from (each executor gets a copy; none may write here). */
export function compileCacheFiles(cacheDir: string): string[] {
  if (!existsSync(cacheDir)) return [];
  return readdirSync(cacheDir)
    .filter((name) => name.endsWith(".deno-dir"))
    .flatMap((name) => readdirSync(join(cacheDir, name), { recursive: true, encoding: "utf8" }).map((file) => join(cacheDir, name, file)));
}

export function listDir(path: string): string[] {
  return readdirSync(path).sort();
}

export function readText(path: string): string {
  return readFileSync(path, "utf8");
}

/** An HTTP server on 127.0.0.1 that counts every TCP connection made to it. */
export interface Witness {
  port: number;
  connections: number;
  close(): Promise<void>;
}

export async function startWitness(): Promise<Witness> {
  const server: Server = createServer((_request, response) => response.end("witness"));
  const witness = { port: 0, connections: 0, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  server.on("connection", () => witness.connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  witness.port = (server.address() as { port: number }).port;
  return witness;
}
