import { afterEach, describe, expect, it, vi } from "vitest";
import { StdinChannel } from "../../src/claude/run.ts";
import type { Block, Conversation } from "../../src/engine/conversation.ts";
import { launchProfile } from "../../src/engine/start.ts";
import {
  answerTurn,
  IdleRuns,
  splitFollowUp,
  turnsFingerprint,
  warmKey,
} from "../../src/engine/warm.ts";
import { chatConversation } from "../../src/surfaces/chat/conversation.ts";
import { parseChatCompletionRequest } from "../../src/surfaces/chat/schema.ts";
import { finishedRun } from "./run-helpers.ts";

/** The conversation of a chat request body. */
function chat(body: Record<string, unknown>): Conversation {
  return chatConversation(parseChatCompletionRequest({ model: "sonnet", ...body }));
}

const WEATHER = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather",
    parameters: { type: "object", properties: { city: { type: "string" } } },
  },
};

/** The fingerprint a warm run is kept under after answering `body` with `answer`. */
function keptUnder(body: Record<string, unknown>, answer: Block[]): string {
  return turnsFingerprint([...chat(body).turns, answerTurn(answer)]);
}

/** The fingerprint a follow-up looks for (null: it cannot take a warm run). */
function lookedUp(body: Record<string, unknown>): string | null {
  const split = splitFollowUp(chat(body).turns);
  return split === null ? null : turnsFingerprint(split.earlier);
}

describe("launchProfile", () => {
  const base = {
    messages: [
      { role: "system", content: "Be terse." },
      { role: "user", content: "Hi" },
    ],
    tools: [WEATHER],
  };
  const profile = (body: Record<string, unknown>, model = "sonnet") =>
    launchProfile(chat({ ...base, ...body }), model, false);

  it("is the same for every turn of a conversation", () => {
    expect(profile({})).not.toBeNull();
    expect(
      profile({
        messages: [
          ...base.messages,
          { role: "assistant", content: "Hello" },
          { role: "user", content: "Again" },
        ],
      }),
    ).toBe(profile({}));
  });

  it("differs in anything fixed at spawn", () => {
    const first = profile({});
    const others = [
      profile({}, "opus"),
      profile({ reasoning_effort: "low" }),
      profile({ messages: [{ role: "system", content: "Be verbose." }, base.messages[1]] }),
      profile({ tools: [] }),
      profile({ tools: [{ ...WEATHER, function: { ...WEATHER.function, description: "W" } }] }),
      profile({
        tools: [
          {
            ...WEATHER,
            function: { ...WEATHER.function, parameters: { type: "object", properties: {} } },
          },
        ],
      }),
      profile({ tool_choice: "required" }),
      profile({ parallel_tool_calls: false }),
      profile({ max_tokens: 100 }),
    ];
    for (const other of others) expect(other).not.toBe(first);
    expect(new Set(others).size).toBe(others.length);
    // tool_choice "none" starts the CLI without tools, as no tools do.
    expect(profile({ tool_choice: "none" })).toBe(profile({ tools: [] }));
  });

  it("is null where a warm run would not send what a cold one does", () => {
    expect(
      profile({ response_format: { type: "json_schema", json_schema: { name: "x", schema: {} } } }),
    ).toBeNull();
    expect(profile({ response_format: { type: "json_object" } })).toBeNull();
    expect(profile({ stop: ["END"] })).toBeNull();
    expect(launchProfile(chat(base), "sonnet", true)).toBeNull();
  });
});

