/**
 * OpenAI `messages` as native Messages API turns (pure), and the session file that carries
 * them to the CLI. DESIGN.md "Facts about the CLI": a session file the proxy writes can be
 * resumed (`--resume <path>`), and the API then receives its turns as real messages. On load
 * the CLI repairs an unfinished tail: an assistant tool_use without a tool_result is dropped,
 * a final user message gets "No response requested." after it. So the history handed over
 * ends with an assistant turn, and the final user turn (text, images or tool results) goes to
 * stdin. When that turn holds tool results, a `hook_deferred_tool` attachment naming one of
 * the pending tool_use ids keeps the CLI from dropping the tool_use turn (verified against
 * 2.1.197: the CLI then prints an extra `result` with stop_reason "tool_deferred_unavailable"
 * before answering, which the driver skips).
 */
import { type ChatCompletionMessageParam, exceedsJsonDepth } from "../openai/schema.ts";
import { contentText } from "./prompt.ts";

/** An image ready for the API. */
export interface ResolvedImage {
  media_type: string;
  /** base64 */
  data: string;
}

/** A Messages API content block this proxy sends. */
export type AnthropicBlock =
  | { type: "text"; text: string }
  | { type: "image"; source: { type: "base64"; media_type: string; data: string } }
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | { type: "tool_result"; tool_use_id: string; content: string; is_error?: boolean };

/** A Messages API message. */
export interface AnthropicMessage {
  role: "user" | "assistant";
  content: AnthropicBlock[];
}

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

/** The stream-json stdin turn and the history before it. */
export interface SessionPlan {
  /** Complete turns before the final user turn; ends with an assistant turn, or is empty. */
  history: AnthropicMessage[];
  /** Content of the final user turn (stdin). */
  turn: AnthropicBlock[];
  /** A tool_use id answered in `turn`, for the deferred-tool marker; null without tool results. */
  deferredToolUseId: string | null;
}

type Message = ChatCompletionMessageParam;

/**
 * Parses tool call arguments; invalid JSON, and JSON nested too deeply to be written to the
 * session file again, is kept as a string under `_raw`.
 */
export function parseArguments(text: string): unknown {
  if (text.trim() === "") return {};
  try {
    const value: unknown = JSON.parse(text);
    if (exceedsJsonDepth(value)) return { _raw: text };
    return typeof value === "object" && value !== null && !Array.isArray(value) ? value : { value };
  } catch {
    return { _raw: text };
  }
}

function textBlock(text: string): AnthropicBlock[] {
  return text === "" ? [] : [{ type: "text", text }];
}

function messageBlocks(message: Message, options: ConversationOptions): AnthropicBlock[] {
  switch (message.role) {
    case "user": {
      if (typeof message.content === "string") return textBlock(message.content);
      const blocks: AnthropicBlock[] = [];
      for (const part of message.content) {
        if (part.type === "text") blocks.push(...textBlock(String(part.text)));
        else if (part.type === "image_url") {
          const image = options.images.get(part.image_url.url);
          if (image !== undefined) {
            blocks.push({ type: "image", source: { type: "base64", ...image } });
          }
        }
      }
      return blocks;
    }
    case "assistant": {
      const blocks = textBlock(contentText(message.content));
      for (const call of message.tool_calls ?? []) {
        if (options.toolPrefix === null) {
          blocks.push({
            type: "text",
            text: `[Called tool ${call.function.name} (call id ${call.id}) with arguments ${call.function.arguments}]`,
          });
        } else {
          blocks.push({
            type: "tool_use",
            id: call.id,
            name: options.toolPrefix + call.function.name,
            input: parseArguments(call.function.arguments),
          });
        }
      }
      return blocks;
    }
    case "tool": {
      const text = contentText(message.content);
      if (options.toolPrefix === null) {
        return [{ type: "text", text: `[Result of tool call ${message.tool_call_id}]\n${text}` }];
      }
      return [{ type: "tool_result", tool_use_id: message.tool_call_id, content: text }];
    }
    case "function":
      return [
        { type: "text", text: `[Result of function ${message.name}]\n${message.content ?? ""}` },
      ];
    default:
      return [];
  }
}

