/**
 * Turn events → the Messages API's wire shape (https://docs.anthropic.com/en/api/messages,
 * streaming: https://docs.anthropic.com/en/docs/build-with-claude/streaming). A stream is
 * `message_start`, then per content block `content_block_start`, `content_block_delta`s
 * (`text_delta`, `thinking_delta`, `signature_delta`, `input_json_delta`) and
 * `content_block_stop`, then `message_delta` (stop reason, usage) and `message_stop`; `ping`
 * during silences and an `error` event for a failure after the stream opened. Each frame is an
 * `event: <type>` line and a `data:` line holding the JSON with the same `type`.
 * A new block starts whenever the kind changes (text ↔ thinking ↔ each tool call).
 */
import type { Block } from "../../engine/conversation.ts";
import {
  progressLine,
  type TurnEnd,
  type TurnEvent,
  type TurnResult,
  type Usage,
} from "../../engine/events.ts";
import { anthropicErrorBody, type ProxyError } from "../../errors.ts";
import type { SseFrame, TurnRenderer } from "../../http/render.ts";
import type { ThinkingDisplay } from "./conversation.ts";

/** An output content block of a Message (`ContentBlock` in `@anthropic-ai/sdk`). */
export type MessageContentBlock =
  | { type: "text"; text: string }
  | { type: "thinking"; thinking: string; signature: string }
  | { type: "tool_use"; id: string; name: string; input: unknown };

/** The usage of a Message: tokens; input excludes cache reads and writes. */
export interface MessageUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

/** The Message object (`Message` in `@anthropic-ai/sdk`), the body of a whole answer. */
export interface MessageObject {
  id: string;
  type: "message";
  role: "assistant";
  /** The model name as the client sent it. */
  model: string;
  content: MessageContentBlock[];
  stop_reason: string | null;
  stop_sequence: string | null;
  usage: MessageUsage;
}

const ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz123456789";

/** A fresh message id, `msg_` and 24 random base58 characters (as the API's look). */
export function newMessageId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  let id = "msg_";
  for (const byte of bytes) id += ID_ALPHABET[byte % ID_ALPHABET.length];
  return id;
}

/** One SSE frame of event `type` whose data is `{type, ...data}`. */
function frame(type: string, data: Record<string, unknown> = {}): SseFrame {
  return { event: type, data: JSON.stringify({ type, ...data }) };
}

/** The Message usage of a turn's usage. */
export function messageUsage(usage: Usage): MessageUsage {
  return {
    input_tokens: usage.input_tokens,
    output_tokens: usage.output_tokens,
    cache_creation_input_tokens: usage.cache_creation_input_tokens,
    cache_read_input_tokens: usage.cache_read_input_tokens,
  };
}

/** The Message content blocks of a turn's blocks (thinking per `thinking`; others dropped). */
export function messageContent(
  blocks: readonly Block[],
  thinking: ThinkingDisplay,
): MessageContentBlock[] {
  const out: MessageContentBlock[] = [];
  for (const block of blocks) {
    if (block.type === "text") {
      const last = out.at(-1);
      if (last?.type === "text") last.text += block.text;
      else out.push({ type: "text", text: block.text });
    } else if (block.type === "thinking" && thinking !== "hide") {
      out.push({
        type: "thinking",
        thinking: thinking === "omit" ? "" : block.thinking,
        signature: block.signature,
      });
    } else if (block.type === "tool_use") {
      out.push({ type: "tool_use", id: block.id, name: block.name, input: block.input });
    }
  }
  return out;
}

/** Options of {@link MessagesRenderer}. */
export interface MessagesRendererOptions {
  /** The model name as the client sent it (echoed in `model`). */
  model: string;
  /** How thinking is shown ({@link ThinkingDisplay}); default "show". */
  thinking?: ThinkingDisplay;
  /** The message id; default {@link newMessageId}. */
  id?: string;
  /** The request id sent in `error` events' `request_id`. */
  requestId?: string;
}

/** The block open in a stream: its index and kind (a tool call's own index for tools). */
type OpenBlock =
  | { index: number; kind: "text" | "thinking"; signed?: boolean }
  | { index: number; kind: "tool"; tool: number };

/** Renders one turn in the Messages API's shape; one per request. */
export class MessagesRenderer implements TurnRenderer {
  /** The message id (`msg_...`), the same in the stream and the whole answer. */
  readonly id: string;
  readonly #model: string;
  readonly #thinking: ThinkingDisplay;
  readonly #requestId: string | undefined;
  #open: OpenBlock | null = null;
  #next = 0;
  /** Tool call index → its block index. */
  readonly #toolBlocks = new Map<number, number>();

  constructor(options: MessagesRendererOptions) {
    this.id = options.id ?? newMessageId();
    this.#model = options.model;
    this.#thinking = options.thinking ?? "show";
    this.#requestId = options.requestId;
  }

