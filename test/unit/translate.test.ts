import { describe, expect, it } from "vitest";
import { type CliEvent, parseLine } from "../../src/claude/events.ts";
import { CLIENT_TOOL_PREFIX } from "../../src/engine/bridge.ts";
import {
  eventToTurnEvents,
  newTranslateState,
  type TranslateState,
} from "../../src/engine/translate.ts";
import { ProxyError } from "../../src/errors.ts";
import { finishReason, toChoiceDelta, toCompletionUsage } from "../../src/surfaces/chat/render.ts";
import type { ChoiceDelta } from "../../src/surfaces/chat/types.ts";

/** The chat deltas of one event (turn events as the chat surface renders them). */
function eventToDeltas(event: CliEvent, state: TranslateState): ChoiceDelta[] {
  return eventToTurnEvents(event, state)
    .map(toChoiceDelta)
    .filter((delta): delta is ChoiceDelta => delta !== null);
}

import { fixtureEvents } from "./cli-fixtures.ts";

/** Runs events through one state; returns the deltas. */
function translate(events: readonly CliEvent[], state: TranslateState): ChoiceDelta[] {
  return events.flatMap((event) => eventToDeltas(event, state));
}

function content(deltas: readonly ChoiceDelta[]): string {
  return deltas.map((d) => d.content ?? "").join("");
}

function reasoning(deltas: readonly ChoiceDelta[]): string {
  return deltas.map((d) => d.reasoning_content ?? "").join("");
}

function resultOf(events: readonly CliEvent[]): Extract<CliEvent, { type: "result" }> {
  const result = events.find((e) => e.type === "result");
  if (result?.type !== "result") throw new Error("fixture without result");
  return result;
}

/** A `stream_event` line as the CLI prints it (parent_tool_use_id null unless given). */
function streamEvent(event: Record<string, unknown>, parent: string | null = null): CliEvent {
  const parsed = parseLine(
    JSON.stringify({
      type: "stream_event",
      event,
      session_id: "s",
      parent_tool_use_id: parent,
      uuid: "u",
    }),
    1,
  );
  if (parsed === null) throw new Error("blank");
  return parsed;
}

function assistant(id: string, blocks: unknown[], model = "claude-sonnet-5"): CliEvent {
  const parsed = parseLine(
    JSON.stringify({
      type: "assistant",
      message: { id, type: "message", role: "assistant", model, content: blocks },
      parent_tool_use_id: null,
      session_id: "s",
    }),
    1,
  );
  if (parsed === null) throw new Error("blank");
  return parsed;
}

/**
 * One API message calling two client tools after some text, per the Messages API streaming
 * spec (https://docs.anthropic.com/en/docs/build-with-claude/streaming), with the assistant
 * events the CLI interleaves (DESIGN.md: one per complete block, repeating streamed content).
 */
function clientToolStream(): CliEvent[] {
  const id = "msg_01";
  return [
    streamEvent({
      type: "message_start",
      message: {
        id,
        type: "message",
        role: "assistant",
        model: "claude-sonnet-5",
        content: [],
        stop_reason: null,
        usage: { input_tokens: 50, cache_read_input_tokens: 0, output_tokens: 1 },
      },
    }),
    streamEvent({
      type: "content_block_start",
      index: 0,
      content_block: { type: "text", text: "" },
    }),
    streamEvent({
      type: "content_block_delta",
      index: 0,
      delta: { type: "text_delta", text: "Checking." },
    }),
    assistant(id, [{ type: "text", text: "Checking." }]),
    streamEvent({ type: "content_block_stop", index: 0 }),
    streamEvent({
      type: "content_block_start",
      index: 1,
      content_block: {
        type: "tool_use",
        id: "toolu_01A",
        name: "mcp__client__get_weather",
        input: {},
      },
    }),
    streamEvent({
      type: "content_block_delta",
      index: 1,
      delta: { type: "input_json_delta", partial_json: "" },
    }),
    streamEvent({
      type: "content_block_delta",
      index: 1,
      delta: { type: "input_json_delta", partial_json: '{"city": "Par' },
    }),
    streamEvent({
      type: "content_block_delta",
      index: 1,
      delta: { type: "input_json_delta", partial_json: 'is"}' },
    }),
    assistant(id, [
      {
        type: "tool_use",
        id: "toolu_01A",
        name: "mcp__client__get_weather",
        input: { city: "Paris" },
      },
    ]),
    streamEvent({ type: "content_block_stop", index: 1 }),
    streamEvent({
      type: "content_block_start",
      index: 2,
      content_block: {
        type: "tool_use",
        id: "toolu_01B",
        name: "mcp__client__get_time",
        input: {},
      },
    }),
    streamEvent({
      type: "content_block_delta",
      index: 2,
      delta: { type: "input_json_delta", partial_json: '{"tz":"CET"}' },
    }),
    streamEvent({ type: "content_block_stop", index: 2 }),
    streamEvent({
      type: "message_delta",
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: { output_tokens: 42 },
    }),
    streamEvent({ type: "message_stop" }),
  ];
}

