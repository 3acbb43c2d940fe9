/**
 * Subscription limits: the `rate_limit_event` the real CLI printed for the fake API's
 * `anthropic-ratelimit-unified-*` headers (test/fixtures/cli/limits-*.jsonl, 2.1.332 and
 * 2.1.221), the store that keeps the latest state per window (src/limits.ts), and what a client
 * sees of it in-process: response headers, `/health`, `/metrics`, a 429 with Retry-After.
 */
import { describe, expect, it } from "vitest";
import type { RateLimitEvent } from "../../src/claude/events.ts";
import { resultError } from "../../src/claude/status.ts";
import { RateLimits } from "../../src/limits.ts";
import { createMetrics } from "../../src/metrics.ts";
import { fixtureEvents, fixtureLines } from "./cli-fixtures.ts";
import { postChat, stubApp } from "./stub-app.ts";

/** The one rate_limit event of a recorded run. */
function rateLimit(name: string): RateLimitEvent {
  const events = fixtureEvents(name).filter((e): e is RateLimitEvent => e.type === "rate_limit");
  expect(events).toHaveLength(1);
  return events[0] as RateLimitEvent;
}

/** The recording's clock: the fixtures' five-hour window reset an hour after they were made. */
function recordedAt(name: string): number {
  const reset = rateLimit(name.replace(/^limits-\w+/, "limits-allowed")).resetsAt;
  if (reset === null) throw new Error("no reset");
  return (reset - 3600) * 1000;
}

