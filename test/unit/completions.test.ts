import { describe, expect, it } from "vitest";
import { type CliEvent, parseLine } from "../../src/claude/events.ts";
import { LOGIN_HINT, type RetryPolicy } from "../../src/claude/status.ts";
import { CLIENT_TOOL_PREFIX } from "../../src/engine/bridge.ts";
import type { TurnEnd } from "../../src/engine/events.ts";
import { type TurnOptions as CompletionOptions, turnEvents } from "../../src/engine/turn.ts";
import { ProxyError } from "../../src/errors.ts";
import { finishReason, toChoiceDelta, toCompletionUsage } from "../../src/surfaces/chat/render.ts";
import type { ChoiceDelta, CompletionUsage, FinishReason } from "../../src/surfaces/chat/types.ts";

/** A turn event as the chat surface sees it: a delta, a retry, or the end. */
type CompletionPart =
  | { kind: "delta"; delta: ChoiceDelta }
  | { kind: "retrying"; attempt: number; delayMs: number }
  | {
      kind: "end";
      finishReason: FinishReason;
      usage: CompletionUsage;
      result: TurnEnd["result"];
      state: { toolCalls: TurnEnd["toolCalls"] };
      compacted: boolean;
    };

/** The turn's events as chat completion parts (chat's rendering of them). */
async function* completionParts(
  events: AsyncIterator<CliEvent, void, undefined>,
  opts: CompletionOptions,
): AsyncGenerator<CompletionPart, void, undefined> {
  for await (const event of turnEvents(events, opts)) {
    if (event.kind === "end") {
      yield {
        kind: "end",
        finishReason: finishReason(event.stopReason, event.toolCalls.length > 0),
        usage: toCompletionUsage(event.usage),
        result: event.result,
        state: { toolCalls: event.toolCalls },
        compacted: event.compacted,
      };
    } else if (event.kind === "retrying") {
      yield event;
    } else {
      const delta = toChoiceDelta(event);
      if (delta !== null) yield { kind: "delta", delta };
    }
  }
}

import { eventIterator, fixtureEvents, fixtureLines } from "./cli-fixtures.ts";

const failFast: RetryPolicy = { retryRateLimits: false, retryServerErrors: false };
const patient: RetryPolicy = { retryRateLimits: true, retryServerErrors: true };

function options(overrides: Partial<CompletionOptions> = {}): CompletionOptions {
  return { policy: failFast, toolPrefix: null, structuredOutput: false, ...overrides };
}

interface Outcome {
  parts: CompletionPart[];
  error: ProxyError | undefined;
}

async function collect(
  events: readonly CliEvent[] | AsyncIterator<CliEvent, void, undefined>,
  opts: CompletionOptions = options(),
): Promise<Outcome> {
  const iterator = Array.isArray(events)
    ? eventIterator(events)
    : (events as AsyncIterator<CliEvent, void, undefined>);
  const parts: CompletionPart[] = [];
  try {
    for await (const part of completionParts(iterator, opts)) parts.push(part);
  } catch (error) {
    if (!(error instanceof ProxyError)) throw error;
    return { parts, error };
  }
  return { parts, error: undefined };
}

function text(parts: readonly CompletionPart[]): string {
  return parts.map((p) => (p.kind === "delta" ? (p.delta.content ?? "") : "")).join("");
}

function line(value: unknown): CliEvent {
  const event = parseLine(JSON.stringify(value), 1);
  if (event === null) throw new Error("blank");
  return event;
}

/** The recorded 529 api_retry line of error-529.jsonl with another status. */
function retryWithStatus(status: number, error: string): CliEvent {
  const recorded = fixtureLines("error-529").find((l) => l.includes('"api_retry"'));
  if (recorded === undefined) throw new Error("no api_retry in error-529.jsonl");
  return line({ ...JSON.parse(recorded), error_status: status, error });
}

