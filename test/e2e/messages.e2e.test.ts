/**
 * The Anthropic Messages surface end to end: the proxy as a real process on each runtime (see
 * harness.ts), driven by the official `@anthropic-ai/sdk` (key sent as `x-api-key`), running the
 * real pinned `claude` CLI against the fake Anthropic API. About 8 CLI runs per runtime.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  clientSystemText,
  type FakeAnthropic,
  lastUserText,
  startFakeAnthropic,
} from "../fixtures/fake-anthropic.ts";
import {
  claudeProcesses,
  type E2eDirs,
  killPids,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  proxyTempDirs,
  RUNTIMES,
  startProxy,
  waitForNoClaude,
  waitForNoLeftovers,
} from "./harness.ts";
import { heads, turns } from "./tools-helpers.ts";

const KEY = "sk-messages-e2e";

let fake: FakeAnthropic;
let dirs: E2eDirs;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  dirs = await makeE2eDirs();
});
afterAll(async () => {
  await fake?.close();
  await dirs?.cleanup();
});

/** The error a promise rejects with. */
async function rejection(
  promise: Promise<unknown>,
): Promise<InstanceType<typeof Anthropic.APIError>> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Anthropic.APIError) return error;
    throw error;
  }
  throw new Error("expected an APIError");
}

const WEATHER: Anthropic.Tool = {
  name: "get_weather",
  description: "Current weather for a city",
  input_schema: {
    type: "object",
    properties: { city: { type: "string" }, days: { type: "integer" } },
    required: ["city"],
  },
};

if (RUNTIMES.length === 0) {
  describe("e2e", () => {
    it.skip("no runtime selected (E2E_RUNTIMES)", () => {});
  });
}

