/**
 * A conversation → what the CLI receives (pure): native Messages API turns for a session file
 * (see src/claude/session.ts), or, as the fallback when a resumed session is refused, one user
 * turn holding a clearly delimited transcript of the earlier turns.
 */
import {
  type AnthropicBlock,
  type AnthropicMessage,
  type ResolvedImage,
  resultText,
} from "../claude/session.ts";
import { ProxyError } from "../errors.ts";
import type { Block, Turn } from "./conversation.ts";

/** How to convert. */
export interface ConversationOptions {
  /**
   * Prefix of client tool names as the model sees them (`mcp__client__`), or null when the
   * run offers no client tools: tool calls and results then travel as text.
   */
  toolPrefix: string | null;
  /** Images by URL (resolved beforehand: data URLs decoded, http URLs fetched). */
  images: ReadonlyMap<string, ResolvedImage>;
}

/** Tool call arguments as JSON text (the text a client sent when it was not JSON). */
export function argumentsText(input: unknown): string {
  if (
    typeof input === "object" &&
    input !== null &&
    Object.keys(input).length === 1 &&
    typeof (input as { _raw?: unknown })._raw === "string"
  ) {
    return (input as { _raw: string })._raw;
  }
  return JSON.stringify(input ?? {});
}

/** One block as the API receives it, or null when it is not sent. */
function apiBlock(block: Block, options: ConversationOptions): AnthropicBlock | null {
  switch (block.type) {
    case "text":
      return block.text === "" ? null : block;
    case "image": {
      const image = options.images.get(block.url);
      return image === undefined ? null : { type: "image", source: { type: "base64", ...image } };
    }
    case "tool_use":
      if (options.toolPrefix === null) {
        return {
          type: "text",
          text: `[Called tool ${block.name} (call id ${block.id}) with arguments ${argumentsText(block.input)}]`,
        };
      }
      return { ...block, name: options.toolPrefix + block.name };
    case "tool_result":
      if (options.toolPrefix === null) return resultText(block.tool_use_id, block.content);
      return block;
    case "thinking":
      // Thinking is only sent back with the signature the API gave it.
      return block.signature === "" ? null : block;
    default:
      return null;
  }
}

/**
 * The turns as alternating Messages API turns: consecutive turns of one role are merged, tool
 * results come first in their user turn, empty turns are dropped.
 */
export function toAnthropicMessages(
  turns: readonly Turn[],
  options: ConversationOptions,
): AnthropicMessage[] {
  const out: AnthropicMessage[] = [];
  for (const turn of turns) {
    const blocks = turn.content
      .map((block) => apiBlock(block, options))
      .filter((block): block is AnthropicBlock => block !== null);
    if (blocks.length === 0) continue;
    const last = out.at(-1);
    if (last !== undefined && last.role === turn.role) last.content.push(...blocks);
    else out.push({ role: turn.role, content: blocks });
  }
  for (const message of out) {
    if (message.role !== "user") continue;
    const results = message.content.filter((b) => b.type === "tool_result");
    if (results.length > 0) {
      message.content = [...results, ...message.content.filter((b) => b.type !== "tool_result")];
    }
  }
  return out;
}

/** A content block of the transcript user turn sent on stdin. */
export type UserTurnBlock =
  | { type: "text"; text: string }
  | { type: "image"; source: { type: "base64"; media_type: string; data: string } };

/** The transcript fallback: one user turn for stdin. */
export interface PromptPlan {
  /** The content of the single user turn written to stdin. */
  turn: UserTurnBlock[];
}

function textOf(blocks: readonly Block[]): string {
  return blocks
    .filter((b) => b.type === "text")
    .map((b) => b.text)
    .join("\n");
}

/** Blocks of one user turn's content, images taken from `images` (resolved by URL). */
function userBlocks(turn: Turn, images: ReadonlyMap<string, ResolvedImage>): UserTurnBlock[] {
  const blocks: UserTurnBlock[] = [];
  for (const block of turn.content) {
    if (block.type === "text") blocks.push({ type: "text", text: block.text });
    else if (block.type === "image") {
      const image = images.get(block.url);
      if (image !== undefined) blocks.push({ type: "image", source: { type: "base64", ...image } });
    }
  }
  return blocks;
}

/** One turn of the transcript (tool results each as a `tool` turn, before the rest). */
function renderTurn(turn: Turn): string {
  if (turn.role === "assistant") {
    const calls = turn.content
      .filter((b) => b.type === "tool_use")
      .map(
        (call) =>
          `<tool_call id="${call.id}" name="${call.name}">${argumentsText(call.input)}</tool_call>`,
      );
    const body = [textOf(turn.content), ...calls].filter((s) => s !== "").join("\n");
    return `<turn role="assistant">\n${body}\n</turn>`;
  }
  const lines = turn.content
    .filter((b) => b.type === "tool_result")
    .map((r) => `<turn role="tool" tool_call_id="${r.tool_use_id}">\n${r.content}\n</turn>`);
  const rest = turn.content.filter((b) => b.type === "text" || b.type === "image");
  if (rest.length > 0 || lines.length === 0) {
    const images = rest.filter((b) => b.type === "image").length;
    const note = images > 0 ? `\n[${images} image(s) attached to this turn are not repeated]` : "";
    lines.push(`<turn role="user">\n${textOf(rest)}${note}\n</turn>`);
  }
  return lines.join("\n");
}

/** Whether a user turn holds only tool results (it then is no message of the user's own). */
function onlyToolResults(turn: Turn): boolean {
  return turn.content.length > 0 && turn.content.every((b) => b.type === "tool_result");
}

/**
 * Builds the transcript prompt. One user turn goes as it is; a longer conversation becomes a
 * transcript of the earlier turns followed by the last one.
 * @throws ProxyError 400 when there is nothing to answer.
 */
export function buildPrompt(
  turns: readonly Turn[],
  images: ReadonlyMap<string, ResolvedImage> = new Map(),
): PromptPlan {
  const last = turns.at(-1);
  if (last === undefined) {
    throw new ProxyError(400, "messages must contain at least one user message", {
      param: "messages",
      code: "invalid_value",
    });
  }
  const userLast = last.role === "user" && !onlyToolResults(last);
  if (turns.length === 1 && userLast) return { turn: userBlocks(last, images) };
  const history = turns.slice(0, -1).map(renderTurn).join("\n");
  const current = userLast
    ? userBlocks(last, images)
    : [{ type: "text" as const, text: `${renderTurn(last)}\nContinue the conversation.` }];
  const preface =
    "<conversation_history>\nThe conversation so far, oldest first. Answer the final message.\n" +
    `${history}\n</conversation_history>\n\n`;
  const [first, ...rest] = current;
  const head: UserTurnBlock =
    first !== undefined && first.type === "text"
      ? { type: "text", text: preface + first.text }
      : { type: "text", text: preface };
  const tail = first !== undefined && first.type !== "text" ? [first, ...rest] : rest;
  return { turn: [head, ...tail] };
}
