/**
 * OpenAI Chat Completions response wire types, named as in openai-node
 * (https://github.com/openai/openai-node/blob/master/src/resources/chat/completions/completions.ts).
 */

/** `usage` of a completion; prompt tokens include cache reads and cache writes. */
export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

/** A tool call the model made (`ChatCompletionMessageToolCall`); `arguments` is a JSON string. */
export interface ChatCompletionMessageToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** Why the model stopped. */
export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter";

/** The assistant message of a non-streaming answer. */
export interface ChatCompletionMessage {
  role: "assistant";
  content: string | null;
  refusal: null;
  reasoning_content?: string;
  tool_calls?: ChatCompletionMessageToolCall[];
}

/** `object: "chat.completion"`. */
export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  system_fingerprint: null;
  choices: Array<{
    index: 0;
    message: ChatCompletionMessage;
    finish_reason: FinishReason;
    logprobs: null;
  }>;
  usage: CompletionUsage;
}

/** A tool call fragment in a streamed delta (`ChoiceDeltaToolCall`). */
export interface ChoiceDeltaToolCall {
  index: number;
  id?: string;
  type?: "function";
  function?: { name?: string; arguments?: string };
}

/** The `delta` of a streamed choice. */
export interface ChoiceDelta {
  role?: "assistant";
  content?: string | null;
  reasoning_content?: string;
  tool_calls?: ChoiceDeltaToolCall[];
}

/** `object: "chat.completion.chunk"`. */
export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  system_fingerprint: null;
  choices: Array<{
    index: 0;
    delta: ChoiceDelta;
    finish_reason: FinishReason | null;
    logprobs: null;
  }>;
  usage?: CompletionUsage | null;
}

/** An entry of `GET /v1/models`. */
export interface Model {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}
