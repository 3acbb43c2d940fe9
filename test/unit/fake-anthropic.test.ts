import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BASE_ARGS, type ClaudeRun, claudeBin, runClaude } from "../fixtures/claude-cli.ts";
import {
  clientSystemText,
  type FakeAnthropic,
  lastUserText,
  type RecordedRequest,
  startFakeAnthropic,
} from "../fixtures/fake-anthropic.ts";

/** Time allowed for one real CLI run (~0.7 s normally, more with retries). */
const CLI_TIMEOUT = 30_000;

let fake: FakeAnthropic;
beforeAll(async () => {
  fake = await startFakeAnthropic();
});
afterEach(() => fake.reset());
afterAll(() => fake.close());

/** The CLI release that made a run (from its `init` event). */
function cliVersion(run: ClaudeRun): string {
  return String(run.events.find((e) => e.subtype === "init")?.claude_code_version);
}

/** Parses an SSE body into its events. */
function parseSse(text: string): { event: string; data: Record<string, unknown> }[] {
  return text
    .split("\n\n")
    .filter((frame) => frame.trim() !== "")
    .map((frame) => {
      const lines = frame.split("\n");
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? "";
      const data = lines.find((l) => l.startsWith("data: "))?.slice(6) ?? "{}";
      return { event, data: JSON.parse(data) as Record<string, unknown> };
    });
}

/** Posts a Messages API body to the fake. */
function post(body: unknown, path = "/v1/messages?beta=true"): Promise<Response> {
  return fetch(`${fake.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

const userBody = (text: string, stream = true) => ({
  model: "claude-test",
  stream,
  messages: [
    {
      role: "user",
      content: [
        { type: "text", text: "<system-reminder>\nToday is a day.\n</system-reminder>\n\n" },
        { type: "text", text },
      ],
    },
  ],
});

describe("fake Anthropic API (over HTTP)", () => {
  it("streams text, thinking and tool_use blocks in the API's SSE format", async () => {
    fake.script({
      content: [
        { type: "thinking", thinking: "hmm" },
        { type: "text", text: "Hello world" },
        { type: "tool_use", name: "lookup", input: { q: "x" } },
      ],
      usage: { input_tokens: 7, output_tokens: 9, cache_read_input_tokens: 3 },
    });
    const res = await post(userBody("hi"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = parseSse(await res.text());
    for (const e of events) expect(e.data.type).toBe(e.event);
    expect(events.map((e) => e.event)).toEqual([
      "message_start",
      "content_block_start",
      "ping",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    expect(events[0]?.data).toMatchObject({
      message: {
        id: "msg_fake_1",
        model: "claude-test",
        usage: { input_tokens: 7, cache_read_input_tokens: 3, cache_creation_input_tokens: 0 },
      },
    });
    expect(events[11]?.data).toMatchObject({
      index: 2,
      content_block: { type: "tool_use", id: "toolu_fake_1", name: "lookup", input: {} },
    });
    const json = events
      .filter((e) => (e.data.delta as { type?: string })?.type === "input_json_delta")
      .map((e) => (e.data.delta as { partial_json: string }).partial_json)
      .join("");
    expect(JSON.parse(json)).toEqual({ q: "x" });
    expect(events[4]?.data).toMatchObject({ delta: { type: "signature_delta" } });
    expect(events[15]?.data).toMatchObject({
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: { output_tokens: 9 },
    });
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]?.body.model).toBe("claude-test");
  });

  it("answers a non-streaming request with a message object, and echoes by default", async () => {
    const res = await post(userBody("ping me", false));
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toMatchObject({
      id: "msg_fake_1",
      type: "message",
      role: "assistant",
      content: [{ type: "text", text: "echo: ping me" }],
      stop_reason: "end_turn",
      usage: { input_tokens: 10 },
    });
  });

  it("answers errors in the API's error shape with request-id and retry-after", async () => {
    fake.script({
      error: { status: 429, type: "rate_limit_error", message: "slow", retryAfterSeconds: 3 },
    });
    const res = await post(userBody("x"));
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("3");
    const requestId = res.headers.get("request-id");
    expect(await res.json()).toEqual({
      type: "error",
      error: { type: "rate_limit_error", message: "slow" },
      request_id: requestId,
    });
  });

  it("uses the handler when the queue is empty, and answers other paths", async () => {
    fake.setHandler((req, index) => ({
      content: [{ type: "text", text: `#${index} ${lastUserText(req.body)}` }],
    }));
    fake.script({ content: [{ type: "text", text: "scripted" }] });
    const a = await (await post(userBody("a", false))).json();
    const b = await (await post(userBody("b", false))).json();
    expect([a.content[0].text, b.content[0].text]).toEqual(["scripted", "#1 b"]);
    const count = await post(userBody("c", false), "/v1/messages/count_tokens?beta=true");
    expect(await count.json()).toEqual({ input_tokens: expect.any(Number) });
    expect((await fetch(fake.url, { method: "HEAD" })).status).toBe(200);
    expect(fake.requests).toHaveLength(2);
    expect(fake.allRequests.map((r) => r.method)).toEqual(["POST", "POST", "POST", "HEAD"]);
  });

  it("drops a stream after N events, and close() ends hanging requests", async () => {
    const other = await startFakeAnthropic();
    other.script(
      { content: [{ type: "text", text: "abcdefgh" }], dropAfterEvents: 3 },
      { hang: true },
    );
    const res = await fetch(`${other.url}/v1/messages`, {
      method: "POST",
      body: JSON.stringify(userBody("x")),
    });
    await expect(res.text()).rejects.toThrow();
    const hanging = fetch(`${other.url}/v1/messages`, {
      method: "POST",
      body: JSON.stringify(userBody("y")),
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await other.close();
    await expect(hanging).rejects.toThrow();
  });

  it("extracts the user text and the client's system prompt", () => {
    expect(lastUserText(userBody("  the question "))).toBe("the question");
    expect(lastUserText({ messages: [{ role: "user", content: "plain" }] })).toBe("plain");
    const system = [
      { type: "text", text: "x-anthropic-billing-header: cc_version=2.1.197;" },
      { type: "text", text: "You are a Claude agent, built on Anthropic's Claude Agent SDK." },
      { type: "text", text: "Be brief." },
    ];
    expect(clientSystemText({ system })).toBe("Be brief.");
  });
});

