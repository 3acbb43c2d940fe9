/**
 * The Messages surface's renderer: turn events → Anthropic's SSE events and Message object,
 * checked frame by frame and by the official `@anthropic-ai/sdk` reading them (its
 * MessageStream accumulates the final message from the events, as clients do).
 */
import Anthropic from "@anthropic-ai/sdk";
import { describe, expect, it } from "vitest";
import type { TurnEnd, TurnEvent, TurnResult } from "../../src/engine/events.ts";
import { anthropicErrorBody, anthropicStatus, ProxyError } from "../../src/errors.ts";
import type { SseFrame } from "../../src/http/render.ts";
import { MessagesRenderer, newMessageId } from "../../src/surfaces/messages/render.ts";

const usage = {
  input_tokens: 12,
  output_tokens: 34,
  cache_read_input_tokens: 5,
  cache_creation_input_tokens: 6,
};

function end(stopReason: string): TurnEnd {
  return {
    kind: "end",
    stopReason,
    usage,
    toolCalls: [],
    result: null,
    costUsd: 0,
    compacted: false,
  };
}

/** A turn with thinking, text and two tool calls, as events and as a result. */
const events: Exclude<TurnEvent, TurnEnd>[] = [
  { kind: "thinking", text: "Let me " },
  { kind: "thinking", text: "think." },
  { kind: "signature", signature: "c2ln" },
  { kind: "text", text: "Checking " },
  { kind: "retrying", attempt: 1, delayMs: 500 },
  { kind: "text", text: "both." },
  { kind: "tool_call", index: 0, id: "toolu_a", name: "get_weather", arguments: "" },
  { kind: "tool_arguments", index: 0, delta: '{"city":' },
  { kind: "tool_arguments", index: 0, delta: '"Paris"}' },
  { kind: "tool_call", index: 1, id: "toolu_b", name: "get_time", arguments: '{"tz":"CET"}' },
];
const result: TurnResult = {
  content: [
    { type: "thinking", thinking: "Let me think.", signature: "c2ln" },
    { type: "text", text: "Checking " },
    { type: "text", text: "both." },
    { type: "tool_use", id: "toolu_a", name: "get_weather", input: { city: "Paris" } },
    { type: "tool_use", id: "toolu_b", name: "get_time", input: { tz: "CET" } },
  ],
  end: end("tool_use"),
};

/** All frames of a streamed turn. */
function stream(renderer: MessagesRenderer): SseFrame[] {
  return [
    ...renderer.open(),
    ...events.flatMap((e) => renderer.event(e)),
    renderer.ping(),
    ...renderer.end(result),
  ];
}

/** The frames as `[event, data]` pairs. */
function pairs(frames: readonly SseFrame[]): Array<[string | undefined, unknown]> {
  return frames.map((f) =>
    "comment" in f ? ["comment", f.comment] : [f.event, JSON.parse(f.data)],
  );
}

/** The SSE text of frames, as the shared HTTP handling writes it. */
function sseText(frames: readonly SseFrame[]): string {
  return frames
    .map((f) =>
      "comment" in f
        ? `: ${f.comment}\n\n`
        : `${f.event === undefined ? "" : `event: ${f.event}\n`}data: ${f.data}\n\n`,
    )
    .join("");
}

/** An SDK client whose every request is answered with `body` (SSE or JSON). */
function clientAnswering(body: string, contentType: string): Anthropic {
  return new Anthropic({
    apiKey: "x",
    baseURL: "http://proxy.invalid",
    maxRetries: 0,
    fetch: async () =>
      new Response(body, { status: 200, headers: { "content-type": contentType } }),
  });
}

