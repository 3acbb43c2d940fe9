/**
 * A validated Messages request → the engine's {@link Conversation} (pure). The Messages API is
 * the engine's own model (turns of blocks), so most of this is renaming:
 * - `system` (string or text blocks, joined with blank lines) plus any role `system` messages;
 *   a text block starting `x-anthropic-billing-header` (Claude Code as a client sends one) is
 *   an API header, not instructions, and is dropped (the CLI sends its own).
 * - image sources: base64 → `data:<media_type>;base64,<data>` URL, url → the URL.
 * - `tool_result` content → text (text blocks joined with newlines); images inside a
 *   tool_result move to image blocks right after that message's run of tool_results, because
 *   the engine's tool_result carries text only.
 * - `redacted_thinking` is dropped; `thinking` passes back with its signature.
 * - `tool_choice`: auto → "auto", any → "required", tool → {name}, none → "none";
 *   `disable_parallel_tool_use` → at most one call per reply.
 * - `thinking` → the CLI's `--effort` ({@link effortOf}); `output_config.effort` wins.
 * - `output_config.format` (json_schema) → the structured-output format.
 * - `max_tokens` → the most output tokens per API message.
 */
import type { Effort } from "../../claude/argv.ts";
import type {
  Block,
  Conversation,
  OutputFormat,
  ToolChoice,
  Turn,
} from "../../engine/conversation.ts";
import type { ContentBlockParam, MessagesRequest } from "./schema.ts";

/** Prefix of the billing header block Claude Code puts first in `system`. */
const BILLING_HEADER = "x-anthropic-billing-header";

/**
 * Budgets (tokens) below which `thinking: {type:"enabled", budget_tokens}` asks for the CLI's
 * `--effort low` and `medium`; a larger budget asks for `high`. The CLI decides thinking itself
 * and takes no budget, so the budget only picks an effort.
 */
export const THINKING_BUDGET_LOW = 4_096;
/** See {@link THINKING_BUDGET_LOW}. */
export const THINKING_BUDGET_MEDIUM = 16_384;

/**
 * The CLI `--effort` a request asks for: `output_config.effort` when set; else from
 * `thinking.budget_tokens` (< 4,096 low, < 16,384 medium, otherwise high); `disabled`,
 * `adaptive`, `between_tools` or no `thinking` leave the CLI's default (undefined).
 */
export function effortOf(
  request: Pick<MessagesRequest, "thinking" | "output_config">,
): Effort | undefined {
  const explicit = request.output_config?.effort;
  if (explicit != null) return explicit;
  const thinking = request.thinking;
  if (thinking?.type !== "enabled") return undefined;
  if (thinking.budget_tokens < THINKING_BUDGET_LOW) return "low";
  if (thinking.budget_tokens < THINKING_BUDGET_MEDIUM) return "medium";
  return "high";
}

/**
 * How the answer shows the model's thinking: `show` (thinking blocks with their text and
 * signature) when the request enables thinking (`enabled` or `adaptive`), `omit` (blocks with
 * an empty text and the signature) for `display: "omitted"`, `hide` (no thinking blocks, as the
 * API answers a request without thinking) otherwise.
 */
export type ThinkingDisplay = "show" | "omit" | "hide";

/** The {@link ThinkingDisplay} of a request. */
export function thinkingDisplay(request: Pick<MessagesRequest, "thinking">): ThinkingDisplay {
  const thinking = request.thinking;
  if (thinking == null || (thinking.type !== "enabled" && thinking.type !== "adaptive")) {
    return "hide";
  }
  return thinking.display === "omitted" ? "omit" : "show";
}

function textsOf(content: string | readonly ContentBlockParam[]): string[] {
  if (typeof content === "string") return [content];
  return content.flatMap((block) => (block.type === "text" ? [block.text] : []));
}

/** The system prompt: `system` and role `system` messages, joined with blank lines; null when empty. */
export function systemOf(request: Pick<MessagesRequest, "system" | "messages">): string | null {
  const parts: string[] = [];
  const system = request.system;
  if (typeof system === "string") parts.push(system);
  else if (Array.isArray(system)) parts.push(...system.map((block) => block.text));
  for (const message of request.messages) {
    if (message.role === "system") parts.push(...textsOf(message.content));
  }
  const kept = parts.filter((text) => text.trim() !== "" && !text.startsWith(BILLING_HEADER));
  return kept.length === 0 ? null : kept.join("\n\n");
}

