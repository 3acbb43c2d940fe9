import { afterEach, describe, expect, it, vi } from "vitest";
import type { CliEvent } from "../../src/claude/events.ts";
import { ToolBridge } from "../../src/engine/bridge.ts";
import {
  canonicalArguments,
  conversationFingerprint,
  normalizeToolCallId,
  type ParkedRun,
  pairToolCalls,
  ToolRuns,
} from "../../src/engine/registry.ts";
import { type IssuedToolCall, Run } from "../../src/engine/run.ts";
import { chatTurns, systemPromptOf } from "../../src/surfaces/chat/conversation.ts";
import { parseChatCompletionRequest } from "../../src/surfaces/chat/schema.ts";

/** The fingerprint of chat messages as a client sends them. */
function fingerprint(messages: unknown[], model: string, tools: string[]): string {
  const parsed = parseChatCompletionRequest({ model, messages }).messages;
  return conversationFingerprint(systemPromptOf(parsed), chatTurns(parsed), model, tools);
}

type TestRun = ParkedRun & { released: number; eventsClosed: boolean };

/** Runs that ended (their `onStopped` was called), in order. */
let stopped: Run[] = [];

/**
 * A parked run, counting releases: its events were read up to the message that called the
 * tools (the generator waits at a yield, as a real run does) and never end until returned.
 */
async function parkedRun(...toolCallIds: string[]): Promise<TestRun> {
  const run = new Run(
    new ToolBridge([]),
    {
      policy: { retryRateLimits: false, retryServerErrors: false },
      toolPrefix: "mcp__client__",
      structuredOutput: false,
    },
    () => {
      run.released++;
    },
    (ended) => stopped.push(ended),
  ) as TestRun;
  run.released = 0;
  run.eventsClosed = false;
  run.waiting = true;
  run.toolCalls = toolCallIds.map(call);
  run.owner = "key-alice";
  run.conversation = "conversation-1";
  run.events = (async function* (): AsyncGenerator<CliEvent, void, undefined> {
    try {
      yield { type: "stream_event", event: { type: "message_stop" }, parent_tool_use_id: null };
      await new Promise(() => {});
    } finally {
      run.eventsClosed = true;
    }
  })();
  await run.events.next();
  return run;
}

/** A call as a run issued it: name "lookup", arguments naming the id (so each call differs). */
function call(id: string): IssuedToolCall {
  return { id, name: "lookup", arguments: JSON.stringify({ key: id }) };
}

/** The owner and conversation of the runs {@link parkedRun} makes. */
const ALICE = { owner: "key-alice", conversation: "conversation-1" };

/** What a follow-up echoes back: the calls with these ids, as issued. */
function echo(...ids: string[]): IssuedToolCall[] {
  return ids.map(call);
}

/** The run `take` hands out, or null. */
function taken(runs: ToolRuns, calls: IssuedToolCall[]): ParkedRun | null {
  return runs.take(calls, ALICE)?.run ?? null;
}

afterEach(() => {
  vi.useRealTimers();
  stopped = [];
});

