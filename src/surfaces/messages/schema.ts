/**
 * zod schemas of the Anthropic Messages request (`POST /v1/messages`,
 * https://docs.anthropic.com/en/api/messages), after `@anthropic-ai/sdk`'s `MessageCreateParams`.
 * Unknown fields are tolerated (`looseObject`: `cache_control`, `citations`, `metadata`,
 * `service_tier`, `container`, ... never break a request); wrong types are a 400 naming the field.
 * Content blocks and tools the CLI cannot pass on (documents, search results, server tools such
 * as `web_search_20250305` or `bash_20250124`) are a 400 naming them.
 *
 * Bounds as for chat completions (src/surfaces/chat/schema.ts, issue 9): the body text is counted
 * before it is parsed, arrays before they are validated, and validation stops at the first
 * message, block or tool that fails.
 */
import { z } from "zod";
import { ProxyError } from "../../errors.ts";
import {
  checkLength,
  exceedsJsonDepth,
  formatParam,
  isObject,
  MAX_CONTENT_PARTS,
  MAX_JSON_DEPTH,
  MAX_JSON_VALUES,
  MAX_MESSAGES,
  MAX_MODEL_LENGTH,
  MAX_STOP,
  parseJsonBody,
  requestError,
} from "../../http/json.ts";

/**
 * Most entries in `tools`. Higher than chat's 128 (OpenAI's limit): the Messages API has none,
 * and Claude Code as a client sends its ~20 own tools plus every MCP server's.
 */
export const MAX_MESSAGES_TOOLS = 512;

/** A JSON object (JSON Schema, tool input) that can be serialised again: at most {@link MAX_JSON_DEPTH} levels. */
const JsonObject = z.record(z.string(), z.unknown()).refine((value) => !exceedsJsonDepth(value), {
  message: `must not nest deeper than ${MAX_JSON_DEPTH} levels`,
});

/** `{type:"text", text}` (`citations`, `cache_control` tolerated). */
export const TextBlockParam = z.looseObject({ type: z.literal("text"), text: z.string() });

/** `{type:"base64", media_type, data}`: an image sent inline. */
const Base64ImageSource = z.looseObject({
  type: z.literal("base64"),
  media_type: z.string(),
  data: z.string(),
});
/** `{type:"url", url}`: an image the proxy fetches (bounded, see --image-fetch). */
const UrlImageSource = z.looseObject({ type: z.literal("url"), url: z.string() });

/** `{type:"image", source}` with a base64 or url source (`file` sources need the Files API: 400). */
export const ImageBlockParam = z.looseObject({
  type: z.literal("image"),
  source: z.discriminatedUnion("type", [Base64ImageSource, UrlImageSource]),
});

/** `{type:"tool_use", id, name, input}`: a client tool call in an assistant turn. */
export const ToolUseBlockParam = z.looseObject({
  type: z.literal("tool_use"),
  id: z.string().min(1),
  name: z.string().min(1),
  input: JsonObject,
});

/** A block inside a `tool_result`'s content: text or image. */
export const ToolResultContentBlock = z.discriminatedUnion("type", [
  TextBlockParam,
  ImageBlockParam,
]);

/** `{type:"tool_result", tool_use_id, content?, is_error?}`: a client tool's answer in a user turn. */
export const ToolResultBlockParam = z.looseObject({
  type: z.literal("tool_result"),
  tool_use_id: z.string().min(1),
  content: z.union([z.string(), z.array(ToolResultContentBlock)]).optional(),
  is_error: z.boolean().nullish(),
});

/** `{type:"thinking", thinking, signature}`: the model's thinking passed back. */
export const ThinkingBlockParam = z.looseObject({
  type: z.literal("thinking"),
  thinking: z.string(),
  signature: z.string(),
});

/** `{type:"redacted_thinking", data}`: accepted and dropped (the CLI cannot pass it on). */
export const RedactedThinkingBlockParam = z.looseObject({
  type: z.literal("redacted_thinking"),
  data: z.string(),
});

/** A validated content block of a message. */
export type ContentBlockParam =
  | z.infer<typeof TextBlockParam>
  | z.infer<typeof ImageBlockParam>
  | z.infer<typeof ToolUseBlockParam>
  | z.infer<typeof ToolResultBlockParam>
  | z.infer<typeof ThinkingBlockParam>
  | z.infer<typeof RedactedThinkingBlockParam>;

/** The schema of each block type the proxy takes; every other `type` is a 400 naming it. */
const BLOCK_SCHEMAS: Record<string, z.ZodType<ContentBlockParam>> = {
  text: TextBlockParam,
  image: ImageBlockParam,
  tool_use: ToolUseBlockParam,
  tool_result: ToolResultBlockParam,
  thinking: ThinkingBlockParam,
  redacted_thinking: RedactedThinkingBlockParam,
};