/**
 * An image block → the engine's: base64 → data URL, url → the URL; `param` names the block in
 * errors (`messages[1].content[0]`), `urlParam` its source.
 */
function imageBlock(
  source: Extract<ContentBlockParam, { type: "image" }>["source"],
  param: string,
): Block {
  if (source.type === "base64") {
    const url = `data:${source.media_type};base64,${source.data}`;
    return { type: "image", url, param, urlParam: `${param}.source` };
  }
  return { type: "image", url: source.url, param, urlParam: `${param}.source.url` };
}

/** The engine's blocks of one message's content; `at` is the message's param (`messages[2]`). */
function blocksOf(content: string | readonly ContentBlockParam[], at: string): Block[] {
  if (typeof content === "string") return content === "" ? [] : [{ type: "text", text: content }];
  const out: Block[] = [];
  // Images found in tool_results, placed after the run of tool_results they came in.
  let moved: Block[] = [];
  const flush = () => {
    out.push(...moved);
    moved = [];
  };
  for (const [j, block] of content.entries()) {
    const param = `${at}.content[${j}]`;
    if (block.type !== "tool_result") flush();
    switch (block.type) {
      case "text":
        if (block.text !== "") out.push({ type: "text", text: block.text });
        break;
      case "image":
        out.push(imageBlock(block.source, param));
        break;
      case "tool_use":
        out.push({ type: "tool_use", id: block.id, name: block.name, input: block.input });
        break;
      case "thinking":
        out.push({ type: "thinking", thinking: block.thinking, signature: block.signature });
        break;
      case "redacted_thinking":
        break;
      case "tool_result": {
        const inner = block.content ?? "";
        const texts =
          typeof inner === "string"
            ? [inner]
            : inner.flatMap((part) => (part.type === "text" ? [part.text] : []));
        const images =
          typeof inner === "string"
            ? []
            : inner.flatMap((part, k) =>
                part.type === "image" ? [imageBlock(part.source, `${param}.content[${k}]`)] : [],
              );
        moved.push(...images);
        let text = texts.join("\n");
        if (text === "" && images.length > 0) {
          text = `[${images.length === 1 ? "an image follows" : `${images.length} images follow`} the tool results]`;
        }
        out.push({
          type: "tool_result",
          tool_use_id: block.tool_use_id,
          content: text,
          ...(block.is_error === true ? { is_error: true } : {}),
        });
        break;
      }
    }
  }
  flush();
  return out;
}

function toolChoiceOf(choice: MessagesRequest["tool_choice"]): ToolChoice {
  switch (choice?.type) {
    case "any":
      return "required";
    case "tool":
      return { name: choice.name };
    case "none":
      return "none";
    default:
      return "auto";
  }
}

function outputOf(request: MessagesRequest): OutputFormat {
  const format = request.output_config?.format;
  return format == null ? { type: "text" } : { type: "json_schema", schema: format.schema };
}

/** A validated Messages request as the engine's conversation. Pure; throws nothing. */
export function toConversation(request: MessagesRequest): Conversation {
  const turns: Turn[] = [];
  for (const [i, message] of request.messages.entries()) {
    if (message.role === "system") continue;
    turns.push({ role: message.role, content: blocksOf(message.content, `messages[${i}]`) });
  }
  const choice = request.tool_choice;
  const parallel = !(
    choice != null &&
    "disable_parallel_tool_use" in choice &&
    choice.disable_parallel_tool_use === true
  );
  return {
    system: systemOf(request),
    turns,
    tools: (request.tools ?? []).map((tool) => ({
      name: tool.name,
      description: tool.description,
      parameters: tool.input_schema,
    })),
    toolChoice: toolChoiceOf(choice),
    parallelToolCalls: parallel,
    output: outputOf(request),
    effort: effortOf(request),
    maxOutputTokens: request.max_tokens,
    stopSequences: request.stop_sequences ?? [],
  };
}
