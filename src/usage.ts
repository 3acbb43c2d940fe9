/**
 * Token and cost totals for `GET /v1/usage`, kept in `<dataDir>/usage.jsonl`: one JSON line per
 * chat completion that reached the API (a run stopped by a timeout or a disconnect included,
 * with the usage it reported until then). Opening the store reads the file back, so a restart loses nothing;
 * appends are serialised so that two completions never interleave their lines.
 */
import type { Runtime } from "./runtime/types.ts";
import {
  addRecord,
  emptyFigures,
  roundUsd,
  type SeriesOptions,
  sortedFigures,
  UsageHours,
  type UsageSeries,
} from "./usage-series.ts";

/** The file name under the data directory. */
export const USAGE_FILE = "usage.jsonl";

/** One completed chat completion, as written to `usage.jsonl`. */
export interface UsageRecord {
  /** When it completed, ISO 8601. */
  time: string;
  /** The completion's id (`chatcmpl-...`) or the request id. */
  request_id: string;
  /**
   * The Claude model the CLI ran (`--model`: an alias or a full id; `gpt-4o` is recorded as
   * `sonnet`), as a bounded label: an id that is neither an alias, configured, nor one of the
   * first 32 the API answered is recorded as `other` (src/models.ts `ModelLabels`).
   */
  model: string;
  /** The API surface it came through: `chat`, `responses` or `messages` (`chat` for older records). */
  surface: string;
  /** Input tokens, cached ones included. */
  prompt_tokens: number;
  completion_tokens: number;
  /** Input tokens read from the prompt cache. */
  cached_tokens: number;
  /** The CLI's `total_cost_usd`, US dollars (what the API would bill; a subscription is not billed per token). */
  cost_usd: number;
}

/** What {@link UsageStore.record} takes: a record whose `time` defaults to now. */
export type UsageEntry = Omit<UsageRecord, "time" | "surface"> & {
  time?: string;
  surface?: string;
};

/** Summed figures, over all models or for one. */
export interface UsageFigures {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  /** `prompt_tokens + completion_tokens`. */
  total_tokens: number;
  /** US dollars. */
  cost_usd: number;
}

/**
 * The body of `GET /v1/usage`: totals over every recorded completion, and per Claude model (as run by the CLI).
 * `since` is the time of the first record (ISO 8601), null while there is none.
 */
export interface UsageTotals extends UsageFigures {
  object: "usage";
  since: string | null;
  by_model: Record<string, UsageFigures>;
  /** Per API surface (`chat`, `responses`, `messages`). */
  by_surface: Record<string, UsageFigures>;
}

/** What the store needs from the runtime. */
export type UsageRuntime = Pick<Runtime, "mkdir" | "appendFile" | "readTextFile">;

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

/** The record in a parsed line, or null when the line is not one. */
export function toUsageRecord(value: unknown): UsageRecord | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  if (typeof v.time !== "string" || typeof v.request_id !== "string") return null;
  if (typeof v.model !== "string") return null;
  if (!isCount(v.prompt_tokens) || !isCount(v.completion_tokens)) return null;
  if (!isCount(v.cached_tokens) || !isCount(v.cost_usd)) return null;
  return {
    time: v.time,
    request_id: v.request_id,
    model: v.model,
    surface: typeof v.surface === "string" ? v.surface : "chat",
    prompt_tokens: v.prompt_tokens,
    completion_tokens: v.completion_tokens,
    cached_tokens: v.cached_tokens,
    cost_usd: v.cost_usd,
  };
}

