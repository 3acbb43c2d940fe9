/**
 * zod schemas of the OpenAI Chat Completions request, after openai-node's types
 * (https://platform.openai.com/docs/api-reference/chat/create). Unknown fields are tolerated
 * (`looseObject`) so that new client fields never break a request; wrong types are a 400 naming
 * the field (see {@link requestError}).
 */
import { z } from "zod";
import { ProxyError } from "./errors.ts";

/**
 * Deepest nesting of arrays and objects accepted in client JSON that the proxy serialises
 * again (tool parameters, response schemas, tool call arguments): `JSON.stringify` recurses and
 * overflows the stack at roughly 10,000 levels, while `JSON.parse` accepts any depth.
 */
export const MAX_JSON_DEPTH = 100;

/** Whether `value` nests arrays or objects more than `max` levels deep (iterative, so any depth is safe). */
export function exceedsJsonDepth(value: unknown, max: number = MAX_JSON_DEPTH): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  while (true) {
    const item = stack.pop();
    if (item === undefined) return false;
    if (typeof item.value !== "object" || item.value === null) continue;
    if (item.depth > max) return true;
    const children = Array.isArray(item.value) ? item.value : Object.values(item.value);
    for (const child of children) stack.push({ value: child, depth: item.depth + 1 });
  }
}

/** A JSON object (JSON Schema) that can be serialised again: at most {@link MAX_JSON_DEPTH} levels. */
const JsonSchemaObject = z
  .record(z.string(), z.unknown())
  .refine((value) => !exceedsJsonDepth(value), {
    message: `must not nest deeper than ${MAX_JSON_DEPTH} levels`,
  });

/** Longest accepted `model` name, characters (real ids are under 64). */
export const MAX_MODEL_LENGTH = 256;

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

/** Formats a zod issue path the way OpenAI names params: `messages[0].content`. */
export function formatParam(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** Turns a zod failure into a 400 {@link ProxyError} naming the first offending field. */
export function requestError(error: z.ZodError): ProxyError {
  const issue = error.issues[0];
  if (issue === undefined) return new ProxyError(400, "Invalid request body");
  const param = formatParam(issue.path);
  const where = param === "" ? "request body" : `'${param}'`;
  return new ProxyError(400, `Invalid value for ${where}: ${issue.message}`, {
    param: param === "" ? null : param,
    code: issue.code === "invalid_type" ? "invalid_type" : "invalid_value",
  });
}

/**
 * Validates a parsed JSON body.
 * @throws ProxyError 400 naming the field, for a body of the wrong shape, `n > 1` or `logprobs`.
 */
export function parseChatCompletionRequest(body: unknown): ChatCompletionRequest {
  const parsed = ChatCompletionRequest.safeParse(body);
  if (!parsed.success) throw requestError(parsed.error);
  const request = parsed.data;
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
