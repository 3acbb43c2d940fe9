/**
 * The Responses surface's answer side: turn events → the streamed event sequence and the whole
 * `response` object. Event sequences as the engine derives them from the real CLI's
 * `stream_event`s: text deltas; thinking deltas, a signature, then text; a tool call whose
 * arguments stream as `input_json_delta`s and a turn that ends at it (`tool_use`, parked run).
 */
import { describe, expect, it } from "vitest";
import type { TurnEnd, TurnEvent, TurnResult } from "../../src/engine/events.ts";
import { ProxyError } from "../../src/errors.ts";
import type { SseFrame } from "../../src/http/render.ts";
import { SIGNATURE_PREFIX } from "../../src/surfaces/responses/conversation.ts";
import { type ResponseObject, ResponsesRenderer } from "../../src/surfaces/responses/render.ts";
import { parseResponseRequest } from "../../src/surfaces/responses/schema.ts";

const usage = {
  input_tokens: 100,
  output_tokens: 7,
  cache_read_input_tokens: 30,
  cache_creation_input_tokens: 20,
};

function end(overrides: Partial<TurnEnd> = {}): TurnEnd {
  return {
    kind: "end",
    stopReason: "end_turn",
    usage,
    toolCalls: [],
    result: null,
    costUsd: 0.01,
    compacted: false,
    ...overrides,
  };
}

function renderer(body: Record<string, unknown> = {}): ResponsesRenderer {
  return new ResponsesRenderer({
    id: "resp_test",
    createdAt: 1_700_000_000,
    now: () => 1_700_000_005,
    request: parseResponseRequest({ model: "gpt-5", input: "Hi", ...body }),
  });
}

type Payload = Record<string, unknown> & { type: string; sequence_number: number };

/** Renders a whole stream; checks that each frame's `event:` is its payload's `type`. */
function stream(
  r: ResponsesRenderer,
  events: Array<Exclude<TurnEvent, TurnEnd>>,
  result: TurnResult,
): Payload[] {
  const frames: SseFrame[] = [...r.open()];
  for (const event of events) frames.push(...r.event(event));
  frames.push(...r.end(result));
  return frames.map((frame) => {
    if (!("data" in frame)) throw new Error("unexpected comment frame");
    const payload = JSON.parse(frame.data) as Payload;
    expect(frame.event).toBe(payload.type);
    return payload;
  });
}

function types(payloads: readonly Payload[]): string[] {
  return payloads.map((p) => p.type);
}

