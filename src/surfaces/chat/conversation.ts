/**
 * OpenAI Chat Completions `messages` and options → the engine's {@link Conversation} (pure).
 * One turn per message (the engine merges consecutive turns of one role): system and developer
 * messages become the system prompt, `tool` messages user turns holding one tool_result,
 * assistant `tool_calls` tool_use blocks.
 */
import { toEffort } from "../../claude/argv.ts";
import {
  type Block,
  type Conversation,
  requestedMaxTurns,
  type Turn,
} from "../../engine/conversation.ts";
import { ProxyError } from "../../errors.ts";
import { parseArguments } from "../../http/json.ts";
import type { ChatCompletionMessageParam, ChatCompletionRequest } from "./schema.ts";

type Message = ChatCompletionMessageParam;

/** The text of a message's content: a string, or its text (and refusal) parts joined by newlines. */
export function contentText(content: Message["content"] | undefined): string {
  if (content === undefined || content === null) return "";
  if (typeof content === "string") return content;
  const texts: string[] = [];
  for (const part of content) {
    if (part.type === "text") texts.push(String(part.text));
    else if (part.type === "refusal") texts.push(String(part.refusal));
  }
  return texts.join("\n");
}

/** Joins the system and developer messages, or null when there are none. */
export function systemPromptOf(messages: readonly Message[]): string | null {
  const parts = messages
    .filter((m) => m.role === "system" || m.role === "developer")
    .map((m) => contentText(m.content));
  return parts.length === 0 ? null : parts.join("\n\n");
}

/**
 * The blocks of one message.
 * @throws ProxyError 400 `unsupported_content` for audio and file parts (naming the part).
 */
function messageBlocks(message: Message, index: number): Block[] {
  switch (message.role) {
    case "user": {
      if (typeof message.content === "string") return [{ type: "text", text: message.content }];
      return message.content.map((part, j): Block => {
        if (part.type === "text") return { type: "text", text: String(part.text) };
        if (part.type === "image_url") {
          const param = `messages[${index}].content[${j}]`;
          return {
            type: "image",
            url: part.image_url.url,
            param,
            urlParam: `${param}.image_url.url`,
          };
        }
        throw new ProxyError(400, `Content parts of type '${part.type}' are not supported`, {
          param: `messages[${index}].content[${j}]`,
          code: "unsupported_content",
        });
      });
    }
    case "assistant": {
      const blocks: Block[] = [{ type: "text", text: contentText(message.content) }];
      for (const call of message.tool_calls ?? []) {
        blocks.push({
          type: "tool_use",
          id: call.id,
          name: call.function.name,
          input: parseArguments(call.function.arguments),
        });
      }
      return blocks;
    }
    case "tool":
      return [
        {
          type: "tool_result",
          tool_use_id: message.tool_call_id,
          content: contentText(message.content),
        },
      ];
    case "function":
      return [
        { type: "text", text: `[Result of function ${message.name}]\n${message.content ?? ""}` },
      ];
    default:
      return [];
  }
}

/** The turns of `messages` (system and developer messages excluded), one per message. */
export function chatTurns(messages: readonly Message[]): Turn[] {
  const turns: Turn[] = [];
  messages.forEach((message, index) => {
    if (message.role === "system" || message.role === "developer") return;
    turns.push({
      role: message.role === "assistant" ? "assistant" : "user",
      content: messageBlocks(message, index),
    });
  });
  return turns;
}

/**
 * The conversation of a chat completion request.
 * @throws ProxyError 400 for content parts that cannot be sent (audio, files).
 */
export function chatConversation(request: ChatCompletionRequest): Conversation {
  const format = request.response_format;
  return {
    system: systemPromptOf(request.messages),
    turns: chatTurns(request.messages),
    tools: (request.tools ?? []).map((tool) => ({
      name: tool.function.name,
      description: tool.function.description,
      parameters: tool.function.parameters,
    })),
    toolChoice:
      typeof request.tool_choice === "object" && request.tool_choice !== null
        ? { name: request.tool_choice.function.name }
        : (request.tool_choice ?? "auto"),
    parallelToolCalls: request.parallel_tool_calls !== false,
    output:
      format == null || format.type === "text"
        ? { type: "text" }
        : format.type === "json_object"
          ? { type: "json_object" }
          : {
              type: "json_schema",
              schema: format.json_schema.schema ?? { type: "object" },
              param: "response_format.json_schema.schema",
            },
    effort: toEffort(request.reasoning_effort),
    maxOutputTokens: request.max_completion_tokens ?? request.max_tokens ?? undefined,
    stopSequences:
      request.stop == null ? [] : typeof request.stop === "string" ? [request.stop] : request.stop,
    maxTurns: requestedMaxTurns(request.max_turns, request.metadata),
  };
}
