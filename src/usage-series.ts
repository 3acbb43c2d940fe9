/**
 * Usage over time for `GET /v1/usage?group_by=hour|day` and the dashboard: the usage records
 * summed per hour (UTC hours, kept in memory for the last {@link MAX_HOURS} hours that had any
 * record), and series of consecutive hours or days cut from them, empty buckets included so that
 * a chart's x axis has no gaps. Pure apart from the clock the caller passes in.
 */
import type { UsageFigures, UsageRecord } from "./usage.ts";

/** One hour of records is kept for at most this many hours that had any (~400 days). */
export const MAX_HOURS = 24 * 400;

/** The bucket widths of a series. */
export type UsageGroupBy = "hour" | "day";

/** Buckets per series when the request names no `limit`: two days of hours, a month of days. */
export const DEFAULT_BUCKETS: Readonly<Record<UsageGroupBy, number>> = { hour: 48, day: 30 };

/** The most buckets one series returns: 31 days of hours, a year of days. */
export const MAX_BUCKETS: Readonly<Record<UsageGroupBy, number>> = { hour: 24 * 31, day: 366 };

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** Figures of one bucket: the sums, and per Claude model and per API surface. */
export interface UsageBucket extends UsageFigures {
  /** Start of the bucket, ISO 8601 (UTC). */
  start: string;
  by_model: Record<string, UsageFigures>;
  by_surface: Record<string, UsageFigures>;
}

/** The body of `GET /v1/usage?group_by=hour|day`. */
export interface UsageSeries {
  object: "usage.series";
  group_by: UsageGroupBy;
  /** Minutes east of UTC that day buckets start at midnight of (see {@link seriesOf}). */
  utc_offset_minutes: number;
  /** Oldest first; the last one holds the current hour or day. */
  buckets: UsageBucket[];
}

/** How to cut a series. */
export interface SeriesOptions {
  groupBy: UsageGroupBy;
  /** Number of buckets (clamped to 1..{@link MAX_BUCKETS}); default {@link DEFAULT_BUCKETS}. */
  limit?: number | undefined;
  /** Minutes east of UTC (-840..840) for day boundaries; default 0. */
  utcOffsetMinutes?: number | undefined;
  /** Milliseconds since the epoch; default now. */
  now?: number | undefined;
}

/** Zeroed figures. */
export function emptyFigures(): UsageFigures {
  return {
    requests: 0,
    prompt_tokens: 0,
    completion_tokens: 0,
    cached_tokens: 0,
    total_tokens: 0,
    cost_usd: 0,
  };
}

/** Adds one record to `figures`. */
export function addRecord(figures: UsageFigures, record: UsageRecord): void {
  figures.requests += 1;
  figures.prompt_tokens += record.prompt_tokens;
  figures.completion_tokens += record.completion_tokens;
  figures.cached_tokens += record.cached_tokens;
  figures.total_tokens += record.prompt_tokens + record.completion_tokens;
  figures.cost_usd += record.cost_usd;
}

function addFigures(to: UsageFigures, from: UsageFigures): void {
  to.requests += from.requests;
  to.prompt_tokens += from.prompt_tokens;
  to.completion_tokens += from.completion_tokens;
  to.cached_tokens += from.cached_tokens;
  to.total_tokens += from.total_tokens;
  to.cost_usd += from.cost_usd;
}

/** Sums of float dollars drift (0.1 + 0.2); a nano-dollar is finer than any price. */
export function roundUsd(usd: number): number {
  return Math.round(usd * 1e9) / 1e9;
}

/** The figures of each key, keys sorted, dollars rounded (fromEntries: `__proto__` stays a key). */
export function sortedFigures(
  map: ReadonlyMap<string, UsageFigures>,
): Record<string, UsageFigures> {
  return Object.fromEntries(
    [...map]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, figures]) => [key, { ...figures, cost_usd: roundUsd(figures.cost_usd) }]),
  );
}

/** Sums of one hour (or of the hours of a bucket). */
class Sums {
  readonly total = emptyFigures();
  readonly byModel = new Map<string, UsageFigures>();
  readonly bySurface = new Map<string, UsageFigures>();