  /** `message_start` with an empty message (usage arrives with `message_delta`). */
  open(): SseFrame[] {
    return [
      frame("message_start", {
        message: {
          id: this.id,
          type: "message",
          role: "assistant",
          model: this.#model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: {
            input_tokens: 0,
            output_tokens: 0,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
          },
        },
      }),
    ];
  }

  /** Closes the open block, if any. */
  #close(): SseFrame[] {
    if (this.#open === null) return [];
    const index = this.#open.index;
    this.#open = null;
    return [frame("content_block_stop", { index })];
  }

  /** Starts a block of `kind` (closing the open one). */
  #start(block: Record<string, unknown>, open: OpenBlock): SseFrame[] {
    const frames = this.#close();
    this.#open = open;
    this.#next++;
    frames.push(frame("content_block_start", { index: open.index, content_block: block }));
    return frames;
  }

  /**
   * The frames of one turn event: a `content_block_start` when the kind changes (closing the
   * open block first), then its delta; nothing for retries, or for thinking when hidden.
   */
  event(event: Exclude<TurnEvent, TurnEnd>): SseFrame[] {
    switch (event.kind) {
      case "text": {
        if (event.text === "") return [];
        const frames =
          this.#open?.kind === "text"
            ? []
            : this.#start({ type: "text", text: "" }, { index: this.#next, kind: "text" });
        const index = this.#open?.index ?? 0;
        frames.push(
          frame("content_block_delta", { index, delta: { type: "text_delta", text: event.text } }),
        );
        return frames;
      }
      case "thinking": {
        if (this.#thinking === "hide") return [];
        // A signature ends its block: thinking after it is a new block (another API message).
        const frames = this.#thinkingBlock(
          this.#open?.kind === "thinking" && this.#open.signed !== true,
        );
        if (this.#thinking === "show" && event.text !== "") {
          const index = this.#open?.index ?? 0;
          frames.push(
            frame("content_block_delta", {
              index,
              delta: { type: "thinking_delta", thinking: event.text },
            }),
          );
        }
        return frames;
      }
      case "signature": {
        if (this.#thinking === "hide") return [];
        // A signature ends a thinking block; one without thinking before it gets its own block.
        const frames = this.#thinkingBlock(this.#open?.kind === "thinking");
        const index = this.#open?.index ?? 0;
        if (this.#open?.kind === "thinking") this.#open.signed = true;
        frames.push(
          frame("content_block_delta", {
            index,
            delta: { type: "signature_delta", signature: event.signature },
          }),
        );
        return frames;
      }
      case "tool_call": {
        const index = this.#next;
        this.#toolBlocks.set(event.index, index);
        const frames = this.#start(
          { type: "tool_use", id: event.id, name: event.name, input: {} },
          { index, kind: "tool", tool: event.index },
        );
        if (event.arguments !== "") frames.push(inputDelta(index, event.arguments));
        return frames;
      }
      case "tool_arguments": {
        const index = this.#toolBlocks.get(event.index);
        if (index === undefined || event.delta === "") return [];
        return [inputDelta(index, event.delta)];
      }
      case "agent_tool":
      case "agent_tool_result": {
        const line = progressLine(event);
        return line === null ? [] : this.#progress(line);
      }
      case "retrying":
        return [];
    }
  }

  /** Frames that open a new thinking block, or none when `continueOpen` (the open one goes on). */
  #thinkingBlock(continueOpen: boolean): SseFrame[] {
    if (continueOpen) return [];
    return this.#start(
      { type: "thinking", thinking: "", signature: "" },
      { index: this.#next, kind: "thinking" },
    );
  }

  /**
   * Agent mode's progress (a tool the CLI runs itself) as a thinking block of its own, opened
   * and closed at once, with no signature (never a `tool_use` block: the client would take it
   * for a call of its own tools). Nothing when thinking is hidden or omitted.
   */
  #progress(text: string): SseFrame[] {
    if (this.#thinking !== "show") return [];
    const index = this.#next;
    const frames = this.#thinkingBlock(false);
    frames.push(
      frame("content_block_delta", { index, delta: { type: "thinking_delta", thinking: text } }),
      ...this.#close(),
    );
    return frames;
  }

  /** Closes the open block, then `message_delta` (stop reason, usage) and `message_stop`. */
  end(result: TurnResult): SseFrame[] {
    const frames = this.#close();
    frames.push(
      frame("message_delta", {
        delta: {
          stop_reason: result.end.stopReason,
          stop_sequence: result.end.stopSequence ?? null,
        },
        usage: messageUsage(result.end.usage),
      }),
      frame("message_stop"),
    );
    return frames;
  }

  /** An `error` event (the stream then closes; no `message_stop`). */
  error(error: ProxyError): SseFrame[] {
    const { type, error: body } = anthropicErrorBody(error, this.#requestId);
    return [{ event: "error", data: JSON.stringify({ type, error: body }) }];
  }

  /** Anthropic's keep-alive: `event: ping`, `{"type":"ping"}`. */
  ping(): SseFrame {
    return frame("ping");
  }

  /** The Message object of a whole answer. */
  whole(result: TurnResult): MessageObject {
    return {
      id: this.id,
      type: "message",
      role: "assistant",
      model: this.#model,
      content: messageContent(result.content, this.#thinking),
      stop_reason: result.end.stopReason,
      stop_sequence: result.end.stopSequence ?? null,
      usage: messageUsage(result.end.usage),
    };
  }
}

function inputDelta(index: number, partial: string): SseFrame {
  return frame("content_block_delta", {
    index,
    delta: { type: "input_json_delta", partial_json: partial },
  });
}
