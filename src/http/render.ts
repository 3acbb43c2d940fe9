/**
 * How a surface renders a turn: the contract between the shared HTTP handling (src/http/turn.ts:
 * slot, drain, abort, pings, park or close, one log/metrics/usage record) and each surface.
 * One renderer per request; it may keep state (sequence numbers, open blocks).
 */

import type { TurnEnd, TurnEvent, TurnResult } from "../engine/events.ts";
import type { ProxyError } from "../errors.ts";

/** One server-sent event: `event:` (omitted when undefined) and `data:`, or a comment line. */
export type SseFrame = { event?: string; data: string } | { comment: string };

/** Renders one turn for one request. */
export interface TurnRenderer {
  /** Frames that open a stream, before any turn event (e.g. `message_start`, `response.created`). */
  open(): SseFrame[];
  /** Frames for one event of the turn (the end excluded). */
  event(event: Exclude<TurnEvent, TurnEnd>): SseFrame[];
  /** Frames that end a stream that succeeded (chat's `data: [DONE]` included). */
  end(result: TurnResult): SseFrame[];
  /** Frames for a failure after the stream opened (the stream then closes). */
  error(error: ProxyError): SseFrame[];
  /** A keep-alive frame sent during silences (`{comment: "ping"}` or a surface's ping event). */
  ping(): SseFrame;
  /** The JSON body of a whole (non-streaming) answer. */
  whole(result: TurnResult): unknown;
}