describe("completionParts over recorded runs", () => {
  it("gives the text as deltas, then one end part with stop and the usage", async () => {
    const { parts, error } = await collect(fixtureEvents("text"));
    expect(error).toBeUndefined();
    expect(parts.map((p) => p.kind)).toEqual(["delta", "delta", "end"]);
    expect(text(parts)).toBe("Hello world!");
    const end = parts.at(-1);
    if (end?.kind !== "end") throw new Error("no end part");
    expect(end.finishReason).toBe("stop");
    expect(end.usage).toEqual({
      prompt_tokens: 132,
      completion_tokens: 5,
      total_tokens: 137,
      prompt_tokens_details: { cached_tokens: 100 },
    });
    expect(end.result?.result).toBe("Hello world!");
  });

  it("keeps reading through the CLI's own tool loop to the final answer", async () => {
    const { parts, error } = await collect(
      fixtureEvents("tool-use"),
      options({ toolPrefix: CLIENT_TOOL_PREFIX }),
    );
    expect(error).toBeUndefined();
    expect(text(parts)).toBe("Let me run that.It printed hi.");
    const end = parts.at(-1);
    expect(end?.kind === "end" && end.finishReason).toBe("stop");
    expect(end?.kind === "end" && end.usage.completion_tokens).toBe(19);
  });

  it("answers 400 for an upstream invalid request, with the API's message", async () => {
    const { parts, error } = await collect(fixtureEvents("error-400"));
    expect(parts).toEqual([]);
    expect(error?.status).toBe(400);
    expect(error?.toJSON().error).toEqual({
      message: "messages: text content blocks must be non-empty",
      type: "invalid_request_error",
      param: null,
      code: "upstream_invalid_request",
    });
  });

  it("answers 401 with the login hint at the first 401 retry, without waiting", async () => {
    const events = fixtureEvents("error-401-retry");
    const iterator = eventIterator(events);
    let read = 0;
    const counting: AsyncIterator<CliEvent, void, undefined> = {
      next: async () => {
        read++;
        return iterator.next();
      },
    };
    const { error } = await collect(counting, options({ policy: patient }));
    expect(error?.status).toBe(401);
    expect(error?.type).toBe("authentication_error");
    expect(error?.message).toContain(LOGIN_HINT);
    // stopped at the api_retry line (the 3rd event), not at the result
    expect(read).toBe(events.findIndex((e) => e.type === "api_retry") + 1);
  });

  it("answers 429 with a Retry-After for an upstream rate limit", async () => {
    const { error } = await collect(fixtureEvents("error-429"));
    expect(error?.status).toBe(429);
    expect(error?.type).toBe("rate_limit_error");
    expect(error?.message).toContain("Number of requests has exceeded your rate limit");
    expect(error?.message).not.toMatch(/^API Error/);
    expect(Number(error?.headers()["Retry-After"])).toBeGreaterThan(0);
  });

  it("answers 503 with Retry-After when the API is overloaded (529)", async () => {
    const fast = await collect(fixtureEvents("error-529"));
    expect(fast.error?.status).toBe(503);
    expect(fast.error?.type).toBe("overloaded_error");
    // the CLI announced a 1000 ms retry delay
    expect(fast.error?.headers()).toEqual({ "Retry-After": "1" });

    const waited = await collect(fixtureEvents("error-529"), options({ policy: patient }));
    expect(waited.parts).toEqual([{ kind: "retrying", attempt: 1, delayMs: 1000 }]);
    expect(waited.error?.status).toBe(503);
    expect(waited.error?.headers()).toEqual({ "Retry-After": "1" });
  });

  it("lets the CLI retry a 429 when retryRateLimits is on, and answers after it", async () => {
    const events = [retryWithStatus(429, "rate_limit"), ...fixtureEvents("text").slice(2)];
    const patientRun = await collect(
      events,
      options({ policy: { ...failFast, retryRateLimits: true } }),
    );
    expect(patientRun.error).toBeUndefined();
    expect(patientRun.parts[0]).toEqual({ kind: "retrying", attempt: 1, delayMs: 1000 });
    expect(text(patientRun.parts)).toBe("Hello world!");

    const fastRun = await collect(events);
    expect(fastRun.error?.status).toBe(429);
    expect(fastRun.error?.headers()).toEqual({ "Retry-After": "1" });
  });

  it("fails with 502 cli_error when the stream drops and the fallback fails (drop-error.jsonl)", async () => {
    const { parts, error } = await collect(fixtureEvents("drop-error"));
    expect(text(parts)).toBe("Hello th");
    expect(error?.status).toBe(502);
    expect(error?.code).toBe("cli_error");
    expect(error?.message).toContain("ECONNRESET");
  });

  it("fails with 502 upstream_stream_dropped when a dropped answer was partly sent (drop-fallback.jsonl)", async () => {
    const { parts, error } = await collect(fixtureEvents("drop-fallback"));
    expect(text(parts)).toBe("Hello th");
    expect(error?.status).toBe(502);
    expect(error?.code).toBe("upstream_stream_dropped");
  });

  for (const name of ["drop-stream-retry", "drop-stream-retry.2.1.221"]) {
    it(`fails with 502 upstream_stream_dropped when a dropped answer was partly sent and the CLI streams a retry (${name}.jsonl)`, async () => {
      const { parts, error } = await collect(fixtureEvents(name));
      expect(text(parts)).toBe("Hello th");
      expect(parts.some((p) => p.kind === "end")).toBe(false);
      expect(error?.status).toBe(502);
      expect(error?.code).toBe("upstream_stream_dropped");
    });
  }

  it("fails with 502 cli_exited when the events end without a result", async () => {
    const events = fixtureEvents("text").filter((e) => e.type !== "result");
    const { parts, error } = await collect(events);
    expect(text(parts)).toBe("Hello world!");
    expect(parts.some((p) => p.kind === "end")).toBe(false);
    expect(error?.status).toBe(502);
    expect(error?.code).toBe("cli_exited");
  });

  it("sends the structured output as the content of a json_schema response", async () => {
    const recorded = fixtureEvents("text");
    const realResult = recorded.at(-1);
    if (realResult?.type !== "result") throw new Error("no result");
    const withStructured: CliEvent = { ...realResult, structured_output: { greeting: "hello" } };
    const { parts } = await collect(
      [...recorded.slice(0, -1), withStructured],
      options({ structuredOutput: true }),
    );
    // the streamed text is not the answer: only the structured output is
    expect(parts.filter((p) => p.kind === "delta")).toEqual([
      { kind: "delta", delta: { content: '{"greeting":"hello"}' } },
    ]);
  });
});

