/**
 * Turn events → OpenAI Chat Completions wire shapes (https://platform.openai.com/docs/api-reference/chat):
 * a `chat.completion`, or `chat.completion.chunk` SSE frames ending in `data: [DONE]`. Thinking
 * goes out as `reasoning_content`, client tool calls as `tool_calls`. Agent mode's tools (run by
 * the CLI itself) stream as `reasoning_content` lines (`Read notes.txt`), never as `tool_calls`
 * or `content`; a whole answer carries the final text only.
 */
import {
  progressLine,
  type TurnEnd,
  type TurnEvent,
  type TurnResult,
  type Usage,
} from "../../engine/events.ts";
import type { ProxyError } from "../../errors.ts";
import type { SseFrame, TurnRenderer } from "../../http/render.ts";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChoiceDelta,
  CompletionUsage,
  FinishReason,
} from "./types.ts";

/** Maps Anthropic's `stop_reason` to OpenAI's `finish_reason`. */
export function finishReason(stopReason: string | null, hasToolCalls: boolean): FinishReason {
  if (hasToolCalls) return "tool_calls";
  if (stopReason === "max_tokens" || stopReason === "model_context_window_exceeded")
    return "length";
  if (stopReason === "refusal") return "content_filter";
  return "stop";
}

/**
 * OpenAI usage from the CLI's: prompt tokens count input, cache-read and cache-creation
 * tokens; `cached_tokens` the cache reads.
 */
export function toCompletionUsage(usage: Usage): CompletionUsage {
  const prompt =
    usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens;
  return {
    prompt_tokens: prompt,
    completion_tokens: usage.output_tokens,
    total_tokens: prompt + usage.output_tokens,
    prompt_tokens_details: { cached_tokens: usage.cache_read_input_tokens },
  };
}

/** The streamed delta of one turn event, or null when it has none (signatures, retries). */
export function toChoiceDelta(event: Exclude<TurnEvent, TurnEnd>): ChoiceDelta | null {
  switch (event.kind) {
    case "text":
      return { content: event.text };
    case "thinking":
      return { reasoning_content: event.text };
    case "tool_call":
      return {
        tool_calls: [
          {
            index: event.index,
            id: event.id,
            type: "function",
            function: { name: event.name, arguments: event.arguments },
          },
        ],
      };
    case "tool_arguments":
      return { tool_calls: [{ index: event.index, function: { arguments: event.delta } }] };
    case "agent_tool":
    case "agent_tool_result": {
      const line = progressLine(event);
      return line === null ? null : { reasoning_content: line };
    }
    default:
      return null;
  }
}

/** The whole `chat.completion` of a turn. */
export function toChatCompletion(
  result: TurnResult,
  meta: { id: string; created: number; model: string },
): ChatCompletion {
  let content = "";
  let reasoning = "";
  for (const block of result.content) {
    if (block.type === "text") content += block.text;
    else if (block.type === "thinking") reasoning += block.thinking;
  }
  const toolCalls = result.end.toolCalls.map((call) => ({
    id: call.id,
    type: "function" as const,
    function: { name: call.name, arguments: call.arguments === "" ? "{}" : call.arguments },
  }));
  return {
    id: meta.id,
    object: "chat.completion",
    created: meta.created,
    model: meta.model,
    system_fingerprint: null,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: content === "" && toolCalls.length > 0 ? null : content,
          refusal: null,
          ...(reasoning === "" ? {} : { reasoning_content: reasoning }),
          ...(toolCalls.length === 0 ? {} : { tool_calls: toolCalls }),
        },
        finish_reason: finishReason(result.end.stopReason, toolCalls.length > 0),
        logprobs: null,
      },
    ],
    usage: toCompletionUsage(result.end.usage),
  };
}

const DONE: SseFrame = { data: "[DONE]" };

/** The renderer of one chat completion (`includeUsage`: `stream_options.include_usage`). */
export function chatRenderer(meta: {
  id: string;
  created: number;
  model: string;
  includeUsage: boolean;
}): TurnRenderer {
  const frame = (choices: ChatCompletionChunk["choices"], usage?: CompletionUsage): SseFrame => ({
    data: JSON.stringify({
      id: meta.id,
      object: "chat.completion.chunk",
      created: meta.created,
      model: meta.model,
      system_fingerprint: null,
      choices,
      ...(usage === undefined ? {} : { usage }),
    } satisfies ChatCompletionChunk),
  });
  const chunk = (delta: ChoiceDelta, finish: FinishReason | null = null) =>
    frame([{ index: 0, delta, finish_reason: finish, logprobs: null }]);
  return {
    open: () => [chunk({ role: "assistant", content: "" })],
    event: (event) => {
      if (event.kind === "retrying") return [{ comment: "upstream retry" }];
      const delta = toChoiceDelta(event);
      return delta === null ? [] : [chunk(delta)];
    },
    end: ({ end }) => [
      chunk({}, finishReason(end.stopReason, end.toolCalls.length > 0)),
      ...(meta.includeUsage ? [frame([], toCompletionUsage(end.usage))] : []),
      DONE,
    ],
    error: (error: ProxyError) => [{ data: JSON.stringify(error.toJSON()) }, DONE],
    ping: () => ({ comment: "ping" }),
    whole: (result) => toChatCompletion(result, meta),
  };
}