describe("eventToDeltas over recorded runs", () => {
  it("streams the text of text.jsonl: the deltas add up to the result text", () => {
    const events = fixtureEvents("text");
    const state = newTranslateState();
    const deltas = translate(events, state);
    expect(deltas.map((d) => d.content)).toEqual(["Hello ", "world!"]);
    expect(content(deltas)).toBe(resultOf(events).result);
    expect(
      deltas.some((d) => d.tool_calls !== undefined || d.reasoning_content !== undefined),
    ).toBe(false);
    expect(state.stopReason).toBe("end_turn");
    expect(finishReason(state.stopReason, state.toolCalls.length > 0)).toBe("stop");
  });

  it("counts the usage the CLI reports in its result", () => {
    const events = fixtureEvents("text");
    const state = newTranslateState();
    translate(events, state);
    // recorded: input 12, cache read 100, cache creation 20, output 5
    expect(toCompletionUsage(state.usage)).toEqual({
      prompt_tokens: 132,
      completion_tokens: 5,
      total_tokens: 137,
      prompt_tokens_details: { cached_tokens: 100 },
    });
    expect(state.usage).toEqual(resultOf(events).usage);
  });

  it("counts usage over both API messages of a run that used a tool", () => {
    const events = fixtureEvents("tool-use");
    const state = newTranslateState(CLIENT_TOOL_PREFIX);
    translate(events, state);
    expect(state.usage).toEqual(resultOf(events).usage);
  });

  it("sends thinking as reasoning_content, before the answer", () => {
    const events = fixtureEvents("thinking");
    const deltas = translate(events, newTranslateState());
    expect(reasoning(deltas)).toBe("The user says hello.");
    expect(content(deltas)).toBe("Hi there!");
    const firstText = deltas.findIndex((d) => d.content !== undefined);
    const lastThought = deltas.findLastIndex((d) => d.reasoning_content !== undefined);
    expect(lastThought).toBeLessThan(firstText);
  });

  it("does not report the CLI's own tools (Bash) as tool calls", () => {
    const events = fixtureEvents("tool-use");
    for (const prefix of [null, CLIENT_TOOL_PREFIX]) {
      const state = newTranslateState(prefix);
      const deltas = translate(events, state);
      expect(deltas.filter((d) => d.tool_calls !== undefined)).toEqual([]);
      expect(state.toolCalls).toEqual([]);
      expect(content(deltas)).toBe("Let me run that.It printed hi.");
    }
  });
});

