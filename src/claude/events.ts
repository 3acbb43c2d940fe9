/**
 * The CLI's stdout events with `--output-format stream-json --verbose --include-partial-messages`,
 * one JSON object per line (DESIGN.md "Events on stdout"). {@link parseLine} turns a line into a
 * typed {@link CliEvent}; types this proxy does not use come out as `{ type: "unknown" }`.
 */

/** Token usage as the CLI and the Messages API report it (tokens). */
export interface CliUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
}

/** A content block of the Messages API (`text`, `thinking`, `tool_use`, ...). */
export type ContentBlock =
  | { type: "text"; text: string }
  | { type: "thinking"; thinking: string; signature?: string }
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | { type: string; [key: string]: unknown };

/** The raw Anthropic stream events that arrive wrapped in `stream_event`. */
export type StreamEvent =
  | { type: "message_start"; message: { id: string; model: string; usage?: Partial<CliUsage> } }
  | { type: "content_block_start"; index: number; content_block: ContentBlock }
  | {
      type: "content_block_delta";
      index: number;
      delta:
        | { type: "text_delta"; text: string }
        | { type: "thinking_delta"; thinking: string }
        | { type: "input_json_delta"; partial_json: string }
        | { type: string; [key: string]: unknown };
    }
  | { type: "content_block_stop"; index: number }
  | {
      type: "message_delta";
      delta: { stop_reason: string | null };
      usage?: Partial<CliUsage>;
    }
  | { type: "message_stop" }
  | { type: string; [key: string]: unknown };

/** The `result` event that ends every run. */
export interface ResultEvent {
  type: "result";
  subtype: string;
  is_error: boolean;
  api_error_status: number | null;
  result: string | null;
  stop_reason: string | null;
  session_id: string;
  usage: CliUsage;
  total_cost_usd: number;
  structured_output?: unknown;
  num_turns?: number;
  /** Why the CLI's loop ended (2.1.2xx+): `completed`, `blocking_limit`, `prompt_too_long`, ... */
  terminal_reason?: string;
  /** The CLI's category of an API error (2.1.332+), e.g. `connection_failed`. */
  api_error?: string;
}

/** One parsed stdout line. */
export type CliEvent =
  | { type: "system_init"; session_id: string; model: string }
  | { type: "stream_event"; event: StreamEvent; parent_tool_use_id: string | null }
  | {
      type: "assistant";
      /** `model` is "<synthetic>" for the CLI's own error messages. */
      message: { id: string; model: string; content: ContentBlock[]; usage?: CliUsage };
      parent_tool_use_id: string | null;
    }
  | {
      /**
       * A `user` event: the results of tools the CLI ran itself (agent mode), in the shape the
       * API receives them. Other user events (replayed stdin turns) have no results.
       */
      type: "tool_results";
      results: Array<{ tool_use_id: string; is_error: boolean }>;
      parent_tool_use_id: string | null;
    }
  | {
      type: "api_retry";
      attempt: number;
      max_retries: number;
      retry_delay_ms: number;
      error_status: number | null;
      error: string;
    }
  | ResultEvent
  | {
      /**
       * `system/status` about compaction (the CLI summarising the conversation to fit the
       * context window): `status: "compacting"` → started, then `compact_result`.
       */
      type: "compact";
      phase: "started" | "succeeded" | "failed";
      /** `compact_error` of a failed compaction, e.g. "too_few_groups". */
      error: string | null;
    }
  | {
      /** `system/compact_boundary`: the conversation was replaced by a summary from here on. */
      type: "compact_boundary";
      /** `auto` (the CLI decided) or `manual`. */
      trigger: string;
      preTokens: number | null;
    }
  | RateLimitEvent
  | { type: "unknown"; raw: unknown };

/** One window of a `rate_limit_event`'s `unifiedWindows` (2.1.332; absent on 2.1.221). */
export interface RateLimitWindow {
  /** The CLI's name: `five_hour`, `seven_day`, `seven_day_overage_included`. */
  type: string;
  /** The spent fraction, 0..1 (`anthropic-ratelimit-unified-<5h|7d|7d_oi>-utilization`). */
  utilization: number | null;
  /** Unix seconds (`...-<window>-reset`). */
  resetsAt: number | null;
  /** `allowed`, `allowed_warning` or `rejected` (`...-<window>-status`), when the API sent it. */
  status: string | null;
}

