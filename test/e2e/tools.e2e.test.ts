/**
 * Issue 3 end to end: client tools as native tools (through the proxy's MCP bridge), tool
 * results by continuation (the same CLI run) and by replay (native history in a session
 * file), plain multi-turn history, images and structured output, and an agent framework
 * (the Vercel AI SDK) running a tool loop. The proxy runs as a real process (harness.ts) with
 * the real CLI against the fake Messages API.
 *
 * CLI runs are costly (~0.7 s, ~290 MiB each), so the full set (~18 runs) runs on the runtimes
 * named by E2E_TOOLS_FULL (default: node) and a smoke subset (a tool loop by continuation,
 * non-streaming and streaming, one by replay, images, the agent framework) on the others.
 * E2E_TOOLS_LOG=/path/prefix writes each proxy's log to `prefix.RUNTIME.log` (debugging).
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, stepCountIs, streamText, tool } from "ai";
import OpenAI from "openai";
import type {
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from "openai/resources/chat/completions";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  clientSystemText,
  type FakeAnthropic,
  type RecordedRequest,
  startFakeAnthropic,
} from "../fixtures/fake-anthropic.ts";
import {
  claudeProcesses,
  type E2eDirs,
  type E2eRuntime,
  killPids,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  proxyTempDirs,
  RUNTIMES,
  startProxy,
  tempLeftovers,
  waitForNoClaude,
  waitForNoLeftovers,
} from "./harness.ts";
import {
  apiError,
  assistantToolCallMessage,
  clientMessages,
  functionCalls,
  GIF_BASE64,
  heads,
  type ImageServer,
  imageBlocks,
  jsonlFilesUnder,
  PNG_BASE64,
  readChunks,
  startImageServer,
  streamedContent,
  streamedFinishReason,
  streamedToolCalls,
  toolCallDeltas,
  toolNames,
  toolResultText,
  turns,
} from "./tools-helpers.ts";

/** Runtimes that get every test; the others get the smoke subset. */
const FULL_RUNTIMES = (process.env.E2E_TOOLS_FULL ?? "node")
  .split(",")
  .map((s) => s.trim().toLowerCase());

/** How long a parked run waits for its tool results in these tests (`--tool-result-timeout`). */
const TOOL_RESULT_TIMEOUT_MS = 4_000;

/** The CLI's own MCP limits in the proxy's environment (the proxy must override them). */
const CLI_MCP_LIMIT_MS = 1_000;

const WEATHER_PARAMETERS = {
  type: "object",
  properties: {
    city: { type: "string", description: "City name" },
    days: { type: "integer", minimum: 1, maximum: 7 },
    hourly: { type: "boolean" },
    hours: { type: "array", items: { type: "integer" } },
    units: {
      type: "object",
      properties: {
        temperature: { type: "string", enum: ["C", "F"] },
        wind: { type: "string" },
      },
      required: ["temperature"],
    },
  },
  required: ["city"],
  additionalProperties: false,
};

const TIME_PARAMETERS = {
  type: "object",
  properties: { timezone: { type: "string" } },
  required: ["timezone"],
};

const TOOLS: ChatCompletionTool[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Current weather and forecast for a city",
      parameters: WEATHER_PARAMETERS,
    },
  },
  {
    type: "function",
    function: {
      name: "get_time",
      description: "Current time in a timezone",
      parameters: TIME_PARAMETERS,
    },
  },
];

const NO_RESPONSE_REQUESTED = "No response requested.";
const CONTINUE_FROM = "Continue from where you left off.";

let fake: FakeAnthropic;
let dirs: E2eDirs;
let images: ImageServer;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  dirs = await makeE2eDirs("claude-openai-proxy-e2e-tools-");
  images = await startImageServer({ "/pixel.gif": ["image/gif", GIF_BASE64] });
});
afterAll(async () => {
  await images?.close();
  await fake?.close();
  await dirs?.cleanup();
});

if (RUNTIMES.length === 0) {
  describe("e2e tools", () => {
    it.skip("no runtime selected (E2E_RUNTIMES)", () => {});
  });
}

/** The tool_use blocks of a Messages API message. */
// biome-ignore lint/suspicious/noExplicitAny: raw API message
function toolUses(message: any): Array<{ id: string; name: string; input: unknown }> {
  const content: unknown[] = Array.isArray(message?.content) ? message.content : [];
  return content.filter((b) => (b as { type?: string }).type === "tool_use") as Array<{
    id: string;
    name: string;
    input: unknown;
  }>;
}

/** The whole request body as text (for "nothing like X anywhere" checks). */
function bodyText(request: RecordedRequest | undefined): string {
  return JSON.stringify(request?.body ?? null);
}

