import { RUN_STATUSES, type RunStatus } from "../core/result.js";
import type { SandboxStats } from "../sandbox/sandbox.js";

/** Upper bounds of the run-duration histogram, in seconds. */
const DURATION_BUCKETS_S = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export interface Gauges extends SandboxStats {
  /** Runs that may wait beyond the running ones before requests get 429. */
  maxQueue: number;
  /** Whether the server is draining for shutdown. */
  draining: boolean;
}

/**
 * The counters behind `GET /metrics`, rendered in the Prometheus text format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 */
export class HttpMetrics {
  private readonly runs = new Map<RunStatus, number>(RUN_STATUSES.map((s) => [s, 0]));
  private readonly buckets = DURATION_BUCKETS_S.map(() => 0);
  private durationSumS = 0;
  private durationCount = 0;
  private readonly responses = new Map<string, number>();
  private sessionsOpened = 0;

  /** Counts a run that produced a result, whatever its status: one-shot runs and session calls alike. */
  recordRun(status: RunStatus, durationMs: number): void {
    this.runs.set(status, (this.runs.get(status) ?? 0) + 1);
    const seconds = durationMs / 1000;
    DURATION_BUCKETS_S.forEach((bound, i) => {
      if (seconds <= bound) this.buckets[i]!++;
    });
    this.durationSumS += seconds;
    this.durationCount++;
  }

  /** Counts a session opened through this server. */
  recordSessionOpened(): void {
    this.sessionsOpened++;
  }

  /** Counts an HTTP answer by route template (never the raw path: ids would explode the series) and status code. */
  recordResponse(route: string, statusCode: number): void {
    const key = `${route}\u0000${statusCode}`;
    this.responses.set(key, (this.responses.get(key) ?? 0) + 1);
  }

  render(gauges: Gauges): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

    metric("wasmbox_runs_total", "counter", "Runs that produced a result, by status.");
    for (const [status, count] of this.runs) lines.push(`wasmbox_runs_total{status="${status}"} ${count}`);

    metric("wasmbox_run_duration_seconds", "histogram", "Time from a run reaching an executor to its result.");
    DURATION_BUCKETS_S.forEach((bound, i) => lines.push(`wasmbox_run_duration_seconds_bucket{le="${bound}"} ${this.buckets[i]}`));
    lines.push(`wasmbox_run_duration_seconds_bucket{le="+Inf"} ${this.durationCount}`);
    lines.push(`wasmbox_run_duration_seconds_sum ${this.durationSumS}`);
    lines.push(`wasmbox_run_duration_seconds_count ${this.durationCount}`);

    // Gauges come from the sandbox itself (sandbox.stats): shared with any other adapter on it.
    metric("wasmbox_runs_running", "gauge", "Runs executing now (sessions' calls not included: they run on their own executor).");
    lines.push(`wasmbox_runs_running ${gauges.running}`);
    metric("wasmbox_runs_queued", "gauge", "Runs waiting for a free slot.");
    lines.push(`wasmbox_runs_queued ${gauges.queued}`);
    metric("wasmbox_max_concurrency", "gauge", "Runs that may execute at once.");
    lines.push(`wasmbox_max_concurrency ${gauges.maxConcurrency}`);
    metric("wasmbox_max_queue", "gauge", "Runs that may wait beyond the running ones before requests get 429.");
    lines.push(`wasmbox_max_queue ${gauges.maxQueue}`);
    metric("wasmbox_pool_size", "gauge", "Python executors kept loaded ahead of demand (configured).");
    lines.push(`wasmbox_pool_size ${gauges.poolSize}`);
    metric("wasmbox_pool_warm", "gauge", "Executors loaded and idle, over all languages.");
    lines.push(`wasmbox_pool_warm ${gauges.warm}`);
    metric("wasmbox_pool_starting", "gauge", "Executors starting.");
    lines.push(`wasmbox_pool_starting ${gauges.starting}`);
    metric("wasmbox_executors_started_total", "counter", "Executor processes started (one per run with isolation \"process\"; far fewer with \"interpreter\").");
    lines.push(`wasmbox_executors_started_total ${gauges.executorsStarted}`);
    metric("wasmbox_sessions_open", "gauge", "Sessions open on the sandbox; each holds an executor.");
    lines.push(`wasmbox_sessions_open ${gauges.sessions}`);
    metric("wasmbox_sessions_opened_total", "counter", "Sessions opened through this server.");
    lines.push(`wasmbox_sessions_opened_total ${this.sessionsOpened}`);
    metric("wasmbox_draining", "gauge", "1 while the server shuts down and refuses new runs.");
    lines.push(`wasmbox_draining ${gauges.draining ? 1 : 0}`);

    metric("wasmbox_http_responses_total", "counter", "HTTP answers by route and status code.");
    for (const [key, count] of [...this.responses].sort()) {
      const [route, code] = key.split("\u0000");
      lines.push(`wasmbox_http_responses_total{route="${route}",code="${code}"} ${count}`);
    }
    return lines.join("\n") + "\n";
  }
}