describe("MessagesRenderer (stream)", () => {
  it("emits Anthropic's event sequence, a new block per kind change", () => {
    const renderer = new MessagesRenderer({ model: "sonnet", id: "msg_test" });
    const frames = pairs(stream(renderer));
    // Every frame's `event:` names the `type` of its data.
    for (const [event, data] of frames) expect((data as { type: string }).type).toBe(event);
    expect(frames).toEqual([
      [
        "message_start",
        {
          type: "message_start",
          message: {
            id: "msg_test",
            type: "message",
            role: "assistant",
            model: "sonnet",
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
        },
      ],
      [
        "content_block_start",
        {
          type: "content_block_start",
          index: 0,
          content_block: { type: "thinking", thinking: "", signature: "" },
        },
      ],
      [
        "content_block_delta",
        {
          type: "content_block_delta",
          index: 0,
          delta: { type: "thinking_delta", thinking: "Let me " },
        },
      ],
      [
        "content_block_delta",
        {
          type: "content_block_delta",
          index: 0,
          delta: { type: "thinking_delta", thinking: "think." },
        },
      ],
      [
        "content_block_delta",
        {
          type: "content_block_delta",
          index: 0,
          delta: { type: "signature_delta", signature: "c2ln" },
        },
      ],
      ["content_block_stop", { type: "content_block_stop", index: 0 }],
      [
        "content_block_start",
        { type: "content_block_start", index: 1, content_block: { type: "text", text: "" } },
      ],
      [
        "content_block_delta",
        { type: "content_block_delta", index: 1, delta: { type: "text_delta", text: "Checking " } },
      ],
      [
        "content_block_delta",
        { type: "content_block_delta", index: 1, delta: { type: "text_delta", text: "both." } },
      ],
      ["content_block_stop", { type: "content_block_stop", index: 1 }],
      [
        "content_block_start",
        {
          type: "content_block_start",
          index: 2,
          content_block: { type: "tool_use", id: "toolu_a", name: "get_weather", input: {} },
        },
      ],
      [
        "content_block_delta",
        {
          type: "content_block_delta",
          index: 2,
          delta: { type: "input_json_delta", partial_json: '{"city":' },
        },
      ],
      [
        "content_block_delta",
        {
          type: "content_block_delta",
          index: 2,
          delta: { type: "input_json_delta", partial_json: '"Paris"}' },
        },
      ],
      ["content_block_stop", { type: "content_block_stop", index: 2 }],
      [
        "content_block_start",
        {
          type: "content_block_start",
          index: 3,
          content_block: { type: "tool_use", id: "toolu_b", name: "get_time", input: {} },
        },
      ],
      [
        "content_block_delta",
        {
          type: "content_block_delta",
          index: 3,
          delta: { type: "input_json_delta", partial_json: '{"tz":"CET"}' },
        },
      ],
      ["ping", { type: "ping" }],
      ["content_block_stop", { type: "content_block_stop", index: 3 }],
      [
        "message_delta",
        {
          type: "message_delta",
          delta: { stop_reason: "tool_use", stop_sequence: null },
          usage,
        },
      ],
      ["message_stop", { type: "message_stop" }],
    ]);
  });

  it("is read by the official SDK into the same message as the whole answer", async () => {
    const renderer = new MessagesRenderer({ model: "sonnet" });
    const client = clientAnswering(sseText(stream(renderer)), "text/event-stream");
    const texts: string[] = [];
    const messageStream = client.messages
      .stream({
        model: "sonnet",
        max_tokens: 100,
        messages: [{ role: "user", content: "x" }],
      })
      .on("text", (delta) => texts.push(delta));
    const final = await messageStream.finalMessage();
    expect(texts.join("")).toBe("Checking both.");
    expect(final).toMatchObject(JSON.parse(JSON.stringify(renderer.whole(result))));
    expect(final.content).toEqual([
      { type: "thinking", thinking: "Let me think.", signature: "c2ln" },
      { type: "text", text: "Checking both." },
      { type: "tool_use", id: "toolu_a", name: "get_weather", input: { city: "Paris" } },
      { type: "tool_use", id: "toolu_b", name: "get_time", input: { tz: "CET" } },
    ]);
    expect(final.usage).toMatchObject(usage);
    expect(final.stop_reason).toBe("tool_use");
  });

  it("hides thinking unless asked, and omits its text for display: omitted", () => {
    const hidden = pairs(stream(new MessagesRenderer({ model: "m", thinking: "hide" })));
    expect(JSON.stringify(hidden)).not.toContain("thinking");
    expect(hidden[1]).toEqual([
      "content_block_start",
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
    ]);
    const omitted = pairs(stream(new MessagesRenderer({ model: "m", thinking: "omit" })));
    expect(JSON.stringify(omitted)).not.toContain("thinking_delta");
    expect(JSON.stringify(omitted)).toContain("signature_delta");
  });

  it("renders an empty answer as start, delta and stop", () => {
    const renderer = new MessagesRenderer({ model: "m" });
    const frames = pairs([
      ...renderer.open(),
      ...renderer.end({ content: [], end: end("end_turn") }),
    ]).map(([event]) => event);
    expect(frames).toEqual(["message_start", "message_delta", "message_stop"]);
  });

  it("renders a failure as an error event in Anthropic's shape", () => {
    const renderer = new MessagesRenderer({ model: "m", requestId: "req_1" });
    const overloaded = new ProxyError(503, "Overloaded", {
      type: "overloaded_error",
      code: "upstream_overloaded",
    });
    expect(pairs(renderer.error(overloaded))).toEqual([
      ["error", { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }],
    ]);
  });
});

describe("MessagesRenderer (whole)", () => {
  it("gives the Message object: merged text, thinking with signature, parsed tool input", async () => {
    const renderer = new MessagesRenderer({ model: "gpt-4o", id: "msg_whole" });
    const body = renderer.whole(result);
    expect(body).toEqual({
      id: "msg_whole",
      type: "message",
      role: "assistant",
      model: "gpt-4o",
      content: [
        { type: "thinking", thinking: "Let me think.", signature: "c2ln" },
        { type: "text", text: "Checking both." },
        { type: "tool_use", id: "toolu_a", name: "get_weather", input: { city: "Paris" } },
        { type: "tool_use", id: "toolu_b", name: "get_time", input: { tz: "CET" } },
      ],
      stop_reason: "tool_use",
      stop_sequence: null,
      usage,
    });
    const client = clientAnswering(JSON.stringify(body), "application/json");
    const message = await client.messages.create({
      model: "gpt-4o",
      max_tokens: 10,
      messages: [{ role: "user", content: "x" }],
    });
    expect(message.content[1]).toEqual({ type: "text", text: "Checking both." });
    expect(new MessagesRenderer({ model: "m", thinking: "hide" }).whole(result).content[0]).toEqual(
      {
        type: "text",
        text: "Checking both.",
      },
    );
  });

  it("makes message ids like the API's", () => {
    const ids = new Set(Array.from({ length: 50 }, () => newMessageId()));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^msg_[A-Za-z0-9]{24}$/);
  });
});

