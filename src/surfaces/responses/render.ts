/**
 * Renders a turn as the OpenAI Responses API does
 * (https://platform.openai.com/docs/api-reference/responses-streaming): a `response` object
 * for `stream: false`, or the streamed sequence with `sequence_number` from 0:
 * `response.created`, `response.in_progress`; per output item `response.output_item.added`,
 * then for a message `response.content_part.added`, `response.output_text.delta`…,
 * `response.output_text.done`, `response.content_part.done`; for a function call
 * `response.function_call_arguments.delta`…/`.done`; for reasoning
 * `response.reasoning_summary_part.added`, `response.reasoning_summary_text.delta`…/`.done`,
 * `response.reasoning_summary_part.done`; then `response.output_item.done`; finally
 * `response.completed` or `response.incomplete` (or `error` + `response.failed`). Each SSE
 * `event:` equals its payload's `type`. Wire names follow openai-node's
 * `src/resources/responses/responses.ts`.
 */
import type { CliUsage } from "../../claude/events.ts";
import {
  progressLine,
  type TurnEnd,
  type TurnEvent,
  type TurnResult,
} from "../../engine/events.ts";
import type { ProxyError } from "../../errors.ts";
import type { SseFrame, TurnRenderer } from "../../http/render.ts";
import { SIGNATURE_PREFIX } from "./conversation.ts";
import type { ResponseCreateRequest } from "./schema.ts";

/** `output_text` content part. */
export interface OutputTextPart {
  type: "output_text";
  text: string;
  annotations: unknown[];
}

/** An assistant message output item. */
export interface MessageOutput {
  type: "message";
  id: string;
  status: "in_progress" | "completed" | "incomplete";
  role: "assistant";
  content: OutputTextPart[];
}

/** A function call output item; `call_id` is the engine's tool call id (`toolu_...`). */
export interface FunctionCallOutput {
  type: "function_call";
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: "in_progress" | "completed" | "incomplete";
}

/**
 * A reasoning output item: the model's thinking as one summary text. `encrypted_content`
 * carries the thinking block's signature (prefixed, see SIGNATURE_PREFIX), so that the item
 * passed back becomes the same thinking block.
 */
export interface ReasoningOutput {
  type: "reasoning";
  id: string;
  summary: Array<{ type: "summary_text"; text: string }>;
  encrypted_content?: string | null;
  status?: "in_progress" | "completed" | "incomplete";
}

/** One item of `output`. */
export type OutputItem = MessageOutput | FunctionCallOutput | ReasoningOutput;

/** `usage` of a response (tokens). */
export interface ResponseUsage {
  /** Input tokens, cache reads and writes included. */
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

/** Status of a response. */
export type ResponseStatus = "in_progress" | "completed" | "incomplete" | "failed";

/** The `response` object (openai-node `Response`; `output_text` is added by the SDK, not here). */
export interface ResponseObject {
  id: string;
  object: "response";
  /** Unix seconds. */
  created_at: number;
  status: ResponseStatus;
  background: boolean;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: "max_output_tokens" | "content_filter" } | null;
  instructions: string | null;
  max_output_tokens: number | null;
  metadata: Record<string, string>;
  /** The model as the client named it. */
  model: string;
  output: OutputItem[];
  parallel_tool_calls: boolean;
  previous_response_id: string | null;
  reasoning: { effort: string | null; summary: string | null };
  store: boolean;
  temperature: number | null;
  text: { format: Record<string, unknown> };
  tool_choice: unknown;
  tools: unknown[];
  top_p: number | null;
  truncation: "auto" | "disabled";
  usage: ResponseUsage | null;
  user?: string;
  /** Unix seconds, once completed. */
  completed_at?: number | null;
}

/** What the renderer needs besides the turn. */
export interface ResponseMeta {
  /** `resp_...`. */
  id: string;
  /** Unix seconds. */
  createdAt: number;
  request: ResponseCreateRequest;
  /** Seconds since the epoch (the completion time); default `Date.now()`. */
  now?: () => number;
}

