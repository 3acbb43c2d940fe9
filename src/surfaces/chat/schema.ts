/**
 * zod schemas of the OpenAI Chat Completions request, after openai-node's types
 * (https://platform.openai.com/docs/api-reference/chat/create). Unknown fields are tolerated
 * (`looseObject`) so that new client fields never break a request; wrong types are a 400 naming
 * the field (see {@link requestError}).
 */
import { z } from "zod";
import { ProxyError } from "../../errors.ts";
import {
  checkLength,
  countJsonValues,
  isObject,
  JsonSchemaObject,
  MAX_CONTENT_PARTS,
  MAX_JSON_VALUES,
  MAX_MESSAGES,
  MAX_MODEL_LENGTH,
  MAX_STOP,
  parseEach,
  parseJsonBody,
  requestError,
  tooManyValues,
} from "../../http/json.ts";

/** Most entries in `tools` (OpenAI's own limit). */
export const MAX_TOOLS = 128;
/** Most `tool_calls` in one assistant message. */
export const MAX_TOOL_CALLS = 256;

/** `{type:"text", text}`. */
export const TextPart = z.looseObject({ type: z.literal("text"), text: z.string() });
/** `{type:"image_url", image_url:{url, detail?}}`: a `data:` URL or an http(s) URL. */
export const ImagePart = z.looseObject({
  type: z.literal("image_url"),
  image_url: z.looseObject({ url: z.string(), detail: z.string().optional() }),
});
/** `{type:"refusal", refusal}` (assistant messages). */
export const RefusalPart = z.looseObject({ type: z.literal("refusal"), refusal: z.string() });
/** Parts the proxy recognises but cannot pass on (audio, files): rejected with a clear 400. */
export const UnsupportedPart = z.looseObject({ type: z.enum(["input_audio", "file"]) });

const UserPart = z.discriminatedUnion("type", [TextPart, ImagePart, UnsupportedPart]);
const AssistantPart = z.discriminatedUnion("type", [TextPart, RefusalPart]);

/** A tool call in an assistant message (`ChatCompletionMessageToolCall`). */
export const ToolCall = z.looseObject({
  id: z.string(),
  type: z.literal("function").optional(),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
});

const SystemMessage = z.looseObject({
  role: z.enum(["system", "developer"]),
  content: z.union([z.string(), z.array(TextPart)]),
  name: z.string().optional(),
});
const UserMessage = z.looseObject({
  role: z.literal("user"),
  content: z.union([z.string(), z.array(UserPart)]),
  name: z.string().optional(),
});
const AssistantMessage = z.looseObject({
  role: z.literal("assistant"),
  content: z.union([z.string(), z.array(AssistantPart), z.null()]).optional(),
  tool_calls: z.array(ToolCall).optional(),
  function_call: z.looseObject({ name: z.string(), arguments: z.string() }).nullish(),
  name: z.string().optional(),
});
const ToolMessage = z.looseObject({
  role: z.literal("tool"),
  content: z.union([z.string(), z.array(TextPart)]),
  tool_call_id: z.string(),
});
const FunctionMessage = z.looseObject({
  role: z.literal("function"),
  content: z.string().nullable(),
  name: z.string(),
});

/** One message of `messages` (`ChatCompletionMessageParam`). */
export const ChatCompletionMessageParam = z.discriminatedUnion("role", [
  SystemMessage,
  UserMessage,
  AssistantMessage,
  ToolMessage,
  FunctionMessage,
]);

/** A function tool (`ChatCompletionTool`). */
export const ChatCompletionTool = z.looseObject({
  type: z.literal("function"),
  function: z.looseObject({
    name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "must be 1-64 letters, digits, _ or -"),
    description: z.string().optional(),
    parameters: JsonSchemaObject.optional(),
    strict: z.boolean().nullish(),
  }),
});

/** `tool_choice`: a mode or one named function. */
export const ToolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  z.looseObject({ type: z.literal("function"), function: z.looseObject({ name: z.string() }) }),
]);

/** `response_format`. */
export const ResponseFormat = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("text") }),
  z.looseObject({ type: z.literal("json_object") }),
  z.looseObject({
    type: z.literal("json_schema"),
    json_schema: z.looseObject({
      name: z.string(),
      description: z.string().optional(),
      schema: JsonSchemaObject.optional(),
      strict: z.boolean().nullish(),
    }),
  }),
]);

const optionalNumber = z.number().nullish();

/** The request body of `POST /v1/chat/completions` (`ChatCompletionCreateParams`). */
export const ChatCompletionRequest = z.looseObject({
  // The model goes on the CLI's command line (--model): bounded, as argv is (E2BIG).
  model: z.string().min(1).max(MAX_MODEL_LENGTH),
  messages: z.array(ChatCompletionMessageParam).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  n: z.number().int().min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().nullish(),
  reasoning_effort: z.enum(["none", "minimal", "low", "medium", "high", "xhigh"]).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  /** Agent mode: most model turns of this request (lowers `--agent-max-turns`). */
  max_turns: z.number().int().min(1).nullish(),
  metadata: z.unknown().optional(),
  temperature: optionalNumber,
  top_p: optionalNumber,
  presence_penalty: optionalNumber,
  frequency_penalty: optionalNumber,
  seed: optionalNumber,
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  user: z.string().nullish(),
  tools: z.array(ChatCompletionTool).nullish(),
  tool_choice: ToolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  response_format: ResponseFormat.nullish(),
});

