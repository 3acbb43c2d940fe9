/**
 * The subscription's rate-limit state, as the claude CLI last reported it (`rate_limit_event`,
 * read from the API's `anthropic-ratelimit-unified-*` headers; DESIGN.md "Subscription limits"):
 * the latest status, reset and utilization per window, fed by every run and shown in response
 * headers, `/health` (`limits`) and `/metrics`.
 */
import { type CliEvent, isBareRateLimit } from "./claude/events.ts";

/** One window of {@link LimitsSnapshot}. */
export interface LimitWindow {
  /** The CLI's name: `five_hour`, `seven_day`, `seven_day_opus`, `seven_day_overage_included`, ... */
  type: string;
  /** `allowed`, `allowed_warning` or `rejected`; null when not reported. */
  status: string | null;
  /** The spent fraction, 0..1; null when not reported. */
  utilization: number | null;
  /** ISO 8601; null when not reported. */
  resets_at: string | null;
}

/** The `limits` of `GET /health`. */
export interface LimitsSnapshot {
  /** When the CLI last reported the state (ISO 8601); null: never since the proxy started. */
  updated_at: string | null;
  /** The subscription's status: `allowed`, `allowed_warning` or `rejected`. */
  status: string | null;
  /** The window `status` is about (the API's representative claim), e.g. `five_hour`. */
  type: string | null;
  /** When that window resets (ISO 8601). */
  resets_at: string | null;
  /** Every window known and not yet reset, five_hour and seven_day first. */
  windows: LimitWindow[];
  /** Overage (extra usage beyond the subscription), when the API reported it. */
  overage: { status: string | null; resets_at: string | null; in_use: boolean } | null;
}

/** A window as kept: Unix seconds. */
interface KeptWindow {
  status: string | null;
  utilization: number | null;
  resetsAt: number | null;
}

/** Windows listed first, in this order; others follow by name. */
const WINDOW_ORDER = [
  "five_hour",
  "seven_day",
  "seven_day_opus",
  "seven_day_sonnet",
  "seven_day_overage_included",
  "overage",
];

/** The key of a window in the API's header names (`anthropic-ratelimit-unified-<key>-*`). */
const HEADER_KEYS: Record<string, string> = {
  five_hour: "5h",
  seven_day: "7d",
  seven_day_overage_included: "7d_oi",
  overage: "overage",
};

/** Prefix of the response headers, the API's own names. */
export const LIMIT_HEADER_PREFIX = "anthropic-ratelimit-unified-";

function iso(seconds: number | null): string | null {
  return seconds === null ? null : new Date(seconds * 1000).toISOString();
}