describe("eventToDeltas with client tools", () => {
  it("turns mcp__client__ tool_use blocks into tool_calls: index, id and name, then argument fragments", () => {
    const state = newTranslateState(CLIENT_TOOL_PREFIX);
    const deltas = translate(clientToolStream(), state);
    expect(deltas).toEqual([
      { content: "Checking." },
      {
        tool_calls: [
          {
            index: 0,
            id: "toolu_01A",
            type: "function",
            function: { name: "get_weather", arguments: "" },
          },
        ],
      },
      { tool_calls: [{ index: 0, function: { arguments: '{"city": "Par' } }] },
      { tool_calls: [{ index: 0, function: { arguments: 'is"}' } }] },
      {
        tool_calls: [
          {
            index: 1,
            id: "toolu_01B",
            type: "function",
            function: { name: "get_time", arguments: "" },
          },
        ],
      },
      { tool_calls: [{ index: 1, function: { arguments: '{"tz":"CET"}' } }] },
    ]);
    expect(state.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)])).toEqual([
      ["get_weather", { city: "Paris" }],
      ["get_time", { tz: "CET" }],
    ]);
    expect(state.stopReason).toBe("tool_use");
    expect(state.messageToolCalls).toBe(2);
    expect(finishReason(state.stopReason, state.toolCalls.length > 0)).toBe("tool_calls");
  });

  it("ignores client-looking tool_use blocks when the run has no client tools", () => {
    const state = newTranslateState(null);
    const deltas = translate(clientToolStream(), state);
    expect(deltas).toEqual([{ content: "Checking." }]);
  });

  it("ignores the CLI's StructuredOutput tool and its arguments", () => {
    const state = newTranslateState(CLIENT_TOOL_PREFIX);
    const deltas = translate(
      [
        streamEvent({ type: "message_start", message: { id: "msg_so", model: "m", usage: {} } }),
        streamEvent({
          type: "content_block_start",
          index: 0,
          content_block: { type: "tool_use", id: "toolu_so", name: "StructuredOutput", input: {} },
        }),
        streamEvent({
          type: "content_block_delta",
          index: 0,
          delta: { type: "input_json_delta", partial_json: '{"answer":42}' },
        }),
        streamEvent({ type: "content_block_stop", index: 0 }),
        assistant("msg_so", [
          { type: "tool_use", id: "toolu_so", name: "StructuredOutput", input: { answer: 42 } },
        ]),
        streamEvent({ type: "message_delta", delta: { stop_reason: "tool_use" } }),
        streamEvent({ type: "message_stop" }),
      ],
      state,
    );
    expect(deltas).toEqual([]);
    expect(state.toolCalls).toEqual([]);
    expect(state.messageToolCalls).toBe(0);
  });

  it("ignores the events of sub-agents", () => {
    const state = newTranslateState(CLIENT_TOOL_PREFIX);
    const deltas = translate(
      [
        streamEvent(
          { type: "message_start", message: { id: "msg_sub", model: "m" } },
          "toolu_task",
        ),
        streamEvent(
          { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "inner" } },
          "toolu_task",
        ),
      ],
      state,
    );
    expect(deltas).toEqual([]);
    expect(state.sawMessage).toBe(false);
  });

  it("sends an unstreamed client tool call whole and marks the response as ending there", () => {
    const state = newTranslateState(CLIENT_TOOL_PREFIX);
    const deltas = eventToDeltas(
      assistant("msg_fallback", [
        { type: "text", text: "Let me look." },
        { type: "tool_use", id: "toolu_9", name: "mcp__client__search", input: { q: "cats" } },
      ]),
      state,
    );
    expect(deltas).toEqual([
      { content: "Let me look." },
      {
        tool_calls: [
          {
            index: 0,
            id: "toolu_9",
            type: "function",
            function: { name: "search", arguments: '{"q":"cats"}' },
          },
        ],
      },
    ]);
    expect(state.unstreamedToolStop).toBe(true);
  });
});