/**
 * `rate_limit_event`: the subscription's state as the CLI read it from the API's
 * `anthropic-ratelimit-unified-*` response headers (DESIGN.md "Subscription limits"). The CLI
 * prints one after every API response, headers or not: without them it is bare
 * (`{"status":"allowed"}`, or `rejected` after a plain 429) and says nothing about the
 * subscription ({@link isBareRateLimit}).
 */
export interface RateLimitEvent {
  type: "rate_limit";
  /** `allowed`, `allowed_warning` or `rejected`: the state of window `rateLimitType`. */
  status: string;
  /** When that window resets, Unix seconds. */
  resetsAt: number | null;
  /** The binding window (the API's representative claim): `five_hour`, `seven_day`, `seven_day_opus`, ... */
  rateLimitType: string | null;
  /** That window's spent fraction, 0..1: only with `allowed_warning`. */
  utilization: number | null;
  /** Overage (extra usage beyond the subscription): `allowed`, `allowed_warning`, `rejected`. */
  overageStatus: string | null;
  /** When the overage period resets, Unix seconds. */
  overageResetsAt: number | null;
  /** Whether this answer was paid from overage. */
  isUsingOverage: boolean;
  /** Every window the API reported (2.1.332+), windows already reset left out by the CLI. */
  windows: RateLimitWindow[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function num(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

/** Normalises a usage object: missing counts become 0. */
export function toUsage(value: unknown): CliUsage {
  const u = isRecord(value) ? value : {};
  return {
    input_tokens: num(u.input_tokens),
    output_tokens: num(u.output_tokens),
    cache_read_input_tokens: num(u.cache_read_input_tokens),
    cache_creation_input_tokens: num(u.cache_creation_input_tokens),
  };
}

/**
 * Parses one stdout line. Blank lines give null.
 * @throws SyntaxError with the line number when the line is not JSON
 *   ("Cannot parse line 3: unexpected end of JSON").
 */
export function parseLine(line: string, lineNumber = 0): CliEvent | null {
  const trimmed = line.trim();
  if (trimmed === "") return null;
  let raw: unknown;
  try {
    raw = JSON.parse(trimmed);
  } catch (error) {
    throw new SyntaxError(`Cannot parse line ${lineNumber}: ${(error as Error).message}`);
  }
  return toEvent(raw);
}

/** Classifies a parsed JSON value as a {@link CliEvent}. */
export function toEvent(raw: unknown): CliEvent {
  if (!isRecord(raw)) return { type: "unknown", raw };
  const parent = typeof raw.parent_tool_use_id === "string" ? raw.parent_tool_use_id : null;
  switch (raw.type) {
    case "system":
      if (raw.subtype === "init") {
        return {
          type: "system_init",
          session_id: String(raw.session_id ?? ""),
          model: String(raw.model ?? ""),
        };
      }
      if (raw.subtype === "api_retry") {
        return {
          type: "api_retry",
          attempt: num(raw.attempt),
          max_retries: num(raw.max_retries),
          retry_delay_ms: num(raw.retry_delay_ms),
          error_status: typeof raw.error_status === "number" ? raw.error_status : null,
          error: String(raw.error ?? ""),
        };
      }
      if (raw.subtype === "status" && raw.status === "compacting") {
        return { type: "compact", phase: "started", error: null };
      }
      if (raw.subtype === "status" && typeof raw.compact_result === "string") {
        return {
          type: "compact",
          phase: raw.compact_result === "success" ? "succeeded" : "failed",
          error: typeof raw.compact_error === "string" ? raw.compact_error : null,
        };
      }
      if (raw.subtype === "compact_boundary") {
        const meta = isRecord(raw.compact_metadata) ? raw.compact_metadata : {};
        return {
          type: "compact_boundary",
          trigger: String(meta.trigger ?? ""),
          preTokens: typeof meta.pre_tokens === "number" ? meta.pre_tokens : null,
        };
      }
      return { type: "unknown", raw };
    case "stream_event":
      if (!isRecord(raw.event) || typeof raw.event.type !== "string")
        return { type: "unknown", raw };
      return { type: "stream_event", event: raw.event as StreamEvent, parent_tool_use_id: parent };
    case "assistant": {
      const message = isRecord(raw.message) ? raw.message : {};
      const content = Array.isArray(message.content) ? (message.content as ContentBlock[]) : [];
      return {
        type: "assistant",
        message: {
          id: String(message.id ?? ""),
          model: String(message.model ?? ""),
          content,
          ...(isRecord(message.usage) ? { usage: toUsage(message.usage) } : {}),
        },
        parent_tool_use_id: parent,
      };
    }
    case "user": {
      const message = isRecord(raw.message) ? raw.message : {};
      const content = Array.isArray(message.content) ? message.content : [];
      const results = content
        .filter((block): block is Record<string, unknown> => isRecord(block))
        .filter((block) => block.type === "tool_result")
        .map((block) => ({
          tool_use_id: String(block.tool_use_id ?? ""),
          is_error: block.is_error === true,
        }));
      if (results.length === 0) return { type: "unknown", raw };
      return { type: "tool_results", results, parent_tool_use_id: parent };
    }
    case "rate_limit_event":
      return toRateLimit(isRecord(raw.rate_limit_info) ? raw.rate_limit_info : {});
    case "result":
      return {
        type: "result",
        subtype: String(raw.subtype ?? ""),
        is_error: raw.is_error === true,
        api_error_status: typeof raw.api_error_status === "number" ? raw.api_error_status : null,
        result: typeof raw.result === "string" ? raw.result : null,
        stop_reason: typeof raw.stop_reason === "string" ? raw.stop_reason : null,
        session_id: String(raw.session_id ?? ""),
        usage: toUsage(raw.usage),
        total_cost_usd: num(raw.total_cost_usd),
        ...(raw.structured_output === undefined
          ? {}
          : { structured_output: raw.structured_output }),
        ...(typeof raw.num_turns === "number" ? { num_turns: raw.num_turns } : {}),
        ...(typeof raw.terminal_reason === "string"
          ? { terminal_reason: raw.terminal_reason }
          : {}),
        ...(typeof raw.api_error === "string" ? { api_error: raw.api_error } : {}),
      };
    default:
      return { type: "unknown", raw };
  }
}

function finiteOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function stringOrNull(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

/** A `rate_limit_event`'s `rate_limit_info` as a {@link RateLimitEvent}. */
function toRateLimit(info: Record<string, unknown>): RateLimitEvent {
  const windows: RateLimitWindow[] = [];
  if (isRecord(info.unifiedWindows)) {
    for (const [type, value] of Object.entries(info.unifiedWindows)) {
      if (!isRecord(value)) continue;
      windows.push({
        type,
        utilization: finiteOrNull(value.utilization),
        resetsAt: finiteOrNull(value.resetsAt),
        status: stringOrNull(value.status),
      });
    }
  }
  return {
    type: "rate_limit",
    status: String(info.status ?? ""),
    resetsAt: finiteOrNull(info.resetsAt),
    rateLimitType: stringOrNull(info.rateLimitType),
    utilization: finiteOrNull(info.utilization),
    overageStatus: stringOrNull(info.overageStatus),
    overageResetsAt: finiteOrNull(info.overageResetsAt),
    isUsingOverage: info.isUsingOverage === true,
    windows,
  };
}

/**
 * Whether a `rate_limit_event` carries nothing from the API's headers: the CLI prints
 * `{"status":"allowed","isUsingOverage":false}` after every response without them (an API key,
 * a fake API) and `{"status":"rejected",...}` after a plain 429 ("not your usage limit").
 */
export function isBareRateLimit(event: RateLimitEvent): boolean {
  return (
    event.resetsAt === null &&
    event.rateLimitType === null &&
    event.utilization === null &&
    event.overageStatus === null &&
    event.windows.length === 0
  );
}
