/** What the harness collects: rows of one table, plus what could not run and why. */

/**
 * One line of the results table. `headline` is the number the row is judged by, in `unit`;
 * `ratio` is headline cost relative to the workload's baseline measured in the same run,
 * always oriented so that higher is worse (time ÷ baseline time, baseline runs/s ÷ runs/s,
 * resident bytes ÷ baseline resident bytes).
 */
export interface Row {
  workload: string;
  peer: string;
  baseline: boolean;
  n: number;
  unit: "ms" | "runs/s" | "MiB" | "×";
  headline: number;
  /** Latency-style percentiles in ms, when the row has per-sample timings. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
  ratio: number | null;
  /** Ratio at p99 against the baseline's p99, for latency rows. */
  ratioP99: number | null;
  note: string;
  /** Extra data for the JSON output (raw samples, per-workload details). */
  extra?: Record<string, unknown>;
}

export interface Skip {
  peer: string;
  /** The workload it was skipped for, or "*" for every workload. */
  workload: string;
  reason: string;
  /** "skipped": cannot run here or cannot run this code; "failed": an error while measuring. */
  kind: "skipped" | "failed";
}

export interface Section {
  rows: Row[];
  skips: Skip[];
  notes: string[];
}

export function emptySection(): Section {
  return { rows: [], skips: [], notes: [] };
}
