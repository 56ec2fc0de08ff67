import type { OsSandboxMode } from "../host/executor-launch.js";

/** `--timeout 2` (seconds), `500ms`, `1.5s`, `2m` -> milliseconds. Null when unreadable. */
export function parseDurationMs(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/i.exec(text);
  if (!match) return null;
  const amount = Number(match[1]);
  const unit = (match[2] ?? "s").toLowerCase();
  const ms = unit === "ms" ? amount : unit === "m" ? amount * 60_000 : amount * 1000;
  return Number.isFinite(ms) && ms >= 1 ? Math.round(ms) : null;
}

/** `--memory 512` (MiB), `1g`, `300m`, `64k`, `1048576b` -> bytes. Null when unreadable. */
export function parseSizeBytes(text: string, defaultUnit: "b" | "m" = "m"): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$/i.exec(text);
  if (!match) return null;
  const unit = (match[2] ?? defaultUnit).toLowerCase()[0];
  const scale = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  const bytes = Math.round(Number(match[1]) * scale);
  return Number.isFinite(bytes) && bytes >= 0 ? bytes : null;
}

/** Bytes as the size flags take them, for `--help` defaults: 1048576 -> `1m`, 1073741824 -> `1g`. */
export function sizeText(bytes: number): string {
  for (const [unit, scale] of [["g", 1024 ** 3], ["m", 1024 ** 2], ["k", 1024]] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return String(bytes);
}

/** Milliseconds as the duration flags take them, for `--help` defaults: 30000 -> `30s`, 500 -> `500ms`. */
export function durationText(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** `--package sympy,pydantic` (repeatable) -> the names, trimmed, empty ones dropped. */
export function parsePackageNames(text: string): string[] {
  return text.split(",").map((name) => name.trim()).filter(Boolean);
}

/** What every command says of an unreadable `--os-sandbox`. */
export const OS_SANDBOX_USAGE = "--os-sandbox: use auto, require or off";

/** `--os-sandbox auto|require|off` -> the mode. Null when it is none of them. */
export function parseOsSandbox(text: string): OsSandboxMode | null {
  return text === "auto" || text === "require" || text === "off" ? text : null;
}
