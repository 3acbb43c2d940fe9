/**
 * Native Messages API turns and what carries them to the CLI (pure).
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
  | { type: "tool_result"; tool_use_id: string; content: string; is_error?: boolean }
  | { type: "thinking"; thinking: string; signature: string };

/** A Messages API message. */
export interface AnthropicMessage {
  role: "user" | "assistant";
  content: AnthropicBlock[];
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

/** A tool result as text, for a result without its call. */
export function resultText(toolCallId: string, content: string): AnthropicBlock {
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
