/**
 * zod schemas of the OpenAI Responses request (`POST /v1/responses`), after openai-node's
 * `ResponseCreateParams` (https://platform.openai.com/docs/api-reference/responses/create).
 * Unknown fields are tolerated (`looseObject`); wrong types, built-in tools and features the
 * claude CLI cannot serve are a 400 naming the field. Bounded as the chat schema is
 * (src/http/json.ts): the body's JSON values are counted before parsing, arrays before
 * validation, and items are validated one by one.
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
  parseJsonBody,
  requestError,
  tooManyValues,
} from "../../http/json.ts";

/** Most entries in `tools` (OpenAI's own limit). */
export const MAX_TOOLS = 128;
/** Most entries in `metadata` (OpenAI's limit), and the longest key and value, characters. */
export const MAX_METADATA_KEYS = 16;
const MAX_METADATA_KEY = 64;
const MAX_METADATA_VALUE = 512;

/** `{type:"input_text", text}`. */
const InputText = z.looseObject({ type: z.literal("input_text"), text: z.string() });
/** `{type:"input_image", image_url}`: a `data:` URL or an http(s) URL (`file_id` is not served). */
const InputImage = z.looseObject({
  type: z.literal("input_image"),
  image_url: z.string().nullish(),
  file_id: z.string().nullish(),
  detail: z.string().nullish(),
});
/** `{type:"output_text", text}` (assistant messages passed back). */
const OutputText = z.looseObject({ type: z.literal("output_text"), text: z.string() });
/** `{type:"refusal", refusal}` (assistant messages passed back). */
const Refusal = z.looseObject({ type: z.literal("refusal"), refusal: z.string() });
/** Parts the proxy recognises but cannot pass on. */
const UnsupportedPart = z.looseObject({ type: z.enum(["input_file", "input_audio"]) });

/** One content part of a message. */
export const ContentPart = z.discriminatedUnion("type", [
  InputText,
  InputImage,
  OutputText,
  Refusal,
  UnsupportedPart,
]);
/** A validated content part. */
export type ContentPart = z.infer<typeof ContentPart>;

/** A message item (`EasyInputMessage` / `ResponseInputMessageItem` / `ResponseOutputMessage`). */
export const MessageItem = z.looseObject({
  type: z.literal("message").optional(),
  id: z.string().nullish(),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content: z.union([z.string(), z.array(ContentPart)]),
  status: z.string().nullish(),
});

/** A function call the model made, passed back (`ResponseFunctionToolCall`). */
export const FunctionCallItem = z.looseObject({
  type: z.literal("function_call"),
  id: z.string().nullish(),
  call_id: z.string().min(1),
  name: z.string(),
  arguments: z.string(),
  status: z.string().nullish(),
});

/** A function's result (`ResponseInputItem.FunctionCallOutput`): text, or parts whose texts are joined. */
export const FunctionCallOutputItem = z.looseObject({
  type: z.literal("function_call_output"),
  id: z.string().nullish(),
  call_id: z.string().min(1),
  output: z.union([z.string(), z.array(ContentPart)]),
  status: z.string().nullish(),
});

/** A reasoning item passed back (`ResponseReasoningItem`). */
export const ReasoningItem = z.looseObject({
  type: z.literal("reasoning"),
  id: z.string().nullish(),
  summary: z
    .array(z.looseObject({ type: z.string(), text: z.string() }))
    .max(MAX_CONTENT_PARTS)
    .optional(),
  encrypted_content: z.string().nullish(),
  status: z.string().nullish(),
});

/**
 * A reference to an item of a stored response (`ResponseInputItem.ItemReference`), as the AI
 * SDK sends for earlier answers when `store` is on: resolved by the route.
 */
export const ItemReference = z.looseObject({
  type: z.literal("item_reference"),
  id: z.string().min(1).max(256),
});

/** One item of `input`. */
export type InputItem =
  | z.infer<typeof ItemReference>
  | z.infer<typeof MessageItem>
  | z.infer<typeof FunctionCallItem>
  | z.infer<typeof FunctionCallOutputItem>
  | z.infer<typeof ReasoningItem>;

/** A function tool (`FunctionTool`). */
export const FunctionTool = z.looseObject({
  type: z.literal("function"),
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "must be 1-64 letters, digits, _ or -"),
  description: z.string().nullish(),
  parameters: JsonSchemaObject.nullish(),
  strict: z.boolean().nullish(),
});
/** A validated function tool. */
export type FunctionTool = z.infer<typeof FunctionTool>;

/** `tool_choice`: a mode or one named function. */
export const ToolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  z.looseObject({ type: z.literal("function"), name: z.string() }),
]);

/** `text.format`. */
export const TextFormat = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("text") }),
  z.looseObject({ type: z.literal("json_object") }),
  z.looseObject({
    type: z.literal("json_schema"),
    name: z.string().optional(),
    description: z.string().nullish(),
    schema: JsonSchemaObject,
    strict: z.boolean().nullish(),
  }),
]);

