import { describe, expect, it } from "vitest";
import type { TurnEnd, TurnEvent, Usage } from "../../src/engine/events.ts";
import { stopAtSequences } from "../../src/engine/stops.ts";
import { postChat, stubApp } from "./stub-app.ts";

const usage: Usage = {
  input_tokens: 7,
  output_tokens: 0,
  cache_read_input_tokens: 0,
  cache_creation_input_tokens: 0,
};

const end: TurnEnd = {
  kind: "end",
  stopReason: "end_turn",
  usage,
  toolCalls: [],
  result: null,
  costUsd: 0,
  compacted: false,
};

async function* from(events: TurnEvent[], closed: { value: boolean }) {
  try {
    yield* events;
  } finally {
    closed.value = true;
  }
}

async function run(events: TurnEvent[], stops: string[]) {
  const closed = { value: false };
  const out: TurnEvent[] = [];
  for await (const event of stopAtSequences(from(events, closed), stops, () => usage)) {
    out.push(event);
  }
  const text = out
    .filter((e) => e.kind === "text")
    .map((e) => (e.kind === "text" ? e.text : ""))
    .join("");
  return { out, text, last: out.at(-1), closed: closed.value };
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const texts = (...parts: string[]): TurnEvent[] => parts.map((text) => ({ kind: "text", text }));

describe("stopAtSequences", () => {
  it("cuts at a sequence split across deltas and ends with stop_sequence, closing the source", async () => {
    const { text, last, closed } = await run(
      [...texts("Hello wo", "rld, and", " more"), end],
      ["world"],
    );
    expect(text).toBe("Hello ");
    expect(last).toMatchObject({
      kind: "end",
      stopReason: "stop_sequence",
      stopSequence: "world",
      result: null,
      usage,
    });
    expect(closed).toBe(true);
  });

  it("picks the earliest sequence, and the longest of those starting at one place", async () => {
    expect((await run([...texts("a-b-c"), end], ["c", "b"])).last).toMatchObject({
      stopSequence: "b",
    });
    expect((await run([...texts("xabcd"), end], ["ab", "abc"])).last).toMatchObject({
      stopSequence: "abc",
    });
  });

  it("holds back only what could still start a sequence, and flushes it before other events and at the end", async () => {
    const { out } = await run(
      [...texts("abcde"), { kind: "thinking", text: "hm" }, ...texts("fgh"), end],
      ["zzz"],
    );
    expect(out).toEqual([
      { kind: "text", text: "abc" },
      { kind: "text", text: "de" },
      { kind: "thinking", text: "hm" },
      { kind: "text", text: "f" },
      { kind: "text", text: "gh" },
      end,
    ]);
  });

  it("never splits a surrogate pair (an emoji) between two deltas", async () => {
    const { out, text } = await run([...texts("ab😀", "cd"), end], ["XY"]);
    expect(text).toBe("ab😀cd");
    for (const event of out) {
      // No lone surrogate at either end of a delta.
      if (event.kind === "text") expect(event.text).not.toMatch(LONE_SURROGATE);
    }
  });

  it("passes everything through unchanged without sequences (or with empty ones only)", async () => {
    const events = [...texts("a", "b"), end];
    expect((await run(events, [])).out).toEqual(events);
    expect((await run(events, [""])).out).toEqual(events);
  });
});

describe("chat completions honour `stop` (recorded text run: 'Hello world!')", () => {
  it("content ends before the stop sequence, finish_reason stop", async () => {
    const stub = await stubApp();
    try {
      const response = await postChat(stub.app, {
        model: "sonnet",
        messages: [{ role: "user", content: "Hi" }],
        stop: ["wor"],
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as {
        choices: Array<{ message: { content: string }; finish_reason: string }>;
      };
      expect(body.choices[0]?.message.content).toBe("Hello ");
      expect(body.choices[0]?.finish_reason).toBe("stop");
    } finally {
      await stub.close();
    }
  });
});
