/**
 * From CLI events to the events of a turn: content as it arrives, then one end with the stop
 * reason and usage. Upstream failures become {@link ProxyError}s here, so surfaces only decide
 * how to send them (HTTP status before the first byte, an error frame after).
 */
import type { CliEvent } from "../claude/events.ts";
import { contextLengthError, type RetryPolicy, resultError, retryError } from "../claude/status.ts";
import { ProxyError } from "../errors.ts";
import type { TurnEnd, TurnEvent } from "./events.ts";
import { eventToTurnEvents, newTranslateState, type TranslateState } from "./translate.ts";

/**
 * Watches whether the CLI reaches the upstream API (the `--upstream-unreachable-timeout` clock,
 * see src/engine/reach.ts): told about each connection failure and about progress.
 */
export interface UpstreamWatch {
  /** An `api_retry` without an HTTP status: the CLI could not connect. */
  connectionFailed(event: Extract<CliEvent, { type: "api_retry" }>): void;
  /** The API answered (a stream event arrived). */
  reached(): void;
  /** This leg of the run is over: stop the clock. */
  close(): void;
  /** ANTHROPIC_BASE_URL when set, named in errors. */
  baseUrl?: string | undefined;
}

/** How to read a run. */
export interface TurnOptions {
  policy: RetryPolicy;
  /** Client tool prefix (`mcp__client__`), or null without client tools. */
  toolPrefix: string | null;
  /** A json_schema/json_object output: the text is the result's structured output. */
  structuredOutput: boolean;
  /**
   * Let the CLI answer from a summary of the conversation (`--auto-compact`); otherwise a
   * compaction ends the run with 400 `context_length_exceeded`.
   */
  autoCompact?: boolean;
  /** Connection failures and progress go here. */
  upstream?: UpstreamWatch;
  /**
   * Agent mode: the agent directory. The CLI's own tool calls and results are then reported as
   * `agent_tool` / `agent_tool_result` events, and reaching the most turns ends the turn as cut
   * off (`max_tokens`, `turnLimit`) instead of failing.
   */
  agentDir?: string | null;
}

/** The error for a compaction the client did not allow. */
function compactionRefused(): ProxyError {
  return contextLengthError(
    { tokens: null, limit: null },
    "the conversation no longer fits the context window and the CLI began to summarise it, which this proxy refuses without --auto-compact",
  );
}

/**
 * Turns a run's events into turn events. The iterator is read with `next()` only and never
 * closed here: after an end with `result: null` (client tool calls) the run lives on.
 * `state` may be passed in so that the caller can read the usage reported so far when the run
 * fails or is stopped (tokens were spent upstream all the same).
 * @throws ProxyError for an `is_error` result, an `api_retry` the policy does not wait out, or
 *   a run that ended without a `result`.
 */
export async function* turnEvents(
  events: AsyncIterator<CliEvent, void, undefined>,
  options: TurnOptions,
  state: TranslateState = newTranslateState(options.toolPrefix, options.agentDir ?? null),
): AsyncGenerator<TurnEvent, void, undefined> {
  let lastRetry: Extract<CliEvent, { type: "api_retry" }> | undefined;
  let rateLimitResetsAt: number | null = null;
  let compacted = false;
  try {
    yield* readParts();
  } finally {
    options.upstream?.close();
  }

  async function* readParts(): AsyncGenerator<TurnEvent, void, undefined> {
    while (true) {
      const next = await events.next();
      if (next.done === true) break;
      const event = next.value;
      if (event.type === "compact" || event.type === "compact_boundary") {
        if (options.autoCompact !== true) {
          if (event.type === "compact_boundary" || event.phase !== "failed")
            throw compactionRefused();
        } else if (event.type === "compact_boundary" || event.phase === "succeeded") {
          compacted = true;
        }
        continue;
      }
      if (event.type === "stream_event") options.upstream?.reached();
      if (event.type === "api_retry") {
        lastRetry = event;
        if (event.error_status === null) options.upstream?.connectionFailed(event);
        const error = retryError(event, options.policy);
        if (error !== null) throw error;
        yield { kind: "retrying", attempt: event.attempt, delayMs: event.retry_delay_ms };
        continue;
      }
      if (event.type === "rate_limit") {
        if (event.status === "rejected") rateLimitResetsAt = event.resetsAt;
        continue;
      }
      for (const content of eventToTurnEvents(event, state)) {
        if (options.structuredOutput && content.kind === "text") continue;
        yield content;
      }
      const streamedToolStop =
        event.type === "stream_event" &&
        event.parent_tool_use_id === null &&
        event.event.type === "message_stop" &&
        state.stopReason === "tool_use" &&
        state.messageToolCalls > 0;
      if (streamedToolStop || (event.type === "assistant" && state.unstreamedToolStop)) {
        yield turnEnd(state, null, compacted);
        return;
      }
      if (event.type === "result" && options.agentDir != null && isTurnLimit(event)) {
        yield { ...turnEnd(state, event, compacted), stopReason: "max_tokens", turnLimit: true };
        return;
      }
      if (event.type === "result") {
        const error = resultError(
          event,
          lastRetry,
          rateLimitResetsAt,
          Date.now(),
          options.upstream?.baseUrl,
        );
        if (error !== null) throw error;
        if (options.structuredOutput) {
          const content =
            event.structured_output !== undefined
              ? JSON.stringify(event.structured_output)
              : (event.result ?? "");
          yield { kind: "text", text: content };
        }
        yield turnEnd(state, event, compacted);
        return;
      }
    }
    throw new ProxyError(502, "The claude CLI ended without a result", {
      type: "api_error",
      code: "cli_exited",
    });
  }
}

/**
 * Whether a result says the run reached `--max-turns`: subtype `error_max_turns` (with
 * `is_error: true` and `terminal_reason: "max_turns"` on 2.1.221 and 2.1.332).
 */
export function isTurnLimit(result: Extract<CliEvent, { type: "result" }>): boolean {
  return result.subtype === "error_max_turns" || result.terminal_reason === "max_turns";
}

/** The end of a turn from the translation state (`result` null: ended at client tool calls). */
function turnEnd(state: TranslateState, result: TurnEnd["result"], compacted: boolean): TurnEnd {
  return {
    kind: "end",
    stopReason: result === null ? "tool_use" : (state.stopReason ?? "end_turn"),
    usage: { ...state.usage },
    toolCalls: state.toolCalls.map((call) => ({ ...call })),
    result,
    costUsd: result?.total_cost_usd ?? 0,
    compacted,
  };
}