  addRecord(record: UsageRecord): void {
    addRecord(this.total, record);
    figuresOf(this.byModel, record.model, (f) => addRecord(f, record));
    figuresOf(this.bySurface, record.surface, (f) => addRecord(f, record));
  }

  addSums(other: Sums): void {
    addFigures(this.total, other.total);
    for (const [key, f] of other.byModel) figuresOf(this.byModel, key, (to) => addFigures(to, f));
    for (const [key, f] of other.bySurface) {
      figuresOf(this.bySurface, key, (to) => addFigures(to, f));
    }
  }

  bucket(start: number): UsageBucket {
    return {
      start: new Date(start).toISOString(),
      ...this.total,
      cost_usd: roundUsd(this.total.cost_usd),
      by_model: sortedFigures(this.byModel),
      by_surface: sortedFigures(this.bySurface),
    };
  }
}

function figuresOf(
  map: Map<string, UsageFigures>,
  key: string,
  update: (figures: UsageFigures) => void,
): void {
  let figures = map.get(key);
  if (figures === undefined) {
    figures = emptyFigures();
    map.set(key, figures);
  }
  update(figures);
}

/**
 * The records summed per UTC hour, for the newest {@link MAX_HOURS} hours that had any (older
 * ones are dropped as newer ones arrive). A record with an unreadable time is left out.
 */
export class UsageHours {
  /** Hour start (ms since the epoch) -> sums. */
  readonly #hours = new Map<number, Sums>();
  readonly #maxHours: number;

  /** @param maxHours how many hours with records to keep (default {@link MAX_HOURS}). */
  constructor(maxHours = MAX_HOURS) {
    this.#maxHours = maxHours;
  }

  /** Number of hours held. */
  get size(): number {
    return this.#hours.size;
  }

  /** Adds a record to its hour. */
  add(record: UsageRecord): void {
    const time = Date.parse(record.time);
    if (!Number.isFinite(time)) return;
    const hour = Math.floor(time / HOUR_MS) * HOUR_MS;
    let sums = this.#hours.get(hour);
    if (sums === undefined) {
      sums = new Sums();
      this.#hours.set(hour, sums);
      if (this.#hours.size > this.#maxHours) this.#hours.delete(Math.min(...this.#hours.keys()));
    }
    sums.addRecord(record);
  }

  /**
   * A series of `limit` consecutive hours or days ending with the one that holds `now`.
   * Day buckets start at midnight `utcOffsetMinutes` east of UTC; hours are whole UTC hours,
   * so with an offset that is not a whole number of hours (India, Nepal) a day starts at the
   * hour that holds local midnight.
   */
  series(options: SeriesOptions): UsageSeries {
    const { groupBy } = options;
    const limit = Math.min(
      MAX_BUCKETS[groupBy],
      Math.max(1, Math.floor(options.limit ?? DEFAULT_BUCKETS[groupBy])),
    );
    const offsetMinutes = Math.max(-840, Math.min(840, Math.round(options.utcOffsetMinutes ?? 0)));
    const now = options.now ?? Date.now();
    const width = groupBy === "hour" ? HOUR_MS : DAY_MS;
    // Day starts shifted to whole hours: the hour sums cannot be split.
    const shift = groupBy === "hour" ? 0 : Math.floor(offsetMinutes / 60) * HOUR_MS;
    const current = Math.floor((now + shift) / width) * width - shift;
    const first = current - (limit - 1) * width;
    const buckets = Array.from({ length: limit }, () => new Sums());
    for (const [hour, sums] of this.#hours) {
      if (hour < first || hour >= current + width) continue;
      buckets[Math.floor((hour - first) / width)]?.addSums(sums);
    }
    return {
      object: "usage.series",
      group_by: groupBy,
      utc_offset_minutes: groupBy === "hour" ? 0 : offsetMinutes,
      buckets: buckets.map((sums, i) => sums.bucket(first + i * width)),
    };
  }
}
