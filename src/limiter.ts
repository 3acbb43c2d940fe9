/**
 * Bounds the number of claude processes at once (each is ~290 MiB): a FIFO semaphore with a
 * bounded queue and a bounded wait. A request that cannot get a slot in time, or finds the
 * queue full, gets 429 with `Retry-After`.
 */
import { ProxyError } from "./errors.ts";

/** Gives a slot back; calling it more than once is harmless. */
export type Release = () => void;

interface Waiter {
  grant: (release: Release) => void;
  fail: (error: unknown) => void;
}

/** Seconds suggested to clients rejected by the limiter. */
export const QUEUE_RETRY_AFTER_SECONDS = 5;

/** The concurrency limiter. */
export class ConcurrencyLimiter {
  readonly #max: number;
  readonly #maxQueue: number;
  readonly #maxWaitMs: number;
  readonly #queue: Waiter[] = [];
  #running = 0;
  /** Called whenever `running` or `queued` changes (metrics). */
  onChange: (() => void) | undefined;

  /**
   * @param max most slots at once
   * @param maxQueue most waiting requests
   * @param maxWaitMs longest wait for a slot, ms (0: no limit)
   */
  constructor(max: number, maxQueue: number, maxWaitMs: number) {
    this.#max = max;
    this.#maxQueue = maxQueue;
    this.#maxWaitMs = maxWaitMs;
  }

  /** The most slots at once. */
  get max(): number {
    return this.#max;
  }

  /** Slots in use. */
  get running(): number {
    return this.#running;
  }

  /** Requests waiting. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Waits for a slot, in arrival order.
   * @throws ProxyError 429 `queue_full` / `queue_timeout` (with Retry-After); the signal's reason
   *   when it aborts while waiting.
   */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#running < this.#max && this.#queue.length === 0)
      return Promise.resolve(this.#grant());
    if (this.#queue.length >= this.#maxQueue) {
      return Promise.reject(
        new ProxyError(
          429,
          `Too many requests: ${this.#running} running and ${this.#queue.length} queued`,
          {
            type: "rate_limit_error",
            code: "queue_full",
            retryAfterSeconds: QUEUE_RETRY_AFTER_SECONDS,
          },
        ),
      );
    }
    return new Promise<Release>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const index = this.#queue.indexOf(waiter);
        if (index >= 0) this.#queue.splice(index, 1);
        this.onChange?.();
      };
      const waiter: Waiter = {
        grant: (release) => {
          cleanup();
          resolve(release);
        },
        fail: (error) => {
          cleanup();
          reject(error);
        },
      };
      const onAbort = () => waiter.fail(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (this.#maxWaitMs > 0) {
        timer = setTimeout(
          () =>
            waiter.fail(
              new ProxyError(429, `Too many requests: no free slot within ${this.#maxWaitMs} ms`, {
                type: "rate_limit_error",
                code: "queue_timeout",
                retryAfterSeconds: QUEUE_RETRY_AFTER_SECONDS,
              }),
            ),
          this.#maxWaitMs,
        );
      }
      this.#queue.push(waiter);
      this.onChange?.();
    });
  }

  #grant(): Release {
    this.#running++;
    this.onChange?.();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running--;
      const next = this.#queue[0];
      if (next !== undefined && this.#running < this.#max) next.grant(this.#grant());
      else this.onChange?.();
    };
  }
}