const optionalNumber = z.number().nullish();

/** The request's fields but `input`, `tools` and `tool_choice`. */
const fields = {
  model: z.string().min(1).max(MAX_MODEL_LENGTH),
  instructions: z.string().nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  text: z.looseObject({ format: TextFormat.nullish(), verbosity: z.string().nullish() }).nullish(),
  reasoning: z
    .looseObject({
      effort: z.enum(["none", "minimal", "low", "medium", "high", "xhigh"]).nullish(),
      summary: z.string().nullish(),
    })
    .nullish(),
  max_output_tokens: z.number().int().min(1).nullish(),
  /** Agent mode: most model turns of this request (lowers `--agent-max-turns`). */
  max_turns: z.number().int().min(1).nullish(),
  metadata: z
    .record(z.string().max(MAX_METADATA_KEY), z.string().max(MAX_METADATA_VALUE))
    .refine((value) => Object.keys(value).length <= MAX_METADATA_KEYS, {
      message: `must have at most ${MAX_METADATA_KEYS} keys`,
    })
    .nullish(),
  store: z.boolean().nullish(),
  previous_response_id: z.string().min(1).max(256).nullish(),
  stream: z.boolean().nullish(),
  user: z.string().nullish(),
  temperature: optionalNumber,
  top_p: optionalNumber,
  include: z.array(z.string()).max(64).nullish(),
  truncation: z.enum(["auto", "disabled"]).nullish(),
  background: z.boolean().nullish(),
};
const Fields = z.object(fields);

/** The request body of `POST /v1/responses`, with `input` and `tools` still unvalidated arrays. */
const RequestEnvelope = z.looseObject({
  ...fields,
  input: z.union([z.string(), z.array(z.unknown())]).nullish(),
  tools: z.array(z.unknown()).nullish(),
  tool_choice: z.unknown().optional(),
});

/** A validated `POST /v1/responses` request. */
export type ResponseCreateRequest = z.infer<typeof Fields> & {
  /** The input items (a string input becomes one user message). */
  input: InputItem[];
  tools: FunctionTool[];
  tool_choice: z.infer<typeof ToolChoice>;
};

/**
 * Built-in tools of the Responses API that the claude CLI cannot run for the client: rejected
 * with a 400 naming them (the proxy offers only function tools).
 */
export const BUILT_IN_TOOLS = [
  "web_search",
  "web_search_preview",
  "web_search_2025_08_26",
  "web_search_preview_2025_03_11",
  "file_search",
  "computer_use_preview",
  "computer_use",
  "code_interpreter",
  "image_generation",
  "mcp",
  "local_shell",
  "shell",
  "apply_patch",
  "custom",
] as const;

function unsupported(param: string, message: string): ProxyError {
  return new ProxyError(400, message, { param, code: "unsupported_value" });
}

/**
 * Bounds checked on the parsed body before zod walks it: `model` a string, the lengths of
 * `input`, `tools` and every content array, and the JSON values of function call arguments
 * (parsed again later: they share the body's budget).
 */
function checkBounds(body: Record<string, unknown>, valueBudget: number): void {
  if ("model" in body && typeof body.model !== "string") {
    throw new ProxyError(400, "Invalid value for 'model': expected a string", {
      param: "model",
      code: "invalid_type",
    });
  }
  checkLength(body.input, MAX_MESSAGES, "input");
  checkLength(body.tools, MAX_TOOLS, "tools");
  if (!Array.isArray(body.input)) return;
  let budget = valueBudget;
  for (const [i, item] of body.input.entries()) {
    if (!isObject(item)) continue;
    checkLength(item.content, MAX_CONTENT_PARTS, `input[${i}].content`);
    checkLength(item.output, MAX_CONTENT_PARTS, `input[${i}].output`);
    if (item.type === "function_call" && typeof item.arguments === "string") {
      budget -= countJsonValues(item.arguments, budget);
      if (budget < 0) throw tooManyValues(`input[${i}].arguments`);
    }
  }
}

