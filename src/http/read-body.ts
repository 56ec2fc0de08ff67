import type { IncomingMessage } from "node:http";

/** Default cap on a request body: 8 MiB, the same as a `serve --stdio` request line. */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;

export type BodyOutcome = { kind: "body"; bytes: Buffer } | { kind: "too-large" } | { kind: "aborted" };

/**
 * Reads a request body, never holding more than maxBytes of it: a declared Content-Length over
 * the cap is refused before reading, a chunked body as soon as it crosses the cap. The rest of an
 * oversized body is left unread; the caller answers 413 and closes the connection.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<BodyOutcome> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.resolve({ kind: "too-large" });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (outcome: BodyOutcome) => {
      if (settled) return;
      settled = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
      resolve(outcome);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        chunks.length = 0;
        req.pause();
        finish({ kind: "too-large" });
      } else {
        chunks.push(chunk);
      }
    };
    const onEnd = () => finish({ kind: "body", bytes: Buffer.concat(chunks) });
    const onError = () => finish({ kind: "aborted" });
    const onClose = () => finish(req.complete ? { kind: "body", bytes: Buffer.concat(chunks) } : { kind: "aborted" });
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}
