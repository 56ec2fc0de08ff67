import { WasmboxError } from "../core/errors.js";
import type { Language } from "../core/request.js";
import type { ExecutorFactory } from "./executor-factory.js";
import type { ExecutorProcess } from "./executor-process.js";

interface Waiter {
  resolve: (executor: ExecutorProcess) => void;
  reject: (error: Error) => void;
}

/**
 * Keeps `size` executors started ahead of demand, so a run finds an interpreter already loaded.
 * Each executor serves one run and is then discarded; the pool starts a replacement at once.
 */
export class ExecutorPool {
  private readonly warm: ExecutorProcess[] = [];
  private readonly waiters: Waiter[] = [];
  private starting = 0;
  private closed = false;
  private failures = 0;

  constructor(
    private readonly factory: ExecutorFactory,
    private readonly language: Language,
    private readonly size: number,
  ) {
    this.refill();
  }

  /** Executors that are loaded and idle. */
  get warmCount(): number {
    return this.warm.length;
  }

  get startingCount(): number {
    return this.starting;
  }

  /** Takes a ready executor, waiting for one to start when none is warm. */
  acquire(signal?: AbortSignal): Promise<ExecutorProcess> {
    if (this.closed) return Promise.reject(new WasmboxError("SANDBOX_CLOSED", "the sandbox is closed"));
    while (this.warm.length > 0) {
      const executor = this.warm.shift()!;
      if (executor.alive) {
        this.refill();
        return Promise.resolve(executor);
      }
    }
    return new Promise<ExecutorProcess>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (executor) => {
          signal?.removeEventListener("abort", onAbort);
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

  private refill(): void {
    const target = this.size + this.waiters.length;
    while (!this.closed && this.warm.length + this.starting < target) {
      this.starting++;
      this.factory.start(this.language).then(
        (executor) => {
          this.starting--;
          this.failures = 0;
          if (this.closed) return executor.kill();
          const waiter = this.waiters.shift();
          if (waiter) waiter.resolve(executor);
          else {
            this.warm.push(executor);
            void executor.exited.then(() => {
              const index = this.warm.indexOf(executor);
              if (index >= 0) this.warm.splice(index, 1);
            });
          }
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