describe("rate_limit_event as the CLI prints it", () => {
  it("2.1.332 lists every window with its utilization, reset and status", () => {
    const event = rateLimit("limits-allowed");
    expect(event).toMatchObject({
      status: "allowed",
      rateLimitType: "five_hour",
      utilization: null,
      overageStatus: null,
      isUsingOverage: false,
    });
    expect(event.windows).toEqual([
      { type: "five_hour", utilization: 0.42, resetsAt: event.resetsAt, status: "allowed" },
      { type: "seven_day", utilization: 0.3, resetsAt: expect.any(Number), status: "allowed" },
    ]);
  });

  it("2.1.221 gives only the binding window, with its utilization once it warns", () => {
    expect(rateLimit("limits-allowed.2.1.221")).toMatchObject({
      status: "allowed",
      rateLimitType: "five_hour",
      utilization: null,
      windows: [],
    });
    expect(rateLimit("limits-warning.2.1.221")).toMatchObject({
      status: "allowed_warning",
      rateLimitType: "seven_day",
      utilization: 0.86,
      windows: [],
    });
  });

  it("a rejection names the window and the overage state", () => {
    for (const name of ["limits-rejected", "limits-rejected.2.1.221"]) {
      expect(rateLimit(name)).toMatchObject({
        status: "rejected",
        rateLimitType: "five_hour",
        overageStatus: "rejected",
        isUsingOverage: false,
      });
    }
    expect(rateLimit("limits-overage")).toMatchObject({
      status: "rejected",
      overageStatus: "allowed",
      overageResetsAt: expect.any(Number),
      isUsingOverage: true,
    });
  });

  it("a rejected 429 is answered 429 usage_limit_reached, Retry-After until the reset", () => {
    for (const name of ["limits-rejected", "limits-rejected.2.1.221"]) {
      const event = rateLimit(name);
      const result = fixtureEvents(name).find((e) => e.type === "result");
      if (result?.type !== "result") throw new Error("no result");
      expect(result.api_error_status).toBe(429);
      const error = resultError(result, undefined, event.resetsAt, recordedAt(name));
      expect(error?.status).toBe(429);
      expect(error?.code).toBe("usage_limit_reached");
      expect(error?.message).toMatch(/^You've hit your (5-hour|session) limit · resets /);
      expect(error?.headers()).toEqual({ "Retry-After": "3600", "x-should-retry": "false" });
    }
  });
});

describe("RateLimits", () => {
  it("keeps nothing from the bare events the CLI prints without headers", () => {
    const limits = new RateLimits();
    for (const name of ["text", "error-429"]) {
      for (const event of fixtureEvents(name)) expect(limits.observe(event)).toBe(false);
    }
    expect(limits.snapshot()).toEqual({
      updated_at: null,
      status: null,
      type: null,
      resets_at: null,
      windows: [],
      overage: null,
    });
    expect(limits.headers()).toEqual({});
  });

  it("shows the latest state per window, as /health and as the API's headers", () => {
    const now = recordedAt("limits-warning");
    const limits = new RateLimits();
    const warning = rateLimit("limits-warning");
    expect(limits.observe(warning, now)).toBe(true);
    const five = warning.windows[0]?.resetsAt ?? 0;
    const seven = warning.resetsAt ?? 0;
    const iso = (s: number) => new Date(s * 1000).toISOString();
    expect(limits.snapshot(now + 1000)).toEqual({
      updated_at: new Date(now).toISOString(),
      status: "allowed_warning",
      type: "seven_day",
      resets_at: iso(seven),
      windows: [
        { type: "five_hour", status: "allowed", utilization: 0.42, resets_at: iso(five) },
        { type: "seven_day", status: "allowed_warning", utilization: 0.86, resets_at: iso(seven) },
      ],
      overage: null,
    });
    expect(limits.headers(now)).toEqual({
      "anthropic-ratelimit-unified-status": "allowed_warning",
      "anthropic-ratelimit-unified-reset": String(seven),
      "anthropic-ratelimit-unified-representative-claim": "seven_day",
      "anthropic-ratelimit-unified-5h-utilization": "0.42",
      "anthropic-ratelimit-unified-5h-reset": String(five),
      "anthropic-ratelimit-unified-5h-status": "allowed",
      "anthropic-ratelimit-unified-7d-utilization": "0.86",
      "anthropic-ratelimit-unified-7d-reset": String(seven),
      "anthropic-ratelimit-unified-7d-status": "allowed_warning",
    });
    // A later bare event (a request without headers) changes nothing.
    for (const event of fixtureEvents("text")) expect(limits.observe(event)).toBe(false);
    expect(limits.snapshot(now).status).toBe("allowed_warning");
  });

  it("keeps a window's utilization from an earlier report of the same window (2.1.221)", () => {
    const now = recordedAt("limits-warning.2.1.221");
    const limits = new RateLimits();
    limits.observe(rateLimit("limits-warning.2.1.221"), now);
    limits.observe(rateLimit("limits-allowed.2.1.221"), now + 1000);
    const snapshot = limits.snapshot(now + 2000);
    expect(snapshot).toMatchObject({ status: "allowed", type: "five_hour" });
    expect(snapshot.windows.map((w) => [w.type, w.status, w.utilization])).toEqual([
      ["five_hour", "allowed", null],
      ["seven_day", "allowed_warning", 0.86],
    ]);
  });

  it("starts a window afresh at a new reset, and forgets what has reset", () => {
    const limits = new RateLimits();
    const event = (overrides: Partial<RateLimitEvent>): RateLimitEvent => ({
      type: "rate_limit",
      status: "allowed",
      resetsAt: 2000,
      rateLimitType: "five_hour",
      utilization: null,
      overageStatus: null,
      overageResetsAt: null,
      isUsingOverage: false,
      windows: [{ type: "five_hour", utilization: 0.9, resetsAt: 2000, status: "allowed" }],
      ...overrides,
    });
    limits.observe(event({}), 1000_000);
    limits.observe(event({ resetsAt: 20000, windows: [] }), 1500_000);
    expect(limits.snapshot(1500_000).windows).toEqual([
      { type: "five_hour", status: "allowed", utilization: null, resets_at: expect.any(String) },
    ]);
    expect(limits.snapshot(20000_000)).toMatchObject({
      status: null,
      type: null,
      resets_at: null,
      windows: [],
    });
    expect(limits.headers(20000_000)).toEqual({});
  });

  it("reports overage with its reset and whether answers are paid from it", () => {
    const now = recordedAt("limits-overage");
    const limits = new RateLimits();
    const overage = rateLimit("limits-overage");
    limits.observe(overage, now);
    expect(limits.snapshot(now)).toMatchObject({
      status: "rejected",
      type: "five_hour",
      windows: [{ type: "five_hour", status: "rejected", utilization: 1 }],
      overage: {
        status: "allowed",
        resets_at: new Date((overage.overageResetsAt ?? 0) * 1000).toISOString(),
        in_use: true,
      },
    });
    expect(limits.headers(now)).toMatchObject({
      "anthropic-ratelimit-unified-status": "rejected",
      "anthropic-ratelimit-unified-overage-status": "allowed",
      "anthropic-ratelimit-unified-overage-reset": String(overage.overageResetsAt),
    });
  });
});

describe("claude_rate_limit_* gauges", () => {
  it("render the state: status as 0/1 per status, utilization and resets per window", async () => {
    const now = recordedAt("limits-rejected");
    const limits = new RateLimits();
    const rejected = rateLimit("limits-rejected");
    limits.observe(rejected, now);
    const metrics = createMetrics();
    metrics.showLimits(limits.snapshot(now));
    const { body } = await metrics.render();
    const seven = rejected.windows[1]?.resetsAt;
    for (const line of [
      'claude_rate_limit_status{window="unified",status="rejected"} 1',
      'claude_rate_limit_status{window="unified",status="allowed"} 0',
      'claude_rate_limit_status{window="five_hour",status="rejected"} 1',
      'claude_rate_limit_status{window="seven_day",status="allowed"} 1',
      'claude_rate_limit_status{window="overage",status="rejected"} 1',
      'claude_rate_limit_utilization_ratio{window="five_hour"} 1',
      'claude_rate_limit_utilization_ratio{window="seven_day"} 0.5',
      `claude_rate_limit_reset_timestamp_seconds{window="unified"} ${rejected.resetsAt}`,
      `claude_rate_limit_reset_timestamp_seconds{window="seven_day"} ${seven}`,
      `claude_rate_limit_updated_timestamp_seconds ${now / 1000}`,
    ]) {
      expect(body.split("\n")).toContain(line);
    }
    // Once every window has reset, only the overage state (it has no reset) and the time of the
    // last report are left.
    metrics.showLimits(limits.snapshot(now + 30 * 86400_000));
    const after = (await metrics.render()).body.split("\n");
    expect(after.filter((line) => line.startsWith("claude_rate_limit_"))).toEqual([
      'claude_rate_limit_status{window="overage",status="allowed"} 0',
      'claude_rate_limit_status{window="overage",status="allowed_warning"} 0',
      'claude_rate_limit_status{window="overage",status="rejected"} 1',
      `claude_rate_limit_updated_timestamp_seconds ${now / 1000}`,
    ]);
  });
});

/** A recorded run with its resets moved to `now` + the same distance as when it was made. */
function shifted(name: string, nowMs: number): string[] {
  const delta = Math.round((nowMs - recordedAt(name)) / 1000);
  return fixtureLines(name).map((line) =>
    line.replace(/"(resetsAt|overageResetsAt)":(\d+)/g, (_, key, value) => {
      return `"${key}":${Number(value) + delta}`;
    }),
  );
}

describe("what a client sees (stub CLI replaying the recorded runs)", () => {
  it("headers on the next answers, /health limits, and a rejection as 429 with Retry-After", async () => {
    let name = "limits-warning";
    const { app, close } = await stubApp(["--api-key", "k"], {
      script: () => ({ lines: shifted(name, Date.now()) }),
    });
    const auth = { authorization: "Bearer k" };
    try {
      const first = await postChat(
        app,
        { model: "sonnet", messages: [{ role: "user", content: "hi" }] },
        auth,
      );
      expect(first.status).toBe(200);
      // A whole answer goes out after its run: its own report is in the headers.
      expect(first.headers.get("anthropic-ratelimit-unified-status")).toBe("allowed_warning");
      expect(first.headers.get("anthropic-ratelimit-unified-7d-utilization")).toBe("0.86");
      expect(first.headers.get("anthropic-ratelimit-unified-5h-utilization")).toBe("0.42");

      const health = async (headers: Record<string, string>) =>
        (await (await app.request("/health", { headers })).json()) as Record<string, unknown>;
      expect(await health({})).toEqual({ status: "ok" });
      expect(await health(auth)).toMatchObject({
        limits: {
          status: "allowed_warning",
          type: "seven_day",
          windows: [
            { type: "five_hour", utilization: 0.42 },
            { type: "seven_day", utilization: 0.86 },
          ],
          overage: null,
        },
      });

      name = "limits-rejected";
      const rejected = await postChat(
        app,
        { model: "sonnet", messages: [{ role: "user", content: "hi" }] },
        auth,
      );
      expect(rejected.status).toBe(429);
      const retryAfter = Number(rejected.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThan(3590);
      expect(retryAfter).toBeLessThanOrEqual(3601);
      expect(rejected.headers.get("x-should-retry")).toBe("false");
      expect(rejected.headers.get("anthropic-ratelimit-unified-status")).toBe("rejected");
      expect(rejected.headers.get("anthropic-ratelimit-unified-overage-status")).toBe("rejected");
      const body = (await rejected.json()) as { error: { type: string; code: string } };
      expect(body.error).toMatchObject({ type: "rate_limit_error", code: "usage_limit_reached" });

      // Without a key: 401, and nothing about the subscription.
      const anonymous = await postChat(app, { model: "sonnet", messages: [] });
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get("anthropic-ratelimit-unified-status")).toBeNull();
    } finally {
      await close();
    }
  });
});
