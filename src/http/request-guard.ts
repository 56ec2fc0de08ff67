import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";

/**
 * Edge checks shared by `serve --http` and `mcp --http`: which binds count as loopback, the
 * bearer token, and the Host header check that stops DNS rebinding on a loopback bind.
 */

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, "localhost". */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (bare === "localhost") return true;
  if (isIP(bare) === 4) return bare.startsWith("127.");
  if (isIP(bare) === 6) return bare === "::1" || /^::ffff:127\./.test(bare);
  return false;
}

/**
 * Constant-time comparison of an `Authorization: Bearer ...` header with the expected token.
 * Hashing first makes both sides the same length, so timingSafeEqual never throws.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "");
  if (!match) return false;
  const given = createHash("sha256").update(match[1]!).digest();
  const expected = createHash("sha256").update(token).digest();
  return timingSafeEqual(given, expected);
}

/**
 * On a loopback bind, only requests that name the machine itself in their Host header are
 * served: a web page that rebinds its own name to 127.0.0.1 still sends its own name, and is
 * refused. (Without a token, anything that can reach the port could otherwise run code here.)
 */
export function hostHeaderAllowed(hostHeader: string | undefined): boolean {
  if (!hostHeader) return false;
  const match = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(hostHeader.trim());
  return match !== null && isLoopbackHost(match[1]!);
}

/** The token from `--token`, else WASMBOX_TOKEN; an empty value counts as none. */
export function resolveToken(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const token = flag ?? env.WASMBOX_TOKEN;
  return token ? token : undefined;
}