/** Validates one input item; `type` (or, without one, `role`) picks the schema. */
function parseItem(item: unknown, index: number): InputItem {
  const prefix = ["input", index];
  const type = isObject(item) ? item.type : undefined;
  const schema =
    type === undefined || type === "message"
      ? MessageItem
      : type === "function_call"
        ? FunctionCallItem
        : type === "function_call_output"
          ? FunctionCallOutputItem
          : type === "reasoning"
            ? ReasoningItem
            : type === "item_reference"
              ? ItemReference
              : null;
  if (schema === null) {
    if (typeof type !== "string") {
      throw new ProxyError(400, `Invalid value for 'input[${index}].type': expected a string`, {
        param: `input[${index}].type`,
        code: "invalid_type",
      });
    }
    throw unsupported(
      `input[${index}]`,
      `Input items of type '${type}' are not supported by this proxy (supported: message, function_call, function_call_output, reasoning, item_reference)`,
    );
  }
  const parsed = schema.safeParse(item);
  if (!parsed.success) throw requestError(parsed.error, prefix);
  const value = parsed.data as InputItem;
  const parts =
    "content" in value && Array.isArray(value.content)
      ? value.content
      : "output" in value && Array.isArray(value.output)
        ? value.output
        : [];
  const key = "content" in value ? "content" : "output";
  for (const [j, part] of parts.entries()) {
    if (part.type === "input_file" || part.type === "input_audio") {
      throw unsupported(
        `input[${index}].${key}[${j}]`,
        `Content parts of type '${part.type}' are not supported by this proxy (use input_text or input_image)`,
      );
    }
    if (part.type === "input_image" && (part.image_url ?? "") === "") {
      throw unsupported(
        `input[${index}].${key}[${j}].image_url`,
        "input_image needs an image_url (a data: URL or an http(s) URL); file_id is not supported",
      );
    }
  }
  return value;
}

/** Validates one entry of `tools`: function tools only; built-in tools are named in the 400. */
function parseTool(tool: unknown, index: number): FunctionTool {
  const param = `tools[${index}]`;
  const type = isObject(tool) ? tool.type : undefined;
  if (typeof type === "string" && type !== "function") {
    throw unsupported(
      param,
      `The built-in tool '${type}' is not supported by this proxy: the claude CLI runs only your function tools (type "function")`,
    );
  }
  const parsed = FunctionTool.safeParse(tool);
  if (!parsed.success) throw requestError(parsed.error, ["tools", index]);
  return parsed.data;
}

/**
 * Parses a request body's text: counted first ({@link MAX_JSON_VALUES}), then `JSON.parse`d,
 * then validated ({@link parseResponseRequest}).
 * @throws ProxyError 400 `too_many_values`, `invalid_json`, or what validation throws.
 */
export function parseResponseBody(text: string): ResponseCreateRequest {
  const { body, valueBudget } = parseJsonBody(text);
  return parseResponseRequest(body, valueBudget);
}

/**
 * Validates a parsed JSON body: bounds, fields, then each input item and tool in turn.
 * `valueBudget` is what is left of {@link MAX_JSON_VALUES} after the body itself.
 * @throws ProxyError 400 naming the field: a wrong shape or size, an unsupported input item or
 *   part, a built-in tool (`tools[i]`, `unsupported_value`), a non-function `tool_choice`,
 *   `n` other than 1, `background: true`, `conversation`, `prompt`, or no input at all.
 */
export function parseResponseRequest(
  body: unknown,
  valueBudget: number = MAX_JSON_VALUES,
): ResponseCreateRequest {
  if (isObject(body)) checkBounds(body, valueBudget);
  const envelope = RequestEnvelope.safeParse(body);
  if (!envelope.success) throw requestError(envelope.error);
  const raw = body as Record<string, unknown>;
  if (raw.n !== undefined && raw.n !== null && raw.n !== 1) {
    throw unsupported("n", "n is not supported: the Responses API returns one answer per request");
  }
  if (envelope.data.background === true) {
    throw unsupported(
      "background",
      "background responses are not supported by this proxy: send the request without background (stream it if it is long)",
    );
  }
  if (raw.conversation !== undefined && raw.conversation !== null) {
    throw unsupported(
      "conversation",
      "The Conversations API is not supported by this proxy: use previous_response_id or send the whole input",
    );
  }
  if (raw.prompt !== undefined && raw.prompt !== null) {
    throw unsupported("prompt", "Prompt templates (prompt) are not supported by this proxy");
  }
  const { input, tools, tool_choice, ...fields } = envelope.data;
  const items: InputItem[] =
    typeof input === "string"
      ? [{ role: "user", content: input }]
      : (input ?? []).map((item, i) => parseItem(item, i));
  if (items.length === 0 && (fields.previous_response_id ?? null) === null) {
    throw new ProxyError(400, "Missing required parameter: 'input'", {
      param: "input",
      code: "missing_required_parameter",
    });
  }
  let choice: z.infer<typeof ToolChoice> = "auto";
  if (tool_choice !== undefined && tool_choice !== null) {
    const parsed = ToolChoice.safeParse(tool_choice);
    if (!parsed.success) {
      const type = isObject(tool_choice) ? String(tool_choice.type) : JSON.stringify(tool_choice);
      throw unsupported(
        "tool_choice",
        `tool_choice ${type} is not supported by this proxy (use "auto", "none", "required" or {"type":"function","name":...})`,
      );
    }
    choice = parsed.data;
  }
  return {
    ...fields,
    input: items,
    tools: (tools ?? []).map((tool, i) => parseTool(tool, i)),
    tool_choice: choice,
  };
}