/** Why a known block type is refused, by type. */
const UNSUPPORTED_BLOCKS: Record<string, string> = {
  document: "send the document's text as a text block",
  search_result: "send the result as a text block",
  container_upload: "the claude CLI has no code execution container",
  server_tool_use: "server tools are not supported",
};

/** A validated message (`MessageParam`); `system` messages are folded into the system prompt. */
export interface MessageParam {
  role: "user" | "assistant" | "system";
  content: string | ContentBlockParam[];
}

const MessageEnvelope = z.looseObject({
  role: z.enum(["user", "assistant", "system"]),
  content: z.union([z.string(), z.array(z.unknown())]),
});

/** A custom (client) tool: `{name, description?, input_schema}`; `type` absent, null or "custom". */
export const CustomTool = z.looseObject({
  type: z.union([z.literal("custom"), z.null()]).optional(),
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "must be 1-64 letters, digits, _ or -"),
  description: z.string().optional(),
  input_schema: JsonObject,
});

/** A validated custom tool. */
export type CustomTool = z.infer<typeof CustomTool>;

/** `tool_choice`: auto, any, one named tool, or none; `disable_parallel_tool_use`. */
export const ToolChoice = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("auto"), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({ type: z.literal("any"), disable_parallel_tool_use: z.boolean().optional() }),
  z.looseObject({
    type: z.literal("tool"),
    name: z.string(),
    disable_parallel_tool_use: z.boolean().optional(),
  }),
  z.looseObject({ type: z.literal("none") }),
]);

/** `thinking`: enabled with a budget (tokens), disabled, adaptive, or between tools. */
export const ThinkingConfig = z.discriminatedUnion("type", [
  z.looseObject({
    type: z.literal("enabled"),
    budget_tokens: z.number().int().min(1),
    display: z.enum(["summarized", "omitted"]).nullish(),
  }),
  z.looseObject({ type: z.literal("disabled") }),
  z.looseObject({
    type: z.literal("adaptive"),
    display: z.enum(["summarized", "omitted"]).nullish(),
  }),
  z.looseObject({ type: z.literal("between_tools") }),
]);

/** `output_config`: `effort` (the CLI's `--effort`) and `format` (a JSON schema answer). */
export const OutputConfig = z.looseObject({
  effort: z.enum(["low", "medium", "high", "xhigh", "max"]).nullish(),
  format: z.looseObject({ type: z.literal("json_schema"), schema: JsonObject }).nullish(),
});

const SystemParam = z.union([z.string(), z.array(TextBlockParam)]);

/** The request's top-level fields; `messages` and `tools` are validated element by element. */
const ENVELOPE_SHAPE = {
  // The model goes on the CLI's command line (--model): bounded, as argv is (E2BIG).
  model: z.string().min(1).max(MAX_MODEL_LENGTH),
  max_tokens: z.number().int().min(1),
  messages: z.array(z.unknown()).min(1),
  system: SystemParam.nullish(),
  tools: z.array(z.unknown()).nullish(),
  tool_choice: ToolChoice.nullish(),
  thinking: ThinkingConfig.nullish(),
  output_config: OutputConfig.nullish(),
  stop_sequences: z.array(z.string()).nullish(),
  metadata: z.looseObject({ user_id: z.string().nullish() }).nullish(),
  stream: z.boolean().nullish(),
  temperature: z.number().nullish(),
  top_p: z.number().nullish(),
  top_k: z.number().nullish(),
  service_tier: z.string().nullish(),
};
const RequestEnvelope = z.looseObject(ENVELOPE_SHAPE);

/** A validated `POST /v1/messages` body (unknown top-level fields are kept but not typed). */
export type MessagesRequest = z.infer<
  z.ZodObject<Omit<typeof ENVELOPE_SHAPE, "messages" | "tools">>
> & {
  messages: MessageParam[];
  tools?: CustomTool[] | null | undefined;
};

/** A 400 in the Messages API's sense (rendered as `invalid_request_error`), naming `param`. */
export function invalidRequest(message: string, param: string | null, code: string): ProxyError {
  return new ProxyError(400, message, { type: "invalid_request_error", param, code });
}

