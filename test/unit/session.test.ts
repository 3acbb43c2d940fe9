import { describe, expect, it } from "vitest";
import {
  type AnthropicMessage,
  NO_RESULT_TEXT,
  type ResolvedImage,
  type SessionPlan,
  sessionFile,
  splitTail,
  stdinLines,
  userTurnLine,
} from "../../src/claude/session.ts";
import { CLIENT_TOOL_PREFIX } from "../../src/engine/bridge.ts";
import {
  type ConversationOptions,
  toAnthropicMessages as fromTurns,
} from "../../src/engine/prompt.ts";
import { parseArguments } from "../../src/http/json.ts";
import { chatTurns } from "../../src/surfaces/chat/conversation.ts";
import {
  type ChatCompletionMessageParam,
  parseChatCompletionRequest,
} from "../../src/surfaces/chat/schema.ts";

/** Chat messages as the API receives them. */
function toAnthropicMessages(
  list: readonly ChatCompletionMessageParam[],
  options: ConversationOptions,
): AnthropicMessage[] {
  return fromTurns(chatTurns(list), options);
}

function messages(list: unknown[]): ChatCompletionMessageParam[] {
  return parseChatCompletionRequest({ model: "sonnet", messages: list }).messages;
}

const JPEG = "https://example.com/cat.jpg";
const images = new Map<string, ResolvedImage>([
  [JPEG, { media_type: "image/jpeg", data: "/9j/4AAQ" }],
]);

/** A tool-calling conversation as openai-node sends it, two parallel calls answered. */
const toolConversation = messages([
  { role: "system", content: "You are a weather bot." },
  { role: "user", content: "Weather and time in Paris?" },
  {
    role: "assistant",
    content: "Let me check.",
    tool_calls: [
      {
        id: "call_w",
        type: "function",
        function: { name: "get_weather", arguments: '{"city":"Paris"}' },
      },
      { id: "call_t", type: "function", function: { name: "get_time", arguments: "" } },
    ],
  },
  { role: "tool", tool_call_id: "call_w", content: "18C" },
  { role: "tool", tool_call_id: "call_t", content: [{ type: "text", text: "14:05" }] },
]);

describe("toAnthropicMessages", () => {
  it("sends client tool calls and results as tool_use and tool_result blocks with the prefix", () => {
    const out = toAnthropicMessages(toolConversation, { toolPrefix: CLIENT_TOOL_PREFIX, images });
    expect(out).toEqual([
      { role: "user", content: [{ type: "text", text: "Weather and time in Paris?" }] },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Let me check." },
          {
            type: "tool_use",
            id: "call_w",
            name: "mcp__client__get_weather",
            input: { city: "Paris" },
          },
          { type: "tool_use", id: "call_t", name: "mcp__client__get_time", input: {} },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "call_w", content: "18C" },
          { type: "tool_result", tool_use_id: "call_t", content: "14:05" },
        ],
      },
    ]);
  });

  it("writes tool calls and results as text, without the prefix, when the run has no client tools", () => {
    const out = toAnthropicMessages(toolConversation, { toolPrefix: null, images });
    const blocks = out.flatMap((m) => m.content);
    expect(blocks.every((b) => b.type === "text")).toBe(true);
    const all = blocks.map((b) => (b.type === "text" ? b.text : "")).join("\n");
    expect(all).toContain(
      '[Called tool get_weather (call id call_w) with arguments {"city":"Paris"}]',
    );
    expect(all).toContain("[Result of tool call call_t]\n14:05");
    expect(all).not.toContain("mcp__client__");
  });

  it("merges consecutive turns of one role and puts tool results first in their user turn", () => {
    const out = toAnthropicMessages(
      messages([
        ...toolConversation.slice(1),
        { role: "user", content: "Also, in Celsius please." },
        { role: "user", content: [{ type: "image_url", image_url: { url: JPEG } }] },
      ]),
      { toolPrefix: CLIENT_TOOL_PREFIX, images },
    );
    expect(out.map((m) => m.role)).toEqual(["user", "assistant", "user"]);
    expect(out[2]?.content.map((b) => b.type)).toEqual([
      "tool_result",
      "tool_result",
      "text",
      "image",
    ]);
    expect(out[2]?.content[3]).toEqual({
      type: "image",
      source: { type: "base64", media_type: "image/jpeg", data: "/9j/4AAQ" },
    });
  });

  it("moves a tool result ahead of user text that came before it", () => {
    const out = toAnthropicMessages(
      messages([
        { role: "user", content: "q" },
        {
          role: "assistant",
          tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }],
        },
        { role: "user", content: "hurry" },
        { role: "tool", tool_call_id: "c1", content: "done" },
      ]),
      { toolPrefix: CLIENT_TOOL_PREFIX, images },
    );
    expect(out[2]?.content).toEqual([
      { type: "tool_result", tool_use_id: "c1", content: "done" },
      { type: "text", text: "hurry" },
    ]);
  });

  it("leaves out system messages, empty turns and images it has no data for", () => {
    const out = toAnthropicMessages(
      messages([
        { role: "system", content: "sys" },
        { role: "user", content: "" },
        {
          role: "user",
          content: [{ type: "image_url", image_url: { url: "https://example.com/unknown.png" } }],
        },
        { role: "user", content: "hello" },
      ]),
      { toolPrefix: null, images },
    );
    expect(out).toEqual([{ role: "user", content: [{ type: "text", text: "hello" }] }]);
  });
});

