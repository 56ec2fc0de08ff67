/** Building table rows, and running one measurement so that a failure becomes a reported row. */
import { fmt, summarize, type Summary } from "./stats.js";
import type { Row, Section } from "./types.js";

export function latencyRow(
  workload: string,
  peer: string,
  samples: number[],
  baseline: Summary | null,
  options: { baseline?: boolean; note?: string; extra?: Record<string, unknown> } = {},
): Row {
  const s = summarize(samples);
  return {
    workload,
    peer,
    baseline: options.baseline ?? false,
    n: s.n,
    unit: "ms",
    headline: s.p50,
    p50: s.p50,
    p95: s.p95,
    p99: s.p99,
    ratio: baseline ? s.p50 / baseline.p50 : options.baseline ? 1 : null,
    ratioP99: baseline ? s.p99 / baseline.p99 : options.baseline ? 1 : null,
    note: options.note ?? "",
    extra: { samples: samples.map((v) => Number(v.toFixed(3))), mean: s.mean, min: s.min, max: s.max, ...options.extra },
  };
}

/** A row whose headline is not a latency (runs/s, MiB, a ratio). `ratio` is given oriented "higher is worse". */
export function valueRow(
  workload: string,
  peer: string,
  unit: Row["unit"],
  headline: number,
  ratio: number | null,
  options: { baseline?: boolean; n?: number; latency?: number[]; note?: string; extra?: Record<string, unknown> } = {},
): Row {
  const s = options.latency?.length ? summarize(options.latency) : null;
  return {
    workload,
    peer,
    baseline: options.baseline ?? false,
    n: options.n ?? s?.n ?? 1,
    unit,
    headline,
    p50: s?.p50 ?? null,
    p95: s?.p95 ?? null,
    p99: s?.p99 ?? null,
    ratio: options.baseline ? 1 : ratio,
    ratioP99: null,
    note: options.note ?? "",
    extra: { ...(options.latency ? { latencySamples: options.latency.map((v) => Number(v.toFixed(3))) } : {}), ...options.extra },
  };
}

/**
 * Runs one measurement; an error is logged and recorded as a "failed" entry instead of ending the
 * bench, so one broken peer cannot hide the others' numbers.
 */
export async function attempt<T>(
  section: Section,
  log: (message: string) => void,
  peer: string,
  workload: string,
  fn: () => Promise<T>,
): Promise<T | null> {
  log(`${workload}: ${peer}…`);
  const started = performance.now();
  try {
    const value = await fn();
    log(`${workload}: ${peer} done in ${fmt((performance.now() - started) / 1000)} s`);
    return value;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log(`${workload}: ${peer} FAILED: ${message}`);
    section.skips.push({ peer, workload, reason: message.split("\n")[0]!.slice(0, 400), kind: "failed" });
    return null;
  }
}
