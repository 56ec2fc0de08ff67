/**
 * How far a batch is: jobs done by status, the rate and what is left. Kept by both modes (local
 * and queue) and read by the CLI's display; no I/O here.
 */

export class BatchProgress {
  /** Records written by this batch, by status ("ok", "error", "timeout", …, "invalid"). */
  readonly byStatus = new Map<string, number>();
  /** Records written by this batch. */
  done = 0;
  /** Lines skipped because the results file already had them (--resume). */
  skipped = 0;
  /** Jobs the host could not run (an infrastructure failure: no line written, --resume retries them). */
  failed = 0;
  /** Jobs started and not finished yet. */
  running = 0;
  private readonly startedAt = Date.now();

  /**
   * @param total non-blank lines of the jobs file, when known (a file, not stdin).
   * @param now the clock, for tests.
   */
  constructor(
    public total: number | null,
    private readonly now: () => number = Date.now,
  ) {}

  record(status: string): void {
    this.done++;
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
  }

  /** Jobs per second over this batch so far (skipped ones not counted). */
  get ratePerSecond(): number {
    const seconds = (this.now() - this.startedAt) / 1000;
    return seconds > 0 ? this.done / seconds : 0;
  }

  /** Seconds left at the current rate; null when the total or the rate is unknown. */
  get etaSeconds(): number | null {
    if (this.total === null || this.ratePerSecond === 0) return null;
    return Math.max(0, this.total - this.skipped - this.done - this.failed) / this.ratePerSecond;
  }

  /** Seconds since the batch started. */
  get elapsedSeconds(): number {
    return (this.now() - this.startedAt) / 1000;
  }

  /** One line: `1200/2000 done · ok 1100 error 90 timeout 10 · 35.2 jobs/s · ETA 23s`. */
  line({ final = false } = {}): string {
    const total = this.total === null ? "" : `/${this.total - this.skipped}`;
    const statuses = [...this.byStatus].sort((a, b) => b[1] - a[1]).map(([status, n]) => `${status} ${n}`).join(" ");
    const parts = [`${this.done}${total} done`];
    if (statuses) parts.push(statuses);
    if (this.failed > 0) parts.push(`${this.failed} not run (host failure; --resume retries)`);
    if (this.skipped > 0) parts.push(`${this.skipped} already done`);
    parts.push(`${this.ratePerSecond.toFixed(1)} jobs/s`);
    const eta = this.etaSeconds;
    if (!final && eta !== null && this.done > 0) parts.push(`ETA ${formatSeconds(eta)}`);
    return parts.join(" · ");
  }
}

/** 83 -> "1m23s", 7 -> "7s", 3700 -> "1h01m". */
export function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