describe("Anthropic error shape", () => {
  it("maps statuses to Anthropic's error types; an upstream overload stays 529", () => {
    const cases: Array<[ProxyError, number, string]> = [
      [new ProxyError(400, "bad"), 400, "invalid_request_error"],
      [new ProxyError(401, "key", { type: "invalid_request_error" }), 401, "authentication_error"],
      [new ProxyError(403, "no"), 403, "permission_error"],
      [new ProxyError(404, "model", { type: "invalid_request_error" }), 404, "not_found_error"],
      [new ProxyError(413, "big"), 413, "request_too_large"],
      [new ProxyError(429, "slow"), 429, "rate_limit_error"],
      [new ProxyError(500, "oops"), 500, "api_error"],
      [new ProxyError(502, "cli"), 502, "api_error"],
      [new ProxyError(503, "draining"), 503, "api_error"],
      [new ProxyError(504, "late"), 504, "timeout_error"],
      [new ProxyError(503, "busy", { code: "upstream_overloaded" }), 529, "overloaded_error"],
    ];
    const named = new ProxyError(400, "The image data URL is not valid base64", {
      param: "messages[0].content[1]",
    });
    expect(anthropicErrorBody(named).error.message).toBe(
      "messages[0].content[1]: The image data URL is not valid base64",
    );
    const already = new ProxyError(400, "Invalid value for 'max_tokens': x", {
      param: "max_tokens",
    });
    expect(anthropicErrorBody(already).error.message).toBe("Invalid value for 'max_tokens': x");
    for (const [error, status, type] of cases) {
      expect(anthropicStatus(error)).toBe(status);
      expect(anthropicErrorBody(error, "req_9")).toEqual({
        type: "error",
        error: { type, message: error.message },
        request_id: "req_9",
      });
    }
  });
});

describe("MessagesRenderer with two signed thinking blocks (two API messages in one run)", () => {
  it("streams two thinking blocks, each with its own signature", () => {
    const renderer = new MessagesRenderer({ model: "sonnet", thinking: "show" });
    const frames = [
      ...renderer.open(),
      ...(
        [
          { kind: "thinking", text: "A" },
          { kind: "signature", signature: "SIG1" },
          { kind: "thinking", text: "B" },
          { kind: "signature", signature: "SIG2" },
        ] as const
      ).flatMap((e) => renderer.event(e)),
    ];
    const blocks = new Map<number, { thinking: string; signature: string }>();
    for (const [event, data] of pairs(frames)) {
      const d = data as { index: number; delta?: { thinking?: string; signature?: string } };
      if (event === "content_block_start") blocks.set(d.index, { thinking: "", signature: "" });
      if (event === "content_block_delta") {
        const block = blocks.get(d.index);
        if (block === undefined) throw new Error("delta before its block");
        block.thinking += d.delta?.thinking ?? "";
        block.signature += d.delta?.signature ?? "";
      }
    }
    expect([...blocks.values()]).toEqual([
      { thinking: "A", signature: "SIG1" },
      { thinking: "B", signature: "SIG2" },
    ]);
  });
});
