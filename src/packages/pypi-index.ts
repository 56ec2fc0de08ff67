/**
 * A client of a package index's Simple API in its JSON form (PEP 691), on the host, with Node's
 * global fetch. Listings, core metadata (PEP 658/714 `.metadata` files) and wheel downloads, each
 * with a timeout; downloads are checked against the index's sha256 and a size cap before anyone
 * sees their bytes. https://packaging.python.org/en/latest/specifications/simple-repository-api/
 */
import { createHash } from "node:crypto";
import { WasmboxError } from "../core/errors.js";
import { normalizeName } from "./requirement.js";
import { openWheel, parseCoreMetadata, wheelMetadata, type CoreMetadata } from "./wheel-zip.js";

/** PyPI's Simple API. */
export const DEFAULT_INDEX_URL = "https://pypi.org/simple";
/** Default cap on one downloaded wheel: 256 MiB. */
export const DEFAULT_MAX_WHEEL_BYTES = 256 * 1024 * 1024;
/** Default time one HTTP request (listing, metadata or download) may take: 5 minutes. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5 * 60 * 1000;
const MAX_LISTING_BYTES = 64 * 1024 * 1024;
const MAX_METADATA_BYTES = 16 * 1024 * 1024;

/** The index to use: the option, else WASMBOX_INDEX_URL, else PyPI. Trailing slashes are dropped. */
export function indexUrlFrom(option?: string, env: NodeJS.ProcessEnv = process.env): string {
  return (option || env.WASMBOX_INDEX_URL || DEFAULT_INDEX_URL).replace(/\/+$/, "");
}

/** One file of a project, as the index lists it. */
export interface IndexFile {
  filename: string;
  /** Absolute URL (relative ones are resolved against the project page). */
  url: string;
  /** Hex sha256 from the listing, or null when the index gave none. */
  sha256: string | null;
  requiresPython: string | null;
  /** false, or true / the reason text when the file is yanked (PEP 592). */
  yanked: boolean | string;
  /** Bytes, when listed. */
  size: number | null;
  /** Whether `{url}.metadata` exists (PEP 658/714), and its sha256 when given. */
  coreMetadata: false | { sha256: string | null };
}

export interface IndexProject {
  /** Normalized. */
  name: string;
  files: IndexFile[];
}

export interface PackageIndexOptions {
  /** Per HTTP request, milliseconds (default 5 minutes). */
  timeoutMs?: number;
  /** Largest wheel accepted, bytes (default 256 MiB); bigger ones are refused before download ends. */
  maxWheelBytes?: number;
  signal?: AbortSignal;
  /** Told before each wheel download: the file and its size. */
  onDownload?: (file: IndexFile) => void;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * An index client with an in-memory cache of listings, metadata and downloaded wheels (one per
 * `addPackages` call: a resolution that backtracks asks for nothing twice).
 */
export class PackageIndex {
  readonly indexUrl: string;
  private readonly timeoutMs: number;
  private readonly maxWheelBytes: number;
  private readonly signal: AbortSignal | undefined;
  private readonly onDownload: ((file: IndexFile) => void) | undefined;
  private readonly projects = new Map<string, Promise<IndexProject | null>>();
  private readonly wheels = new Map<string, Promise<Uint8Array>>();
  private readonly metadataByUrl = new Map<string, Promise<CoreMetadata>>();
  /** Each response's timeout signal, so a body that stalls past it is reported as a timeout. */
  private readonly timeouts = new WeakMap<Response, AbortSignal>();

  constructor(indexUrl: string, options: PackageIndexOptions = {}) {
    this.indexUrl = indexUrl.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.maxWheelBytes = options.maxWheelBytes ?? DEFAULT_MAX_WHEEL_BYTES;
    this.signal = options.signal;
    this.onDownload = options.onDownload;
  }

