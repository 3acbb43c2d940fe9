/**
 * The OpenAI Responses API end to end: the proxy as a real process (harness.ts) driven by the
 * official `openai` SDK's `responses.*`, running the real pinned `claude` CLI against the fake
 * Anthropic API. Plain and streamed answers, a tool loop continued once through
 * `previous_response_id` and once statelessly (both reuse the parked CLI run), structured
 * output, built-in tools refused, stored responses read, listed, deleted and kept across a
 * restart. About 10 CLI runs per runtime.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import OpenAI from "openai";
import type {
  FunctionTool,
  ResponseInputItem,
  ResponseStreamEvent,
} from "openai/resources/responses/responses";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type FakeAnthropic, startFakeAnthropic } from "../fixtures/fake-anthropic.ts";
import {
  claudeProcesses,
  type E2eDirs,
  killPids,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  RUNTIMES,
  startProxy,
  waitForNoClaude,
  waitForNoLeftovers,
} from "./harness.ts";
import { heads, turns } from "./tools-helpers.ts";

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

const WEATHER: FunctionTool = {
  type: "function",
  name: "get_weather",
  description: "The weather of a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string" } },
    required: ["city"],
    additionalProperties: false,
  },
  strict: true,
};

/** What the SDK throws for an HTTP error: status and OpenAI's error fields. */
async function httpError(promise: Promise<unknown>): Promise<{
  status: number;
  code: string | null | undefined;
  param: string | null | undefined;
  message: string;
}> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof OpenAI.APIError) {
      return {
        status: error.status ?? 0,
        code: error.code,
        param: error.param,
        message: error.message,
      };
    }
    throw error;
  }
  throw new Error("expected an HTTP error");
}

if (RUNTIMES.length === 0) {
  describe("e2e responses", () => {
    it.skip("no runtime selected (E2E_RUNTIMES)", () => {});
  });
}

