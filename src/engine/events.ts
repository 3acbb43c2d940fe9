/**
 * What a turn of the engine yields, whatever the surface: text, thinking and client tool calls
 * as they stream, retries, then one end. Derived from the CLI's `stream_event`s (DESIGN.md
 * "Events on stdout"); each surface renders these in its own wire shape.
 */
import type { CliUsage, ResultEvent } from "../claude/events.ts";
import type { Block } from "./conversation.ts";

/** Token usage of a turn, as the Messages API counts it (tokens; input excludes cache reads/writes). */
export type Usage = CliUsage;

/**
 * Why the model stopped, in the Messages API's words (`end_turn`, `max_tokens`, `tool_use`,
 * `stop_sequence`, `refusal`, `pause_turn`, `model_context_window_exceeded`).
 */
export type StopReason = string;

/** A client tool call as issued to the client: `name` without the bridge's prefix, `arguments` JSON text. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** The end of a turn. */
export interface TurnEnd {
  kind: "end";
  stopReason: StopReason;
  usage: Usage;
  /** The client tool calls of this turn, in order. */
  toolCalls: ToolCall[];
  /** The CLI's `result`; null when the turn ended at client tool calls (the run is parked). */
  result: ResultEvent | null;
  /** USD, as the CLI reports it (0 when unknown). */
  costUsd: number;
  /** The CLI compacted (summarised) the conversation before answering (`--auto-compact`). */
  compacted: boolean;
  /** The stop sequence that ended the answer (stop reason `stop_sequence`). */
  stopSequence?: string;
  /**
   * Agent mode: the run reached its most turns (`--agent-max-turns` / `max_turns`; the CLI's
   * result `error_max_turns`); `stopReason` is then `max_tokens`, so that every surface reports
   * a cut-off answer (chat `length`, Responses `incomplete`, Messages `max_tokens`).
   */
  turnLimit?: boolean;
}

/** One event of a turn. `index` numbers the turn's client tool calls from 0. */
export type TurnEvent =
  | { kind: "text"; text: string }
  | { kind: "thinking"; text: string }
  /** The signature that ends a thinking block (Messages API `signature_delta`). */
  | { kind: "signature"; signature: string }
  /** A tool call starts; `arguments` is "" when they stream, the whole text otherwise. */
  | { kind: "tool_call"; index: number; id: string; name: string; arguments: string }
  | { kind: "tool_arguments"; index: number; delta: string }
  /**
   * Agent mode: the CLI runs one of its own tools (never a client tool call). `summary` is one
   * line for people, e.g. `Read notes.txt` (paths relative to the agent directory).
   */
  | { kind: "agent_tool"; id: string; name: string; input: unknown; summary: string }
  /** Agent mode: that tool finished (`isError`: it failed or was refused). */
  | { kind: "agent_tool_result"; id: string; name: string; isError: boolean }
  /** The CLI waits to retry the upstream API. */
  | { kind: "retrying"; attempt: number; delayMs: number }
  | TurnEnd;

/**
 * Agent mode's progress as one line for people (every surface shows it its own way, never as
 * the answer): `Read notes.txt\n` when a tool starts, `Read failed or was refused\n` when one
 * fails; null for a tool that succeeded.
 */
export function progressLine(
  event: Extract<TurnEvent, { kind: "agent_tool" | "agent_tool_result" }>,
): string | null {
  if (event.kind === "agent_tool") return `${event.summary}\n`;
  return event.isError ? `${event.name} failed or was refused\n` : null;
}

/**
 * A whole turn: the assistant's blocks in order (consecutive text merged; thinking with its
 * signature; tool_use with parsed input) and its end.
 */
export interface TurnResult {
  content: Block[];
  end: TurnEnd;
}

/**
 * Builds a {@link TurnResult} from a turn's events as they pass (streaming or not): text and
 * thinking merged into blocks in order, tool calls as tool_use blocks with parsed input.
 */
export class TurnAccumulator {
  readonly content: Block[] = [];
  readonly #arguments = new Map<
    number,
    { block: Extract<Block, { type: "tool_use" }>; text: string }
  >();

  /** Takes one event (the end excluded). */
  add(event: Exclude<TurnEvent, TurnEnd>): void {
    const last = this.content.at(-1);
    switch (event.kind) {
      case "text":
        if (last?.type === "text") last.text += event.text;
        else this.content.push({ type: "text", text: event.text });
        return;
      case "thinking":
        if (last?.type === "thinking" && last.signature === "") last.thinking += event.text;
        else this.content.push({ type: "thinking", thinking: event.text, signature: "" });
        return;
      case "signature":
        if (last?.type === "thinking") last.signature += event.signature;
        return;
      case "tool_call": {
        const block = { type: "tool_use" as const, id: event.id, name: event.name, input: {} };
        this.content.push(block);
        this.#arguments.set(event.index, { block, text: event.arguments });
        return;
      }
      case "tool_arguments": {
        const entry = this.#arguments.get(event.index);
        if (entry !== undefined) entry.text += event.delta;
        return;
      }
      default:
        return;
    }
  }

  /** The whole turn, once it ended. */
  result(end: TurnEnd): TurnResult {
    for (const { block, text } of this.#arguments.values()) block.input = parseToolInput(text);
    return { content: this.content, end };
  }
}

/** Tool call arguments as an object: `{}` for none, `{_raw: text}` when they are not a JSON object. */
export function parseToolInput(text: string): unknown {
  if (text.trim() === "") return {};
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value
      : { _raw: text };
  } catch {
    return { _raw: text };
  }
}