  /** GETs a URL, returning the response; HTTP errors, timeouts and network failures are PACKAGE_DOWNLOAD_FAILED. */
  private async get(url: string, accept: string, allow404 = false): Promise<Response | null> {
    this.signal?.throwIfAborted();
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = this.signal ? AbortSignal.any([this.signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await fetch(url, { headers: { Accept: accept, "User-Agent": "wasmbox (wheelhouse)" }, signal, redirect: "follow" });
    } catch (cause) {
      throw this.failure(url, cause, timeout);
    }
    this.timeouts.set(response, timeout);
    if (allow404 && response.status === 404) {
      await response.body?.cancel();
      return null;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new WasmboxError("PACKAGE_DOWNLOAD_FAILED", `GET ${url} failed: HTTP ${response.status} ${response.statusText}`.trim());
    }
    return response;
  }

  private failure(url: string, cause: unknown, timeout: AbortSignal): WasmboxError {
    if (this.signal?.aborted) return new WasmboxError("ABORTED", `cancelled while fetching ${url}`, { cause });
    if (timeout.aborted) return new WasmboxError("PACKAGE_DOWNLOAD_FAILED", `GET ${url} timed out after ${this.timeoutMs / 1000} s`, { cause });
    const detail = (cause as { cause?: { code?: string; message?: string } })?.cause;
    return new WasmboxError("PACKAGE_DOWNLOAD_FAILED", `GET ${url} failed: ${detail?.code ?? detail?.message ?? (cause as Error)?.message ?? cause}`, { cause });
  }

  /** Reads a body up to `maxBytes`, refusing more (a lying or missing Content-Length is no way past the cap). */
  private async readCapped(url: string, response: Response, maxBytes: number, what: string): Promise<Uint8Array> {
    const declared = Number(response.headers.get("content-length") ?? NaN);
    if (declared > maxBytes) {
      await response.body?.cancel();
      throw new WasmboxError("PACKAGE_INVALID", `${what} at ${url} is ${declared} bytes, over the limit of ${maxBytes}`);
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = response.body!.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > maxBytes) {
          await reader.cancel();
          throw new WasmboxError("PACKAGE_INVALID", `${what} at ${url} is over the limit of ${maxBytes} bytes`);
        }
        chunks.push(value);
      }
    } catch (error) {
      if (error instanceof WasmboxError) throw error;
      throw this.failure(url, error, this.timeouts.get(response) ?? new AbortController().signal);
    }
    return new Uint8Array(Buffer.concat(chunks));
  }

  /** The project's files, or null when the index does not know the name (HTTP 404). */
  project(name: string): Promise<IndexProject | null> {
    const normalized = normalizeName(name);
    let pending = this.projects.get(normalized);
    if (!pending) {
      pending = this.fetchProject(normalized);
      pending.catch(() => this.projects.delete(normalized));
      this.projects.set(normalized, pending);
    }
    return pending;
  }

  private async fetchProject(name: string): Promise<IndexProject | null> {
    const pageUrl = `${this.indexUrl}/${name}/`;
    const response = await this.get(pageUrl, "application/vnd.pypi.simple.v1+json", true);
    if (!response) return null;
    const type = response.headers.get("content-type") ?? "";
    const text = Buffer.from(await this.readCapped(pageUrl, response, MAX_LISTING_BYTES, "the project listing")).toString("utf8");
    let body: { files?: unknown };
    try {
      if (!type.includes("json")) throw new Error(type);
      body = JSON.parse(text) as { files?: unknown };
    } catch {
      throw new WasmboxError("PACKAGE_DOWNLOAD_FAILED", `${pageUrl} did not answer with PEP 691 JSON (content-type "${type}"): is ${this.indexUrl} a Simple API index?`);
    }
    if (!Array.isArray(body.files)) throw new WasmboxError("PACKAGE_DOWNLOAD_FAILED", `${pageUrl}: the listing has no "files" array`);
    const files: IndexFile[] = [];
    for (const raw of body.files as Record<string, unknown>[]) {
      if (typeof raw?.filename !== "string" || typeof raw.url !== "string") continue;
      const hashes = (raw.hashes ?? {}) as Record<string, unknown>;
      const meta = raw["core-metadata"] ?? raw["data-dist-info-metadata"] ?? raw["dist-info-metadata"] ?? false;
      const metaHash = typeof meta === "object" && meta !== null ? (meta as Record<string, unknown>).sha256 : undefined;
      files.push({
        filename: raw.filename,
        url: new URL(raw.url, pageUrl).href,
        sha256: typeof hashes.sha256 === "string" ? hashes.sha256.toLowerCase() : null,
        requiresPython: typeof raw["requires-python"] === "string" && raw["requires-python"] !== "" ? raw["requires-python"] : null,
        yanked: typeof raw.yanked === "string" ? raw.yanked || true : raw.yanked === true,
        size: typeof raw.size === "number" ? raw.size : null,
        coreMetadata: meta === false || meta === undefined || meta === null ? false : { sha256: typeof metaHash === "string" ? metaHash.toLowerCase() : null },
      });
    }
    return { name, files };
  }

