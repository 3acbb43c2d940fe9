/**
 * From CLI events to the parts of a chat completion: deltas as they arrive, then one end part
 * with `finish_reason` and usage. Upstream failures become {@link ProxyError}s here, so routes
 * only decide how to send them (HTTP status before the first byte, an error frame after).
 */
import type { CliEvent, ResultEvent } from "./claude/events.ts";
import { type RetryPolicy, resultError, retryError } from "./claude/status.ts";
import { ProxyError } from "./openai/errors.ts";
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
      result: ResultEvent;
      state: TranslateState;
    };

/**
 * Turns a run's events into completion parts.
 * @throws ProxyError for an `is_error` result, an `api_retry` the policy does not wait out, or
 *   a run that ended without a `result`.
 */
export async function* completionParts(
  events: AsyncIterable<CliEvent>,
  policy: RetryPolicy,
  toolPrefix = "",
): AsyncGenerator<CompletionPart, void, undefined> {
  const state = newTranslateState(toolPrefix);
  let lastRetry: Extract<CliEvent, { type: "api_retry" }> | undefined;
  for await (const event of events) {
    if (event.type === "api_retry") {
      lastRetry = event;
      const error = retryError(event, policy);
      if (error !== null) throw error;
      yield { kind: "retrying", attempt: event.attempt, delayMs: event.retry_delay_ms };
      continue;
    }
    for (const delta of eventToDeltas(event, state)) yield { kind: "delta", delta };
    if (event.type === "result") {
      const error = resultError(event, lastRetry);
      if (error !== null) throw error;
      yield {
        kind: "end",
        finishReason: finishReason(state.stopReason, state.toolCalls.length > 0),
        usage: toCompletionUsage(state.usage),
        result: event,
        state,
      };
      return;
    }
  }
  throw new ProxyError(502, "The claude CLI ended without a result", {
    type: "api_error",
    code: "cli_exited",
  });
}
