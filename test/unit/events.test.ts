import { describe, expect, it } from "vitest";
import { type CliEvent, parseLine, toUsage } from "../../src/claude/events.ts";
import { fixtureEvents, fixtureLines, fixtureNames } from "./cli-fixtures.ts";

function ofType<T extends CliEvent["type"]>(
  events: readonly CliEvent[],
  type: T,
): Extract<CliEvent, { type: T }>[] {
  return events.filter((e): e is Extract<CliEvent, { type: T }> => e.type === type);
}

describe("parseLine over the recorded CLI output", () => {
  const names = fixtureNames();

  it("finds the recorded fixtures", () => {
    expect(names).toEqual(
      expect.arrayContaining(["text", "thinking", "error-400", "error-401-retry", "tool-use"]),
    );
  });

  it.each(names)("%s: every line parses, starts with system init and ends with result", (name) => {
    const lines = fixtureLines(name);
    const events = lines.map((line, i) => parseLine(line, i + 1));
    expect(events.every((e) => e !== null)).toBe(true);
    const first = events[0];
    expect(first?.type).toBe("system_init");
    if (first?.type === "system_init") {
      expect(first.session_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(first.model).toMatch(/^claude-sonnet-5/);
    }
    const last = events.at(-1);
    expect(last?.type).toBe("result");
    expect(ofType(events as CliEvent[], "result")).toHaveLength(1);
  });

  it("classifies the stream events, assistant messages and result of a text answer", () => {
    const events = fixtureEvents("text");
    const streamTypes = ofType(events, "stream_event").map((e) => e.event.type);
    expect(streamTypes).toEqual([
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    expect(ofType(events, "stream_event").every((e) => e.parent_tool_use_id === null)).toBe(true);
    const [assistant] = ofType(events, "assistant");
    expect(assistant?.message.model).toBe("claude-sonnet-5");
    expect(assistant?.message.id).toBe("msg_fake_1");
    expect(assistant?.message.content).toEqual([{ type: "text", text: "Hello world!" }]);
    const [result] = ofType(events, "result");
    expect(result).toMatchObject({
      subtype: "success",
      is_error: false,
      api_error_status: null,
      result: "Hello world!",
      stop_reason: "end_turn",
      usage: {
        input_tokens: 12,
        output_tokens: 5,
        cache_read_input_tokens: 100,
        cache_creation_input_tokens: 20,
      },
    });
    expect(result?.total_cost_usd).toBeGreaterThan(0);
    expect(result?.num_turns).toBe(1);
    // the status line is not used: it comes out as unknown; rate_limit_event is classified.
    expect(ofType(events, "unknown").length).toBeGreaterThanOrEqual(1);
    expect(ofType(events, "rate_limit")).toMatchObject([
      { type: "rate_limit", status: "allowed", resetsAt: null, rateLimitType: null, windows: [] },
    ]);
  });

  it("marks the CLI's own error message with the <synthetic> model", () => {
    const [assistant] = ofType(fixtureEvents("error-400"), "assistant");
    expect(assistant?.message.model).toBe("<synthetic>");
  });

  it("reads an API error result: is_error with api_error_status", () => {
    const [result] = ofType(fixtureEvents("error-400"), "result");
    expect(result).toMatchObject({
      subtype: "success",
      is_error: true,
      api_error_status: 400,
      result: "API Error: 400 messages: text content blocks must be non-empty",
    });
  });

  it("reads api_retry with attempt, delay and status", () => {
    const retries = ofType(fixtureEvents("error-401-retry"), "api_retry");
    expect(retries).toEqual([
      {
        type: "api_retry",
        attempt: 1,
        max_retries: 1,
        retry_delay_ms: 1000,
        error_status: 401,
        error: "authentication_failed",
      },
    ]);
    const [overloaded] = ofType(fixtureEvents("error-529"), "api_retry");
    expect(overloaded?.error_status).toBe(529);
  });

  it("keeps tool_use blocks and sums usage over a two-turn run", () => {
    const events = fixtureEvents("tool-use");
    const blocks = ofType(events, "assistant").flatMap((e) => e.message.content);
    expect(blocks).toContainEqual({
      type: "tool_use",
      id: "toolu_fake_1",
      name: "Bash",
      input: { command: "echo hi", description: "Say hi" },
    });
    const [result] = ofType(events, "result");
    expect(result?.num_turns).toBe(2);
    expect(result?.usage.input_tokens).toBe(20);
    expect(result?.usage.output_tokens).toBe(19);
  });
});

describe("parseLine", () => {
  it("gives null for a blank line", () => {
    expect(parseLine("", 1)).toBeNull();
    expect(parseLine("   \r", 2)).toBeNull();
  });

  it("names the line number of a malformed line", () => {
    expect(() => parseLine('{"type":"result",', 3)).toThrow(SyntaxError);
    expect(() => parseLine('{"type":"result",', 3)).toThrow(/^Cannot parse line 3: /);
    expect(() => parseLine("not json", 17)).toThrow(/line 17/);
  });

  it("turns types it does not know into unknown events instead of failing", () => {
    expect(parseLine('{"type":"future_event","x":1}', 1)).toEqual({
      type: "unknown",
      raw: { type: "future_event", x: 1 },
    });
    expect(parseLine("[1,2]", 1)?.type).toBe("unknown");
    expect(parseLine('{"type":"stream_event","event":null}', 1)?.type).toBe("unknown");
  });

  it("keeps the parent_tool_use_id of sub-agent events", () => {
    const event = parseLine(
      '{"type":"stream_event","event":{"type":"message_stop"},"parent_tool_use_id":"toolu_9"}',
      1,
    );
    expect(event).toEqual({
      type: "stream_event",
      event: { type: "message_stop" },
      parent_tool_use_id: "toolu_9",
    });
  });
});

describe("toUsage", () => {
  it("fills missing or non-numeric counts with 0", () => {
    expect(toUsage({ input_tokens: 3, output_tokens: "7" })).toEqual({
      input_tokens: 3,
      output_tokens: 0,
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
    });
    expect(toUsage(undefined).input_tokens).toBe(0);
  });
});
