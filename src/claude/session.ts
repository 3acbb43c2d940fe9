/**
 * OpenAI `messages` as native Messages API turns (pure), and what carries them to the CLI.
 * DESIGN.md "Facts about the CLI": a session file the proxy writes can be resumed
 * (`--resume <path>`), and the API then receives its turns as real messages. On load the CLI
 * repairs an unfinished tail (verified on 2.1.221 and 2.1.332): an assistant tool_use without a
 * tool_result gets "[Tool call interrupted ...]" results and "No response requested.", a
 * trailing user message gets "No response requested." after it. So the history in the file ends
 * with a complete assistant turn and the final user turn goes to stdin.
 *
 * When that final turn answers tool calls (a replay: no parked run holds them), the assistant
 * turn that made the calls is split: its other blocks end the session file, its tool_use blocks
 * go to stdin as an `assistant` stream-json line with the same message id, right before the
 * user line. The CLI appends an `assistant` line to the conversation as it reads it and sends
 * consecutive assistant entries with one message id as one API message (the way it stores
 * streamed blocks itself), so the API receives [..., assistant(text, tool_use×N),
 * user(tool_result×N, text)] exactly, on every supported release. Claude Code's documented
 * deferral (a PreToolUse hook answering `permissionDecision: "defer"`, then `--resume`) does not
 * fit here: it takes one call per turn ("defer is solo-only"), and the resumed run answers on
 * its own with "Continue from where you left off." before any stdin turn.
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

/** The tool calls the final user turn answers, sent to stdin ahead of it (see the file doc). */
export interface PendingToolUses {
  /** The message id shared by the session file's last assistant entry and the stdin line. */
  messageId: string;
  /** The tool_use blocks taken out of the history's last assistant turn. */
  blocks: Array<Extract<AnthropicBlock, { type: "tool_use" }>>;
}

/** The stream-json stdin turn and the history before it. */
export interface SessionPlan {
  /**
   * Complete turns before the final user turn; ends with an assistant turn, or is empty. With
   * `pending`, the last assistant turn holds only the blocks that are not tool calls.
   */
  history: AnthropicMessage[];
  /** Content of the final user turn (stdin). */
  turn: AnthropicBlock[];
  /** The tool calls `turn` answers (replay), or null. */
  pending: PendingToolUses | null;
}

/** The id of the history's assistant message at `index` in session files. */
export function historyMessageId(index: number): string {
  return `msg_proxy_${index}`;
}

/** The tool_result text sent for a call the client did not answer. */
export const NO_RESULT_TEXT = "The client returned no result for this tool call";

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
        return [resultText(message.tool_call_id, text)];
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
 * Splits a conversation into the history and the final user turn. When that turn holds tool
 * results, the calls they answer move from the history's last assistant turn to `pending`;
 * a call the client left unanswered gets an error result ({@link NO_RESULT_TEXT}), and a result
 * for a call that turn did not make becomes text (the API refuses a tool_result without its
 * tool_use).
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
  const results = turn.filter((b) => b.type === "tool_result");
  const caller = history.at(-1);
  const uses = (caller?.content ?? []).filter(
    (b): b is Extract<AnthropicBlock, { type: "tool_use" }> => b.type === "tool_use",
  );
  if (results.length === 0 || caller === undefined || uses.length === 0) {
    return { history, turn: results.length === 0 ? turn : resultsAsText(turn), pending: null };
  }
  const called = new Set(uses.map((u) => u.id));
  const answered = new Set(results.map((r) => r.tool_use_id));
  const missing: AnthropicBlock[] = uses
    .filter((u) => !answered.has(u.id))
    .map((u) => ({
      type: "tool_result",
      tool_use_id: u.id,
      content: NO_RESULT_TEXT,
      is_error: true,
    }));
  const kept = turn.filter((b) => b.type !== "tool_result" || called.has(b.tool_use_id));
  const orphans = resultsAsText(
    turn.filter((b) => b.type === "tool_result" && !called.has(b.tool_use_id)),
  );
  const ownResults = kept.filter((b) => b.type === "tool_result");
  turn = [...ownResults, ...missing, ...orphans, ...kept.filter((b) => b.type !== "tool_result")];
  caller.content = caller.content.filter((b) => b.type !== "tool_use");
  return {
    history,
    turn,
    pending: { messageId: historyMessageId(history.length - 1), blocks: uses },
  };
}

/** A tool result as text, for runs without client tools or a result without its call. */
function resultText(toolCallId: string, content: string): AnthropicBlock {
  return { type: "text", text: `[Result of tool call ${toolCallId}]\n${content}` };
}

/** Tool results as text blocks (for results without a matching call). */
function resultsAsText(blocks: readonly AnthropicBlock[]): AnthropicBlock[] {
  return blocks.map((b) => (b.type === "tool_result" ? resultText(b.tool_use_id, b.content) : b));
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
 * "parentUuid", "sessionId", "cwd", "message"}` object per turn (DESIGN.md sessions).
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
            id: historyMessageId(index),
            type: "message",
            role: "assistant",
            model: "claude-openai-proxy-history",
            content: message.content,
            stop_reason:
              message.content.some((b) => b.type === "tool_use") ||
              (plan.pending !== null && index === plan.history.length - 1)
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
  return `${lines.join("\n")}\n`;
}

/**
 * The stdin of a run: with pending tool calls, the `assistant` stream-json line holding them
 * (same message id as the file's last assistant entry), then the user turn line.
 */
export function stdinLines(
  plan: SessionPlan,
  userLine: (turn: readonly AnthropicBlock[]) => string,
): string {
  const user = userLine(plan.turn);
  if (plan.pending === null) return user;
  const assistant = JSON.stringify({
    type: "assistant",
    message: {
      id: plan.pending.messageId,
      type: "message",
      role: "assistant",
      model: "claude-openai-proxy-history",
      content: plan.pending.blocks,
      stop_reason: "tool_use",
      stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0 },
    },
    parent_tool_use_id: null,
    session_id: "",
  });
  return `${assistant}\n${user}`;
}