function order(a: string, b: string): number {
  const ia = WINDOW_ORDER.indexOf(a);
  const ib = WINDOW_ORDER.indexOf(b);
  if (ia !== ib) return (ia < 0 ? WINDOW_ORDER.length : ia) - (ib < 0 ? WINDOW_ORDER.length : ib);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Whether `seconds` (a reset) has passed at `nowMs`. */
function passed(seconds: number | null, nowMs: number): boolean {
  return seconds !== null && seconds * 1000 <= nowMs;
}

/**
 * The latest rate-limit state per window. A window's utilization and status are kept until a
 * report of the same window replaces them; a report with another reset starts the window afresh.
 * What has reset is left out of every view (the CLI drops such windows too): the state after a
 * reset is unknown until the next request.
 */
export class RateLimits {
  #updatedAtMs: number | null = null;
  #status: string | null = null;
  #type: string | null = null;
  #resetsAt: number | null = null;
  #windows = new Map<string, KeptWindow>();
  #overage: { status: string; resetsAt: number | null; inUse: boolean } | null = null;

  /**
   * Takes in a CLI event; anything but an informative `rate_limit_event` is ignored (see
   * {@link isBareRateLimit}). Returns whether the state changed.
   */
  observe(event: CliEvent, nowMs: number = Date.now()): boolean {
    if (event.type !== "rate_limit" || isBareRateLimit(event)) return false;
    this.#updatedAtMs = nowMs;
    this.#status = event.status === "" ? null : event.status;
    this.#type = event.rateLimitType;
    this.#resetsAt = event.resetsAt;
    if (event.rateLimitType !== null) {
      this.#merge(event.rateLimitType, {
        status: this.#status,
        utilization: event.utilization,
        resetsAt: event.resetsAt,
      });
    }
    for (const window of event.windows) this.#merge(window.type, window);
    if (event.overageStatus !== null) {
      this.#overage = {
        status: event.overageStatus,
        resetsAt: event.overageResetsAt,
        inUse: event.isUsingOverage,
      };
    } else if (this.#overage !== null) {
      this.#overage.inUse = event.isUsingOverage;
    }
    return true;
  }

  #merge(type: string, next: KeptWindow): void {
    const kept = this.#windows.get(type);
    if (kept === undefined || (next.resetsAt !== null && next.resetsAt !== kept.resetsAt)) {
      this.#windows.set(type, { ...next });
      return;
    }
    this.#windows.set(type, {
      status: next.status ?? kept.status,
      utilization: next.utilization ?? kept.utilization,
      resetsAt: next.resetsAt ?? kept.resetsAt,
    });
  }

  /** The windows not yet reset at `nowMs`, in display order (Unix seconds). */
  #current(nowMs: number): Array<KeptWindow & { type: string }> {
    return [...this.#windows]
      .filter(([, window]) => !passed(window.resetsAt, nowMs))
      .map(([type, window]) => ({ type, ...window }))
      .sort((a, b) => order(a.type, b.type));
  }

  /** The state for `/health` at `nowMs`. */
  snapshot(nowMs: number = Date.now()): LimitsSnapshot {
    const reset = passed(this.#resetsAt, nowMs);
    const overage = this.#overage;
    return {
      updated_at: this.#updatedAtMs === null ? null : new Date(this.#updatedAtMs).toISOString(),
      status: reset ? null : this.#status,
      type: reset ? null : this.#type,
      resets_at: reset ? null : iso(this.#resetsAt),
      windows: this.#current(nowMs).map((window) => ({
        type: window.type,
        status: window.status,
        utilization: window.utilization,
        resets_at: iso(window.resetsAt),
      })),
      overage:
        overage === null || passed(overage.resetsAt, nowMs)
          ? null
          : { status: overage.status, resets_at: iso(overage.resetsAt), in_use: overage.inUse },
    };
  }

  /**
   * The state as response headers, under the API's own names and formats (fractions 0..1, Unix
   * seconds), so that tools reading Anthropic's headers read these too:
   * `anthropic-ratelimit-unified-status`, `-reset`, `-representative-claim`, per window
   * `-5h-utilization`, `-5h-reset`, `-5h-status` (`7d`, `7d_oi` likewise), `-overage-status`,
   * `-overage-reset`. Empty before the first report; what has reset is left out.
   */
  headers(nowMs: number = Date.now()): Record<string, string> {
    const headers: Record<string, string> = {};
    const set = (name: string, value: string | number | null) => {
      if (value !== null) headers[`${LIMIT_HEADER_PREFIX}${name}`] = String(value);
    };
    if (!passed(this.#resetsAt, nowMs)) {
      set("status", this.#status);
      set("reset", this.#resetsAt);
      set("representative-claim", this.#type);
    }
    for (const window of this.#current(nowMs)) {
      const key = HEADER_KEYS[window.type];
      if (key === undefined) continue;
      set(`${key}-utilization`, window.utilization);
      set(`${key}-reset`, window.resetsAt);
      set(`${key}-status`, window.status);
    }
    const overage = this.#overage;
    if (overage !== null && !passed(overage.resetsAt, nowMs)) {
      set("overage-status", overage.status);
      set("overage-reset", overage.resetsAt);
    }
    return headers;
  }
}

/** The response header names {@link RateLimits.headers} may send (CORS `exposeHeaders`). */
export const LIMIT_HEADER_NAMES: readonly string[] = [
  "status",
  "reset",
  "representative-claim",
  ...Object.values(HEADER_KEYS).flatMap((key) =>
    ["utilization", "reset", "status"].map((field) => `${key}-${field}`),
  ),
].map((name) => `${LIMIT_HEADER_PREFIX}${name}`);