for (const runtime of RUNTIMES) {
  describe(`responses API end to end on ${runtime}`, () => {
    let proxy: ProxyProcess;
    let client: OpenAI;
    let tmp: string;
    let dataDir: string;
    let started = 0;

    const start = async () => {
      proxy = await startProxy(runtime, {
        env: proxyEnv(fake.url, { home: dirs.home, tmp }),
        args: ["--kill-grace", "1000", "--data-dir", dataDir],
      });
      client = new OpenAI({ baseURL: proxy.url, apiKey: "key-a", maxRetries: 0, timeout: 60_000 });
    };

    beforeAll(async () => {
      started = performance.now();
      tmp = join(dirs.tmp, `responses-${runtime}`);
      dataDir = join(tmp, "data");
      await mkdir(tmp);
      await start();
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
      killPids(claudeProcesses({ dir: tmp }));
      console.log(
        `[e2e responses] ${runtime}: ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    });

    it("answers responses.create: output_text, usage, the stored response and its input items", async () => {
      fake.script({
        content: [{ type: "text", text: "Hello from the fake." }],
        usage: {
          input_tokens: 100,
          cache_read_input_tokens: 30,
          cache_creation_input_tokens: 20,
          output_tokens: 7,
        },
      });
      const response = await client.responses.create({
        model: "gpt-5",
        instructions: "Be brief.",
        input: "Say hello",
        metadata: { test: "plain" },
      });
      expect(response.id).toMatch(/^resp_/);
      expect(response.object).toBe("response");
      expect(response.status).toBe("completed");
      expect(response.model).toBe("gpt-5");
      expect(response.output_text).toBe("Hello from the fake.");
      expect(response.output).toHaveLength(1);
      expect(response.output[0]).toMatchObject({ type: "message", role: "assistant" });
      expect(response.usage).toEqual({
        input_tokens: 150,
        input_tokens_details: { cached_tokens: 30 },
        output_tokens: 7,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 157,
      });
      expect(response.metadata).toEqual({ test: "plain" });
      expect(response.instructions).toBe("Be brief.");
      expect(JSON.stringify(fake.requests[0]?.body.system)).toContain("Be brief.");

      const stored = await client.responses.retrieve(response.id);
      expect(stored.id).toBe(response.id);
      expect(stored.output_text).toBe("Hello from the fake.");
      const items = await client.responses.inputItems.list(response.id);
      expect(items.data).toHaveLength(1);
      expect(items.data[0]).toMatchObject({
        type: "message",
        role: "user",
        content: [{ type: "input_text", text: "Say hello" }],
      });

      // Another key sees nothing.
      const other = new OpenAI({ baseURL: proxy.url, apiKey: "key-b", maxRetries: 0 });
      expect((await httpError(other.responses.retrieve(response.id))).status).toBe(404);
      expect((await httpError(other.responses.delete(response.id))).status).toBe(404);

      await client.responses.delete(response.id);
      expect((await httpError(client.responses.retrieve(response.id))).status).toBe(404);
    });

    it("streams the documented event sequence with sequence numbers", async () => {
      fake.script({ content: [{ type: "text", text: "Streaming works fine." }], chunkSize: 5 });
      const stream = await client.responses.create({
        model: "sonnet",
        input: [{ role: "user", content: [{ type: "input_text", text: "Stream please" }] }],
        stream: true,
      });
      const events: ResponseStreamEvent[] = [];
      for await (const event of stream) events.push(event);
      const types = events.map((e) => e.type);
      const deltas = types.filter((t) => t === "response.output_text.delta").length;
      expect(deltas).toBeGreaterThan(1);
      expect(types).toEqual([
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        ...Array(deltas).fill("response.output_text.delta"),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
      ]);
      expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
      const text = events
        .flatMap((e) => (e.type === "response.output_text.delta" ? [e.delta] : []))
        .join("");
      expect(text).toBe("Streaming works fine.");
      const completed = events.at(-1);
      if (completed?.type !== "response.completed") throw new Error("no response.completed");
      expect(completed.response.status).toBe("completed");
      expect(completed.response.output[0]).toMatchObject({
        type: "message",
        content: [{ type: "output_text", text: "Streaming works fine." }],
      });
      expect((await client.responses.retrieve(completed.response.id)).output).toEqual(
        completed.response.output,
      );
    });

    it("runs a tool loop through previous_response_id on the same CLI run", async () => {
      fake.script(
        {
          content: [
            { type: "text", text: "Let me check." },
            {
              type: "tool_use",
              id: "toolu_resp_one",
              name: "mcp__client__get_weather",
              input: { city: "Paris" },
            },
          ],
        },
        { content: [{ type: "text", text: "It is sunny in Paris." }] },
      );
      const first = await client.responses.create({
        model: "sonnet",
        input: "What's the weather in Paris?",
        tools: [WEATHER],
      });
      expect(first.status).toBe("completed");
      const call = first.output.find((item) => item.type === "function_call");
      expect(call).toMatchObject({
        type: "function_call",
        call_id: "toolu_resp_one",
        name: "get_weather",
        arguments: '{"city":"Paris"}',
        status: "completed",
      });
      expect(first.output_text).toBe("Let me check.");
      expect(heads(fake.requests)).toBe(1);

      const second = await client.responses.create({
        model: "sonnet",
        previous_response_id: first.id,
        input: [
          { type: "function_call_output", call_id: "toolu_resp_one", output: "sunny, 21 °C" },
        ],
        tools: [WEATHER],
      });
      expect(second.output_text).toBe("It is sunny in Paris.");
      expect(second.previous_response_id).toBe(first.id);
      // Continued by the parked CLI: no new process, the result reached the API as a tool_result.
      expect(heads(fake.requests)).toBe(1);
      expect(fake.requests).toHaveLength(2);
      expect(JSON.stringify(fake.requests[1]?.body.messages)).toContain("sunny, 21 °C");
      const items = await client.responses.inputItems.list(second.id, { order: "asc" });
      expect(items.data.map((item) => item.type)).toEqual([
        "message",
        "message",
        "function_call",
        "function_call_output",
      ]);
    });

    it("runs a stateless tool loop (store: false, the whole input again) on the same CLI run", async () => {
      fake.script(
        {
          content: [
            {
              type: "tool_use",
              id: "toolu_resp_two",
              name: "mcp__client__get_weather",
              input: { city: "Rome" },
            },
          ],
        },
        { content: [{ type: "text", text: "Rome is warm." }] },
      );
      const input: ResponseInputItem[] = [{ role: "user", content: "Weather in Rome?" }];
      const first = await client.responses.create({
        model: "sonnet",
        input,
        tools: [WEATHER],
        store: false,
        stream: false,
      });
      const calls = first.output.filter((item) => item.type === "function_call");
      expect(calls.map((c) => c.call_id)).toEqual(["toolu_resp_two"]);
      expect((await httpError(client.responses.retrieve(first.id))).status).toBe(404);

      const second = await client.responses.create({
        model: "sonnet",
        input: [
          ...input,
          ...(first.output as ResponseInputItem[]),
          { type: "function_call_output", call_id: "toolu_resp_two", output: "28 °C" },
        ],
        tools: [WEATHER],
        store: false,
      });
      expect(second.output_text).toBe("Rome is warm.");
      expect(heads(fake.requests)).toBe(1);
      expect(fake.requests).toHaveLength(2);
      expect(turns(fake.requests[1]?.body).at(-1)?.role).toBe("user");
      expect(JSON.stringify(fake.requests[1]?.body.messages)).toContain("28 °C");
    });

    it("streams a tool loop with reasoning (responses.stream), passed back whole to the same CLI run", async () => {
      fake.script({
        content: [
          { type: "thinking", thinking: "I need the weather." },
          {
            type: "tool_use",
            id: "toolu_resp_think",
            name: "mcp__client__get_weather",
            input: { city: "Bern" },
          },
        ],
        chunkSize: 4,
      });
      const input: ResponseInputItem[] = [{ role: "user", content: "Weather in Bern?" }];
      const ask = { model: "sonnet", tools: [WEATHER], reasoning: { effort: "high" as const } };
      const types: string[] = [];
      const stream = client.responses.stream({ ...ask, input });
      stream.on("event", (event) => types.push(event.type));
      const first = await stream.finalResponse();
      expect(types).toContain("response.reasoning_summary_text.delta");
      expect(types).toContain("response.function_call_arguments.delta");
      expect(types.at(-1)).toBe("response.completed");
      expect(first.output.map((item) => item.type)).toEqual(["reasoning", "function_call"]);
      const reasoning = first.output[0];
      if (reasoning?.type !== "reasoning") throw new Error("no reasoning item");
      expect(reasoning.summary).toEqual([{ type: "summary_text", text: "I need the weather." }]);
      expect(reasoning.encrypted_content).toMatch(/^claude-thinking-signature:.+/);
      expect(first.output[1]).toMatchObject({
        call_id: "toolu_resp_think",
        arguments: '{"city":"Bern"}',
      });

      fake.script({ content: [{ type: "text", text: "Cold in Bern." }] });
      const second = await client.responses
        .stream({
          ...ask,
          input: [
            ...input,
            ...(first.output as ResponseInputItem[]),
            { type: "function_call_output", call_id: "toolu_resp_think", output: "-3 °C" },
          ],
        })
        .finalResponse();
      expect(second.output_text).toBe("Cold in Bern.");
      expect(heads(fake.requests)).toBe(1);
      expect(fake.requests).toHaveLength(2);
    });

    it("takes a reasoning item passed back in history (a new run with the earlier turns)", async () => {
      fake.script({
        content: [
          { type: "thinking", thinking: "A greeting." },
          { type: "text", text: "Hello." },
        ],
      });
      const input: ResponseInputItem[] = [{ role: "user", content: "Hi" }];
      const ask = { model: "sonnet", reasoning: { effort: "high" as const }, store: false };
      const first = await client.responses.create({ ...ask, input });
      expect(first.output.map((item) => item.type)).toEqual(["reasoning", "message"]);
      fake.script({ content: [{ type: "text", text: "Fine." }] });
      const second = await client.responses.create({
        ...ask,
        input: [
          ...input,
          ...(first.output as ResponseInputItem[]),
          { role: "user", content: "How are you?" },
        ],
      });
      expect(second.output_text).toBe("Fine.");
      // The signed thinking goes to the CLI with the history; the CLI itself does not send an
      // earlier turn's thinking to the API (seen on 2.1.332), so only the text is checked here.
      expect(turns(fake.requests[1]?.body)).toEqual([
        { role: "user", blocks: ["text:Hi"] },
        { role: "assistant", blocks: ["text:Hello."] },
        { role: "user", blocks: ["text:How are you?"] },
      ]);
    });

    it("answers text.format json_schema with the structured output", async () => {
      const person = { name: "Ada", age: 36 };
      const schema = {
        type: "object",
        properties: { name: { type: "string" }, age: { type: "integer" } },
        required: ["name", "age"],
        additionalProperties: false,
      };
      fake.setHandler((req) =>
        JSON.stringify(req.body.messages).includes("tool_result")
          ? { content: [{ type: "text", text: "Done." }] }
          : { content: [{ type: "tool_use", name: "StructuredOutput", input: person }] },
      );
      const response = await client.responses.create({
        model: "sonnet",
        input: "Describe Ada.",
        text: { format: { type: "json_schema", name: "person", schema, strict: true } },
      });
      expect(JSON.parse(response.output_text)).toStrictEqual(person);
      const offered = fake.requests[0]?.body.tools as Array<{
        name: string;
        input_schema: unknown;
      }>;
      expect(offered.map((t) => t.name)).toEqual(["StructuredOutput"]);
      expect(offered[0]?.input_schema).toEqual(schema);
    });

    it("refuses built-in tools and unknown previous responses in OpenAI's error shape", async () => {
      const builtIn = await httpError(
        client.responses.create({
          model: "sonnet",
          input: "Search the web",
          tools: [WEATHER, { type: "web_search_preview" }],
        }),
      );
      expect(builtIn).toMatchObject({ status: 400, code: "unsupported_value", param: "tools[1]" });
      expect(builtIn.message).toContain("web_search_preview");
      const unknown = await httpError(
        client.responses.create({ model: "sonnet", input: "x", previous_response_id: "resp_nope" }),
      );
      expect(unknown).toMatchObject({
        status: 400,
        code: "previous_response_not_found",
        param: "previous_response_id",
      });
      expect(fake.requests).toHaveLength(0);
    });

    it("keeps stored responses across a restart", async () => {
      fake.script({ content: [{ type: "text", text: "Remember me." }] });
      const response = await client.responses.create({ model: "sonnet", input: "Hi" });
      await proxy.stop();
      await start();
      const again = await client.responses.retrieve(response.id);
      expect(again.output_text).toBe("Remember me.");
      fake.script({ content: [{ type: "text", text: "Still here." }] });
      const next = await client.responses.create({
        model: "sonnet",
        previous_response_id: response.id,
        input: "And now?",
      });
      expect(next.output_text).toBe("Still here.");
      expect(turns(fake.requests[1]?.body).map((t) => t.role)).toEqual([
        "user",
        "assistant",
        "user",
      ]);
    });
  });
}