function describeRuntime(runtime: E2eRuntime): void {
  const full = FULL_RUNTIMES.includes(runtime);
  /** Tests of the full set only. */
  const itFull = full ? it : it.skip;

  describe(`client tools, history, images, structured output on ${runtime}${full ? "" : " (smoke)"}`, () => {
    let proxy: ProxyProcess;
    let client: OpenAI;
    let tmp: string;
    let started = 0;

    /** Live `claude` processes of this proxy. */
    const claudes = () => claudeProcesses({ pid: proxy.process.pid, dir: tmp });

    /**
     * Makes the fake answer `text` from now on; the returned function gives the `claude`
     * processes that were alive when the fake answered (which CLI served the request).
     */
    function answerWith(text: string): () => number[] {
      let pids: number[] = [];
      fake.setHandler(() => {
        pids = claudes();
        return { content: [{ type: "text", text }] };
      });
      return () => pids;
    }

    /** No `claude` process of this proxy left and no run directory left. */
    async function expectClean(timeoutMs = 5_000): Promise<void> {
      const pids = await waitForNoClaude({ pid: proxy.process.pid, dir: tmp }, timeoutMs);
      killPids(pids);
      expect(pids, "claude processes left behind").toEqual([]);
      expect(await waitForNoLeftovers(tmp, timeoutMs), "run dirs left behind").toEqual([]);
    }

    beforeAll(async () => {
      started = performance.now();
      tmp = join(dirs.tmp, runtime);
      await mkdir(tmp);
      proxy = await startProxy(runtime, {
        env: {
          ...proxyEnv(fake.url, { home: dirs.home, tmp }),
          // A hostile environment: the CLI's own MCP limits far below the proxy's wait. The
          // proxy sets them for its child, so they never cut a parked run short.
          CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT: String(CLI_MCP_LIMIT_MS),
          MCP_TOOL_TIMEOUT: String(CLI_MCP_LIMIT_MS),
        },
        args: [
          "--kill-grace",
          "1000",
          "--tool-result-timeout",
          String(TOOL_RESULT_TIMEOUT_MS),
          "--image-fetch-allow-private",
        ],
      });
      client = new OpenAI({ baseURL: proxy.url, apiKey: "x", maxRetries: 0, timeout: 60_000 });
    });
    afterEach(async () => {
      fake.reset();
      // A test that failed half-way may leave a parked run: it ends after the tool-result wait.
      if (proxy !== undefined) await expectClean(TOOL_RESULT_TIMEOUT_MS + 4_000);
    });
    afterAll(async () => {
      await proxy?.stop();
      if (tmp !== undefined) {
        expect(proxyTempDirs(tmp), "proxy temp dir after stop").toEqual([]);
        const pids = claudeProcesses({ dir: tmp });
        killPids(pids);
        expect(pids, "claude processes after stop").toEqual([]);
      }
      // The proxy's session files never land in the CLI's own history (CLAUDE_CONFIG_DIR).
      expect(jsonlFilesUnder(join(dirs.home, ".claude"))).toEqual([]);
      if (process.env.E2E_TOOLS_LOG) {
        const { writeFileSync } = await import("node:fs");
        writeFileSync(`${process.env.E2E_TOOLS_LOG}.${runtime}.log`, proxy?.stderr() ?? "");
      }
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(`[e2e tools] ${runtime}: ${seconds} s`);
    });

    // ---------------------------------------------------------------- tool calls + continuation

    it("one call (non-streaming): typed arguments, then the result continues the same CLI run", async () => {
      const input = {
        city: "Paris",
        days: 3,
        hourly: true,
        hours: [6, 12, 18],
        units: { temperature: "C", wind: "kmh" },
      };
      fake.script({
        content: [
          { type: "text", text: "Let me check." },
          { type: "tool_use", id: "toolu_e2e_one", name: "mcp__client__get_weather", input },
        ],
      });
      const question: ChatCompletionMessageParam = {
        role: "user",
        content: "What's the weather in Paris?",
      };
      const first = await client.chat.completions.create({
        model: "sonnet",
        messages: [question],
        tools: TOOLS,
      });
      const choice = first.choices[0];
      expect(choice?.finish_reason).toBe("tool_calls");
      expect(choice?.message.content).toBe("Let me check.");
      const calls = functionCalls(choice?.message);
      expect(calls.map(({ id, name }) => ({ id, name }))).toEqual([
        { id: "toolu_e2e_one", name: "get_weather" },
      ]);
      // Typed values survive: integers stay integers, booleans, arrays and nested objects too.
      expect(JSON.parse(calls[0]?.arguments ?? "")).toStrictEqual(input);

      // The model was offered the client tools as native tools with their JSON Schemas.
      expect(fake.requests).toHaveLength(1);
      const offered = fake.requests[0]?.body.tools as Array<{
        name: string;
        input_schema: unknown;
      }>;
      // (The CLI sorts its tools by name.)
      expect(offered.map((t) => t.name).sort()).toEqual([
        "mcp__client__get_time",
        "mcp__client__get_weather",
      ]);
      const schemaOf = (name: string) => offered.find((t) => t.name === name)?.input_schema;
      expect(schemaOf("mcp__client__get_weather")).toEqual(WEATHER_PARAMETERS);
      expect(schemaOf("mcp__client__get_time")).toEqual(TIME_PARAMETERS);

      // The run waits for the result: one CLI alive, its run dir too.
      const parked = claudes();
      expect(parked).toHaveLength(1);
      expect(tempLeftovers(tmp)).toHaveLength(1);
      // The CLI sends one `HEAD /` when it starts.
      expect(heads(fake.requests)).toBe(1);
      const allBefore = fake.allRequests.length;

      const served = answerWith("It is sunny in Paris.");
      const second = await client.chat.completions.create({
        model: "sonnet",
        messages: [
          question,
          choice?.message as ChatCompletionMessageParam,
          { role: "tool", tool_call_id: "toolu_e2e_one", content: "sunny, 21 °C" },
        ],
        tools: TOOLS,
      });
      expect(second.choices[0]?.finish_reason).toBe("stop");
      expect(second.choices[0]?.message.content).toBe("It is sunny in Paris.");
      expect(second.choices[0]?.message.tool_calls ?? []).toEqual([]);

      // Served by the same process: no new CLI started, exactly one more API request.
      expect(served()).toEqual(parked);
      expect(heads(fake.requests)).toBe(1);
      expect(fake.allRequests).toHaveLength(allBefore + 1);
      expect(fake.requests).toHaveLength(2);
      const followUp = fake.requests[1]?.body;
      expect(turns(followUp)).toEqual([
        { role: "user", blocks: ["text:What's the weather in Paris?"] },
        {
          role: "assistant",
          blocks: ["text:Let me check.", "tool_use:toolu_e2e_one:mcp__client__get_weather"],
        },
        { role: "user", blocks: ["tool_result:toolu_e2e_one:sunny, 21 °C"] },
      ]);
      expect(toolUses(clientMessages(followUp)[1])[0]?.input).toStrictEqual(input);
      expect(bodyText(fake.requests[1])).not.toContain(NO_RESPONSE_REQUESTED);
    });

    it("one call (streaming): delta.tool_calls with index, id, type, name, then argument fragments", async () => {
      const input = { city: "Bern", days: 2, units: { temperature: "C" } };
      fake.script({
        content: [
          { type: "tool_use", id: "toolu_e2e_stream", name: "mcp__client__get_weather", input },
        ],
        chunkSize: 6,
      });
      const question: ChatCompletionMessageParam = { role: "user", content: "Weather in Bern?" };
      const chunks = await readChunks(
        await client.chat.completions.create({
          model: "sonnet",
          messages: [question],
          tools: TOOLS,
          stream: true,
        }),
      );
      expect(streamedFinishReason(chunks)).toBe("tool_calls");
      expect(streamedContent(chunks)).toBe("");
      const deltas = toolCallDeltas(chunks);
      expect(deltas[0]).toMatchObject({
        index: 0,
        id: "toolu_e2e_stream",
        type: "function",
        function: { name: "get_weather" },
      });
      const fragments = deltas.slice(1);
      // The arguments arrive in several fragments, each without id or name.
      expect(fragments.length).toBeGreaterThanOrEqual(3);
      for (const delta of fragments) {
        expect(delta.index).toBe(0);
        expect(delta.id).toBeUndefined();
        expect(delta.function?.name).toBeUndefined();
        expect(typeof delta.function?.arguments).toBe("string");
      }
      const calls = streamedToolCalls(chunks);
      expect(calls).toHaveLength(1);
      expect(JSON.parse(calls[0]?.arguments ?? "")).toStrictEqual(input);
      expect(claudes()).toHaveLength(1);

      // The streamed follow-up is answered by the parked run.
      fake.script({ content: [{ type: "text", text: "Snow in Bern." }] });
      const after = await readChunks(
        await client.chat.completions.create({
          model: "sonnet",
          messages: [
            question,
            assistantToolCallMessage(calls),
            { role: "tool", tool_call_id: "toolu_e2e_stream", content: "snow, -2 °C" },
          ],
          tools: TOOLS,
          stream: true,
        }),
      );
      expect(streamedContent(after)).toBe("Snow in Bern.");
      expect(streamedFinishReason(after)).toBe("stop");
      expect(fake.requests).toHaveLength(2);
      expect(turns(fake.requests[1]?.body)).toEqual([
        { role: "user", blocks: ["text:Weather in Bern?"] },
        { role: "assistant", blocks: ["tool_use:toolu_e2e_stream:mcp__client__get_weather"] },
        { role: "user", blocks: ["tool_result:toolu_e2e_stream:snow, -2 °C"] },
      ]);
    });

    itFull(
      "parallel calls (non-streaming) become several tool_calls; both results continue the run",
      async () => {
        fake.script({
          content: [
            {
              type: "tool_use",
              id: "toolu_e2e_par_a",
              name: "mcp__client__get_weather",
              input: { city: "Rome", days: 1 },
            },
            {
              type: "tool_use",
              id: "toolu_e2e_par_b",
              name: "mcp__client__get_time",
              input: { timezone: "Europe/Rome" },
            },
          ],
        });
        const question: ChatCompletionMessageParam = {
          role: "user",
          content: "Weather and time in Rome?",
        };
        const first = await client.chat.completions.create({
          model: "sonnet",
          messages: [question],
          tools: TOOLS,
        });
        expect(first.choices[0]?.finish_reason).toBe("tool_calls");
        expect(first.choices[0]?.message.content).toBeNull();
        const calls = functionCalls(first.choices[0]?.message);
        expect(calls.map(({ id, name }) => ({ id, name }))).toEqual([
          { id: "toolu_e2e_par_a", name: "get_weather" },
          { id: "toolu_e2e_par_b", name: "get_time" },
        ]);
        expect(JSON.parse(calls[0]?.arguments ?? "")).toStrictEqual({ city: "Rome", days: 1 });
        expect(JSON.parse(calls[1]?.arguments ?? "")).toStrictEqual({ timezone: "Europe/Rome" });
        const parked = claudes();
        expect(parked).toHaveLength(1);

        const served = answerWith("Warm, and it is noon.");
        const second = await client.chat.completions.create({
          model: "sonnet",
          messages: [
            question,
            first.choices[0]?.message as ChatCompletionMessageParam,
            // In the other order: matched by id.
            { role: "tool", tool_call_id: "toolu_e2e_par_b", content: "12:00" },
            { role: "tool", tool_call_id: "toolu_e2e_par_a", content: "warm" },
          ],
          tools: TOOLS,
        });
        expect(second.choices[0]?.message.content).toBe("Warm, and it is noon.");
        expect(served()).toEqual(parked);
        expect(fake.requests).toHaveLength(2);
        const got = turns(fake.requests[1]?.body);
        expect(got.map((t) => t.role)).toEqual(["user", "assistant", "user"]);
        expect(got[1]?.blocks).toEqual([
          "tool_use:toolu_e2e_par_a:mcp__client__get_weather",
          "tool_use:toolu_e2e_par_b:mcp__client__get_time",
        ]);
        expect([...(got[2]?.blocks ?? [])].sort()).toEqual([
          "tool_result:toolu_e2e_par_a:warm",
          "tool_result:toolu_e2e_par_b:12:00",
        ]);
      },
    );

    itFull("parallel calls (streaming) get indexes 0 and 1, each announced once", async () => {
      fake.script({
        content: [
          {
            type: "text",
            text: "Checking both.",
          },
          {
            type: "tool_use",
            id: "toolu_e2e_spar_a",
            name: "mcp__client__get_weather",
            input: { city: "Oslo", hours: [9, 21] },
          },
          {
            type: "tool_use",
            id: "toolu_e2e_spar_b",
            name: "mcp__client__get_weather",
            input: { city: "Wien", units: { temperature: "F" } },
          },
        ],
        chunkSize: 7,
      });
      const question: ChatCompletionMessageParam = { role: "user", content: "Oslo and Wien?" };
      const chunks = await readChunks(
        await client.chat.completions.create({
          model: "sonnet",
          messages: [question],
          tools: TOOLS,
          stream: true,
        }),
      );
      expect(streamedFinishReason(chunks)).toBe("tool_calls");
      expect(streamedContent(chunks)).toBe("Checking both.");
      const deltas = toolCallDeltas(chunks);
      const announced = deltas.filter((d) => d.id !== undefined);
      expect(announced).toEqual([
        expect.objectContaining({
          index: 0,
          id: "toolu_e2e_spar_a",
          type: "function",
          function: expect.objectContaining({ name: "get_weather" }),
        }),
        expect.objectContaining({
          index: 1,
          id: "toolu_e2e_spar_b",
          type: "function",
          function: expect.objectContaining({ name: "get_weather" }),
        }),
      ]);
      // Each call's fragments follow its announcement, index 0 entirely before index 1.
      const indexes = deltas.map((d) => d.index);
      expect(indexes).toEqual([...indexes].sort());
      expect(deltas.filter((d) => d.index === 0).length).toBeGreaterThan(2);
      expect(deltas.filter((d) => d.index === 1).length).toBeGreaterThan(2);
      const calls = streamedToolCalls(chunks);
      expect(JSON.parse(calls[0]?.arguments ?? "")).toStrictEqual({ city: "Oslo", hours: [9, 21] });
      expect(JSON.parse(calls[1]?.arguments ?? "")).toStrictEqual({
        city: "Wien",
        units: { temperature: "F" },
      });

      fake.script({ content: [{ type: "text", text: "Both cold." }] });
      const after = await client.chat.completions.create({
        model: "sonnet",
        messages: [
          question,
          assistantToolCallMessage(calls, "Checking both."),
          { role: "tool", tool_call_id: "toolu_e2e_spar_a", content: "cold" },
          { role: "tool", tool_call_id: "toolu_e2e_spar_b", content: "colder" },
        ],
        tools: TOOLS,
      });
      expect(after.choices[0]?.message.content).toBe("Both cold.");
      expect(fake.requests).toHaveLength(2);
      expect(turns(fake.requests[1]?.body)).toEqual([
        { role: "user", blocks: ["text:Oslo and Wien?"] },
        {
          role: "assistant",
          blocks: [
            "text:Checking both.",
            "tool_use:toolu_e2e_spar_a:mcp__client__get_weather",
            "tool_use:toolu_e2e_spar_b:mcp__client__get_weather",
          ],
        },
        {
          role: "user",
          blocks: ["tool_result:toolu_e2e_spar_a:cold", "tool_result:toolu_e2e_spar_b:colder"],
        },
      ]);
    });

    // ---------------------------------------------------------------- tool_choice

    itFull('tool_choice "none": the model is offered no client tools', async () => {
      const completion = await client.chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "Just talk, no tools." }],
        tools: TOOLS,
        tool_choice: "none",
      });
      expect(completion.choices[0]?.message.content).toBe("echo: Just talk, no tools.");
      expect(completion.choices[0]?.finish_reason).toBe("stop");
      expect(fake.requests).toHaveLength(1);
      expect(toolNames(fake.requests[0]?.body).filter((n) => n.startsWith("mcp__"))).toEqual([]);
      expect(bodyText(fake.requests[0])).not.toContain("get_weather");
    });

    itFull('tool_choice "required": the system prompt tells the model to call a tool', async () => {
      fake.script({
        content: [
          {
            type: "tool_use",
            id: "toolu_e2e_required",
            name: "mcp__client__get_time",
            input: { timezone: "UTC" },
          },
        ],
      });
      const question: ChatCompletionMessageParam = { role: "user", content: "Time?" };
      const first = await client.chat.completions.create({
        model: "sonnet",
        messages: [{ role: "system", content: "SYSTEM-REQ" }, question],
        tools: TOOLS,
        tool_choice: "required",
      });
      expect(first.choices[0]?.finish_reason).toBe("tool_calls");
      const system = clientSystemText(fake.requests[0]?.body);
      expect(system).toContain("SYSTEM-REQ");
      expect(system).toContain("You must call at least one of the available tools");
      expect(toolNames(fake.requests[0]?.body).sort()).toEqual([
        "mcp__client__get_time",
        "mcp__client__get_weather",
      ]);
      // Finish the loop (continuation) so that no run stays parked.
      const second = await client.chat.completions.create({
        model: "sonnet",
        messages: [
          question,
          first.choices[0]?.message as ChatCompletionMessageParam,
          { role: "tool", tool_call_id: "toolu_e2e_required", content: "09:30" },
        ],
        tools: TOOLS,
      });
      expect(second.choices[0]?.finish_reason).toBe("stop");
      expect(fake.requests).toHaveLength(2);
    });

    itFull("a named tool_choice and parallel_tool_calls: false become instructions", async () => {
      const completion = await client.chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "What time is it in Tokyo?" }],
        tools: TOOLS,
        tool_choice: { type: "function", function: { name: "get_time" } },
        parallel_tool_calls: false,
      });
      expect(completion.choices[0]?.message.content).toBe("echo: What time is it in Tokyo?");
      const system = clientSystemText(fake.requests[0]?.body);
      expect(system).toMatch(/You must call the tool "(mcp__client__)?get_time"/);
      expect(system).toContain("Call at most one tool per reply.");
      expect(toolNames(fake.requests[0]?.body)).toContain("mcp__client__get_time");
    });

    // ---------------------------------------------------------------- follow-ups as real clients send them

    /** Scripts two parallel get_weather calls and asks; returns the question and the answer. */
    async function twoCalls(ids: [string, string]) {
      fake.script({
        content: [
          { type: "text", text: "Checking both." },
          {
            type: "tool_use",
            id: ids[0],
            name: "mcp__client__get_weather",
            input: { city: "Rome" },
          },
          {
            type: "tool_use",
            id: ids[1],
            name: "mcp__client__get_weather",
            input: { city: "Oslo" },
          },
        ],
      });
      const question: ChatCompletionMessageParam = { role: "user", content: "Rome or Oslo?" };
      const first = await client.chat.completions.create({
        model: "sonnet",
        messages: [question],
        tools: TOOLS,
      });
      expect(first.choices[0]?.finish_reason).toBe("tool_calls");
      const message = first.choices[0]?.message as ChatCompletionMessageParam & {
        tool_calls: Array<{ id: string; function: { name: string; arguments: string } }>;
      };
      return { question, message };
    }

    /** `message` with its tool call ids replaced by `ids` (what a sanitising client sends back). */
    function withIds(
      message: ChatCompletionMessageParam,
      ids: string[],
    ): ChatCompletionMessageParam {
      const calls = (message as { tool_calls: Array<{ id: string }> }).tool_calls;
      return {
        ...message,
        tool_calls: calls.map((call, i) => ({ ...call, id: ids[i] })),
      } as ChatCompletionMessageParam;
    }

    itFull(
      "a follow-up with rewritten ids (non-alphanumerics stripped, case changed), answered in another order, continues the run",
      async () => {
        const { question, message } = await twoCalls(["toolu_x_52_1", "toolu_x_52_2"]);
        const parked = claudes();
        expect(parked).toHaveLength(1);
        const served = answerWith("Rome is warmer.");
        const second = await client.chat.completions.create({
          model: "sonnet",
          messages: [
            question,
            withIds(message, ["toolux521", "TOOLUX522"]),
            { role: "tool", tool_call_id: "TOOLUX522", content: "cold" },
            { role: "tool", tool_call_id: "toolux521", content: "warm" },
          ],
          tools: TOOLS,
        });
        expect(second.choices[0]?.message.content).toBe("Rome is warmer.");
        expect(served()).toEqual(parked);
        expect(heads(fake.requests)).toBe(1);
        expect(fake.requests).toHaveLength(2);
        const [user, assistant, results] = turns(fake.requests[1]?.body);
        expect([user, assistant]).toEqual([
          { role: "user", blocks: ["text:Rome or Oslo?"] },
          {
            role: "assistant",
            blocks: [
              "text:Checking both.",
              "tool_use:toolu_x_52_1:mcp__client__get_weather",
              "tool_use:toolu_x_52_2:mcp__client__get_weather",
            ],
          },
        ]);
        expect(results?.role).toBe("user");
        expect([...(results?.blocks ?? [])].sort()).toEqual([
          "tool_result:toolu_x_52_1:warm",
          "tool_result:toolu_x_52_2:cold",
        ]);
        expect(turns(fake.requests[1]?.body)).toHaveLength(3);
      },
    );

    itFull(
      "ids replaced altogether pair by name and arguments; a call left unanswered gets an error result",
      async () => {
        const { question, message } = await twoCalls(["toolu_e2e_a", "toolu_e2e_b"]);
        const parked = claudes();
        const served = answerWith("Oslo is cold; Rome unknown.");
        const second = await client.chat.completions.create({
          model: "sonnet",
          messages: [
            question,
            withIds(message, ["call_1", "call_2"]),
            { role: "tool", tool_call_id: "call_2", content: "cold" },
          ],
          tools: TOOLS,
        });
        expect(second.choices[0]?.message.content).toBe("Oslo is cold; Rome unknown.");
        expect(served()).toEqual(parked);
        const results = clientMessages(fake.requests[1]?.body)[2]?.content as Array<{
          tool_use_id: string;
          is_error?: boolean;
          content: unknown;
        }>;
        const byId = new Map(results.map((r) => [r.tool_use_id, r]));
        expect(toolResultText(byId.get("toolu_e2e_b")?.content)).toBe("cold");
        expect(byId.get("toolu_e2e_a")?.is_error).toBe(true);
        expect(toolResultText(byId.get("toolu_e2e_a")?.content)).toBe(
          "The client returned no result for this tool call",
        );
      },
    );

    itFull(
      "a user message after the tool results (as OpenClaw sends it) is replayed by a new CLI, turn by turn",
      async () => {
        const { question, message } = await twoCalls(["toolu_x_60_1", "toolu_x_60_2"]);
        const parked = claudes();
        expect(parked).toHaveLength(1);
        const served = answerWith("Take a coat.");
        const second = await client.chat.completions.create({
          model: "sonnet",
          messages: [
            question,
            withIds(message, ["toolux601", "toolux602"]),
            { role: "tool", tool_call_id: "toolux601", content: "warm" },
            { role: "tool", tool_call_id: "toolux602", content: "cold" },
            { role: "user", content: "Continue, and keep it short." },
          ],
          tools: TOOLS,
        });
        expect(second.choices[0]?.message.content).toBe("Take a coat.");
        expect(second.choices[0]?.finish_reason).toBe("stop");
        // A new CLI answered; the parked one was stopped.
        expect(heads(fake.requests)).toBe(2);
        expect(served()).toHaveLength(1);
        expect(served()).not.toEqual(parked);
        expect(fake.requests).toHaveLength(2);
        expect(turns(fake.requests[1]?.body)).toEqual([
          { role: "user", blocks: ["text:Rome or Oslo?"] },
          {
            role: "assistant",
            blocks: [
              "text:Checking both.",
              "tool_use:toolux601:mcp__client__get_weather",
              "tool_use:toolux602:mcp__client__get_weather",
            ],
          },
          {
            role: "user",
            blocks: [
              "tool_result:toolux601:warm",
              "tool_result:toolux602:cold",
              "text:Continue, and keep it short.",
            ],
          },
        ]);
        expect(bodyText(fake.requests[1])).not.toContain(NO_RESPONSE_REQUESTED);
        expect(bodyText(fake.requests[1])).not.toContain(CONTINUE_FROM);
        expect(toolNames(fake.requests[1]?.body).sort()).toEqual([
          "mcp__client__get_time",
          "mcp__client__get_weather",
        ]);
      },
    );

    itFull(
      "a result that arrives after the CLI's own MCP limits (set low in the environment) still continues the run, with no extra API call",
      async () => {
        fake.script({
          content: [
            {
              type: "tool_use",
              id: "toolu_e2e_slow",
              name: "mcp__client__get_time",
              input: { timezone: "UTC" },
            },
          ],
        });
        const question: ChatCompletionMessageParam = { role: "user", content: "Time?" };
        const first = await client.chat.completions.create({
          model: "sonnet",
          messages: [question],
          tools: TOOLS,
        });
        expect(first.choices[0]?.finish_reason).toBe("tool_calls");
        const parked = claudes();
        // Past the CLI's own limits, within the proxy's.
        await new Promise((resolve) => setTimeout(resolve, CLI_MCP_LIMIT_MS * 2.5));
        expect(fake.requests).toHaveLength(1);
        const served = answerWith("It is noon.");
        const second = await client.chat.completions.create({
          model: "sonnet",
          messages: [
            question,
            first.choices[0]?.message as ChatCompletionMessageParam,
            { role: "tool", tool_call_id: "toolu_e2e_slow", content: "12:00" },
          ],
          tools: TOOLS,
        });
        expect(second.choices[0]?.message.content).toBe("It is noon.");
        expect(served()).toEqual(parked);
        expect(fake.requests).toHaveLength(2);
        expect(turns(fake.requests[1]?.body).at(-1)).toEqual({
          role: "user",
          blocks: ["tool_result:toolu_e2e_slow:12:00"],
        });
      },
    );

    // ---------------------------------------------------------------- replay

    itFull(
      "replay: after the tool-result wait ran out, the history arrives as native turns",
      async () => {
        fake.script({
          content: [
            { type: "text", text: "One moment." },
            {
              type: "tool_use",
              id: "toolu_e2e_late",
              name: "mcp__client__get_weather",
              input: { city: "Lima", days: 5 },
            },
          ],
        });
        const question: ChatCompletionMessageParam = { role: "user", content: "Lima forecast?" };
        const first = await client.chat.completions.create({
          model: "sonnet",
          messages: [question],
          tools: TOOLS,
        });
        expect(first.choices[0]?.finish_reason).toBe("tool_calls");
        const parked = claudes();
        expect(parked).toHaveLength(1);
        // The run gives up waiting and is stopped; its files go with it.
        const waited = performance.now();
        expect(
          await waitForNoClaude({ pid: proxy.process.pid }, TOOL_RESULT_TIMEOUT_MS + 5_000),
        ).toEqual([]);
        expect(performance.now() - waited).toBeGreaterThan(TOOL_RESULT_TIMEOUT_MS / 2);
        expect(await waitForNoLeftovers(tmp)).toEqual([]);
        // Stopped before it could send anything upstream (no answer built on a substitute result).
        expect(fake.requests).toHaveLength(1);

        const served = answerWith("Dry all week.");
        const second = await client.chat.completions.create({
          model: "sonnet",
          messages: [
            question,
            first.choices[0]?.message as ChatCompletionMessageParam,
            { role: "tool", tool_call_id: "toolu_e2e_late", content: "dry" },
          ],
          tools: TOOLS,
        });
        expect(second.choices[0]?.message.content).toBe("Dry all week.");
        expect(second.choices[0]?.finish_reason).toBe("stop");
        // A new CLI run served it.
        expect(heads(fake.requests)).toBe(2);
        expect(served()).toHaveLength(1);
        expect(served()).not.toEqual(parked);
        expect(fake.requests).toHaveLength(2);
        const replayed = fake.requests[1];
        expect(turns(replayed?.body)).toEqual([
          { role: "user", blocks: ["text:Lima forecast?"] },
          {
            role: "assistant",
            blocks: ["text:One moment.", "tool_use:toolu_e2e_late:mcp__client__get_weather"],
          },
          { role: "user", blocks: ["tool_result:toolu_e2e_late:dry"] },
        ]);
        expect(toolUses(clientMessages(replayed?.body)[1])[0]?.input).toStrictEqual({
          city: "Lima",
          days: 5,
        });
        expect(bodyText(replayed)).not.toContain(NO_RESPONSE_REQUESTED);
        expect(bodyText(replayed)).not.toContain(CONTINUE_FROM);
        expect(toolNames(replayed?.body)).toContain("mcp__client__get_weather");
      },
    );

    it("replay: a conversation that began elsewhere (unknown ids) arrives as native turns", async () => {
      fake.script({ content: [{ type: "text", text: "Rome is warmer than Oslo." }] });
      const completion = await client.chat.completions.create({
        model: "sonnet",
        messages: [
          { role: "system", content: "SYSTEM-REPLAY: be brief." },
          { role: "user", content: "Hi" },
          { role: "assistant", content: "Hello! How can I help?" },
          { role: "user", content: "Compare Rome and Oslo." },
          {
            role: "assistant",
            content: "Checking both.",
            tool_calls: [
              {
                id: "call_elsewhere_1",
                type: "function",
                function: { name: "get_weather", arguments: '{"city":"Rome","days":2}' },
              },
              {
                id: "call_elsewhere_2",
                type: "function",
                function: {
                  name: "get_weather",
                  arguments: '{"city":"Oslo","units":{"temperature":"C"}}',
                },
              },
            ],
          },
          { role: "tool", tool_call_id: "call_elsewhere_1", content: "warm" },
          { role: "tool", tool_call_id: "call_elsewhere_2", content: "cold" },
        ],
        tools: TOOLS,
      });
      expect(completion.choices[0]?.message.content).toBe("Rome is warmer than Oslo.");
      expect(completion.choices[0]?.finish_reason).toBe("stop");
      expect(fake.requests).toHaveLength(1);
      const body = fake.requests[0]?.body;
      expect(turns(body)).toEqual([
        { role: "user", blocks: ["text:Hi"] },
        { role: "assistant", blocks: ["text:Hello! How can I help?"] },
        { role: "user", blocks: ["text:Compare Rome and Oslo."] },
        {
          role: "assistant",
          blocks: [
            "text:Checking both.",
            "tool_use:call_elsewhere_1:mcp__client__get_weather",
            "tool_use:call_elsewhere_2:mcp__client__get_weather",
          ],
        },
        {
          role: "user",
          blocks: ["tool_result:call_elsewhere_1:warm", "tool_result:call_elsewhere_2:cold"],
        },
      ]);
      const uses = toolUses(clientMessages(body)[3]);
      expect(uses.map((u) => u.input)).toStrictEqual([
        { city: "Rome", days: 2 },
        { city: "Oslo", units: { temperature: "C" } },
      ]);
      expect(clientSystemText(body)).toContain("SYSTEM-REPLAY: be brief.");
      expect(bodyText(fake.requests[0])).not.toContain(NO_RESPONSE_REQUESTED);
      expect(bodyText(fake.requests[0])).not.toContain(CONTINUE_FROM);
      expect(JSON.stringify(body.messages)).not.toContain("SYSTEM-REPLAY");
    });

    // ---------------------------------------------------------------- plain history

    itFull(
      "plain multi-turn chat reaches the API as separate messages, not a transcript",
      async () => {
        const completion = await client.chat.completions.create({
          model: "sonnet",
          messages: [
            { role: "user", content: "FIRST-QUESTION about tides" },
            { role: "assistant", content: "FIRST-ANSWER the moon" },
            { role: "user", content: "SECOND-QUESTION why?" },
          ],
        });
        expect(completion.choices[0]?.message.content).toBe("echo: SECOND-QUESTION why?");
        expect(fake.requests).toHaveLength(1);
        const body = fake.requests[0]?.body;
        expect(turns(body)).toEqual([
          { role: "user", blocks: ["text:FIRST-QUESTION about tides"] },
          { role: "assistant", blocks: ["text:FIRST-ANSWER the moon"] },
          { role: "user", blocks: ["text:SECOND-QUESTION why?"] },
        ]);
        expect(JSON.stringify(clientMessages(body)[2])).not.toContain("FIRST-");
        expect(body.tools ?? []).toEqual([]);
      },
    );

    // ---------------------------------------------------------------- images

    it("images: a data URL and an http URL arrive as base64 image blocks in their turns", async () => {
      images.hits.length = 0;
      const dataUrl = `data:image/png;base64,${PNG_BASE64}`;
      fake.script({ content: [{ type: "text", text: "Two pixels." }] });
      const completion = await client.chat.completions.create({
        model: "sonnet",
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "What is this?" },
              { type: "image_url", image_url: { url: dataUrl } },
            ],
          },
          { role: "assistant", content: "A white pixel." },
          {
            role: "user",
            content: [
              { type: "text", text: "And these?" },
              { type: "image_url", image_url: { url: `${images.url}/pixel.gif` } },
              { type: "image_url", image_url: { url: dataUrl, detail: "low" } },
            ],
          },
        ],
      });
      expect(completion.choices[0]?.message.content).toBe("Two pixels.");
      expect(images.hits).toEqual(["/pixel.gif"]);
      expect(fake.requests).toHaveLength(1);
      const body = fake.requests[0]?.body;
      expect(turns(body)).toEqual([
        { role: "user", blocks: ["text:What is this?", "image:image/png"] },
        { role: "assistant", blocks: ["text:A white pixel."] },
        { role: "user", blocks: ["text:And these?", "image:image/gif", "image:image/png"] },
      ]);
      expect(imageBlocks(clientMessages(body)[0])).toEqual([
        { media_type: "image/png", data: PNG_BASE64 },
      ]);
      expect(imageBlocks(clientMessages(body)[2])).toEqual([
        { media_type: "image/gif", data: GIF_BASE64 },
        { media_type: "image/png", data: PNG_BASE64 },
      ]);
    });

    it("images: a bad data URL is a 400 before any CLI run", async () => {
      for (const url of [
        "data:image/png;base64,***not base64***",
        "data:text/plain;base64,aGVsbG8=",
        "data:image/png,rawbytes",
      ]) {
        const error = await apiError(
          client.chat.completions.create({
            model: "sonnet",
            messages: [
              {
                role: "user",
                content: [
                  { type: "text", text: "look" },
                  { type: "image_url", image_url: { url } },
                ],
              },
            ],
          }),
        );
        expect(error, url).toBeInstanceOf(OpenAI.BadRequestError);
        expect(error.status).toBe(400);
        expect(error.param).toMatch(/^messages\[0\]\.content\[1\]/);
      }
      expect(fake.requests).toHaveLength(0);
    });

    if (runtime === "node") {
      describe("with --no-image-fetch", () => {
        let noFetch: ProxyProcess;
        let noFetchTmp: string;
        beforeAll(async () => {
          noFetchTmp = join(dirs.tmp, `${runtime}-no-image-fetch`);
          await mkdir(noFetchTmp);
          noFetch = await startProxy(runtime, {
            env: proxyEnv(fake.url, { home: dirs.home, tmp: noFetchTmp }),
            args: ["--no-image-fetch"],
          });
        });
        afterAll(async () => {
          await noFetch?.stop();
        });

        it("an http image URL is a 400 and is not fetched", async () => {
          images.hits.length = 0;
          const noFetchClient = new OpenAI({ baseURL: noFetch.url, apiKey: "x", maxRetries: 0 });
          const error = await apiError(
            noFetchClient.chat.completions.create({
              model: "sonnet",
              messages: [
                {
                  role: "user",
                  content: [
                    { type: "text", text: "look" },
                    { type: "image_url", image_url: { url: `${images.url}/pixel.gif` } },
                  ],
                },
              ],
            }),
          );
          expect(error).toBeInstanceOf(OpenAI.BadRequestError);
          expect(error.status).toBe(400);
          expect(error.code).toBe("image_fetch_disabled");
          expect(error.message).toMatch(/data URL/);
          expect(images.hits).toEqual([]);
          expect(fake.requests).toHaveLength(0);
          expect(claudeProcesses({ pid: noFetch.process.pid, dir: noFetchTmp })).toEqual([]);
        });
      });
    }

    // ---------------------------------------------------------------- structured output

    const PERSON_SCHEMA = {
      type: "object",
      properties: {
        name: { type: "string" },
        age: { type: "integer" },
        languages: { type: "array", items: { type: "string" } },
        address: {
          type: "object",
          properties: { city: { type: "string" }, zip: { type: "string" } },
          required: ["city"],
          additionalProperties: false,
        },
      },
      required: ["name", "age", "languages", "address"],
      additionalProperties: false,
    };
    const PERSON = {
      name: "Ada Lovelace",
      age: 36,
      languages: ["English", "French"],
      address: { city: "London", zip: "W1" },
    };

    /** Answers with the CLI's StructuredOutput tool, with `input`. */
    function answerStructured(input: unknown): void {
      fake.setHandler((req) => {
        const names = toolNames(req.body);
        if (!names.includes("StructuredOutput")) {
          return { content: [{ type: "text", text: `no StructuredOutput tool in ${names}` }] };
        }
        const done = JSON.stringify(req.body.messages).includes("tool_result");
        return done
          ? { content: [{ type: "text", text: "Done." }] }
          : { content: [{ type: "tool_use", name: "StructuredOutput", input }] };
      });
    }

    /** The (few) checks of PERSON_SCHEMA. */
    function expectPerson(value: unknown): void {
      expect(value).toStrictEqual(PERSON);
      const person = value as typeof PERSON;
      expect(Object.keys(person).sort()).toEqual(["address", "age", "languages", "name"]);
      expect(Number.isInteger(person.age)).toBe(true);
      expect(typeof person.address.city).toBe("string");
    }

    itFull("json_schema: the content is the structured output and fits the schema", async () => {
      answerStructured(PERSON);
      const completion = await client.chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "Describe Ada Lovelace." }],
        response_format: {
          type: "json_schema",
          json_schema: { name: "person", schema: PERSON_SCHEMA, strict: true },
        },
      });
      expect(completion.choices[0]?.finish_reason).toBe("stop");
      expectPerson(JSON.parse(completion.choices[0]?.message.content ?? ""));
      const offered = fake.requests[0]?.body.tools as Array<{
        name: string;
        input_schema: unknown;
      }>;
      expect(offered.map((t) => t.name)).toEqual(["StructuredOutput"]);
      expect(offered[0]?.input_schema).toEqual(PERSON_SCHEMA);
    });

    itFull("json_schema (streaming): the streamed content is the structured output", async () => {
      answerStructured(PERSON);
      const chunks = await readChunks(
        await client.chat.completions.create({
          model: "sonnet",
          messages: [{ role: "user", content: "Describe Ada Lovelace, streaming." }],
          response_format: {
            type: "json_schema",
            json_schema: { name: "person", schema: PERSON_SCHEMA },
          },
          stream: true,
        }),
      );
      expect(streamedFinishReason(chunks)).toBe("stop");
      expect(toolCallDeltas(chunks)).toEqual([]);
      expectPerson(JSON.parse(streamedContent(chunks)));
    });

    itFull("json_object: the content is a JSON object", async () => {
      answerStructured({ answer: 42, unit: "none", nested: { ok: true } });
      const completion = await client.chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "Answer in JSON." }],
        response_format: { type: "json_object" },
      });
      const content = completion.choices[0]?.message.content ?? "";
      const value: unknown = JSON.parse(content);
      expect(typeof value === "object" && value !== null && !Array.isArray(value)).toBe(true);
      expect(value).toStrictEqual({ answer: 42, unit: "none", nested: { ok: true } });
      expect(clientSystemText(fake.requests[0]?.body)).toContain("JSON object");
    });

    itFull("json_schema over 16 KB is a 400 before any CLI run", async () => {
      const properties: Record<string, unknown> = {};
      for (let i = 0; i < 400; i++) {
        properties[`field_number_${i}`] = { type: "string", description: "x".repeat(30) };
      }
      const error = await apiError(
        client.chat.completions.create({
          model: "sonnet",
          messages: [{ role: "user", content: "big schema" }],
          response_format: {
            type: "json_schema",
            json_schema: { name: "big", schema: { type: "object", properties } },
          },
        }),
      );
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect(error.status).toBe(400);
      expect(error.code).toBe("schema_too_large");
      expect(fake.requests).toHaveLength(0);
    });

    // ---------------------------------------------------------------- an agent framework

    /** The fake's side of a weather agent: a tool call first, text once it saw the result. */
    function weatherAgentHandler(): void {
      fake.setHandler((req) => {
        const messages = req.body.messages as Array<{ role: string; content: unknown }>;
        const last = messages.at(-1);
        const result = Array.isArray(last?.content)
          ? (last.content as Array<{ type: string; content?: unknown }>).find(
              (b) => b.type === "tool_result",
            )
          : undefined;
        if (result === undefined) {
          return {
            content: [
              {
                type: "tool_use",
                id: "toolu_e2e_agent",
                name: "mcp__client__get_weather",
                input: { city: "Lisbon", days: 2, units: { temperature: "C" } },
              },
            ],
          };
        }
        return {
          content: [{ type: "text", text: `Lisbon: ${toolResultText(result.content)}` }],
        };
      });
    }

    it("the Vercel AI SDK runs a tool loop (generateText) end to end", async () => {
      weatherAgentHandler();
      const provider = createOpenAICompatible({
        name: "claude-openai-proxy",
        baseURL: proxy.url,
        apiKey: "x",
      });
      const seen: unknown[] = [];
      const result = await generateText({
        model: provider.chatModel("sonnet"),
        prompt: "What is the weather in Lisbon for the next two days?",
        tools: {
          get_weather: tool({
            description: "Current weather and forecast for a city",
            inputSchema: z.object({
              city: z.string(),
              days: z.number().int().optional(),
              units: z.object({ temperature: z.enum(["C", "F"]) }).optional(),
            }),
            execute: async (args) => {
              seen.push(args);
              return { sky: "clear", high: 24 };
            },
          }),
        },
        stopWhen: stepCountIs(4),
        maxRetries: 0,
      });
      expect(seen).toStrictEqual([{ city: "Lisbon", days: 2, units: { temperature: "C" } }]);
      expect(result.text).toBe('Lisbon: {"sky":"clear","high":24}');
      expect(result.steps).toHaveLength(2);
      expect(result.steps[0]?.finishReason).toBe("tool-calls");
      expect(result.finishReason).toBe("stop");
      // Two API requests: the call, then the answer after the result in the same run.
      expect(fake.requests).toHaveLength(2);
      expect(heads(fake.requests)).toBe(1);
      expect(turns(fake.requests[1]?.body).map((t) => t.role)).toEqual([
        "user",
        "assistant",
        "user",
      ]);
    });

    itFull("the Vercel AI SDK runs a streaming tool loop (streamText) end to end", async () => {
      weatherAgentHandler();
      const provider = createOpenAICompatible({
        name: "claude-openai-proxy",
        baseURL: proxy.url,
        apiKey: "x",
        includeUsage: true,
      });
      const seen: unknown[] = [];
      const result = streamText({
        model: provider.chatModel("sonnet"),
        prompt: "Weather in Lisbon, please.",
        tools: {
          get_weather: tool({
            description: "Current weather and forecast for a city",
            inputSchema: z.object({
              city: z.string(),
              days: z.number().int().optional(),
              units: z.object({ temperature: z.enum(["C", "F"]) }).optional(),
            }),
            execute: async (args) => {
              seen.push(args);
              return "rain, 17 °C";
            },
          }),
        },
        stopWhen: stepCountIs(4),
        maxRetries: 0,
      });
      let text = "";
      for await (const delta of result.textStream) text += delta;
      expect(seen).toStrictEqual([{ city: "Lisbon", days: 2, units: { temperature: "C" } }]);
      expect(text).toBe("Lisbon: rain, 17 °C");
      expect(await result.finishReason).toBe("stop");
      expect(fake.requests).toHaveLength(2);
      expect(heads(fake.requests)).toBe(1);
    });
  });
}

for (const runtime of RUNTIMES) describeRuntime(runtime);