describe("conversation affinity (splitFollowUp + fingerprints)", () => {
  const first = { messages: [{ role: "user", content: "Hi, I am Ann." }] };
  const answer: Block[] = [{ type: "text", text: "Hello Ann!" }];

  it("matches the conversation + the answer given + one new user turn", () => {
    const kept = keptUnder(first, answer);
    expect(
      lookedUp({
        messages: [
          { role: "user", content: "Hi, I am Ann." },
          { role: "assistant", content: "Hello Ann!" },
          { role: "user", content: "What is my name?" },
        ],
      }),
    ).toBe(kept);
  });

  it("tolerates what clients legitimately change: text parts, whitespace, split user messages", () => {
    const kept = keptUnder(first, answer);
    expect(
      lookedUp({
        messages: [
          { role: "user", content: [{ type: "text", text: "Hi, I am Ann. " }] },
          { role: "assistant", content: [{ type: "text", text: "Hello Ann!\n" }] },
          { role: "user", content: "What is" },
          { role: "user", content: [{ type: "text", text: "my name?" }] },
        ],
      }),
    ).toBe(kept);
    const split = splitFollowUp(
      chat({
        messages: [
          { role: "user", content: "a" },
          { role: "assistant", content: "b" },
          { role: "user", content: "c" },
          { role: "user", content: "d" },
        ],
      }).turns,
    );
    expect(split?.next).toEqual({
      role: "user",
      content: [
        { type: "text", text: "c" },
        { type: "text", text: "d" },
      ],
    });
  });

  it("does not match an edited, truncated or extended history", () => {
    const kept = keptUnder(first, answer);
    const follow = (messages: unknown[]) => lookedUp({ messages });
    expect(
      follow([
        { role: "user", content: "Hi, I am Anne." },
        { role: "assistant", content: "Hello Ann!" },
        { role: "user", content: "?" },
      ]),
    ).not.toBe(kept);
    expect(
      follow([
        { role: "user", content: "Hi, I am Ann." },
        { role: "assistant", content: "Hello Anne!" },
        { role: "user", content: "?" },
      ]),
    ).not.toBe(kept);
    expect(
      follow([
        { role: "user", content: "Hi, I am Ann." },
        { role: "assistant", content: "Hello Ann!" },
        { role: "user", content: "x" },
        { role: "assistant", content: "y" },
        { role: "user", content: "?" },
      ]),
    ).not.toBe(kept);
  });

  it("takes no follow-up that a new user turn on stdin cannot carry", () => {
    // A first turn is a spare's (nothing earlier); an assistant prefill; tool results;
    // nothing but whitespace.
    expect(splitFollowUp(chat(first).turns)?.earlier).toEqual([]);
    expect(
      lookedUp({
        messages: [
          { role: "user", content: "a" },
          { role: "assistant", content: "b" },
        ],
      }),
    ).toBeNull();
    expect(
      lookedUp({
        messages: [
          { role: "user", content: "a" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              { id: "c1", type: "function", function: { name: "get_weather", arguments: "{}" } },
            ],
          },
          { role: "tool", tool_call_id: "c1", content: "sunny" },
        ],
        tools: [WEATHER],
      }),
    ).toBeNull();
    expect(
      lookedUp({
        messages: [
          { role: "user", content: "a" },
          { role: "assistant", content: "b" },
          { role: "user", content: "  " },
        ],
      }),
    ).toBeNull();
  });

  it("keeps tool calls of the answer in its assistant turn, drops thinking", () => {
    expect(
      answerTurn([
        { type: "thinking", thinking: "hm", signature: "s" },
        { type: "text", text: "t" },
        { type: "tool_use", id: "x", name: "get_weather", input: { city: "Paris" } },
      ]),
    ).toEqual({
      role: "assistant",
      content: [
        { type: "text", text: "t" },
        { type: "tool_use", id: "x", name: "get_weather", input: { city: "Paris" } },
      ],
    });
  });

  it("keys by owner and profile too", () => {
    const key = (owner: string, profile: string) => warmKey({ owner, profile, conversation: "c" });
    expect(key("a", "p")).not.toBe(key("b", "p"));
    expect(key("a", "p")).not.toBe(key("a", "q"));
  });
});