describe("ToolRuns", () => {
  it("makes a bridge reachable by its token until it is unregistered", () => {
    const runs = new ToolRuns();
    const bridge = new ToolBridge([]);
    runs.register(bridge);
    expect(runs.bridge(bridge.token)).toBe(bridge);
    expect(runs.bridge("not-a-token")).toBeUndefined();
    runs.unregister(bridge);
    expect(runs.bridge(bridge.token)).toBeUndefined();
  });

  it("gives a parked run back to the request that answers all its tool calls", async () => {
    const runs = new ToolRuns();
    const run = await parkedRun("call_a", "call_b");
    runs.park(run, 60_000);
    expect(runs.parkedCount).toBe(1);
    expect(taken(runs, echo("call_b", "call_a"))).toBe(run);
    expect(runs.parkedCount).toBe(0);
    // taken once: a retry of the same follow-up finds nothing
    expect(taken(runs, echo("call_a", "call_b"))).toBeNull();
  });

  it("does not hand out a run for unknown ids or ids of two different runs", async () => {
    const runs = new ToolRuns();
    const one = await parkedRun("call_1");
    const two = await parkedRun("call_2");
    runs.park(one, 60_000);
    runs.park(two, 60_000);
    expect(taken(runs, [])).toBeNull();
    expect(taken(runs, echo("call_x"))).toBeNull();
    expect(taken(runs, echo("call_1", "call_2"))).toBeNull();
    expect(taken(runs, echo("call_1", "call_x"))).toBeNull();
    expect(runs.parkedCount).toBe(2);
    expect(taken(runs, echo("call_2"))).toBe(two);
  });

  it("stops a run that waits longer than its time: aborts, unregisters its bridge, closes events, releases", async () => {
    vi.useFakeTimers();
    const runs = new ToolRuns();
    const run = await parkedRun("call_1");
    runs.register(run.bridge);
    runs.park(run, 5000);
    await vi.advanceTimersByTimeAsync(4999);
    expect(run.controller.signal.aborted).toBe(false);
    expect(runs.parkedCount).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(run.controller.signal.aborted).toBe(true);
    expect(runs.bridge(run.bridge.token)).toBeUndefined();
    expect(run.eventsClosed).toBe(true);
    expect(run.released).toBe(1);
    expect(stopped).toEqual([run]);
    expect(taken(runs, echo("call_1"))).toBeNull();
  });

  it("does not stop a run that was taken in time", async () => {
    vi.useFakeTimers();
    const runs = new ToolRuns();
    const run = await parkedRun("call_1");
    runs.park(run, 5000);
    expect(taken(runs, echo("call_1"))).toBe(run);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(run.controller.signal.aborted).toBe(false);
    expect(run.released).toBe(0);
  });

  it("stops every parked run on shutdown", async () => {
    const runs = new ToolRuns();
    const a = await parkedRun("a1", "a2");
    const b = await parkedRun("b1");
    runs.park(a, 60_000);
    runs.park(b, 60_000);
    await runs.stopAll();
    expect([a.controller.signal.aborted, b.controller.signal.aborted]).toEqual([true, true]);
    expect([a.released, b.released]).toEqual([1, 1]);
    expect(runs.parkedCount).toBe(0);
  });

  it("evicts the run parked longest ago to free a slot", async () => {
    const runs = new ToolRuns();
    const older = await parkedRun("old");
    const newer = await parkedRun("new");
    runs.park(older, 60_000);
    runs.park(newer, 60_000);
    expect(await runs.evictOldest()).toBe(true);
    expect(older.released).toBe(1);
    expect(newer.released).toBe(0);
    expect(taken(runs, echo("new"))).toBe(newer);
    expect(await runs.evictOldest()).toBe(false);
  });

  it("finds the run when the client rewrote the ids, and maps them back", async () => {
    const runs = new ToolRuns();
    const run = await parkedRun("toolu_x_52_1", "toolu_x_52_2");
    runs.park(run, 60_000);
    // OpenClaw strips what is not a letter or digit.
    const rewritten = [
      { ...call("toolu_x_52_1"), id: "toolux521" },
      { ...call("toolu_x_52_2"), id: "TOOLUX522" },
    ];
    const found = runs.take(rewritten, ALICE);
    expect(found?.run).toBe(run);
    expect([...(found?.ids ?? [])]).toEqual([
      ["toolux521", "toolu_x_52_1"],
      ["TOOLUX522", "toolu_x_52_2"],
    ]);
  });
});