/** A new id with OpenAI's prefix (`resp`, `msg`, `fc`, `rs`): the prefix, `_`, 48 hex digits. */
export function newId(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return `${prefix}_${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * The id of item `index` of response `responseId` (`resp_<hex>`): `<prefix>_<hex>_<index>`, so
 * that an `item_reference` names the stored response that holds it (see
 * {@link referencedResponseId}). `index` is a string for input items (`i0`, `i1`, ...).
 */
export function itemId(prefix: string, responseId: string, index: number | string): string {
  return `${prefix}_${responseId.replace(/^resp_/, "")}_${index}`;
}

/** The response an item id of {@link itemId} belongs to, or null for any other id. */
export function referencedResponseId(id: string): string | null {
  const match = /^[a-z]+_([0-9a-f]{48})_i?\d+$/.exec(id);
  return match === null ? null : `resp_${match[1]}`;
}

/** The Responses `usage` of a turn's Messages-API usage. */
export function toResponseUsage(usage: CliUsage): ResponseUsage {
  const input =
    usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: usage.cache_read_input_tokens },
    output_tokens: usage.output_tokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: input + usage.output_tokens,
  };
}

/** A response object in progress, with the request's settings echoed (as OpenAI echoes them). */
export function baseResponse(meta: ResponseMeta): ResponseObject {
  const { request } = meta;
  return {
    id: meta.id,
    object: "response",
    created_at: meta.createdAt,
    status: "in_progress",
    background: false,
    error: null,
    incomplete_details: null,
    instructions: request.instructions ?? null,
    max_output_tokens: request.max_output_tokens ?? null,
    metadata: request.metadata ?? {},
    model: request.model,
    output: [],
    parallel_tool_calls: request.parallel_tool_calls ?? true,
    previous_response_id: request.previous_response_id ?? null,
    reasoning: {
      effort: request.reasoning?.effort ?? null,
      summary: request.reasoning?.summary ?? null,
    },
    store: request.store ?? true,
    temperature: request.temperature ?? 1,
    text: {
      format: (request.text?.format as Record<string, unknown> | undefined) ?? { type: "text" },
    },
    tool_choice:
      typeof request.tool_choice === "string"
        ? request.tool_choice
        : { type: "function", name: request.tool_choice.name },
    tools: request.tools.map((tool) => ({
      type: "function",
      name: tool.name,
      description: tool.description ?? null,
      parameters: tool.parameters ?? null,
      strict: tool.strict ?? true,
    })),
    top_p: request.top_p ?? 1,
    truncation: "disabled",
    usage: null,
    ...(request.user == null ? {} : { user: request.user }),
  };
}

/** How a turn's stop reason ends the response. */
function endStatus(end: TurnEnd): Pick<ResponseObject, "status" | "incomplete_details"> {
  if (end.stopReason === "max_tokens" || end.stopReason === "model_context_window_exceeded") {
    return { status: "incomplete", incomplete_details: { reason: "max_output_tokens" } };
  }
  if (end.stopReason === "refusal") {
    return { status: "incomplete", incomplete_details: { reason: "content_filter" } };
  }
  return { status: "completed", incomplete_details: null };
}

/** An item being built: its output index and, for function calls, the engine's call index. */
interface OpenItem {
  item: OutputItem;
  index: number;
  /** Arguments or text received so far. */
  text: string;
  callIndex?: number;
}

/** The wire frame of one event: `event:` is the payload's `type`. */
function frame(payload: { type: string; sequence_number: number }): SseFrame {
  return { event: payload.type, data: JSON.stringify(payload) };
}

/**
 * The {@link TurnRenderer} of the Responses surface. One per request; it numbers events and
 * keeps the output items it streamed so that the final `response` matches them. After a
 * successful turn {@link ResponsesRenderer.response} is the finished response object (what the
 * store keeps).
 */
export class ResponsesRenderer implements TurnRenderer {
  readonly #meta: ResponseMeta;
  #sequence = 0;
  readonly #items: OpenItem[] = [];
  #open: OpenItem | null = null;
  #final: ResponseObject | null = null;
  /** The `.done` frames of the item that {@link response} closed, for {@link end} to send. */
  readonly #closing: SseFrame[] = [];

  constructor(meta: ResponseMeta) {
    this.#meta = meta;
  }

  #event(payload: Record<string, unknown> & { type: string }): SseFrame {
    return frame({ ...payload, sequence_number: this.#sequence++ });
  }

  open(): SseFrame[] {
    const response = baseResponse(this.#meta);
    return [
      this.#event({ type: "response.created", response }),
      this.#event({ type: "response.in_progress", response }),
    ];
  }

  event(event: Exclude<TurnEvent, TurnEnd>): SseFrame[] {
    switch (event.kind) {
      case "text":
        return this.#text(event.text);
      case "thinking":
        return this.#thinking(event.text);
      case "signature": {
        const open = this.#open;
        if (open?.item.type === "reasoning") {
          open.item.encrypted_content = `${SIGNATURE_PREFIX}${event.signature}`;
        }
        return [];
      }
      case "tool_call":
        return this.#toolCall(event);
      case "tool_arguments":
        return this.#toolArguments(event.index, event.delta);
      case "agent_tool":
      case "agent_tool_result": {
        const line = progressLine(event);
        return line === null ? [] : this.#progress(line);
      }
      case "retrying":
        return [];
    }
  }

  /**
   * Agent mode's progress (a tool the CLI runs itself) as a `reasoning` item of its own with
   * the line as summary text, closed at once (no `encrypted_content`: never replayed as
   * thinking), never a `function_call`.
   */
  #progress(text: string): SseFrame[] {
    return [...this.#close(), ...this.#thinking(text), ...this.#close()];
  }

  #start(item: OutputItem, extra: Partial<OpenItem> = {}): SseFrame[] {
    const frames = this.#close();
    const open: OpenItem = { item, index: this.#items.length, text: "", ...extra };
    this.#items.push(open);
    this.#open = open;
    frames.push(
      this.#event({
        type: "response.output_item.added",
        output_index: open.index,
        item: structuredClone(item),
      }),
    );
    if (item.type === "message") {
      frames.push(
        this.#event({
          type: "response.content_part.added",
          item_id: item.id,
          output_index: open.index,
          content_index: 0,
          part: { type: "output_text", text: "", annotations: [] },
        }),
      );
    } else if (item.type === "reasoning") {
      frames.push(
        this.#event({
          type: "response.reasoning_summary_part.added",
          item_id: item.id,
          output_index: open.index,
          summary_index: 0,
          part: { type: "summary_text", text: "" },
        }),
      );
    }
    return frames;
  }

  #text(text: string): SseFrame[] {
    const frames: SseFrame[] = [];
    if (this.#open?.item.type !== "message") {
      frames.push(
        ...this.#start({
          type: "message",
          id: itemId("msg", this.#meta.id, this.#items.length),
          status: "in_progress",
          role: "assistant",
          content: [],
        }),
      );
    }
    const open = this.#open as OpenItem;
    open.text += text;
    frames.push(
      this.#event({
        type: "response.output_text.delta",
        item_id: open.item.id,
        output_index: open.index,
        content_index: 0,
        delta: text,
        logprobs: [],
      }),
    );
    return frames;
  }

  #thinking(text: string): SseFrame[] {
    const frames: SseFrame[] = [];
    // A signed reasoning item is complete: thinking after it (another API message) is a new item.
    const current = this.#open?.item;
    if (current?.type !== "reasoning" || (current.encrypted_content ?? null) !== null) {
      frames.push(
        ...this.#start({
          type: "reasoning",
          id: itemId("rs", this.#meta.id, this.#items.length),
          summary: [],
        }),
      );
    }
    const open = this.#open as OpenItem;
    open.text += text;
    frames.push(
      this.#event({
        type: "response.reasoning_summary_text.delta",
        item_id: open.item.id,
        output_index: open.index,
        summary_index: 0,
        delta: text,
      }),
    );
    return frames;
  }

  #toolCall(event: Extract<TurnEvent, { kind: "tool_call" }>): SseFrame[] {
    const frames = this.#start(
      {
        type: "function_call",
        id: itemId("fc", this.#meta.id, this.#items.length),
        call_id: event.id,
        name: event.name,
        arguments: "",
        status: "in_progress",
      },
      { callIndex: event.index },
    );
    if (event.arguments !== "") frames.push(...this.#toolArguments(event.index, event.arguments));
    return frames;
  }

  #toolArguments(index: number, delta: string): SseFrame[] {
    const open = this.#items.find((item) => item.callIndex === index);
    if (open === undefined || delta === "") return [];
    open.text += delta;
    return [
      this.#event({
        type: "response.function_call_arguments.delta",
        item_id: open.item.id,
        output_index: open.index,
        delta,
      }),
    ];
  }

  /** Frames that finish the open item (its `.done` events), and the finished item in place. */
  #close(end?: TurnEnd): SseFrame[] {
    const open = this.#open;
    if (open === null) return [];
    this.#open = null;
    const frames: SseFrame[] = [];
    const { item } = open;
    const status =
      end === undefined || endStatus(end).status === "completed" ? "completed" : "incomplete";
    if (item.type === "message") {
      const part: OutputTextPart = { type: "output_text", text: open.text, annotations: [] };
      frames.push(
        this.#event({
          type: "response.output_text.done",
          item_id: item.id,
          output_index: open.index,
          content_index: 0,
          text: open.text,
          logprobs: [],
        }),
        this.#event({
          type: "response.content_part.done",
          item_id: item.id,
          output_index: open.index,
          content_index: 0,
          part,
        }),
      );
      item.content = [part];
      item.status = status;
    } else if (item.type === "reasoning") {
      const part = { type: "summary_text" as const, text: open.text };
      frames.push(
        this.#event({
          type: "response.reasoning_summary_text.done",
          item_id: item.id,
          output_index: open.index,
          summary_index: 0,
          text: open.text,
        }),
        this.#event({
          type: "response.reasoning_summary_part.done",
          item_id: item.id,
          output_index: open.index,
          summary_index: 0,
          part,
        }),
      );
      item.summary = [part];
      item.encrypted_content ??= null;
    } else {
      const final = end?.toolCalls[open.callIndex ?? -1]?.arguments ?? "";
      const args = open.text !== "" ? open.text : final !== "" ? final : "{}";
      frames.push(
        this.#event({
          type: "response.function_call_arguments.done",
          item_id: item.id,
          output_index: open.index,
          name: item.name,
          arguments: args,
        }),
      );
      item.arguments = args;
      item.status = "completed";
    }
    frames.push(
      this.#event({
        type: "response.output_item.done",
        output_index: open.index,
        item: structuredClone(item),
      }),
    );
    return frames;
  }

  /**
   * The finished response of a successful turn: the streamed items when events were rendered
   * (the open one closed here, its `.done` frames kept for {@link end}), else the result's
   * blocks (whole answers). Built once; later calls return the same object, so what
   * `onComplete` stores is what the client sees.
   */
  response(result: TurnResult): ResponseObject {
    if (this.#final !== null) return this.#final;
    this.#closing.push(...this.#close(result.end));
    const ended = endStatus(result.end);
    const output =
      this.#items.length > 0
        ? this.#items.map((open) => open.item)
        : outputFromBlocks(result, ended.status, this.#meta.id);
    const now = this.#meta.now?.() ?? Math.floor(Date.now() / 1000);
    this.#final = {
      ...baseResponse(this.#meta),
      ...ended,
      output,
      usage: toResponseUsage(result.end.usage),
      completed_at: ended.status === "completed" ? now : null,
    };
    return this.#final;
  }

  end(result: TurnResult): SseFrame[] {
    const response = this.response(result);
    const frames = this.#closing.splice(0);
    const type = response.status === "completed" ? "response.completed" : "response.incomplete";
    frames.push(this.#event({ type, response }));
    return frames;
  }

  error(error: ProxyError): SseFrame[] {
    const code = error.code ?? (error.status === 429 ? "rate_limit_exceeded" : "server_error");
    // The item cut short keeps what it received, marked incomplete (no `.done` events).
    const open = this.#open;
    if (open !== null) {
      const { item } = open;
      if (item.type === "message") {
        item.content = [{ type: "output_text", text: open.text, annotations: [] }];
      } else if (item.type === "reasoning") {
        item.summary = [{ type: "summary_text", text: open.text }];
      } else {
        item.arguments = open.text;
      }
      item.status = "incomplete";
    }
    const response: ResponseObject = {
      ...baseResponse(this.#meta),
      status: "failed",
      error: { code, message: error.message },
      output: this.#items.map((item) => item.item),
    };
    return [
      this.#event({ type: "error", code, message: error.message, param: error.param }),
      this.#event({ type: "response.failed", response }),
    ];
  }

  ping(): SseFrame {
    return { comment: "ping" };
  }

  whole(result: TurnResult): ResponseObject {
    return this.response(result);
  }
}

/** Output items of a whole turn's blocks (consecutive texts joined into one message). */
function outputFromBlocks(
  result: TurnResult,
  status: ResponseStatus,
  responseId: string,
): OutputItem[] {
  const output: OutputItem[] = [];
  const itemStatus = status === "completed" ? "completed" : "incomplete";
  for (const block of result.content) {
    const last = output.at(-1);
    if (block.type === "text") {
      if (last?.type === "message") {
        const part = last.content[0] as OutputTextPart;
        part.text += block.text;
      } else {
        output.push({
          type: "message",
          id: itemId("msg", responseId, output.length),
          status: itemStatus,
          role: "assistant",
          content: [{ type: "output_text", text: block.text, annotations: [] }],
        });
      }
    } else if (block.type === "thinking") {
      output.push({
        type: "reasoning",
        id: itemId("rs", responseId, output.length),
        summary: [{ type: "summary_text", text: block.thinking }],
        encrypted_content: block.signature === "" ? null : `${SIGNATURE_PREFIX}${block.signature}`,
      });
    } else if (block.type === "tool_use") {
      const call = result.end.toolCalls.find((c) => c.id === block.id);
      output.push({
        type: "function_call",
        id: itemId("fc", responseId, output.length),
        call_id: block.id,
        name: call?.name ?? block.name,
        arguments: call?.arguments ?? JSON.stringify(block.input ?? {}),
        status: "completed",
      });
    }
  }
  // Structured output the CLI returned only in its result (no text block).
  const structured = (result.end.result as { structured_output?: unknown } | null)
    ?.structured_output;
  if (structured !== undefined && !output.some((item) => item.type === "message")) {
    output.push({
      type: "message",
      id: itemId("msg", responseId, output.length),
      status: itemStatus,
      role: "assistant",
      content: [{ type: "output_text", text: JSON.stringify(structured), annotations: [] }],
    });
  }
  return output;
}
