/**
 * `GET /v1/usage`: the totals since the first run (src/usage.ts), or with
 * `?group_by=hour|day` a series of consecutive buckets ending now (src/usage-series.ts), each
 * with its figures per model and per surface: what the dashboard charts. `limit` picks the
 * number of buckets (default 48 hours or 30 days), `utc_offset` the minutes east of UTC that
 * days start at midnight of (the dashboard sends the browser's).
 */
import { Hono } from "hono";
import type { AppDeps } from "../deps.ts";
import { ProxyError } from "../errors.ts";
import { MAX_BUCKETS, type SeriesOptions, type UsageGroupBy } from "../usage-series.ts";

/** An integer query parameter in `min..max`, undefined when absent. */
export function integerParam(
  value: string | undefined,
  name: string,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined || value === "") return undefined;
  const n = Number(value);
  if (!/^[+-]?\d+$/.test(value.trim()) || n < min || n > max) {
    throw new ProxyError(400, `'${name}' must be an integer from ${min} to ${max}`, {
      param: name,
      code: "invalid_value",
    });
  }
  return n;
}

/**
 * The series options of a `GET /v1/usage` query, or null for the totals (no `group_by`).
 * @throws ProxyError 400 for an unknown `group_by` or a `limit` / `utc_offset` out of range.
 */
export function seriesQuery(query: Record<string, string | undefined>): SeriesOptions | null {
  const groupBy = query.group_by;
  if (groupBy === undefined || groupBy === "") return null;
  if (groupBy !== "hour" && groupBy !== "day") {
    throw new ProxyError(400, `'group_by' must be 'hour' or 'day' (got '${groupBy}')`, {
      param: "group_by",
      code: "invalid_value",
    });
  }
  const by: UsageGroupBy = groupBy;
  return {
    groupBy: by,
    limit: integerParam(query.limit, "limit", 1, MAX_BUCKETS[by]),
    utcOffsetMinutes: integerParam(query.utc_offset, "utc_offset", -840, 840),
  };
}

/** The usage route, mounted under `/v1`. */
export function usageRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get("/usage", (c) => {
    const options = seriesQuery(c.req.query());
    if (options === null) return c.json(deps.usage.totals());
    const now = deps.now === undefined ? undefined : deps.now() * 1000;
    return c.json(deps.usage.series({ ...options, now }));
  });
  return app;
}