describe("StdinChannel", () => {
  it("holds a turn written before the process was spawned and writes it at spawn", () => {
    const channel = new StdinChannel();
    expect(channel.write("first\n")).toBe(true);
    const written: string[] = [];
    channel.bind(
      (text) => written.push(text),
      () => {},
    );
    expect(written).toEqual(["first\n"]);
    expect(channel.write("second\n")).toBe(true);
    expect(written).toEqual(["first\n", "second\n"]);
    channel.markExited();
    expect(channel.write("third\n")).toBe(false);
    expect(written).toHaveLength(2);
  });
});

describe("IdleRuns", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("gives the slot back while warm, hands the run out once, takes a slot again", async () => {
    const runs = new IdleRuns("warm");
    const run = await finishedRun();
    runs.keep(run, "k", 60_000, 4);
    expect(run.released).toBe(1);
    expect(run.idle).toBe("warm");
    expect(runs.count).toBe(1);
    expect(runs.take("other")).toBeNull();
    const taken = runs.take("k");
    expect(taken).toBe(run);
    expect(run.idle).toBeNull();
    expect(runs.take("k")).toBeNull();
    let again = 0;
    run.holdSlot(() => again++);
    expect(run.nextTurn("line\n")).toBe(true);
    expect(run.written).toEqual(["line\n"]);
    await run.stop();
    expect(again).toBe(1);
    expect(run.released).toBe(1);
  });

  it("reports each turn's cost, not the process's running total", async () => {
    const run = await finishedRun();
    expect(run.turnCost(0.003)).toBeCloseTo(0.003);
    expect(run.turnCost(0.006)).toBeCloseTo(0.003);
    expect(run.turnCost(0.009000000000000001)).toBeCloseTo(0.003);
    expect(run.turnCost(0.009)).toBe(0);
  });

  it("stops a warm run when its TTL passes", async () => {
    vi.useFakeTimers();
    const runs = new IdleRuns("warm");
    const run = await finishedRun();
    runs.keep(run, "k", 1_000, 4);
    vi.advanceTimersByTime(999);
    expect(run.stopped).toBe(false);
    vi.advanceTimersByTime(1);
    expect(run.stopped).toBe(true);
    expect(runs.count).toBe(0);
  });

  it("forgets a warm run whose process exited, and never hands it out", async () => {
    const runs = new IdleRuns("warm");
    const run = await finishedRun();
    runs.keep(run, "k", 60_000, 4);
    run.input?.markExited();
    expect(runs.count).toBe(0);
    expect(run.stopped).toBe(true);
    expect(runs.take("k")).toBeNull();
    expect(run.nextTurn("x")).toBe(false);
  });

  it("hands out a run whose process exited after it was kept as dead, stopped", async () => {
    const runs = new IdleRuns("spare");
    const run = await finishedRun();
    runs.keep(run, "p", 60_000, 4);
    expect(run.idle).toBe("spare");
    // Exited without the exit being reported to the channel yet (a kill seen first by take).
    Object.defineProperty(run.input, "exited", { get: () => true });
    expect(runs.take("p")).toBe("dead");
    expect(run.stopped).toBe(true);
    expect(runs.count).toBe(0);
  });

  it("keeps at most `max`, evicting the least recently used; evictOldest and stopAll", async () => {
    const runs = new IdleRuns("warm");
    const [a, b, c, d] = await Promise.all([
      finishedRun(),
      finishedRun(),
      finishedRun(),
      finishedRun(),
    ]);
    if (a === undefined || b === undefined || c === undefined || d === undefined) throw new Error();
    runs.keep(a, "a", 60_000, 2);
    runs.keep(b, "b", 60_000, 2);
    runs.keep(c, "c", 60_000, 2);
    expect(a.stopped).toBe(true);
    expect(runs.count).toBe(2);
    expect(await runs.evictOldest()).toBe(true);
    expect(b.stopped).toBe(true);
    runs.keep(d, "d", 60_000, 2);
    await runs.stopAll();
    expect(c.stopped && d.stopped).toBe(true);
    expect(runs.count).toBe(0);
    expect(await runs.evictOldest()).toBe(false);
  });
});
