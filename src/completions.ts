/**
 * From CLI events to the parts of a chat completion: deltas as they arrive, then one end part
 * with `finish_reason` and usage. Upstream failures become {@link ProxyError}s here, so routes
 * only decide how to send them (HTTP status before the first byte, an error frame after).
 */
import type { CliEvent, ResultEvent } from "./claude/events.ts";
import { contextLengthError, type RetryPolicy, resultError, retryError } from "./claude/status.ts";
import { ProxyError } from "./errors.ts";
import {
  eventToDeltas,
  finishReason,
  newTranslateState,
  type TranslateState,
  toCompletionUsage,
} from "./openai/translate.ts";
import type { ChoiceDelta, CompletionUsage, FinishReason } from "./openai/types.ts";

/** One part of a completion. `retrying` says the CLI is waiting to retry the upstream API. */
export type CompletionPart =
  | { kind: "delta"; delta: ChoiceDelta }
  | { kind: "retrying"; attempt: number; delayMs: number }
  | {
      kind: "end";
      finishReason: FinishReason;
      usage: CompletionUsage;
      /** The `result` event; null when the response ended at client tool calls (run parked). */
      result: ResultEvent | null;
      state: TranslateState;
      /** The CLI compacted (summarised) the conversation before answering (`--auto-compact`). */
      compacted: boolean;
    };

/**
 * Watches whether the CLI reaches the upstream API (the `--upstream-unreachable-timeout` clock,
 * see src/chat/reach.ts): told about each connection failure and about progress.
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
export interface CompletionOptions {
  policy: RetryPolicy;
  /** Client tool prefix (`mcp__client__`), or null without client tools. */
  toolPrefix: string | null;
  /** `response_format` json_schema/json_object: the content is the result's structured output. */
  structuredOutput: boolean;
  /**
   * Let the CLI answer from a summary of the conversation (`--auto-compact`); otherwise a
   * compaction ends the run with 400 `context_length_exceeded`.
   */
  autoCompact?: boolean;
  /** Connection failures and progress go here. */
  upstream?: UpstreamWatch;
}

/** The error for a compaction the client did not allow. */
function compactionRefused(): ProxyError {
  return contextLengthError(
    { tokens: null, limit: null },
    "the conversation no longer fits the context window and the CLI began to summarise it, which this proxy refuses without --auto-compact",
  );
}

/**
 * Turns a run's events into completion parts. The iterator is read with `next()` only and never
 * closed here: after an end part with `result: null` (client tool calls) the run lives on.
 * `state` may be passed in so that the caller can read the usage reported so far when the run
 * fails or is stopped (tokens were spent upstream all the same).
 * @throws ProxyError for an `is_error` result, an `api_retry` the policy does not wait out, or
 *   a run that ended without a `result`.
 */
export async function* completionParts(
  events: AsyncIterator<CliEvent, void, undefined>,
  options: CompletionOptions,
  state: TranslateState = newTranslateState(options.toolPrefix),
): AsyncGenerator<CompletionPart, void, undefined> {
  let lastRetry: Extract<CliEvent, { type: "api_retry" }> | undefined;
  let rateLimitResetsAt: number | null = null;
  let compacted = false;
  try {
    yield* readParts();
  } finally {
    options.upstream?.close();
  }

  async function* readParts(): AsyncGenerator<CompletionPart, void, undefined> {
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
      for (const delta of eventToDeltas(event, state)) {
        if (options.structuredOutput && delta.content !== undefined) continue;
        yield { kind: "delta", delta };
      }
      const streamedToolStop =
        event.type === "stream_event" &&
        event.parent_tool_use_id === null &&
        event.event.type === "message_stop" &&
        state.stopReason === "tool_use" &&
        state.messageToolCalls > 0;
      if (streamedToolStop || (event.type === "assistant" && state.unstreamedToolStop)) {
        yield {
          kind: "end",
          finishReason: "tool_calls",
          usage: toCompletionUsage(state.usage),
          result: null,
          state,
          compacted,
        };
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
          yield { kind: "delta", delta: { content } };
        }
        yield {
          kind: "end",
          finishReason: finishReason(state.stopReason, state.toolCalls.length > 0),
          usage: toCompletionUsage(state.usage),
          result: event,
          state,
          compacted,
        };
        return;
      }
    }
    throw new ProxyError(502, "The claude CLI ended without a result", {
      type: "api_error",
      code: "cli_exited",
    });
  }
}