describe("completionParts with client tool calls", () => {
  it("ends at the message that called client tools, leaving the run unread", async () => {
    const stream = (event: Record<string, unknown>) =>
      line({ type: "stream_event", event, parent_tool_use_id: null });
    const events = [
      stream({
        type: "message_start",
        message: { id: "msg_t", model: "m", usage: { input_tokens: 9 } },
      }),
      stream({
        type: "content_block_start",
        index: 0,
        content_block: { type: "tool_use", id: "toolu_1", name: "mcp__client__lookup", input: {} },
      }),
      stream({
        type: "content_block_delta",
        index: 0,
        delta: { type: "input_json_delta", partial_json: '{"id":7}' },
      }),
      stream({ type: "content_block_stop", index: 0 }),
      stream({
        type: "message_delta",
        delta: { stop_reason: "tool_use" },
        usage: { output_tokens: 12 },
      }),
      stream({ type: "message_stop" }),
    ];
    const sentinel = line({ type: "result", subtype: "success", is_error: false, result: "later" });
    const iterator = eventIterator([...events, sentinel]);
    const { parts, error } = await collect(iterator, options({ toolPrefix: CLIENT_TOOL_PREFIX }));
    expect(error).toBeUndefined();
    const end = parts.at(-1);
    if (end?.kind !== "end") throw new Error("no end part");
    expect(end.finishReason).toBe("tool_calls");
    expect(end.result).toBeNull();
    expect(end.usage.prompt_tokens).toBe(9);
    expect(end.usage.completion_tokens).toBe(12);
    expect(end.state.toolCalls).toEqual([{ id: "toolu_1", name: "lookup", arguments: '{"id":7}' }]);
    // the run lives on: its next event is still there for the continuation
    const next = await iterator.next();
    expect(next.value).toEqual(sentinel);
  });
});

describe("compaction (compacted-after-400.jsonl: CLI 2.1.332 summarised after the API's 400)", () => {
  it("is refused with 400 context_length_exceeded unless autoCompact", async () => {
    const { parts, error } = await collect(fixtureEvents("compacted-after-400"));
    expect(error?.status).toBe(400);
    expect(error?.code).toBe("context_length_exceeded");
    expect(error?.message).toContain("--auto-compact");
    expect(parts.filter((p) => p.kind === "delta")).toEqual([]);
  });

  it("with autoCompact the answer ends with compacted: true", async () => {
    const { parts, error } = await collect(
      fixtureEvents("compacted-after-400"),
      options({ autoCompact: true }),
    );
    expect(error).toBeUndefined();
    const end = parts.at(-1);
    expect(end?.kind === "end" && end.compacted).toBe(true);
  });

  it("a plain answer is not compacted; a compaction is refused as soon as it starts", async () => {
    const plain = await collect(fixtureEvents("text"));
    const end = plain.parts.at(-1);
    expect(end?.kind === "end" && end.compacted).toBe(false);
    const local = await collect(fixtureEvents("prompt-too-long-local"), options());
    expect(local.error?.code).toBe("context_length_exceeded");
    // Recorded with compaction on: "compacting" comes before the CLI's own refusal.
    expect(local.error?.message).toContain("--auto-compact");
  });
});

describe("the upstream watch", () => {
  it("is told about connection failures, progress and the end of the leg", async () => {
    const calls: string[] = [];
    const upstream = {
      connectionFailed: (e: { attempt: number }) => calls.push(`failed ${e.attempt}`),
      reached: () => calls.push("reached"),
      close: () => calls.push("close"),
      baseUrl: "http://127.0.0.1:1",
    };
    const { error } = await collect(fixtureEvents("unreachable-refused"), options({ upstream }));
    expect(calls).toEqual(["failed 1", "close"]);
    expect(error?.code).toBe("upstream_unreachable");
    expect(error?.message).toContain("http://127.0.0.1:1");
    calls.length = 0;
    await collect(fixtureEvents("text"), options({ upstream }));
    expect(calls[0]).toBe("reached");
    expect(calls.at(-1)).toBe("close");
  });
});