/** The usage log and its running totals. Create with {@link UsageStore.open}. */
export class UsageStore {
  /** The JSON-lines file. */
  readonly path: string;
  /** Lines of the file that were not records when it was opened (e.g. a line cut by a crash). */
  readonly skippedLines: number;
  readonly #runtime: UsageRuntime;
  readonly #totals = emptyFigures();
  readonly #byModel = new Map<string, UsageFigures>();
  readonly #bySurface = new Map<string, UsageFigures>();
  readonly #hours = new UsageHours();
  #since: string | null = null;
  /** The chain of appends: each waits for the one before. */
  #writes: Promise<void> = Promise.resolve();
  /** The file ends in the middle of a line (a crash cut it): the next append starts a new one. */
  #needsNewline: boolean;

  private constructor(
    runtime: UsageRuntime,
    path: string,
    records: UsageRecord[],
    skippedLines: number,
    needsNewline: boolean,
  ) {
    this.#runtime = runtime;
    this.path = path;
    this.skippedLines = skippedLines;
    this.#needsNewline = needsNewline;
    for (const record of records) this.#add(record);
  }

  /**
   * Opens (creating `dataDir` when missing) and reads `<dataDir>/usage.jsonl`. Lines that are not
   * records, such as a last line cut short by a crash, are skipped and counted in `skippedLines`.
   * @throws when the directory cannot be created or the file cannot be read.
   */
  static async open(runtime: UsageRuntime, dataDir: string): Promise<UsageStore> {
    await runtime.mkdir(dataDir);
    const path = `${dataDir.replace(/[\\/]+$/, "")}/${USAGE_FILE}`;
    const text = (await runtime.readTextFile(path)) ?? "";
    const records: UsageRecord[] = [];
    let skipped = 0;
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      let record: UsageRecord | null = null;
      try {
        record = toUsageRecord(JSON.parse(line));
      } catch {
        record = null;
      }
      if (record === null) skipped++;
      else records.push(record);
    }
    return new UsageStore(runtime, path, records, skipped, text !== "" && !text.endsWith("\n"));
  }

  /**
   * Adds one completed chat completion to the totals at once and appends it to the file.
   * Appends run one after another in call order. Resolves once this record is written.
   * @throws (rejects) when the append fails; the totals keep the record and later appends go on.
   */
  record(entry: UsageEntry): Promise<void> {
    const record: UsageRecord = {
      time: entry.time ?? new Date().toISOString(),
      request_id: entry.request_id,
      model: entry.model,
      surface: entry.surface ?? "chat",
      prompt_tokens: entry.prompt_tokens,
      completion_tokens: entry.completion_tokens,
      cached_tokens: entry.cached_tokens,
      cost_usd: entry.cost_usd,
    };
    this.#add(record);
    const line = `${JSON.stringify(record)}\n`;
    const write = this.#writes.then(async () => {
      const text = this.#needsNewline ? `\n${line}` : line;
      await this.#runtime.appendFile(this.path, text);
      this.#needsNewline = false;
    });
    this.#writes = write.catch(() => {});
    return write;
  }

  /** Resolves once every append started so far has finished (e.g. before exiting). */
  flush(): Promise<void> {
    return this.#writes;
  }

  /** The `GET /v1/usage` body: totals and per-model figures over every record. */
  totals(): UsageTotals {
    return {
      object: "usage",
      since: this.#since,
      ...this.#totals,
      cost_usd: roundUsd(this.#totals.cost_usd),
      by_model: sortedFigures(this.#byModel),
      by_surface: sortedFigures(this.#bySurface),
    };
  }

  /** The `GET /v1/usage?group_by=hour|day` body: see {@link UsageHours.series}. */
  series(options: SeriesOptions): UsageSeries {
    return this.#hours.series(options);
  }

  #add(record: UsageRecord): void {
    if (this.#since === null || record.time < this.#since) this.#since = record.time;
    addRecord(this.#totals, record);
    this.#hours.add(record);
    for (const [map, key] of [
      [this.#byModel, record.model],
      [this.#bySurface, record.surface],
    ] as const) {
      let figures = map.get(key);
      if (figures === undefined) {
        figures = emptyFigures();
        map.set(key, figures);
      }
      addRecord(figures, record);
    }
  }
}
