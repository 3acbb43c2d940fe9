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
  /** The CLI waits to retry the upstream API. */
  | { kind: "retrying"; attempt: number; delayMs: number }
  | TurnEnd;

/**
 * A whole turn: the assistant's blocks in order (consecutive text merged; thinking with its
 * signature; tool_use with parsed input) and its end.
 */
export interface TurnResult {
  content: Block[];
  end: TurnEnd;
}