/** A validated chat completion request. */
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;
/** A validated message. */
export type ChatCompletionMessageParam = z.infer<typeof ChatCompletionMessageParam>;
/** A validated user content part. */
export type UserContentPart = z.infer<typeof UserPart>;
/** A validated tool definition. */
export type ChatCompletionTool = z.infer<typeof ChatCompletionTool>;

/**
 * Parses a request body's text: counted first ({@link MAX_JSON_VALUES}), then `JSON.parse`d,
 * then validated ({@link parseChatCompletionRequest}).
 * @throws ProxyError 400 `too_many_values`, `invalid_json`, or what validation throws.
 */
export function parseChatCompletionBody(text: string): ChatCompletionRequest {
  const { body, valueBudget } = parseJsonBody(text);
  return parseChatCompletionRequest(body, valueBudget);
}

/**
 * The bounds checked on the parsed body before zod sees it: `model` a string, then the length
 * of every array zod walks element by element, then the JSON values in tool call arguments
 * (parsed again later, so they share the body's {@link MAX_JSON_VALUES} budget).
 * @throws ProxyError 400 naming the field.
 */
function checkBounds(body: Record<string, unknown>, valueBudget: number): void {
  if ("model" in body && typeof body.model !== "string") {
    throw new ProxyError(400, "Invalid value for 'model': expected a string", {
      param: "model",
      code: "invalid_type",
    });
  }
  const { messages } = body;
  checkLength(messages, MAX_MESSAGES, "messages");
  checkLength(body.tools, MAX_TOOLS, "tools");
  checkLength(body.stop, MAX_STOP, "stop");
  if (!Array.isArray(messages)) return;
  let budget = valueBudget;
  for (const [i, message] of messages.entries()) {
    if (!isObject(message)) continue;
    checkLength(message.content, MAX_CONTENT_PARTS, `messages[${i}].content`);
    const calls = message.tool_calls;
    checkLength(calls, MAX_TOOL_CALLS, `messages[${i}].tool_calls`);
    const argumentTexts: Array<[string, unknown]> = [];
    if (Array.isArray(calls)) {
      for (const [j, call] of calls.entries()) {
        if (isObject(call) && isObject(call.function)) {
          argumentTexts.push([
            `messages[${i}].tool_calls[${j}].function.arguments`,
            call.function.arguments,
          ]);
        }
      }
    }
    if (isObject(message.function_call)) {
      argumentTexts.push([
        `messages[${i}].function_call.arguments`,
        message.function_call.arguments,
      ]);
    }
    for (const [param, text] of argumentTexts) {
      if (typeof text !== "string") continue;
      budget -= countJsonValues(text, budget);
      if (budget < 0) throw tooManyValues(param);
    }
  }
}

/** The request with `messages` and `tools` left as arrays: they are validated one by one. */
const RequestEnvelope = ChatCompletionRequest.extend({
  messages: z.array(z.unknown()).min(1),
  tools: z.array(z.unknown()).nullish(),
});

/**
 * Validates a parsed JSON body: bounds first ({@link checkBounds}), then the fields, then each
 * message and tool in turn, so that a bad body costs at most one element's issues.
 * `valueBudget` is what is left of {@link MAX_JSON_VALUES} after the body itself.
 * @throws ProxyError 400 naming the field, for a body of the wrong shape or size, `n > 1` or
 *   `logprobs`.
 */
export function parseChatCompletionRequest(
  body: unknown,
  valueBudget: number = MAX_JSON_VALUES,
): ChatCompletionRequest {
  if (isObject(body)) checkBounds(body, valueBudget);
  const envelope = RequestEnvelope.safeParse(body);
  if (!envelope.success) throw requestError(envelope.error);
  const { tools, ...fields } = envelope.data;
  const request: ChatCompletionRequest = {
    ...fields,
    messages: parseEach(ChatCompletionMessageParam, fields.messages, "messages"),
    ...(tools === undefined
      ? {}
      : { tools: tools === null ? null : parseEach(ChatCompletionTool, tools, "tools") }),
  };
  if (request.n != null && request.n > 1) {
    throw new ProxyError(400, "n > 1 is not supported: the claude CLI returns one choice per run", {
      param: "n",
      code: "unsupported_value",
    });
  }
  if (request.logprobs === true) {
    throw new ProxyError(400, "logprobs are not supported: the claude CLI does not report them", {
      param: "logprobs",
      code: "unsupported_value",
    });
  }
  return request;
}