  /**
   * The core metadata of a wheel: its `.metadata` file when the index serves one (hash-checked),
   * else the METADATA inside the wheel (downloaded once; `download` reuses it).
   */
  metadata(file: IndexFile): Promise<CoreMetadata> {
    let pending = this.metadataByUrl.get(file.url);
    if (!pending) {
      pending = this.fetchMetadata(file);
      pending.catch(() => this.metadataByUrl.delete(file.url));
      this.metadataByUrl.set(file.url, pending);
    }
    return pending;
  }

  private async fetchMetadata(file: IndexFile): Promise<CoreMetadata> {
    if (file.coreMetadata) {
      const url = `${file.url.split("#")[0]}.metadata`;
      const response = await this.get(url, "*/*", true);
      if (response) {
        const bytes = await this.readCapped(url, response, MAX_METADATA_BYTES, "the metadata");
        if (file.coreMetadata.sha256 && sha256Hex(bytes) !== file.coreMetadata.sha256) {
          throw new WasmboxError("PACKAGE_INVALID", `the metadata of ${file.filename} (${url}) does not match its sha256 in the index`);
        }
        return parseCoreMetadata(Buffer.from(bytes).toString("utf8"), file.filename);
      }
    }
    const wheel = openWheel(await this.download(file), file.filename);
    return wheelMetadata(wheel);
  }

  /**
   * The wheel's bytes, checked against the listing's sha256 (mismatch: PACKAGE_INVALID; the bytes
   * are dropped) and the size cap. Each URL is downloaded once per PackageIndex.
   */
  download(file: IndexFile): Promise<Uint8Array> {
    let pending = this.wheels.get(file.url);
    if (!pending) {
      pending = this.fetchWheel(file);
      pending.catch(() => this.wheels.delete(file.url));
      this.wheels.set(file.url, pending);
    }
    return pending;
  }

  private async fetchWheel(file: IndexFile): Promise<Uint8Array> {
    if (file.size !== null && file.size > this.maxWheelBytes) {
      throw new WasmboxError("PACKAGE_INVALID", `${file.filename} is ${file.size} bytes, over the limit of ${this.maxWheelBytes}`);
    }
    this.onDownload?.(file);
    const response = (await this.get(file.url, "*/*"))!;
    const bytes = await this.readCapped(file.url, response, this.maxWheelBytes, file.filename);
    if (file.sha256 === null) {
      throw new WasmboxError("PACKAGE_INVALID", `the index lists ${file.filename} without a sha256 hash; wasmbox installs only files it can verify`);
    }
    const actual = sha256Hex(bytes);
    if (actual !== file.sha256) {
      throw new WasmboxError("PACKAGE_INVALID", `${file.filename} from ${file.url} has sha256 ${actual}, but the index says ${file.sha256}; it was not kept`);
    }
    return bytes;
  }
}
