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