describe("eventToDeltas after a dropped stream", () => {
  it("fails with 502 upstream_stream_dropped when part of the dropped answer was sent (drop-fallback.jsonl)", () => {
    const events = fixtureEvents("drop-fallback");
    const state = newTranslateState();
    const sent: ChoiceDelta[] = [];
    let error: unknown;
    try {
      for (const event of events) sent.push(...eventToDeltas(event, state));
    } catch (e) {
      error = e;
    }
    expect(content(sent)).toBe("Hello th");
    expect(error).toBeInstanceOf(ProxyError);
    expect((error as ProxyError).status).toBe(502);
    expect((error as ProxyError).code).toBe("upstream_stream_dropped");
    expect((error as ProxyError).toJSON().error.type).toBe("api_error");
  });

  it("passes the fallback answer through when nothing of the dropped stream was sent", () => {
    // drop-fallback.jsonl with the stream cut before its first text delta
    const events = fixtureEvents("drop-fallback").filter(
      (e) => !(e.type === "stream_event" && e.event.type === "content_block_delta"),
    );
    const state = newTranslateState();
    const deltas = translate(events, state);
    expect(content(deltas)).toBe("Fallback answer.");
    expect(content(deltas)).toBe(resultOf(events).result);
  });

  // 2.1.221 and 2.1.332 retry a dropped stream with another stream: a bare message_stop, an
  // api_retry, then a new message_start (drop-stream-retry*.jsonl).
  for (const name of ["drop-stream-retry", "drop-stream-retry.2.1.221"]) {
    it(`fails with 502 upstream_stream_dropped at the retry's message_start when part of the dropped answer was sent (${name}.jsonl)`, () => {
      const events = fixtureEvents(name);
      const state = newTranslateState();
      const sent: ChoiceDelta[] = [];
      let error: unknown;
      let at = -1;
      try {
        for (const [i, event] of events.entries()) {
          at = i;
          sent.push(...eventToDeltas(event, state));
        }
      } catch (e) {
        error = e;
      }
      expect(content(sent)).toBe("Hello th");
      expect((error as ProxyError).code).toBe("upstream_stream_dropped");
      expect((error as ProxyError).status).toBe(502);
      const failedAt = events[at];
      expect(failedAt?.type === "stream_event" && failedAt.event.type).toBe("message_start");
      // Not the answer the client would otherwise get: the dropped text and the retry's, joined.
      expect(resultOf(events).result).toBe("Retried answer.");
    });

    it(`passes the streamed retry through when nothing of the dropped stream was sent (${name}.jsonl)`, () => {
      // The same run with the stream cut before its first text delta.
      const all = fixtureEvents(name);
      const retryAt = all.findIndex((e) => e.type === "api_retry");
      const cut = all.filter(
        (e, i) =>
          !(i < retryAt && e.type === "stream_event" && e.event.type === "content_block_delta"),
      );
      const state = newTranslateState();
      const deltas = translate(cut, state);
      expect(content(deltas)).toBe("Retried answer.");
      expect(state.stopReason).toBe("end_turn");
    });
  }

  it("a new message after a finished one is not a retry (the CLI's own tool loop, tool-use.jsonl)", () => {
    const events = fixtureEvents("tool-use");
    const starts = events.filter(
      (e) => e.type === "stream_event" && e.event.type === "message_start",
    );
    expect(starts.length).toBeGreaterThan(1);
    expect(content(translate(events, newTranslateState()))).toBe("Let me run that.It printed hi.");
  });

  it("fails when a message that streamed text is followed by another message_start without ending", () => {
    const state = newTranslateState();
    const events = [
      streamEvent({ type: "message_start", message: { id: "msg_1", usage: {} } }),
      streamEvent({ type: "content_block_start", index: 0, content_block: { type: "text" } }),
      streamEvent({
        type: "content_block_delta",
        index: 0,
        delta: { type: "text_delta", text: "Part" },
      }),
      streamEvent({ type: "message_start", message: { id: "msg_2", usage: {} } }),
    ];
    expect(() => translate(events, state)).toThrow(ProxyError);
  });

  it("keeps the CLI's own error message out of the content (drop-error.jsonl)", () => {
    const events = fixtureEvents("drop-error");
    const deltas = translate(events, newTranslateState());
    // the partial text streamed; the synthetic "API Error: ..." message is not content
    expect(content(deltas)).toBe("Hello th");
  });

  it("does not repeat a streamed message when its assistant event arrives", () => {
    const events = fixtureEvents("text");
    const state = newTranslateState();
    translate(events, state);
    const repeat = events.find((e) => e.type === "assistant");
    if (repeat === undefined) throw new Error("no assistant event");
    expect(eventToDeltas(repeat, state)).toEqual([]);
  });
});

describe("finishReason", () => {
  it.each([
    ["end_turn", false, "stop"],
    ["stop_sequence", false, "stop"],
    [null, false, "stop"],
    ["max_tokens", false, "length"],
    ["model_context_window_exceeded", false, "length"],
    ["refusal", false, "content_filter"],
    ["tool_use", true, "tool_calls"],
    ["max_tokens", true, "tool_calls"],
  ] as const)("maps stop_reason %s (tool calls: %s) to %s", (stop, tools, expected) => {
    expect(finishReason(stop, tools)).toBe(expected);
  });
});

describe("toCompletionUsage", () => {
  it("counts cache reads and writes as prompt tokens, and cache reads as cached tokens", () => {
    expect(
      toCompletionUsage({
        input_tokens: 7,
        output_tokens: 11,
        cache_read_input_tokens: 1000,
        cache_creation_input_tokens: 300,
      }),
    ).toEqual({
      prompt_tokens: 1307,
      completion_tokens: 11,
      total_tokens: 1318,
      prompt_tokens_details: { cached_tokens: 1000 },
    });
  });
});