/** Parses one content block, dispatching on its `type`. @throws ProxyError 400 naming the block. */
function parseBlock(value: unknown, path: PropertyKey[]): ContentBlockParam {
  const param = formatParam(path);
  if (!isObject(value) || typeof value.type !== "string") {
    throw invalidRequest(
      `Invalid value for '${param}': expected a content block with a string 'type'`,
      param,
      "invalid_type",
    );
  }
  const schema = BLOCK_SCHEMAS[value.type];
  if (schema === undefined) {
    const why = UNSUPPORTED_BLOCKS[value.type] ?? "unknown or server-side block type";
    throw invalidRequest(
      `'${param}': content blocks of type '${value.type}' are not supported (${why}); ` +
        "the proxy takes text, image, tool_use, tool_result, thinking and redacted_thinking",
      `${param}.type`,
      "unsupported_content_block",
    );
  }
  if (value.type === "image" && isObject(value.source) && value.source.type === "file") {
    throw invalidRequest(
      `'${param}.source': image sources of type 'file' need the Files API, which the proxy does not have; send the image as base64 or url`,
      `${param}.source`,
      "unsupported_value",
    );
  }
  if (value.type === "tool_result" && Array.isArray(value.content)) {
    checkLength(value.content, MAX_CONTENT_PARTS, `${param}.content`);
    for (const [i, inner] of value.content.entries()) {
      const innerType = isObject(inner) ? inner.type : undefined;
      if (typeof innerType === "string" && innerType !== "text" && innerType !== "image") {
        throw invalidRequest(
          `'${param}.content[${i}]': tool_result content of type '${innerType}' is not supported; use text or image blocks`,
          `${param}.content[${i}].type`,
          "unsupported_content_block",
        );
      }
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw requestError(parsed.error, path);
  return parsed.data;
}

/** Parses one message. @throws ProxyError 400 naming the message or block. */
function parseMessage(value: unknown, index: number): MessageParam {
  const parsed = MessageEnvelope.safeParse(value);
  if (!parsed.success) throw requestError(parsed.error, ["messages", index]);
  const { role, content } = parsed.data;
  if (typeof content === "string") return { role, content };
  checkLength(content, MAX_CONTENT_PARTS, `messages[${index}].content`);
  const blocks = content.map((block, j) => parseBlock(block, ["messages", index, "content", j]));
  if (role === "system" && blocks.some((b) => b.type !== "text")) {
    throw invalidRequest(
      `'messages[${index}].content': a system message holds text blocks only`,
      `messages[${index}].content`,
      "invalid_value",
    );
  }
  return { role, content: blocks };
}

/** Parses one tool: a custom tool, or a 400 naming a server/built-in tool. */
function parseTool(value: unknown, index: number): CustomTool {
  if (isObject(value) && typeof value.type === "string" && value.type !== "custom") {
    const name = typeof value.name === "string" ? ` ('${value.name}')` : "";
    throw invalidRequest(
      `'tools[${index}]': tools of type '${value.type}'${name} are Anthropic server or built-in tools, which the proxy does not support; define a custom tool with name, description and input_schema instead`,
      `tools[${index}].type`,
      "unsupported_tool",
    );
  }
  const parsed = CustomTool.safeParse(value);
  if (!parsed.success) throw requestError(parsed.error, ["tools", index]);
  return parsed.data;
}

/**
 * Validates a parsed JSON body: bounds, then the fields, then each message and tool in turn
 * (tool inputs are parsed objects here, not JSON text, so the body's count covers them).
 * @throws ProxyError 400 `invalid_request_error` naming the field: wrong shapes, unsupported
 *   blocks or tools, duplicate tool names, a `tool_choice` naming
 *   no tool.
 */
export function parseMessagesRequest(body: unknown): MessagesRequest {
  if (isObject(body)) {
    if ("model" in body && typeof body.model !== "string") {
      throw invalidRequest("Invalid value for 'model': expected a string", "model", "invalid_type");
    }
    checkLength(body.messages, MAX_MESSAGES, "messages");
    checkLength(body.tools, MAX_MESSAGES_TOOLS, "tools");
    checkLength(body.stop_sequences, MAX_STOP, "stop_sequences");
  }
  const envelope = RequestEnvelope.safeParse(body);
  if (!envelope.success) throw requestError(envelope.error);
  const { messages, tools, ...fields } = envelope.data;
  const request: MessagesRequest = {
    ...fields,
    messages: messages.map(parseMessage),
    ...(tools == null ? {} : { tools: tools.map(parseTool) }),
  };
  const names = new Set<string>();
  for (const [i, tool] of (request.tools ?? []).entries()) {
    if (names.has(tool.name)) {
      throw invalidRequest(
        `'tools[${i}].name': tool names must be unique ('${tool.name}' appears twice)`,
        `tools[${i}].name`,
        "invalid_value",
      );
    }
    names.add(tool.name);
  }
  const choice = request.tool_choice;
  if (choice?.type === "tool" && !names.has(choice.name)) {
    throw invalidRequest(
      `'tool_choice.name': no tool named '${choice.name}' in tools`,
      "tool_choice.name",
      "invalid_value",
    );
  }
  return request;
}

/**
 * Parses a request body's text: counted first ({@link MAX_JSON_VALUES}), then `JSON.parse`d,
 * then validated ({@link parseMessagesRequest}).
 * @throws ProxyError 400 `too_many_values`, `invalid_json`, or what validation throws.
 */
export function parseMessagesBody(text: string): MessagesRequest {
  return parseMessagesRequest(parseJsonBody(text).body);
}
