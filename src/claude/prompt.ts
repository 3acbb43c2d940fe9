/**
 * OpenAI `messages` → what the CLI receives (pure): the system prompt (written to a temp file)
 * and one user turn for stdin in `--input-format stream-json` (DESIGN.md "Facts about the CLI").
 * Earlier turns travel as a clearly delimited transcript inside that user turn.
 */
import { ProxyError } from "../errors.ts";
import type { ChatCompletionMessageParam } from "../openai/schema.ts";
import type { ResolvedImage } from "./session.ts";

/** A content block of the user turn sent on stdin (Messages API shapes). */
export type UserTurnBlock =
  | { type: "text"; text: string }
  | { type: "image"; source: { type: "base64"; media_type: string; data: string } };

/** What one run sends to the CLI. */
export interface PromptPlan {
  /** System and developer messages joined, or null when there are none. */
  systemPrompt: string | null;
  /** The content of the single user turn written to stdin. */
  turn: UserTurnBlock[];
}

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

/** Blocks of one user message's content, images taken from `images` (resolved by URL). */
function userBlocks(
  message: Extract<Message, { role: "user" }>,
  images: ReadonlyMap<string, ResolvedImage>,
): UserTurnBlock[] {
  if (typeof message.content === "string") return [{ type: "text", text: message.content }];
  const blocks: UserTurnBlock[] = [];
  for (const part of message.content) {
    if (part.type === "text") blocks.push({ type: "text", text: String(part.text) });
    else if (part.type === "image_url") {
      const image = images.get(part.image_url.url);
      if (image !== undefined) blocks.push({ type: "image", source: { type: "base64", ...image } });
    }
  }
  return blocks;
}

function renderTurn(message: Message): string {
  switch (message.role) {
    case "user": {
      const images =
        typeof message.content === "string"
          ? 0
          : message.content.filter((p) => p.type === "image_url").length;
      const note =
        images > 0 ? `\n[${images} image(s) attached to this turn are not repeated]` : "";
      return `<turn role="user">\n${contentText(message.content)}${note}\n</turn>`;
    }
    case "assistant": {
      const calls = (message.tool_calls ?? []).map(
        (call) =>
          `<tool_call id="${call.id}" name="${call.function.name}">${call.function.arguments}</tool_call>`,
      );
      const body = [contentText(message.content), ...calls].filter((s) => s !== "").join("\n");
      return `<turn role="assistant">\n${body}\n</turn>`;
    }
    case "tool":
      return `<turn role="tool" tool_call_id="${message.tool_call_id}">\n${contentText(message.content)}\n</turn>`;
    case "function":
      return `<turn role="function" name="${message.name}">\n${message.content ?? ""}\n</turn>`;
    default:
      return "";
  }
}

/**
 * Builds the run's prompt. One user message goes as it is; a longer conversation becomes a
 * transcript of the earlier turns followed by the last message.
 * @throws ProxyError 400 when there is nothing to answer or a part cannot be sent.
 */
export function buildPrompt(
  messages: readonly Message[],
  images: ReadonlyMap<string, ResolvedImage> = new Map(),
): PromptPlan {
  const systemPrompt = systemPromptOf(messages);
  const conversation = messages.filter((m) => m.role !== "system" && m.role !== "developer");
  const last = conversation.at(-1);
  if (last === undefined) {
    throw new ProxyError(400, "messages must contain at least one user message", {
      param: "messages",
      code: "invalid_value",
    });
  }
  if (conversation.length === 1 && last.role === "user") {
    return { systemPrompt, turn: userBlocks(last, images) };
  }
  const history = conversation.slice(0, -1).map(renderTurn).join("\n");
  const current =
    last.role === "user"
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
  return { systemPrompt, turn: [head, ...tail] };
}

/**
 * The stdin line of one user turn in `--input-format stream-json`:
 * `{"type":"user","message":{"role":"user","content":[...]},"parent_tool_use_id":null,"session_id":""}`.
 */
export function userTurnLine(turn: readonly unknown[]): string {
  return `${JSON.stringify({
    type: "user",
    message: { role: "user", content: turn },
    parent_tool_use_id: null,
    session_id: "",
  })}\n`;
}