for (const runtime of RUNTIMES) {
  describe(`Anthropic Messages end to end on ${runtime}`, () => {
    let proxy: ProxyProcess;
    let client: Anthropic;
    let tmp: string;
    let started = 0;

    beforeAll(async () => {
      started = performance.now();
      tmp = join(dirs.tmp, `messages-${runtime}`);
      await mkdir(tmp);
      proxy = await startProxy(runtime, {
        env: proxyEnv(fake.url, { home: dirs.home, tmp }),
        args: ["--kill-grace", "1000", "--api-key", KEY],
      });
      // The SDK sends the key as x-api-key, with anthropic-version.
      client = new Anthropic({
        baseURL: proxy.origin,
        apiKey: KEY,
        maxRetries: 0,
        timeout: 60_000,
      });
    });
    afterEach(async () => {
      fake.reset();
      if (proxy === undefined) return;
      const pids = await waitForNoClaude({ pid: proxy.process.pid, dir: tmp }, 5_000);
      killPids(pids);
      expect(pids, "claude processes left behind").toEqual([]);
      expect(await waitForNoLeftovers(tmp, 5_000), "run dirs left behind").toEqual([]);
    });
    afterAll(async () => {
      await proxy?.stop();
      if (tmp !== undefined) {
        expect(proxyTempDirs(tmp), "proxy temp dir after stop").toEqual([]);
        const pids = claudeProcesses({ dir: tmp });
        killPids(pids);
        expect(pids, "claude processes after stop").toEqual([]);
      }
      console.log(
        `[e2e messages] ${runtime}: ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    });

    it("messages.create: a Message with text, stop_reason, usage and the requested model", async () => {
      fake.script({
        content: [{ type: "text", text: "Hello from the fake." }],
        usage: {
          input_tokens: 100,
          cache_read_input_tokens: 30,
          cache_creation_input_tokens: 20,
          output_tokens: 7,
        },
      });
      const message = await client.messages.create({
        model: "claude-sonnet-5-5",
        max_tokens: 1000,
        system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }],
        messages: [{ role: "user", content: "Say hello" }],
        metadata: { user_id: "e2e" },
      });
      expect(message).toMatchObject({
        type: "message",
        role: "assistant",
        model: "claude-sonnet-5-5",
        content: [{ type: "text", text: "Hello from the fake." }],
        stop_reason: "end_turn",
        stop_sequence: null,
        usage: {
          input_tokens: 100,
          output_tokens: 7,
          cache_read_input_tokens: 30,
          cache_creation_input_tokens: 20,
        },
      });
      expect(message.id).toMatch(/^msg_/);
      expect(fake.requests).toHaveLength(1);
      expect(lastUserText(fake.requests[0]?.body)).toBe("Say hello");
      expect(clientSystemText(fake.requests[0]?.body)).toBe("Be brief.");
    });

    it("messages.stream: text events in order and the final message", async () => {
      const text = "The quick brown fox jumps over the lazy dog.";
      fake.script({ content: [{ type: "text", text }], chunkSize: 5, usage: { output_tokens: 9 } });
      const deltas: string[] = [];
      const stream = client.messages
        .stream({
          model: "sonnet",
          max_tokens: 1000,
          messages: [{ role: "user", content: "Stream" }],
        })
        .on("text", (delta) => deltas.push(delta));
      const final = await stream.finalMessage();
      expect(deltas.length).toBeGreaterThan(1);
      expect(deltas.join("")).toBe(text);
      expect(final.content).toEqual([{ type: "text", text }]);
      expect(final.stop_reason).toBe("end_turn");
      expect(final.model).toBe("sonnet");
      expect(final.usage.output_tokens).toBe(9);
    });

    it("stop_sequences end the answer where one first appears; the CLI is stopped there", async () => {
      const text = "The answer is 42. END of the answer, which goes on and on.";
      fake.script({ content: [{ type: "text", text }], chunkSize: 4, delayMs: 40 });
      const deltas: string[] = [];
      const final = await client.messages
        .stream({
          model: "sonnet",
          max_tokens: 1000,
          stop_sequences: ["never", "END"],
          messages: [{ role: "user", content: "What is the answer?" }],
        })
        .on("text", (delta) => deltas.push(delta))
        .finalMessage();
      expect(deltas.join("")).toBe("The answer is 42. ");
      expect(final.content).toEqual([{ type: "text", text: "The answer is 42. " }]);
      expect(final.stop_reason).toBe("stop_sequence");
      expect(final.stop_sequence).toBe("END");
      // Whole answers too (afterEach checks that no claude process is left).
      fake.script({ content: [{ type: "text", text }], chunkSize: 4, delayMs: 40 });
      const whole = await client.messages.create({
        model: "sonnet",
        max_tokens: 1000,
        stop_sequences: ["42"],
        messages: [{ role: "user", content: "What is the answer?" }],
      });
      expect(whole.content).toEqual([{ type: "text", text: "The answer is " }]);
      expect(whole.stop_reason).toBe("stop_sequence");
      expect(whole.stop_sequence).toBe("42");
    });

    it("streams Anthropic's exact SSE events over plain HTTP", async () => {
      fake.script({ content: [{ type: "text", text: "Hi there" }], chunkSize: 3 });
      const response = await fetch(`${proxy.url}/messages`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-api-key": KEY,
          "anthropic-version": "2023-06-01",
        },
        body: JSON.stringify({
          model: "haiku",
          max_tokens: 100,
          stream: true,
          messages: [{ role: "user", content: "Hi" }],
        }),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
      const frames = (await response.text())
        .split("\n\n")
        .filter((f) => f.trim() !== "" && !f.startsWith(":"))
        .map((f) => {
          const event = /^event: (.+)$/m.exec(f)?.[1];
          const data = JSON.parse(/^data: (.+)$/m.exec(f)?.[1] ?? "null");
          expect(data.type).toBe(event);
          return data;
        });
      const types = frames.map((f) => f.type).filter((t) => t !== "ping");
      expect(types[0]).toBe("message_start");
      expect(types.slice(-4)).toEqual([
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
      ]);
      expect(types[1]).toBe("content_block_start");
      expect(
        frames
          .filter((f) => f.type === "content_block_delta")
          .map((f) => f.delta.text)
          .join(""),
      ).toBe("Hi there");
      expect(frames.find((f) => f.type === "message_delta")?.delta).toEqual({
        stop_reason: "end_turn",
        stop_sequence: null,
      });
    });

    it("a tool loop: tool_use, then the tool_result continues the same CLI run", async () => {
      const input = { city: "Paris", days: 3 };
      fake.script({
        content: [
          { type: "text", text: "Let me check." },
          { type: "tool_use", id: "toolu_msg_one", name: "mcp__client__get_weather", input },
        ],
      });
      const question: Anthropic.MessageParam = { role: "user", content: "Weather in Paris?" };
      const first = await client.messages.create({
        model: "sonnet",
        max_tokens: 1000,
        messages: [question],
        tools: [WEATHER],
      });
      expect(first.stop_reason).toBe("tool_use");
      expect(first.content).toEqual([
        { type: "text", text: "Let me check." },
        { type: "tool_use", id: "toolu_msg_one", name: "get_weather", input },
      ]);
      expect(heads(fake.requests)).toBe(1);

      fake.script({ content: [{ type: "text", text: "Sunny in Paris." }] });
      const second = await client.messages.create({
        model: "sonnet",
        max_tokens: 1000,
        messages: [
          question,
          { role: "assistant", content: first.content },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "toolu_msg_one", content: "sunny, 21 °C" },
            ],
          },
        ],
        tools: [WEATHER],
      });
      expect(second.stop_reason).toBe("end_turn");
      expect(second.content).toEqual([{ type: "text", text: "Sunny in Paris." }]);
      // The same CLI process answered: no new session, one more API request.
      expect(heads(fake.requests)).toBe(1);
      expect(fake.requests).toHaveLength(2);
      expect(turns(fake.requests[1]?.body)).toEqual([
        { role: "user", blocks: ["text:Weather in Paris?"] },
        {
          role: "assistant",
          blocks: ["text:Let me check.", "tool_use:toolu_msg_one:mcp__client__get_weather"],
        },
        { role: "user", blocks: ["tool_result:toolu_msg_one:sunny, 21 °C"] },
      ]);
    });

    it("a streamed tool loop with thinking passed back: the same CLI run continues", async () => {
      const input = { city: "Bern" };
      fake.script({
        content: [
          { type: "thinking", thinking: "I need the weather." },
          { type: "tool_use", id: "toolu_msg_think", name: "mcp__client__get_weather", input },
        ],
        chunkSize: 4,
      });
      const question: Anthropic.MessageParam = { role: "user", content: "Weather in Bern?" };
      const ask = {
        model: "sonnet",
        max_tokens: 8000,
        thinking: { type: "enabled" as const, budget_tokens: 2000 },
        tools: [WEATHER],
      };
      const first = await client.messages.stream({ ...ask, messages: [question] }).finalMessage();
      expect(first.stop_reason).toBe("tool_use");
      expect(first.content).toEqual([
        { type: "thinking", thinking: "I need the weather.", signature: expect.any(String) },
        { type: "tool_use", id: "toolu_msg_think", name: "get_weather", input },
      ]);

      fake.script({ content: [{ type: "text", text: "Cold in Bern." }] });
      const second = await client.messages
        .stream({
          ...ask,
          messages: [
            question,
            { role: "assistant", content: first.content },
            {
              role: "user",
              content: [{ type: "tool_result", tool_use_id: "toolu_msg_think", content: "-3 °C" }],
            },
          ],
        })
        .finalMessage();
      expect(second.content).toEqual([{ type: "text", text: "Cold in Bern." }]);
      expect(heads(fake.requests)).toBe(1);
      expect(fake.requests).toHaveLength(2);
      expect(turns(fake.requests[1]?.body).at(-1)).toEqual({
        role: "user",
        blocks: ["tool_result:toolu_msg_think:-3 °C"],
      });
    });

    it("thinking: streamed thinking and signature deltas, thinking blocks in the final message", async () => {
      fake.script({
        content: [
          { type: "thinking", thinking: "The user wants a number." },
          { type: "text", text: "42" },
        ],
      });
      const thoughts: string[] = [];
      const stream = client.messages
        .stream({
          model: "opus",
          max_tokens: 20_000,
          thinking: { type: "enabled", budget_tokens: 16_000 },
          messages: [{ role: "user", content: "Answer?" }],
        })
        .on("thinking", (delta) => thoughts.push(delta));
      const final = await stream.finalMessage();
      expect(thoughts.join("")).toBe("The user wants a number.");
      expect(final.content).toHaveLength(2);
      expect(final.content[0]).toMatchObject({
        type: "thinking",
        thinking: "The user wants a number.",
        signature: expect.stringMatching(/.+/),
      });
      expect(final.content[1]).toEqual({ type: "text", text: "42" });
      // budget 16,000 < 16,384 → --effort medium, sent upstream as output_config.effort.
      expect(fake.requests[0]?.body.output_config?.effort).toBe("medium");
    });

    it("errors in Anthropic's shape: unknown model 404, bad body 400, wrong key 401", async () => {
      const unknown = await rejection(
        client.messages.create({
          model: "no-such-model",
          max_tokens: 10,
          messages: [{ role: "user", content: "hi" }],
        }),
      );
      expect(unknown).toBeInstanceOf(Anthropic.NotFoundError);
      expect(unknown.status).toBe(404);
      expect(unknown.error).toMatchObject({
        type: "error",
        error: { type: "not_found_error", message: expect.stringContaining("no-such-model") },
      });
      expect(unknown.requestID).toMatch(/.+/);

      const stranger = new Anthropic({ baseURL: proxy.origin, apiKey: "wrong", maxRetries: 0 });
      const denied = await rejection(
        stranger.messages.create({
          model: "sonnet",
          max_tokens: 10,
          messages: [{ role: "user", content: "hi" }],
        }),
      );
      expect(denied).toBeInstanceOf(Anthropic.AuthenticationError);
      expect(denied.error).toMatchObject({ error: { type: "authentication_error" } });
      expect(fake.requests).toHaveLength(0);
    });

    it("an upstream overload stays 529 overloaded_error, at once", async () => {
      fake.setHandler(() => ({
        error: {
          status: 529,
          type: "overloaded_error",
          message: "Overloaded",
          retryAfterSeconds: 10,
        },
      }));
      const t0 = performance.now();
      const error = await rejection(
        client.messages.create({
          model: "sonnet",
          max_tokens: 10,
          messages: [{ role: "user", content: "hi" }],
        }),
      );
      expect(performance.now() - t0).toBeLessThan(5_000);
      expect(error.status).toBe(529);
      expect(error.error).toMatchObject({ type: "error", error: { type: "overloaded_error" } });
      expect(error.headers?.get("retry-after")).toBeTruthy();
    });

    it("a stream the upstream drops mid-answer ends with an error event the SDK raises", async () => {
      fake.script(
        // message_start, content_block_start, ping, then 3 text deltas: the socket dies. Paced,
        // so that the CLI prints the deltas before the drop (see faults.e2e.test.ts).
        {
          content: [{ type: "text", text: "Partial answer that never ends" }],
          dropAfterEvents: 6,
          delayMs: 150,
        },
        // The CLI's retry gets a complete answer, which must not be appended.
        { content: [{ type: "text", text: "A different complete answer" }] },
      );
      const deltas: string[] = [];
      const stream = client.messages
        .stream({ model: "sonnet", max_tokens: 100, messages: [{ role: "user", content: "drop" }] })
        .on("text", (delta) => deltas.push(delta));
      const error = await rejection(stream.finalMessage());
      expect(error.error).toMatchObject({
        type: "error",
        error: { type: "api_error", message: expect.stringContaining("dropped") },
      });
      expect(["Part", "Partial ", "Partial answ"]).toContain(deltas.join(""));
    });

    it("count_tokens is a clear 501; models.list answers in Anthropic's shape", async () => {
      const error = await rejection(
        client.messages.countTokens({
          model: "sonnet",
          messages: [{ role: "user", content: "hi" }],
        }),
      );
      expect(error.status).toBe(501);
      expect(error.message).toContain("cannot count tokens");
      const ids: string[] = [];
      for await (const model of client.models.list()) {
        expect(model.type).toBe("model");
        ids.push(model.id);
      }
      expect(ids).toEqual(expect.arrayContaining(["opus", "sonnet", "haiku"]));
      expect((await client.models.retrieve("opus")).id).toBe("opus");
    });
  });
}