/**
 * The conversation (system and developer messages excluded) as alternating Messages API
 * turns: consecutive messages of one role are merged, tool results come first in their user
 * turn, empty turns are dropped.
 */
export function toAnthropicMessages(
  messages: readonly Message[],
  options: ConversationOptions,
): AnthropicMessage[] {
  const out: AnthropicMessage[] = [];
  for (const message of messages) {
    if (message.role === "system" || message.role === "developer") continue;
    const role = message.role === "assistant" ? "assistant" : "user";
    const blocks = messageBlocks(message, options);
    if (blocks.length === 0) continue;
    const last = out.at(-1);
    if (last !== undefined && last.role === role) last.content.push(...blocks);
    else out.push({ role, content: blocks });
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

/**
 * Splits a conversation into the history and the final user turn.
 * @returns null when there is nothing to answer (no user content at all).
 */
export function splitTail(conversation: readonly AnthropicMessage[]): SessionPlan | null {
  const history = conversation.map((m) => ({ role: m.role, content: [...m.content] }));
  let turn: AnthropicBlock[];
  const last = history.at(-1);
  if (last === undefined) return null;
  if (last.role === "user") {
    history.pop();
    turn = last.content;
  } else {
    // The conversation ends with the assistant (a prefill): ask the model to go on.
    turn = [{ type: "text", text: "Continue." }];
  }
  if (history[0]?.role === "assistant") {
    history.unshift({ role: "user", content: [{ type: "text", text: "(conversation start)" }] });
  }
  const result = turn.find((b) => b.type === "tool_result");
  return {
    history,
    turn,
    deferredToolUseId:
      result?.type === "tool_result" && history.length > 0 ? result.tool_use_id : null,
  };
}

/** Where and when the session file is written. */
export interface SessionFileOptions {
  sessionId: string;
  /** The CLI's working directory. */
  cwd: string;
  /** ISO time for the entries. */
  timestamp: string;
  /** The CLI version recorded in entries. */
  version: string;
  /** Generates entry uuids (injectable for tests). */
  uuid?: () => string;
}

/**
 * The JSONL session file for `--resume <path>`: one `{"type":"user"|"assistant", "uuid",
 * "parentUuid", "sessionId", "cwd", "message"}` object per turn (DESIGN.md sessions), plus the
 * deferred-tool marker when the stdin turn answers tool calls.
 */
export function sessionFile(plan: SessionPlan, options: SessionFileOptions): string {
  const uuid = options.uuid ?? (() => crypto.randomUUID());
  const lines: string[] = [];
  let parentUuid: string | null = null;
  const base = {
    sessionId: options.sessionId,
    cwd: options.cwd,
    isSidechain: false,
    userType: "external",
    version: options.version,
    timestamp: options.timestamp,
  };
  plan.history.forEach((message, index) => {
    const id = uuid();
    const body =
      message.role === "user"
        ? { role: "user", content: message.content }
        : {
            id: `msg_proxy_${index}`,
            type: "message",
            role: "assistant",
            model: "claude-openai-proxy-history",
            content: message.content,
            stop_reason: message.content.some((b) => b.type === "tool_use")
              ? "tool_use"
              : "end_turn",
            stop_sequence: null,
            usage: { input_tokens: 0, output_tokens: 0 },
          };
    lines.push(
      JSON.stringify({ type: message.role, uuid: id, parentUuid, ...base, message: body }),
    );
    parentUuid = id;
  });
  if (plan.deferredToolUseId !== null) {
    lines.push(
      JSON.stringify({
        type: "attachment",
        uuid: uuid(),
        parentUuid,
        ...base,
        attachment: {
          type: "hook_deferred_tool",
          toolUseID: plan.deferredToolUseId,
          // A name no run offers: the CLI reports the deferred tool unavailable and moves on.
          toolName: "claude_openai_proxy_replay",
          toolInput: {},
          hookName: "PreToolUse",
          hookEvent: "PreToolUse",
          permissionMode: "default",
        },
      }),
    );
  }
  return `${lines.join("\n")}\n`;
}
