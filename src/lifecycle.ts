/**
 * The proxy's life: which CLI runs are alive, and graceful shutdown. On SIGINT/SIGTERM the
 * proxy stops taking requests (503), lets running ones finish within a grace period, then
 * stops the rest (their CLIs are killed, their temp files removed).
 */

import type { Run } from "./engine/run.ts";
import { ProxyError } from "./errors.ts";

/** Tracks live runs and the draining state. */
export class Lifecycle {
  /** Runs whose CLI is alive (streaming, collecting, or waiting for tool results). */
  readonly runs = new Set<Run>();
  /** True once shutdown began: new requests get 503. */
  draining = false;
  readonly #idleWaiters: Array<() => void> = [];

  /** Registers a run until {@link end} is called for it. */
  begin(run: Run): void {
    this.runs.add(run);
  }

  /** Forgets a run (it has ended). */
  end(run: Run): void {
    this.runs.delete(run);
    this.checkIdle();
  }

  /** Wakes {@link waitIdle} callers when no run is active (also after a run parks). */
  checkIdle(): void {
    if (this.activeCount() === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  /** Runs that are working for a request now (not parked waiting for tool results, not warm or spare). */
  activeCount(): number {
    let count = 0;
    for (const run of this.runs) if (!run.waiting && run.idle === null) count++;
    return count;
  }

  /**
   * Waits until no run is active or `graceMs` passed; resolves true when all finished in time.
   */
  waitIdle(graceMs: number): Promise<boolean> {
    if (this.activeCount() === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), graceMs);
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Aborts every live run and waits (up to `capMs`) for their CLIs to exit. */
  async stopAll(capMs: number): Promise<void> {
    const runs = [...this.runs];
    const stops = runs.map((run) =>
      run.stop(
        new ProxyError(503, "The proxy is shutting down", {
          type: "server_error",
          code: "shutting_down",
        }),
      ),
    );
    await Promise.race([Promise.all(stops), new Promise((r) => setTimeout(r, capMs))]);
  }
}
