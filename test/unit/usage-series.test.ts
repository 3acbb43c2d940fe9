/**
 * Usage over time (src/usage-series.ts, `GET /v1/usage?group_by=hour|day`): records summed per
 * hour and cut into consecutive hour or day buckets ending now, per model and surface, bounded.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { nodeRuntime } from "../../src/runtime/node.ts";
import { type UsageRecord, UsageStore } from "../../src/usage.ts";
import { MAX_BUCKETS, UsageHours } from "../../src/usage-series.ts";
import { stubApp } from "./stub-app.ts";

function record(time: string, model = "sonnet", surface = "chat", tokens = 100): UsageRecord {
  return {
    time,
    request_id: `r-${time}`,
    model,
    surface,
    prompt_tokens: tokens,
    completion_tokens: 10,
    cached_tokens: 5,
    cost_usd: 0.1,
  };
}

const NOW = Date.parse("2026-11-30T15:20:00Z");

describe("UsageHours.series", () => {
  it("sums records per hour, per model and per surface, with empty hours in between", () => {
    const hours = new UsageHours();
    hours.add(record("2026-11-30T15:01:00Z", "sonnet", "chat"));
    hours.add(record("2026-11-30T15:59:59Z", "opus", "responses", 300));
    hours.add(record("2026-11-30T13:30:00Z", "sonnet", "messages"));
    const series = hours.series({ groupBy: "hour", limit: 4, now: NOW });
    expect(series.object).toBe("usage.series");
    expect(series.buckets.map((b) => [b.start, b.requests, b.total_tokens])).toEqual([
      ["2026-11-30T12:00:00.000Z", 0, 0],
      ["2026-11-30T13:00:00.000Z", 1, 110],
      ["2026-11-30T14:00:00.000Z", 0, 0],
      ["2026-11-30T15:00:00.000Z", 2, 420],
    ]);
    const current = series.buckets[3];
    expect(current?.by_model).toEqual({
      opus: {
        requests: 1,
        prompt_tokens: 300,
        completion_tokens: 10,
        cached_tokens: 5,
        total_tokens: 310,
        cost_usd: 0.1,
      },
      sonnet: {
        requests: 1,
        prompt_tokens: 100,
        completion_tokens: 10,
        cached_tokens: 5,
        total_tokens: 110,
        cost_usd: 0.1,
      },
    });
    expect(Object.keys(current?.by_surface ?? {})).toEqual(["chat", "responses"]);
    expect(current?.cost_usd).toBe(0.2);
  });

  it("leaves out records outside the window, future ones included", () => {
    const hours = new UsageHours();
    hours.add(record("2026-11-30T10:59:00Z"));
    hours.add(record("2026-11-30T16:00:00Z"));
    hours.add(record("not a time"));
    const series = hours.series({ groupBy: "hour", limit: 5, now: NOW });
    expect(series.buckets.reduce((n, b) => n + b.requests, 0)).toBe(0);
    expect(hours.size).toBe(2);
  });

  it("starts days at the local midnight of the offset", () => {
    const hours = new UsageHours();
    hours.add(record("2026-11-29T23:30:00Z")); // 30 Nov 00:30 in UTC+1
    hours.add(record("2026-11-30T00:30:00Z"));
    const utc = hours.series({ groupBy: "day", limit: 2, now: NOW });
    expect(utc.buckets.map((b) => [b.start, b.requests])).toEqual([
      ["2026-11-29T00:00:00.000Z", 1],
      ["2026-11-30T00:00:00.000Z", 1],
    ]);
    const paris = hours.series({ groupBy: "day", limit: 2, utcOffsetMinutes: 60, now: NOW });
    expect(paris.utc_offset_minutes).toBe(60);
    expect(paris.buckets.map((b) => [b.start, b.requests])).toEqual([
      ["2026-11-28T23:00:00.000Z", 0],
      ["2026-11-29T23:00:00.000Z", 2],
    ]);
    const newYork = hours.series({ groupBy: "day", limit: 1, utcOffsetMinutes: -300, now: NOW });
    expect(newYork.buckets.map((b) => [b.start, b.requests])).toEqual([
      ["2026-11-30T05:00:00.000Z", 0],
    ]);
  });

  it("is bounded: default and maximum bucket counts, and the hours it keeps", () => {
    const hours = new UsageHours(3);
    expect(hours.series({ groupBy: "hour", now: NOW }).buckets).toHaveLength(48);
    expect(hours.series({ groupBy: "day", now: NOW }).buckets).toHaveLength(30);
    expect(hours.series({ groupBy: "day", limit: 10_000, now: NOW }).buckets).toHaveLength(
      MAX_BUCKETS.day,
    );
    for (const hour of ["10", "11", "12", "13"]) hours.add(record(`2026-11-30T${hour}:00:00Z`));
    expect(hours.size).toBe(3);
    const series = hours.series({ groupBy: "hour", limit: 6, now: NOW });
    expect(series.buckets.map((b) => b.requests)).toEqual([0, 1, 1, 1, 0, 0]);
  });
});

describe("GET /v1/usage?group_by", () => {
  it("answers the series from the records on file, and 400 for a bad query", async () => {
    const dir = await mkdtemp(join(tmpdir(), "usage-series-"));
    try {
      const nowSeconds = NOW / 1000;
      await writeFile(
        join(dir, "usage.jsonl"),
        `${JSON.stringify(record("2026-11-30T14:10:00Z", "haiku", "messages", 40))}\n`,
      );
      const usage = await UsageStore.open(nodeRuntime, dir);
      const stub = await stubApp([], { deps: { usage, now: () => nowSeconds } });
      try {
        const response = await stub.app.request("/v1/usage?group_by=hour&limit=3");
        expect(response.status).toBe(200);
        const body = (await response.json()) as {
          buckets: Array<{ start: string; requests: number }>;
        };
        expect(body.buckets.map((b) => [b.start, b.requests])).toEqual([
          ["2026-11-30T13:00:00.000Z", 0],
          ["2026-11-30T14:00:00.000Z", 1],
          ["2026-11-30T15:00:00.000Z", 0],
        ]);
        const totals = (await (await stub.app.request("/v1/usage")).json()) as { object: string };
        expect(totals.object).toBe("usage");
        for (const query of [
          "group_by=week",
          "group_by=hour&limit=0",
          "group_by=day&utc_offset=x",
        ]) {
          const bad = await stub.app.request(`/v1/usage?${query}`);
          expect(bad.status, query).toBe(400);
          const error = (await bad.json()) as { error: { param: string; type: string } };
          expect(error.error.type).toBe("invalid_request_error");
        }
      } finally {
        await stub.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