describe("ResponsesRenderer streaming", () => {
  it("streams text in the documented sequence with sequence numbers from 0", () => {
    const r = renderer();
    const payloads = stream(
      r,
      [
        { kind: "text", text: "Hello" },
        { kind: "retrying", attempt: 1, delayMs: 500 },
        { kind: "text", text: " there." },
      ],
      { content: [{ type: "text", text: "Hello there." }], end: end() },
    );
    expect(types(payloads)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(payloads.map((p) => p.sequence_number)).toEqual(payloads.map((_, i) => i));
    const created = payloads[0]?.response as ResponseObject;
    expect(created).toMatchObject({
      id: "resp_test",
      status: "in_progress",
      output: [],
      usage: null,
    });
    const added = payloads[2] as Payload & { item: { id: string } };
    expect(added.item).toMatchObject({
      type: "message",
      role: "assistant",
      status: "in_progress",
      content: [],
    });
    expect(payloads[4]).toMatchObject({
      item_id: added.item.id,
      output_index: 0,
      content_index: 0,
      delta: "Hello",
    });
    expect(payloads[6]).toMatchObject({ text: "Hello there." });
    const completed = payloads.at(-1)?.response as ResponseObject;
    expect(completed).toMatchObject({
      id: "resp_test",
      object: "response",
      created_at: 1_700_000_000,
      completed_at: 1_700_000_005,
      status: "completed",
      model: "gpt-5",
      error: null,
      incomplete_details: null,
      output: [
        {
          type: "message",
          id: added.item.id,
          status: "completed",
          role: "assistant",
          content: [{ type: "output_text", text: "Hello there.", annotations: [] }],
        },
      ],
      usage: {
        input_tokens: 150,
        input_tokens_details: { cached_tokens: 30 },
        output_tokens: 7,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 157,
      },
      store: true,
      truncation: "disabled",
      tool_choice: "auto",
      parallel_tool_calls: true,
    });
    // Built once: what the store keeps is what the client saw.
    expect(r.response({ content: [], end: end() })).toEqual(completed);
  });

  it("streams thinking as a reasoning item carrying its signature, then text", () => {
    const payloads = stream(
      renderer({ reasoning: { effort: "high" } }),
      [
        { kind: "thinking", text: "Let me " },
        { kind: "thinking", text: "think." },
        { kind: "signature", signature: "sig-abc" },
        { kind: "text", text: "42" },
      ],
      {
        content: [
          { type: "thinking", thinking: "Let me think.", signature: "sig-abc" },
          { type: "text", text: "42" },
        ],
        end: end(),
      },
    );
    expect(types(payloads)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.reasoning_summary_part.added",
      "response.reasoning_summary_text.delta",
      "response.reasoning_summary_text.delta",
      "response.reasoning_summary_text.done",
      "response.reasoning_summary_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(payloads[6]).toMatchObject({ summary_index: 0, text: "Let me think." });
    expect(payloads[9]).toMatchObject({ output_index: 1 });
    const response = payloads.at(-1)?.response as ResponseObject;
    expect(response.reasoning.effort).toBe("high");
    expect(response.output[0]).toMatchObject({
      type: "reasoning",
      summary: [{ type: "summary_text", text: "Let me think." }],
      encrypted_content: `${SIGNATURE_PREFIX}sig-abc`,
    });
    expect(response.output[0]?.id).toMatch(/^rs_/);
  });

  it("streams a function call that ends the turn (tool_use): call_id is the engine's id", () => {
    const tool = { type: "function", name: "weather", parameters: { type: "object" } };
    const payloads = stream(
      renderer({ tools: [tool] }),
      [
        { kind: "text", text: "Checking." },
        { kind: "tool_call", index: 0, id: "toolu_01A", name: "weather", arguments: "" },
        { kind: "tool_arguments", index: 0, delta: '{"city":' },
        { kind: "tool_arguments", index: 0, delta: '"Paris"}' },
        {
          kind: "tool_call",
          index: 1,
          id: "toolu_01B",
          name: "weather",
          arguments: '{"city":"Rome"}',
        },
      ],
      {
        content: [],
        end: end({
          stopReason: "tool_use",
          toolCalls: [
            { id: "toolu_01A", name: "weather", arguments: '{"city":"Paris"}' },
            { id: "toolu_01B", name: "weather", arguments: '{"city":"Rome"}' },
          ],
        }),
      },
    );
    expect(types(payloads).slice(8)).toEqual([
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ]);
    const added = payloads[8] as Payload & { item: Record<string, unknown> };
    expect(added.item).toMatchObject({
      type: "function_call",
      call_id: "toolu_01A",
      name: "weather",
      arguments: "",
      status: "in_progress",
    });
    expect(String(added.item.id)).toMatch(/^fc_/);
    expect(payloads[11]).toMatchObject({
      name: "weather",
      arguments: '{"city":"Paris"}',
      output_index: 1,
    });
    const response = payloads.at(-1)?.response as ResponseObject;
    expect(response.status).toBe("completed");
    expect(response.output.map((item) => item.type)).toEqual([
      "message",
      "function_call",
      "function_call",
    ]);
    expect(response.output[2]).toMatchObject({
      call_id: "toolu_01B",
      arguments: '{"city":"Rome"}',
      status: "completed",
    });
    expect(response.tools).toEqual([
      {
        type: "function",
        name: "weather",
        description: null,
        parameters: { type: "object" },
        strict: true,
      },
    ]);
  });

  it("ends as response.incomplete for max_tokens and refusals", () => {
    const cut = stream(renderer({ max_output_tokens: 16 }), [{ kind: "text", text: "Long" }], {
      content: [{ type: "text", text: "Long" }],
      end: end({ stopReason: "max_tokens" }),
    });
    const last = cut.at(-1) as Payload & { response: ResponseObject };
    expect(last.type).toBe("response.incomplete");
    expect(last.response).toMatchObject({
      status: "incomplete",
      incomplete_details: { reason: "max_output_tokens" },
      max_output_tokens: 16,
      completed_at: null,
    });
    expect(last.response.output[0]?.status).toBe("incomplete");
    const refused = stream(renderer(), [], { content: [], end: end({ stopReason: "refusal" }) });
    expect(
      (refused.at(-1) as Payload & { response: ResponseObject }).response.incomplete_details,
    ).toEqual({
      reason: "content_filter",
    });
  });

  it("fails with an error event and response.failed", () => {
    const r = renderer();
    const frames = [
      ...r.open(),
      ...r.event({ kind: "text", text: "Hal" }),
      ...r.error(
        new ProxyError(504, "The request took longer than 10 ms", { code: "request_timeout" }),
      ),
    ];
    const payloads = frames.map((f) => ("data" in f ? (JSON.parse(f.data) as Payload) : null));
    expect(payloads.map((p) => p?.type).slice(-2)).toEqual(["error", "response.failed"]);
    expect(payloads.at(-2)).toMatchObject({
      code: "request_timeout",
      message: "The request took longer than 10 ms",
    });
    expect(payloads.at(-1)?.response).toMatchObject({
      status: "failed",
      error: { code: "request_timeout", message: "The request took longer than 10 ms" },
    });
    expect(payloads.map((p) => p?.sequence_number)).toEqual(payloads.map((_, i) => i));
    expect(r.ping()).toEqual({ comment: "ping" });
  });
});

describe("ResponsesRenderer and onComplete", () => {
  it("gives the finished response before the end frames (what the store keeps), then the same frames", () => {
    const r = renderer();
    const frames = [...r.open(), ...r.event({ kind: "text", text: "Done." })];
    const result: TurnResult = { content: [{ type: "text", text: "Done." }], end: end() };
    // serveTurn calls onComplete (which stores r.response) before rendering the end.
    const stored = r.response(result);
    expect(stored.output[0]).toMatchObject({
      status: "completed",
      content: [{ type: "output_text", text: "Done." }],
    });
    frames.push(...r.end(result));
    const payloads = frames.map((f) => ("data" in f ? (JSON.parse(f.data) as Payload) : null));
    expect(payloads.map((p) => p?.type).slice(-4)).toEqual([
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(payloads.map((p) => p?.sequence_number)).toEqual(payloads.map((_, i) => i));
    expect(payloads.at(-1)?.response).toEqual(stored);
  });
});

describe("ResponsesRenderer whole", () => {
  it("builds the response from the result's blocks", () => {
    const response = renderer({ metadata: { k: "v" }, instructions: "Be brief." }).whole({
      content: [
        { type: "thinking", thinking: "Hmm.", signature: "s1" },
        { type: "text", text: "Calling " },
        { type: "text", text: "now." },
        { type: "tool_use", id: "toolu_1", name: "run", input: { a: 1 } },
      ],
      end: end({
        stopReason: "tool_use",
        toolCalls: [{ id: "toolu_1", name: "run", arguments: '{"a":1}' }],
      }),
    });
    expect(response).toMatchObject({
      status: "completed",
      instructions: "Be brief.",
      metadata: { k: "v" },
      output: [
        {
          type: "reasoning",
          summary: [{ type: "summary_text", text: "Hmm." }],
          encrypted_content: `${SIGNATURE_PREFIX}s1`,
        },
        {
          type: "message",
          role: "assistant",
          status: "completed",
          content: [{ type: "output_text", text: "Calling now.", annotations: [] }],
        },
        {
          type: "function_call",
          call_id: "toolu_1",
          name: "run",
          arguments: '{"a":1}',
          status: "completed",
        },
      ],
    });
    expect(response).not.toHaveProperty("output_text");
  });

  it("answers structured output found only in the CLI's result", () => {
    const response = renderer().whole({
      content: [],
      end: end({ result: { type: "result", structured_output: { a: "b" } } as never }),
    });
    expect(response.output).toMatchObject([
      { type: "message", content: [{ type: "output_text", text: '{"a":"b"}' }] },
    ]);
  });
});

describe("ResponsesRenderer with two signed thinking blocks (two API messages in one run)", () => {
  it("streams two reasoning items, each with its own signature, as the whole response has them", () => {
    const r = renderer();
    const two: Array<Exclude<TurnEvent, TurnEnd>> = [
      { kind: "thinking", text: "A" },
      { kind: "signature", signature: "SIG1" },
      { kind: "thinking", text: "B" },
      { kind: "signature", signature: "SIG2" },
      { kind: "text", text: "Done." },
    ];
    const payloads = stream(r, two, {
      content: [
        { type: "thinking", thinking: "A", signature: "SIG1" },
        { type: "thinking", thinking: "B", signature: "SIG2" },
        { type: "text", text: "Done." },
      ],
      end: end(),
    });
    const done = payloads
      .filter((p) => p.type === "response.output_item.done")
      .map(
        (p) =>
          p.item as { type: string; summary?: Array<{ text: string }>; encrypted_content?: string },
      );
    expect(
      done.map((item) => [item.type, item.summary?.[0]?.text, item.encrypted_content]),
    ).toEqual([
      ["reasoning", "A", `${SIGNATURE_PREFIX}SIG1`],
      ["reasoning", "B", `${SIGNATURE_PREFIX}SIG2`],
      ["message", undefined, undefined],
    ]);
  });
});
