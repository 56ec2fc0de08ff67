/**
 * What the host's watchdog reads of one executor from outside it, where the guest cannot reach:
 * the resident memory of its process tree, the growth of its private storage (Deno's caches), its
 * worker threads, CPU time and run state (Linux /proc), and the signals that stop and continue it.
 * The tree is fixed when the executor is ready: a guest cannot start processes.
 */
import type { PrivateStorage } from "./executor-launch.js";
import { PRIVATE_STORAGE_BUDGET_BYTES } from "./executor-launch.js";
import {
  canMeasureMemory,
  CLOCK_TICK_MS,
  cpuTicks,
  processTree,
  residentBytes,
  runningPids,
  threadCpuTicks,
  workerThreadCount,
  workerThreads,
} from "./process-memory.js";
import { storageBytes } from "./storage-usage.js";

/**
 * Whether this host can read an executor's CPU time (Linux /proc), which a CPU-time limit
 * (`cpuTimeMs`) needs. Elsewhere (macOS) a run that asks for one is refused, never run without it.
 */
export const canMeasureCpuTime = canMeasureMemory;

export class ExecutorMeter {
  /** The executor's processes (bubblewrap's and Deno), leader first; empty where /proc cannot be read. */
  pids: number[] = [];
  /** Resident bytes of the ready executor, before any run. */
  baselineBytes = 0;
  private storageBaseline = 0;

  constructor(
    private readonly leaderPid: number,
    readonly storage: PrivateStorage | null,
  ) {}

  /** Reads the process tree, its resident memory and its storage once the executor is ready: the baselines. */
  calibrate(): void {
    if (canMeasureMemory) {
      this.pids = processTree(this.leaderPid);
      this.baselineBytes = this.residentBytes() ?? 0;
    }
    if (this.storage) this.storageBaseline = storageBytes(this.storage, this.pids) ?? 0;
  }

  /** Whether memory, threads and CPU can be read here (Linux, and the tree was found). */
  get measurable(): boolean {
    return canMeasureMemory && this.pids.length > 0;
  }

  /** Whether any limit can be watched: memory, or the private storage. */
  get watchable(): boolean {
    return this.measurable || this.storage !== null;
  }

  residentBytes(): number | null {
    return residentBytes(this.pids);
  }

  /** What the guest made Deno write into the private storage beyond its starting copy, in bytes (0 when unmeasurable). */
  storageGrowthBytes(): number {
    if (!this.storage) return 0;
    const now = storageBytes(this.storage, this.pids);
    return now === null ? 0 : Math.max(0, now - this.storageBaseline);
  }

  /** Names what is over a limit now (resident memory against `limitBytes`, or the storage budget), or null. */
  overLimit(limitBytes: number, checkStorage: boolean): string | null {
    if (this.measurable) {
      const resident = this.residentBytes();
      if (resident !== null && resident > limitBytes) return `its resident memory reached ${resident} bytes`;
    }
    if (checkStorage) {
      const grown = this.storageGrowthBytes();
      if (grown > PRIVATE_STORAGE_BUDGET_BYTES) {
        return `it made Deno write ${Number.isFinite(grown) ? `${grown} bytes` : "too many files"} to the executor's private storage (module and code caches), over its budget of ${PRIVATE_STORAGE_BUDGET_BYTES} bytes`;
      }
    }
    return null;
  }

  /** Worker threads of the executor (Deno names them worker-<id>), or null when unreadable. */
  workerThreads(): number | null {
    return workerThreadCount(this.pids);
  }

  /** CPU ticks the tree has used, or null. */
  cpuTicks(): number | null {
    return cpuTicks(this.pids);
  }

  /**
   * CPU time the tree has used, in milliseconds (user + system, every thread of every process of
   * it, ended threads included: the kernel adds them to their process), or null where unreadable.
   */
  cpuTimeMs(): number | null {
    if (!this.measurable) return null;
    const ticks = cpuTicks(this.pids);
    return ticks === null ? null : ticks * CLOCK_TICK_MS;
  }

  /**
   * Isolate mode: the thread of the worker that loads beside the run for the next one (the spare),
   * to leave its CPU out of the run's. The run's worker is the oldest worker alive when a run starts
   * (the ones before it are gone: endedWorkersGone), and the executor starts the spare before it
   * hands the run over, so the spare is the second oldest: any worker the guest starts is younger,
   * whenever the host looks. Null when there is no second worker or /proc is unreadable.
   */
  spareWorkerThread(): { pid: number; tid: number } | null {
    if (!this.measurable) return null;
    const workers = workerThreads(this.pids);
    return workers && workers.length >= 2 ? workers[1]! : null;
  }

  /** CPU time of one thread in ms, or null once it is gone. */
  threadCpuTimeMs(thread: { pid: number; tid: number }): number | null {
    const ticks = threadCpuTicks(thread.pid, thread.tid);
    return ticks === null ? null : ticks * CLOCK_TICK_MS;
  }

  /** Processes of the tree that are not stopped. */
  runningPids(): number[] {
    return runningPids(this.pids);
  }

  /**
   * Signals every process of the tree and the group the executor leads: bwrap --new-session puts
   * Deno in a session (and process group) of its own.
   */
  signalAll(signal: NodeJS.Signals): void {
    for (const pid of this.pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // gone
      }
    }
    try {
      process.kill(-this.leaderPid, signal);
    } catch {
      // gone, or no group
    }
  }
}
