import { WasmboxError } from "../core/errors.js";
import type { Language } from "../core/request.js";
import type { ExecutorFactory } from "./executor-factory.js";
import type { ExecutorProcess } from "./executor-process.js";
import type { PackageEnvironment } from "../packages/environment.js";

interface Waiter {
  resolve: (executor: ExecutorProcess) => void;
  reject: (error: Error) => void;
}

/**
 * Keeps `size` executors started ahead of demand, so a run finds an interpreter already loaded.
 * By default each executor serves one run and is then discarded; the pool starts a replacement at
 * once. With `reuse`, an executor lent for a run comes back through release() once it can take
 * another ("interpreter": it restored its warm state; "isolate": its next fresh worker has loaded),
 * and is only replaced if it cannot.
 */
export class ExecutorPool {
  private readonly warm: ExecutorProcess[] = [];
  /** Reuse mode: executors out on a run (or resetting), expected back. */
  private readonly lent = new Set<ExecutorProcess>();
  /** Reuse mode: lent executors whose run ended and that are restoring their warm state. */
  private resetting = 0;
  private readonly waiters: Waiter[] = [];
  private starting = 0;
  private closed = false;
  private failures = 0;

  private readonly reuse: boolean;
  private readonly isolate: boolean;
  /** Python: the package environment every executor of this pool starts with (null: the base). */
  readonly environment: PackageEnvironment | null;

  constructor(
    private readonly factory: ExecutorFactory,
    private readonly language: Language,
    private readonly size: number,
    options: { reuse?: "interpreter" | "isolate"; environment?: PackageEnvironment | null } = {},
  ) {
    this.environment = options.environment ?? null;
    // Every runtime can take a fresh worker per run; only some can reset an interpreter in place.
    this.isolate = options.reuse === "isolate";
    this.reuse = this.isolate || (options.reuse === "interpreter" && factory.resettable(language));
    this.refill();
  }

  /** Whether executors from this pool serve many runs ("interpreter" or "isolate" isolation). */
  get reusing(): boolean {
    return this.reuse;
  }

  /** Executors that are loaded and idle. */
  get warmCount(): number {
    return this.warm.length;
  }

  get startingCount(): number {
    return this.starting;
  }

  /**
   * Takes a ready executor, waiting for one to start when none is warm. `lend`: in reuse mode the
   * caller gives it back with release() after one run (a session keeps its executor: no `lend`).
   */
  acquire(signal?: AbortSignal, options: { lend?: boolean } = {}): Promise<ExecutorProcess> {
    if (this.closed) return Promise.reject(new WasmboxError("SANDBOX_CLOSED", "the sandbox is closed"));
    const lend = options.lend === true && this.reuse;
    while (this.warm.length > 0) {
      const executor = this.warm.shift()!;
      if (executor.alive) {
        if (lend) this.lent.add(executor);
        this.refill();
        return Promise.resolve(executor);
      }
    }
    return new Promise<ExecutorProcess>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (executor) => {
          signal?.removeEventListener("abort", onAbort);
          if (lend) this.lent.add(executor);
          resolve(executor);
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      const onAbort = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new WasmboxError("ABORTED", "aborted while waiting for an executor"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
      this.refill();
    });
  }

  /**
   * Reuse mode: takes back an executor lent for a run. It rejoins the pool once it has restored
   * its warm state; one that cannot (ExecutorProcess.whenReusable says why not) is discarded and
   * replaced.
   */
  release(executor: ExecutorProcess): void {
    if (!this.lent.has(executor)) return;
    this.resetting++;
    void executor.whenReusable().then((reusable) => {
      this.resetting--;
      this.lent.delete(executor);
      if (reusable && !this.closed) this.offer(executor);
      else executor.kill();
      this.refill();
    });
  }

  /** Hands a ready executor to the first waiter, or keeps it warm. */
  private offer(executor: ExecutorProcess): void {
    const waiter = this.waiters.shift();
    if (waiter) return waiter.resolve(executor);
    // Reuse mode grows the pool past `size` for a burst of waiters; it shrinks back as they return.
    if (this.reuse && this.warm.length + this.lent.size >= this.size) return executor.kill();
    // A reused executor that waits here is stopped until its next run: nothing runs unwatched.
    executor.park();
    this.warm.push(executor);
    void executor.exited.then(() => {
      const index = this.warm.indexOf(executor);
      if (index >= 0) this.warm.splice(index, 1);
    });
  }

  private refill(): void {
    let have = this.warm.length + this.starting;
    let target = this.size + this.waiters.length;
    if (this.reuse) {
      // Lent executors count as capacity. Those resetting are back within milliseconds and will
      // take the first waiters; only waiters beyond them (a burst of long runs) start processes.
      have += this.lent.size;
      const running = this.lent.size - this.resetting;
      target = Math.max(this.size, running + Math.max(0, this.waiters.length - this.resetting));
    }
    for (; !this.closed && have < target; have++) {
      this.starting++;
      // A pool of 0 (a one-shot run) starts executors only for a waiting run: no warm-up.
      const options = { keepPristine: this.reuse && !this.isolate, isolate: this.isolate, warmUp: this.size > 0, environment: this.environment };
      this.factory.start(this.language, options).then(
        (executor) => {
          this.starting--;
          this.failures = 0;
          if (this.closed) return executor.kill();
          this.offer(executor);
          this.refill();
        },
        (error: Error) => {
          this.starting--;
          this.failures++;
          // An executor that cannot start now will likely not start on retry: fail the waiters
          // after a few tries instead of spinning.
          if (this.failures >= 3) {
            for (const waiter of this.waiters.splice(0)) waiter.reject(error);
            return;
          }
          // Keep the process alive for the retry only when someone is waiting on it.
          const retry = setTimeout(() => this.refill(), 100 * this.failures);
          if (this.waiters.length === 0) retry.unref();
        },
      );
    }
  }

  /** Kills idle executors and refuses new acquisitions. Idempotent. */
  close(): void {
    this.closed = true;
    for (const executor of this.warm.splice(0)) executor.kill();
    for (const waiter of this.waiters.splice(0)) waiter.reject(new WasmboxError("SANDBOX_CLOSED", "the sandbox is closed"));
  }
}
