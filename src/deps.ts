/**
 * What the app needs from the outside, built once by `main.ts` (or a test) and passed to
 * `createApp`. Holding it in one object keeps routes free of runtime globals.
 */

import type { AgentSettings } from "./claude/agent.ts";
import type { CliLogin } from "./claude/login.ts";
import type { ClaudeInfo } from "./claude/probe.ts";
import type { Watchdog } from "./claude/watchdog.ts";
import type { Config } from "./config.ts";
import type { ProcessPool } from "./engine/pool.ts";
import type { ToolRuns } from "./engine/registry.ts";
import type { Lifecycle } from "./lifecycle.ts";
import type { ConcurrencyLimiter } from "./limiter.ts";
import type { RateLimits } from "./limits.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import type { RecentRequests } from "./recent.ts";
import type { Runtime } from "./runtime/types.ts";
import type { ResponseStore } from "./surfaces/responses/store.ts";
import type { UsageStore } from "./usage.ts";

export type { ClaudeInfo };

/** Dependencies of {@link createApp}. */
export interface AppDeps {
  config: Config;
  runtime: Runtime;
  claude: ClaudeInfo;
  /** Empty working directory for every run. */
  workDir: string;
  /**
   * Agent mode (`--agent-tools`, README "Agent mode"): the CLI's own tools for every run, in
   * `agent.dir`. Absent or null: off (`--tools ""`).
   */
  agent?: AgentSettings | null;
  /** Parent of per-run temp directories. */
  tempRoot: string;
  /** Extra environment for CLI children (tests: ANTHROPIC_BASE_URL, CLAUDE_CONFIG_DIR). */
  childEnv: Record<string, string>;
  /** Environment variables kept out of CLI children. */
  dropEnv: readonly string[];
  /** Bounds the number of CLI processes. */
  limiter: ConcurrencyLimiter;
  /** Live runs and shutdown state. */
  lifecycle: Lifecycle;
  /** Live runs waiting for client tool results, and their MCP bridges. */
  toolRuns: ToolRuns;
  /**
   * Every CLI process by state (busy, parked, warm, spare) under `--max-processes`; its
   * `parked` is {@link toolRuns}.
   */
  pool: ProcessPool;
  /** The proxy's own base URL as the CLI reaches it (`http://127.0.0.1:PORT`), for MCP. */
  baseUrl: () => string;
  /** Kills the CLIs if the proxy dies hard (null where there is none, e.g. Windows). */
  watchdog: Watchdog | null;
  /** Prometheus metrics. */
  metrics: Metrics;
  /** The subscription's rate-limit state as the CLI last reported it (headers, /health, /metrics). */
  rateLimits: RateLimits;
  /** Persistent usage totals (`GET /v1/usage`). */
  usage: UsageStore;
  /** The last requests answered, for the dashboard (`GET /dashboard/requests`); absent: none kept. */
  recent?: RecentRequests;
  /** The CLI's login as runs showed it (`/health` `claude.logged_in`); absent: not tracked. */
  login?: CliLogin;
  /**
   * Stored Responses API responses (`previous_response_id`, `GET /v1/responses/{id}`); absent:
   * an in-memory store with the configured limits.
   */
  responses?: ResponseStore;
  /** Whether ANTHROPIC_API_KEY is set in the proxy's environment (the CLI then bills per token). */
  anthropicApiKeySet: boolean;
  /** The proxy's version. */
  version: string;
  log: Logger;
  /** Seconds since the epoch (injectable for tests). */
  now?: () => number;
}
