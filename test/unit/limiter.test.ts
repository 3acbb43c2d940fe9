import { afterEach, describe, expect, it, vi } from "vitest";
import { ProxyError } from "../../src/errors.ts";
import { ConcurrencyLimiter, QUEUE_RETRY_AFTER_SECONDS, type Release } from "../../src/limiter.ts";

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("no error");
}

/** Lets pending promise callbacks run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

afterEach(() => {
  vi.useRealTimers();
});

describe("ConcurrencyLimiter", () => {
  it("grants free slots at once and counts them", async () => {
    const limiter = new ConcurrencyLimiter(2, 10, 0);
    await limiter.acquire();
    await limiter.acquire();
    expect(limiter.running).toBe(2);
    expect(limiter.queued).toBe(0);
  });

  it("hands slots to waiters in arrival order", async () => {
    const limiter = new ConcurrencyLimiter(1, 10, 0);
    const first = await limiter.acquire();
    const order: string[] = [];
    const waiters = ["a", "b", "c"].map((name) =>
      limiter.acquire().then((release) => {
        order.push(name);
        return release;
      }),
    );
    expect(limiter.queued).toBe(3);
    first();
    const a = await waiters[0];
    await settle();
    expect(order).toEqual(["a"]);
    a?.();
    const b = await waiters[1];
    b?.();
    const c = await waiters[2];
    expect(order).toEqual(["a", "b", "c"]);
    expect(limiter.running).toBe(1);
    c?.();
    expect(limiter.running).toBe(0);
  });

  it("does not let a newcomer overtake the queue when a slot frees", async () => {
    const limiter = new ConcurrencyLimiter(1, 10, 0);
    const release = await limiter.acquire();
    let waiterGot = false;
    const waiter = limiter.acquire().then((r) => {
      waiterGot = true;
      return r;
    });
    release();
    // the slot went to the waiter, so a new request waits
    const late = limiter.acquire();
    expect(limiter.running).toBe(1);
    expect(limiter.queued).toBe(1);
    (await waiter)();
    expect(waiterGot).toBe(true);
    (await late)();
    expect(limiter.running).toBe(0);
  });

  it("answers 429 queue_full with Retry-After when the queue is full", async () => {
    const limiter = new ConcurrencyLimiter(1, 1, 0);
    await limiter.acquire();
    void limiter.acquire();
    const error = await rejection(limiter.acquire());
    expect(error).toBeInstanceOf(ProxyError);
    const e = error as ProxyError;
    expect([e.status, e.type, e.code]).toEqual([429, "rate_limit_error", "queue_full"]);
    expect(e.headers()).toEqual({ "Retry-After": String(QUEUE_RETRY_AFTER_SECONDS) });
    expect(limiter.queued).toBe(1);
  });

  it("answers 429 queue_timeout when no slot frees in time, and leaves the queue", async () => {
    vi.useFakeTimers();
    const limiter = new ConcurrencyLimiter(1, 5, 1000);
    await limiter.acquire();
    const waiting = rejection(limiter.acquire());
    await vi.advanceTimersByTimeAsync(999);
    expect(limiter.queued).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const e = (await waiting) as ProxyError;
    expect([e.status, e.code]).toEqual([429, "queue_timeout"]);
    expect(e.headers()["Retry-After"]).toBe(String(QUEUE_RETRY_AFTER_SECONDS));
    expect(limiter.queued).toBe(0);
  });

  it("stops waiting when the request is aborted, and skips it when a slot frees", async () => {
    const limiter = new ConcurrencyLimiter(1, 5, 0);
    const release = await limiter.acquire();
    const controller = new AbortController();
    const aborted = rejection(limiter.acquire(controller.signal));
    const next = limiter.acquire();
    const reason = new Error("client went away");
    controller.abort(reason);
    expect(await aborted).toBe(reason);
    expect(limiter.queued).toBe(1);
    release();
    (await next)();
    expect(limiter.running).toBe(0);
  });

  it("rejects at once with an already aborted signal", async () => {
    const limiter = new ConcurrencyLimiter(1, 5, 0);
    const controller = new AbortController();
    controller.abort(new Error("gone"));
    expect(await rejection(limiter.acquire(controller.signal))).toEqual(new Error("gone"));
    expect(limiter.running).toBe(0);
  });

  it("ignores a second release of the same slot", async () => {
    const limiter = new ConcurrencyLimiter(2, 5, 0);
    const a = await limiter.acquire();
    const b = await limiter.acquire();
    const waiter = limiter.acquire();
    a();
    a();
    a();
    const c = await waiter;
    expect(limiter.running).toBe(2);
    expect(limiter.queued).toBe(0);
    b();
    c();
    c();
    expect(limiter.running).toBe(0);
  });

  it("reports every change of running or queued", async () => {
    const limiter = new ConcurrencyLimiter(1, 5, 0);
    const seen: Array<[number, number]> = [];
    limiter.onChange = () => seen.push([limiter.running, limiter.queued]);
    const release: Release = await limiter.acquire();
    const waiter = limiter.acquire();
    release();
    (await waiter)();
    expect(seen.at(-1)).toEqual([0, 0]);
    expect(seen).toContainEqual([1, 1]);
  });
});
