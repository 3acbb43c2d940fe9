/**
 * A Responses request (and, with `previous_response_id`, the stored conversation it continues)
 * → the engine's {@link Conversation}. Items map to Messages-API blocks: messages to text and
 * image blocks, `function_call` to assistant `tool_use` (id = `call_id`), `function_call_output`
 * to user `tool_result`, `reasoning` to `thinking` when it carries a signature this proxy
 * produced (else it is dropped: the API accepts thinking only with its own signature).
 * Consecutive items of one role merge into one turn; system and developer messages join
 * `instructions` in the system prompt.
 */
import { toEffort } from "../../claude/argv.ts";
import {
  type Block,
  type Conversation,
  type OutputFormat,
  requestedMaxTurns,
  type ToolChoice,
  type Turn,
} from "../../engine/conversation.ts";
import { ProxyError } from "../../errors.ts";
import { parseArguments } from "../../http/json.ts";
import type { ContentPart, InputItem, ResponseCreateRequest } from "./schema.ts";

/**
 * What this proxy puts before a thinking block's signature in a reasoning item's
 * `encrypted_content`, so that it knows its own on the way back (OpenAI's encrypted reasoning,
 * from another provider, would be rejected by the Anthropic API).
 */
export const SIGNATURE_PREFIX = "claude-thinking-signature:";

/** The thinking signature carried by a reasoning item's `encrypted_content`, or null. */
export function signatureOf(encrypted: string | null | undefined): string | null {
  if (typeof encrypted !== "string" || !encrypted.startsWith(SIGNATURE_PREFIX)) return null;
  const signature = encrypted.slice(SIGNATURE_PREFIX.length);
  return signature === "" ? null : signature;
}

function partsText(parts: readonly ContentPart[]): string {
  return parts
    .map((part) =>
      part.type === "input_text" || part.type === "output_text"
        ? part.text
        : part.type === "refusal"
          ? part.refusal
          : "",
    )
    .filter((text) => text !== "")
    .join("\n");
}

/** Blocks of a message's content (empty texts dropped: the API refuses them). */
function messageBlocks(
  content: string | readonly ContentPart[],
  role: "user" | "assistant",
  param: string,
): Block[] {
  if (typeof content === "string") return content === "" ? [] : [{ type: "text", text: content }];
  const blocks: Block[] = [];
  for (const [j, part] of content.entries()) {
    if (part.type === "input_image") {
      if (role === "assistant") {
        throw new ProxyError(400, "Assistant messages cannot hold images", {
          param: `${param}[${j}]`,
          code: "unsupported_value",
        });
      }
      blocks.push({
        type: "image",
        url: part.image_url ?? "",
        param: `${param}[${j}]`,
        urlParam: `${param}[${j}].image_url`,
      });
      continue;
    }
    const text = partsText([part]);
    if (text !== "") blocks.push({ type: "text", text });
  }
  return blocks;
}

/** Text of a `function_call_output`'s output (parts' texts joined). */
function outputText(output: string | readonly ContentPart[], param: string): string {
  if (typeof output === "string") return output;
  const image = output.findIndex((part) => part.type === "input_image");
  if (image >= 0) {
    throw new ProxyError(
      400,
      "Images in function_call_output are not supported by this proxy (tool results are passed as text)",
      { param: `${param}[${image}]`, code: "unsupported_value" },
    );
  }
  return partsText(output);
}

/**
 * The turns and system texts of `items`, oldest first.
 * @throws ProxyError 400 for an image in an assistant message or a function's output.
 */
export function itemsToTurns(items: readonly InputItem[]): { system: string[]; turns: Turn[] } {
  const system: string[] = [];
  const turns: Turn[] = [];
  const add = (role: Turn["role"], blocks: Block[]) => {
    if (blocks.length === 0) return;
    const last = turns.at(-1);
    if (last !== undefined && last.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };
  for (const [i, item] of items.entries()) {
    if (item.type === "function_call") {
      add("assistant", [
        {
          type: "tool_use",
          id: item.call_id,
          name: item.name,
          input: parseArguments(item.arguments),
        },
      ]);
    } else if (item.type === "function_call_output") {
      add("user", [
        {
          type: "tool_result",
          tool_use_id: item.call_id,
          content: outputText(item.output, `input[${i}].output`),
        },
      ]);
    } else if (item.type === "reasoning") {
      const signature = signatureOf(item.encrypted_content);
      if (signature === null) continue;
      const thinking = (item.summary ?? []).map((part) => part.text).join("");
      add("assistant", [{ type: "thinking", thinking, signature }]);
    } else if (item.type === "item_reference") {
      // Resolved against the stored responses before this (see the route); one left is unknown.
      throw new ProxyError(404, `Item with id '${item.id}' not found.`, {
        type: "invalid_request_error",
        param: `input[${i}]`,
        code: "item_not_found",
      });
    } else if (item.role === "system" || item.role === "developer") {
      const text = typeof item.content === "string" ? item.content : partsText(item.content);
      if (text !== "") system.push(text);
    } else {
      add(item.role, messageBlocks(item.content, item.role, `input[${i}].content`));
    }
  }
  return { system, turns };
}

function toOutputFormat(request: ResponseCreateRequest): OutputFormat {
  const format = request.text?.format;
  if (format == null || format.type === "text") return { type: "text" };
  if (format.type === "json_object") return { type: "json_object" };
  return { type: "json_schema", schema: format.schema, param: "text.format.schema" };
}

function toToolChoice(choice: ResponseCreateRequest["tool_choice"]): ToolChoice {
  return typeof choice === "string" ? choice : { name: choice.name };
}

/**
 * The engine's conversation for `request`. `previous` holds the items of the stored
 * conversation it continues (`previous_response_id`: that response's input items and output,
 * oldest first); the request's own `instructions` replace earlier ones, as OpenAI's do.
 * @throws ProxyError 400 `input` when there is no turn to answer, or for content the engine
 *   cannot take (see {@link itemsToTurns}); a `tool_choice` naming no offered tool.
 */
export function toConversation(
  request: ResponseCreateRequest,
  previous: readonly InputItem[] = [],
): Conversation {
  const { system, turns } = itemsToTurns([...previous, ...request.input]);
  if (turns.length === 0) {
    throw new ProxyError(400, "The input holds no message to answer", {
      param: "input",
      code: "invalid_value",
    });
  }
  const choice = request.tool_choice;
  if (typeof choice !== "string" && !request.tools.some((tool) => tool.name === choice.name)) {
    throw new ProxyError(400, `tool_choice names '${choice.name}', which is not in tools`, {
      param: "tool_choice",
      code: "invalid_value",
    });
  }
  const instructions = request.instructions ?? "";
  const systemTexts = [...(instructions === "" ? [] : [instructions]), ...system];
  return {
    system: systemTexts.length === 0 ? null : systemTexts.join("\n\n"),
    turns,
    tools: request.tools.map((tool) => ({
      name: tool.name,
      description: tool.description ?? undefined,
      parameters: tool.parameters ?? undefined,
    })),
    toolChoice: toToolChoice(choice),
    parallelToolCalls: request.parallel_tool_calls ?? true,
    output: toOutputFormat(request),
    effort: toEffort(request.reasoning?.effort),
    maxOutputTokens: request.max_output_tokens ?? undefined,
    maxTurns: requestedMaxTurns(request.max_turns, request.metadata),
  };
}
