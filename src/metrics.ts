/**
 * Prometheus metrics for `GET /metrics`, through prom-client (pure JavaScript: it runs on Node,
 * Bun, Deno and in a `bun build --compile` binary). prom-client's default process metrics are
 * not collected: they read `process` and `perf_hooks`, which this layer must not touch (and
 * which differ between runtimes); the resident set size comes from the runtime instead.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { LimitsSnapshot } from "./limits.ts";

/** Upper bounds of the request-duration histogram, seconds (a completion can take minutes). */
export const DURATION_BUCKETS_SECONDS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
];

/** Options for {@link createMetrics}. */
export interface MetricsOptions {
  /** Resident set size of the proxy, bytes (e.g. `runtime.rss`): exported as `process_resident_memory_bytes`. */
  rss?: () => number;
}

/** Label names of the HTTP metrics. */
type HttpLabels = "method" | "route" | "status";

/** The proxy's metrics, all in one {@link Registry}. */
export interface Metrics {
  /** The registry holding every metric below. */
  readonly registry: Registry;
  /** `http_requests_total{method,route,status}`: answered HTTP requests. `route` is the route pattern, not the raw path. */
  readonly httpRequests: Counter<HttpLabels>;
  /** `http_request_duration_seconds{method,route,status}`: time to the response's end, seconds. */
  readonly httpRequestDuration: Histogram<HttpLabels>;
  /**
   * `chat_completions_total{model,stream,status}`: chat completions by Claude model (the `--model`
   * the CLI ran: `gpt-4o` counts as `sonnet`), `stream` "true"|"false", HTTP status. `model` is
   * bounded (src/models.ts `ModelLabels`): aliases, configured ids and up to 32 ids the API
   * answered; every other name is `other`.
   */
  readonly chatCompletions: Counter<"model" | "stream" | "status">;
  /** Turns answered on every surface (`chat`, `responses`, `messages`). */
  readonly turns: Counter<"surface" | "model" | "stream" | "status">;
  /** `tokens_total{model,type}`: tokens, `type` = prompt | completion | cached; `model` as above. */
  readonly tokens: Counter<"model" | "type">;
  /** `claude_processes`: claude CLI processes running now (waiting ones included). */
  readonly claudeProcesses: Gauge;
  /** `claude_processes_waiting_for_tools`: CLI processes parked until the client sends tool results. */
  readonly claudeProcessesWaitingForTools: Gauge;
  /** `queue_depth`: requests waiting for a free CLI slot. */
  readonly claudeProcessesWarm: Gauge;
  /** Turns answered by a warm process (conversation affinity, `--warm-ttl`). */
  readonly warmHits: Counter;
  /**
   * Follow-up turns (a warm run could have taken them) that went cold, by `reason`: `none`,
   * `profile`, `history` (engine/warm.ts `missReason`), `dead`, `silent`.
   */
  readonly warmMisses: Counter<"reason">;
  /** First turns answered by a spare process. */
  readonly spareHits: Counter;
  /** First turns with a launch profile that no spare took, by `reason`: `none`, `dead`, `silent`. */
  readonly spareMisses: Counter<"reason">;
  /** Spare processes started. */
  readonly sparesStarted: Counter;
  /** CLI processes by pool `state`: busy, parked, warm, spare (engine/pool.ts). */
  readonly poolProcesses: Gauge<"state">;
  /** `--max-processes`. */
  readonly poolMaxProcesses: Gauge;
  readonly queueDepth: Gauge;
  /** `queue_rejections_total`: requests answered 429 because the queue was full or the wait too long. */
  readonly queueRejections: Counter;
  /**
   * `claude_rate_limit_status{window,status}`: 1 for the subscription's current status, 0 for the
   * other known ones (`allowed`, `allowed_warning`, `rejected`). `window` is `unified` (the
   * overall status), a window (`five_hour`, `seven_day`, ...) or `overage`.
   */
  readonly rateLimitStatus: Gauge<"window" | "status">;
  /** `claude_rate_limit_utilization_ratio{window}`: the spent fraction of a window, 0..1. */
  readonly rateLimitUtilization: Gauge<"window">;
  /** `claude_rate_limit_reset_timestamp_seconds{window}`: when a window resets (`unified`: the binding one). */
  readonly rateLimitReset: Gauge<"window">;
  /** `claude_rate_limit_updated_timestamp_seconds`: when the CLI last reported the state. */
  readonly rateLimitUpdated: Gauge;
  /** Sets the four rate-limit gauges from `/health`'s `limits` (series of reset windows go away). */
  showLimits(limits: LimitsSnapshot): void;
  /** The exposition text for `GET /metrics` and its `Content-Type`. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** Creates a fresh registry with the proxy's metrics (one per app; tests create their own). */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const httpLabels: HttpLabels[] = ["method", "route", "status"];
  const metrics: Metrics = {
    registry,
    httpRequests: new Counter({
      name: "http_requests_total",
      help: "HTTP requests answered, by method, route pattern and status",
      labelNames: httpLabels,
      registers,
    }),
    httpRequestDuration: new Histogram({
      name: "http_request_duration_seconds",
      help: "HTTP request duration in seconds, by method, route pattern and status",
      labelNames: httpLabels,
      buckets: DURATION_BUCKETS_SECONDS,
      registers,
    }),
    chatCompletions: new Counter({
      name: "chat_completions_total",
      help: "Chat completions, by Claude model (as run by the CLI), streaming and HTTP status",
      labelNames: ["model", "stream", "status"],
      registers,
    }),
    turns: new Counter({
      name: "turns_total",
      help: "Requests answered by a CLI turn, by API surface (chat, responses, messages), Claude model, streaming and HTTP status",
      labelNames: ["surface", "model", "stream", "status"],
      registers,
    }),
    tokens: new Counter({
      name: "tokens_total",
      help: "Tokens used, by Claude model (as run by the CLI) and type (prompt, completion, cached)",
      labelNames: ["model", "type"],
      registers,
    }),
    claudeProcesses: new Gauge({
      name: "claude_processes",
      help: "claude CLI processes running now",
      registers,
    }),
    claudeProcessesWaitingForTools: new Gauge({
      name: "claude_processes_waiting_for_tools",
      help: "claude CLI processes waiting for client tool results",
      registers,
    }),
    claudeProcessesWarm: new Gauge({
      name: "claude_processes_warm",
      help: "claude CLI processes kept alive for their conversation's next turn (--warm-ttl)",
      registers,
    }),
    warmHits: new Counter({
      name: "warm_hits_total",
      help: "Turns answered by a warm claude CLI process instead of a new one",
      registers,
    }),
    warmMisses: new Counter({
      name: "warm_misses_total",
      help: "Follow-up turns no warm claude CLI process took, by reason (none, profile, history, dead, silent)",
      labelNames: ["reason"],
      registers,
    }),
    spareHits: new Counter({
      name: "spare_hits_total",
      help: "First turns answered by a spare claude CLI process (started ahead) instead of a new one",
      registers,
    }),
    spareMisses: new Counter({
      name: "spare_misses_total",
      help: "First turns no spare claude CLI process took, by reason (none, dead, silent)",
      labelNames: ["reason"],
      registers,
    }),
    sparesStarted: new Counter({
      name: "spares_started_total",
      help: "Spare claude CLI processes started ahead for a launch profile seen recently",
      registers,
    }),
    poolProcesses: new Gauge({
      name: "claude_pool_processes",
      help: "claude CLI processes by state: busy (answering), parked (waiting for tool results), warm, spare",
      labelNames: ["state"],
      registers,
    }),
    poolMaxProcesses: new Gauge({
      name: "claude_pool_max_processes",
      help: "Most claude CLI processes alive in all states together (--max-processes)",
      registers,
    }),
    queueDepth: new Gauge({
      name: "queue_depth",
      help: "Requests waiting for a free claude CLI slot",
      registers,
    }),
    queueRejections: new Counter({
      name: "queue_rejections_total",
      help: "Requests rejected with 429 because the queue was full or the wait too long",
      registers,
    }),
    rateLimitStatus: new Gauge({
      name: "claude_rate_limit_status",
      help: "Subscription rate-limit status as the claude CLI last reported it: 1 for the current status, by window (unified: overall; overage) and status",
      labelNames: ["window", "status"],
      registers,
    }),
    rateLimitUtilization: new Gauge({
      name: "claude_rate_limit_utilization_ratio",
      help: "Spent fraction (0..1) of a subscription rate-limit window, as the claude CLI last reported it",
      labelNames: ["window"],
      registers,
    }),
    rateLimitReset: new Gauge({
      name: "claude_rate_limit_reset_timestamp_seconds",
      help: "When a subscription rate-limit window resets, Unix seconds (window unified: the binding one)",
      labelNames: ["window"],
      registers,
    }),
    rateLimitUpdated: new Gauge({
      name: "claude_rate_limit_updated_timestamp_seconds",
      help: "When the claude CLI last reported the subscription's rate-limit state, Unix seconds",
      registers,
    }),
    showLimits(limits) {
      showLimits(metrics, limits);
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
  const rss = options.rss;
  if (rss !== undefined) {
    new Gauge({
      name: "process_resident_memory_bytes",
      help: "Resident memory size of the proxy in bytes",
      registers,
      collect() {
        this.set(rss());
      },
    });
  }
  return metrics;
}

/** The statuses the API sends; each gets a series (0 or 1) once any status is known. */
const LIMIT_STATUSES = ["allowed", "allowed_warning", "rejected"];

/** Unix seconds of an ISO time. */
function seconds(isoTime: string): number {
  return Date.parse(isoTime) / 1000;
}

function showLimits(metrics: Metrics, limits: LimitsSnapshot): void {
  metrics.rateLimitStatus.reset();
  metrics.rateLimitUtilization.reset();
  metrics.rateLimitReset.reset();
  metrics.rateLimitUpdated.reset();
  const status = (window: string, current: string | null) => {
    if (current === null) return;
    for (const known of new Set([...LIMIT_STATUSES, current])) {
      metrics.rateLimitStatus.set({ window, status: known }, known === current ? 1 : 0);
    }
  };
  const reset = (window: string, at: string | null) => {
    if (at !== null) metrics.rateLimitReset.set({ window }, seconds(at));
  };
  if (limits.updated_at !== null) metrics.rateLimitUpdated.set(seconds(limits.updated_at));
  status("unified", limits.status);
  reset("unified", limits.resets_at);
  for (const window of limits.windows) {
    status(window.type, window.status);
    reset(window.type, window.resets_at);
    if (window.utilization !== null)
      metrics.rateLimitUtilization.set({ window: window.type }, window.utilization);
  }
  if (limits.overage !== null) {
    status("overage", limits.overage.status);
    reset("overage", limits.overage.resets_at);
  }
}