describe("the real CLI against the fake", () => {
  it("finds the CLI binary", () => {
    expect(claudeBin()).toMatch(/claude(\.exe)?$/);
  });

  it(
    "streams a text answer as text_delta events and records the request",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "fake-anthropic-test-"));
      try {
        const promptFile = join(dir, "system.txt");
        await writeFile(promptFile, "You answer tersely.");
        fake.script({
          content: [{ type: "text", text: "Hello from the fake" }],
          chunkSize: 5,
          usage: { input_tokens: 12, output_tokens: 4, cache_read_input_tokens: 100 },
        });
        const run = await runClaude(fake.url, {
          args: [...BASE_ARGS, "--system-prompt-file", promptFile],
          stdin: "What is up?",
        });
        const deltas = run.events
          .filter((e) => e.type === "stream_event" && e.event.delta?.type === "text_delta")
          .map((e) => e.event.delta.text);
        expect(deltas).toEqual(["Hello", " from", " the ", "fake"]);
        const result = run.events.at(-1);
        expect(result).toMatchObject({
          type: "result",
          is_error: false,
          result: "Hello from the fake",
          usage: { input_tokens: 12, output_tokens: 4, cache_read_input_tokens: 100 },
        });
        expect(run.exitCode).toBe(0);

        expect(fake.requests).toHaveLength(1);
        const req = fake.requests[0];
        expect(req?.path).toBe("/v1/messages?beta=true");
        expect(req?.headers.authorization).toBe("Bearer test");
        expect(req?.body.stream).toBe(true);
        expect(lastUserText(req?.body)).toBe("What is up?");
        expect(clientSystemText(req?.body)).toBe("You answer tersely.");
        expect(req?.body.tools).toEqual([]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    CLI_TIMEOUT,
  );

  it(
    "passes a thinking block through as thinking_delta events",
    async () => {
      fake.script({
        content: [
          { type: "thinking", thinking: "Considering the greeting." },
          { type: "text", text: "Hi!" },
        ],
      });
      const run = await runClaude(fake.url);
      const deltas = run.events
        .filter((e) => e.type === "stream_event" && e.event.type === "content_block_delta")
        .map((e) => e.event.delta);
      const thinking = deltas.filter((d) => d.type === "thinking_delta").map((d) => d.thinking);
      expect(thinking.join("")).toBe("Considering the greeting.");
      expect(deltas.some((d) => d.type === "signature_delta")).toBe(true);
      expect(run.events.at(-1)).toMatchObject({ type: "result", is_error: false, result: "Hi!" });
    },
    CLI_TIMEOUT,
  );

  /** The `anthropic-beta` list of a recorded request. */
  const betas = (req: RecordedRequest | undefined): string[] =>
    (req?.headers["anthropic-beta"] ?? "").split(",").filter((b) => b !== "");

  /**
   * The betas each further request left out, after an upstream 400: 2.1.221 does not try
   * again; 2.1.332 tries once without `thinking-token-count-2026-05-13`, then once more
   * without `thinking-display-updates-2026-08-18` (and `thinking.display`), same messages.
   */
  const BETAS_DROPPED_AFTER_400: Record<string, string[][]> = {
    "2.1.221": [],
    "2.1.332": [["thinking-token-count-2026-05-13"], ["thinking-display-updates-2026-08-18"]],
  };

  it(
    "reports a 400 the API keeps answering as an is_error result with api_error_status 400",
    async () => {
      fake.setHandler(() => ({
        error: { status: 400, type: "invalid_request_error", message: "bad request body" },
      }));
      const run = await runClaude(fake.url);
      expect(run.events.at(-1)).toMatchObject({
        type: "result",
        is_error: true,
        api_error_status: 400,
        result: expect.stringContaining("bad request body"),
      });
      // Not retried as a 5xx is (no api_retry), but a release may try again without betas.
      expect(run.events.some((e) => e.subtype === "api_retry")).toBe(false);
      const dropped = fake.requests.slice(1).map((req, i) => {
        const before = betas(fake.requests[i]);
        const after = betas(req);
        expect(before).toEqual(expect.arrayContaining(after));
        expect(req.body.messages).toEqual(fake.requests[0]?.body.messages);
        return before.filter((b) => !after.includes(b));
      });
      for (const names of dropped) expect(names.length).toBeGreaterThan(0);
      const known = BETAS_DROPPED_AFTER_400[cliVersion(run)];
      if (known !== undefined) expect(dropped).toEqual(known);
      else expect(fake.requests.length).toBeLessThanOrEqual(3);
    },
    CLI_TIMEOUT,
  );

  it(
    "after a single 400: 2.1.221 reports it, 2.1.332 answers from a request without a beta",
    async () => {
      fake.script({
        error: { status: 400, type: "invalid_request_error", message: "bad request body" },
      });
      const run = await runClaude(fake.url);
      const known = BETAS_DROPPED_AFTER_400[cliVersion(run)];
      if (known?.length === 0) {
        expect(run.events.at(-1)).toMatchObject({ is_error: true, api_error_status: 400 });
        expect(fake.requests).toHaveLength(1);
        return;
      }
      expect(run.events.at(-1)).toMatchObject({
        type: "result",
        is_error: false,
        result: "echo: hello",
      });
      expect(fake.requests).toHaveLength(2);
      const [first, second] = fake.requests;
      const left = betas(first).filter((b) => !betas(second).includes(b));
      if (known !== undefined) expect(left).toEqual(known[0]);
      expect(left.length).toBeGreaterThan(0);
    },
    CLI_TIMEOUT,
  );

  it(
    "retries a stream that drops mid-answer with another stream, after a bare message_stop",
    async () => {
      fake.script(
        // Paced, so that the CLI prints the two deltas before the drop.
        {
          content: [{ type: "text", text: "Partial answer here" }],
          dropAfterEvents: 5,
          delayMs: 150,
        },
        { content: [{ type: "text", text: "Fallback answer" }] },
      );
      const run = await runClaude(fake.url);
      const top = run.events.filter(
        (e) => e.type !== "stream_event" || e.parent_tool_use_id === null,
      );
      const shape = top.flatMap((e): string[] => {
        if (e.type === "stream_event") {
          const delta = e.event.delta;
          if (delta?.type === "text_delta") return [`text ${delta.text}`];
          if (e.event.type === "message_delta") return [`message_delta ${delta?.stop_reason}`];
          return [e.event.type];
        }
        if (e.subtype === "api_retry") return [`api_retry ${e.error_status}`];
        return [];
      });
      // 2.1.221 and 2.1.332: the dropped message "ends" without a message_delta (no
      // stop_reason); the retry is streamed as a new message. How many of the dropped
      // message's deltas the CLI prints before the drop depends on timing (0 to 2).
      const retryAt = shape.indexOf("api_retry null");
      expect(retryAt).toBeGreaterThan(0);
      const dropped = shape.slice(0, retryAt);
      expect(dropped[0]).toBe("message_start");
      expect(dropped.at(-1)).toBe("message_stop");
      expect(dropped.filter((s) => s.startsWith("message_delta"))).toEqual([]);
      const partial = dropped
        .filter((s) => s.startsWith("text "))
        .map((s) => s.slice(5))
        .join("");
      expect("Partial answer here".startsWith(partial)).toBe(true);
      expect(shape.slice(retryAt + 1)).toEqual([
        "message_start",
        "content_block_start",
        "text Fall",
        "text back",
        "text  ans",
        "text wer",
        "content_block_stop",
        "message_delta end_turn",
        "message_stop",
      ]);
      expect(run.events.at(-1)).toMatchObject({
        type: "result",
        is_error: false,
        result: "Fallback answer",
      });
      expect(fake.requests.map((r) => Boolean(r.body.stream))).toEqual([true, true]);
    },
    CLI_TIMEOUT,
  );
});