describe("splitTail", () => {
  const withTools = (list: ChatCompletionMessageParam[]) =>
    toAnthropicMessages(list, { toolPrefix: CLIENT_TOOL_PREFIX, images });

  it("sends the final user turn on stdin, and the calls it answers ahead of it", () => {
    const plan = splitTail(withTools(toolConversation));
    expect(plan?.history.map((m) => m.role)).toEqual(["user", "assistant"]);
    // The calling turn keeps its text in the history; its tool_use blocks wait for stdin.
    expect(plan?.history[1]?.content).toEqual([{ type: "text", text: "Let me check." }]);
    expect(plan?.pending?.messageId).toBe("msg_proxy_1");
    expect(plan?.pending?.blocks.map((b) => b.id)).toEqual(["call_w", "call_t"]);
    expect(plan?.turn.map((b) => b.type)).toEqual(["tool_result", "tool_result"]);
  });

  it("answers calls the client skipped with an error, turns results for unknown calls into text, keeps user text last", () => {
    const plan = splitTail(
      withTools([
        ...toolConversation.slice(0, 3),
        { role: "tool", tool_call_id: "call_t", content: "14:05" },
        { role: "tool", tool_call_id: "call_zzz", content: "stray" },
        { role: "user", content: "Also: umbrella?" },
      ]),
    );
    expect(plan?.turn).toEqual([
      { type: "tool_result", tool_use_id: "call_t", content: "14:05" },
      { type: "tool_result", tool_use_id: "call_w", content: NO_RESULT_TEXT, is_error: true },
      { type: "text", text: "[Result of tool call call_zzz]\nstray" },
      { type: "text", text: "Also: umbrella?" },
    ]);
  });

  it("has no history and nothing pending for a single user message", () => {
    const plan = splitTail(withTools(messages([{ role: "user", content: "hi" }])));
    expect(plan).toEqual({
      history: [],
      turn: [{ type: "text", text: "hi" }],
      pending: null,
    });
  });

  it("asks to continue after a final assistant turn, and starts the history with a user turn", () => {
    const plan = splitTail(
      withTools(messages([{ role: "assistant", content: "Once upon a time" }])),
    );
    expect(plan?.turn).toEqual([{ type: "text", text: "Continue." }]);
    expect(plan?.history[0]?.role).toBe("user");
    expect(plan?.history.at(-1)).toEqual({
      role: "assistant",
      content: [{ type: "text", text: "Once upon a time" }],
    });
  });

  it("is null when there is nothing to answer, and leaves its input alone", () => {
    expect(splitTail([])).toBeNull();
    const conversation = withTools(toolConversation);
    const before = JSON.stringify(conversation);
    splitTail(conversation);
    expect(JSON.stringify(conversation)).toBe(before);
  });
});

describe("sessionFile", () => {
  const options = {
    sessionId: "0b7c6a36-4f5e-4c31-9f0b-3f8a0a6c7d11",
    cwd: "/tmp/work",
    timestamp: "2025-01-01T00:00:00.000Z",
    version: "2.1.197",
  };

  function counter(): () => string {
    let n = 0;
    return () => `uuid-${++n}`;
  }

  it("writes one JSON line per turn, chained by parentUuid; stdin carries the pending calls, then the results", () => {
    const plan = splitTail(
      toAnthropicMessages(toolConversation, { toolPrefix: CLIENT_TOOL_PREFIX, images }),
    ) as SessionPlan;
    const text = sessionFile(plan, { ...options, uuid: counter() });
    expect(text.endsWith("\n")).toBe(true);
    const entries = text
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(entries.map((e) => [e.type, e.uuid, e.parentUuid])).toEqual([
      ["user", "uuid-1", null],
      ["assistant", "uuid-2", "uuid-1"],
    ]);
    for (const entry of entries) {
      expect(entry).toMatchObject({
        sessionId: options.sessionId,
        cwd: "/tmp/work",
        version: "2.1.197",
      });
    }
    expect(entries[0].message).toEqual({ role: "user", content: plan.history[0]?.content });
    expect(entries[1].message).toMatchObject({
      id: "msg_proxy_1",
      role: "assistant",
      type: "message",
      stop_reason: "tool_use",
      content: [{ type: "text", text: "Let me check." }],
    });
    const stdin = stdinLines(plan, userTurnLine)
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(stdin.map((l) => l.type)).toEqual(["assistant", "user"]);
    expect(stdin[0].message).toMatchObject({ id: "msg_proxy_1", role: "assistant" });
    expect(stdin[0].message.content.map((b: { id: string }) => b.id)).toEqual(["call_w", "call_t"]);
    expect(stdin[1].message.content.map((b: { tool_use_id: string }) => b.tool_use_id)).toEqual([
      "call_w",
      "call_t",
    ]);
  });

  it("marks an assistant turn without tool calls as end_turn; stdin is the user turn alone", () => {
    const history: AnthropicMessage[] = [
      { role: "user", content: [{ type: "text", text: "hi" }] },
      { role: "assistant", content: [{ type: "text", text: "hello" }] },
    ];
    const text = sessionFile(
      { history, turn: [{ type: "text", text: "bye" }], pending: null },
      options,
    );
    const entries = text
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(entries.map((e) => e.type)).toEqual(["user", "assistant"]);
    expect(entries[1].message.stop_reason).toBe("end_turn");
    // default uuids are real, distinct uuids
    expect(entries[0].uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(entries[1].parentUuid).toBe(entries[0].uuid);
    expect(entries[1].uuid).not.toBe(entries[0].uuid);
  });
});

describe("parseArguments", () => {
  it("parses a JSON object, and keeps anything else usable", () => {
    expect(parseArguments('{"a":1,"b":[true]}')).toEqual({ a: 1, b: [true] });
    expect(parseArguments("")).toEqual({});
    expect(parseArguments("  ")).toEqual({});
    expect(parseArguments("[1,2]")).toEqual({ value: [1, 2] });
    expect(parseArguments("42")).toEqual({ value: 42 });
    expect(parseArguments('{"a":')).toEqual({ _raw: '{"a":' });
  });
});