describe("pairToolCalls", () => {
  const issued = [
    { id: "toolu_01A", name: "get_weather", arguments: '{"city":"Rome","days":2}' },
    { id: "toolu_01B", name: "get_weather", arguments: '{"city":"Oslo"}' },
  ];

  it("pairs ids replaced altogether by name and arguments (key order and spaces aside)", () => {
    const echoed = [
      { id: "abc123XYZ", name: "get_weather", arguments: '{"city":"Oslo"}' },
      { id: "def456UVW", name: "get_weather", arguments: '{ "days": 2, "city": "Rome" }' },
    ];
    expect([...(pairToolCalls(echoed, issued) ?? [])]).toEqual([
      ["abc123XYZ", "toolu_01B"],
      ["def456UVW", "toolu_01A"],
    ]);
  });

  it("refuses a follow-up with other calls, fewer calls or more calls", () => {
    expect(
      pairToolCalls(
        [
          { id: "x", name: "get_weather", arguments: '{"city":"Lima"}' },
          issued[1] as IssuedToolCall,
        ],
        issued,
      ),
    ).toBeNull();
    expect(pairToolCalls([issued[0] as IssuedToolCall], issued)).toBeNull();
    expect(
      pairToolCalls([...issued, { ...(issued[0] as IssuedToolCall), id: "z" }], issued),
    ).toBeNull();
    expect(pairToolCalls([], [])).toBeNull();
  });

  it("normalises ids and arguments as documented", () => {
    expect(normalizeToolCallId("toolu_01-AbC")).toBe("toolu01abc");
    expect(canonicalArguments('{"b":1,"a":{"d":2,"c":[3]}}')).toBe('{"a":{"c":[3],"d":2},"b":1}');
    expect(canonicalArguments("")).toBe("{}");
    expect(canonicalArguments("not json ")).toBe("not json");
  });
});

describe("ToolRuns ownership", () => {
  it("never hands a parked run to another key or another conversation", async () => {
    const runs = new ToolRuns();
    const run = await parkedRun("call_a");
    runs.park(run, 60_000);
    expect(runs.take(echo("call_a"), { ...ALICE, owner: "key-bob" })).toBeNull();
    expect(runs.take(echo("call_a"), { ...ALICE, owner: "" })).toBeNull();
    expect(runs.take(echo("call_a"), { ...ALICE, conversation: "conversation-2" })).toBeNull();
    expect(runs.parkedCount).toBe(1);
    expect(runs.take(echo("call_a"), ALICE)?.run).toBe(run);
  });
});

describe("conversationFingerprint", () => {
  const base = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Weather?" },
    {
      role: "assistant",
      content: null,
      tool_calls: [{ id: "toolu_x_1", function: { name: "get", arguments: '{"a":1,"b":2}' } }],
    },
    { role: "tool", tool_call_id: "toolu_x_1", content: "sunny" },
  ];

  it("is the same after what clients legitimately change", () => {
    const echoed = [
      { role: "system", content: [{ type: "text", text: " Be brief.\n" }] },
      { role: "user", content: [{ type: "text", text: "Weather?" }] },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ id: "toolux1", function: { name: "get", arguments: '{ "b": 2, "a": 1 }' } }],
      },
      { role: "tool", tool_call_id: "TOOLUX1", content: "sunny " },
    ];
    expect(fingerprint(echoed, "sonnet", ["get"])).toBe(fingerprint(base, "sonnet", ["get"]));
  });

  it("differs for another question, system prompt, model, tool set, result or order", () => {
    const print = fingerprint(base, "sonnet", ["get"]);
    const changed = (i: number, patch: object) =>
      base.map((m, j) => (j === i ? { ...m, ...patch } : m));
    expect(fingerprint(changed(1, { content: "Time?" }), "sonnet", ["get"])).not.toBe(print);
    expect(fingerprint(changed(0, { content: "Be long." }), "sonnet", ["get"])).not.toBe(print);
    expect(fingerprint(changed(3, { content: "rain" }), "sonnet", ["get"])).not.toBe(print);
    expect(fingerprint(base, "haiku", ["get"])).not.toBe(print);
    expect(fingerprint(base, "sonnet", ["get", "put"])).not.toBe(print);
    expect(fingerprint([...base].reverse(), "sonnet", ["get"])).not.toBe(print);
  });
});
