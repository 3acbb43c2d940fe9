/**
 * Issue 11, conversation affinity: a CLI whose turn ended stays alive (`--warm-ttl`) and the
 * conversation's next user turn is written to its stdin instead of starting a new CLI. Shown
 * here against the fake Messages API with the real CLI: the follow-up is answered by the same
 * process (one `x-claude-code-session-id`), the API receives what a cold follow-up would send,
 * an edited history or another key goes cold, and no process outlives its TTL or the proxy.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import OpenAI from "openai";
import type {
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from "openai/resources/chat/completions";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  clientSystemText,
  type FakeAnthropic,
  lastUserText,
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
  waitForNoClaude,
  waitForNoLeftovers,
} from "./harness.ts";
import { readChunks, streamedContent, toolNames, turns } from "./tools-helpers.ts";

/** `--warm-ttl` of these tests: long enough for a follow-up, short enough to wait out. */
const WARM_TTL_MS = 4_000;

/** `--resume-start-timeout` of these tests: also how long a warm process may stay silent. */
const WARM_START_TIMEOUT_MS = 2_000;

const TOOLS: ChatCompletionTool[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Current weather for a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  },
];

const SYSTEM = "You are terse.";

/** What the fake answers to each user text. */
const ANSWERS: Record<string, string> = {
  "Hi, I am Ann.": "Hello Ann!",
  "What is my name?": "Your name is Ann.",
  "And backwards?": "nnA",
};

let fake: FakeAnthropic;
let dirs: E2eDirs;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  dirs = await makeE2eDirs("claude-openai-proxy-e2e-warm-");
});
afterAll(async () => {
  await fake?.close();
  await dirs?.cleanup();
});

/** How many CLI processes reached the fake (each sends its own `x-claude-code-session-id`). */
function heads(requests: readonly RecordedRequest[] = fake.requests): number {
  return new Set(requests.map((r) => r.headers["x-claude-code-session-id"])).size;
}

/** What must be equal between a warm and a cold request for the same conversation. */
// biome-ignore lint/suspicious/noExplicitAny: raw request body
function traffic(body: any) {
  return {
    model: body.model,
    system: clientSystemText(body),
    tools: toolNames(body),
    toolSchemas: (body.tools ?? []).map((t: { input_schema?: unknown }) => t.input_schema),
    turns: turns(body),
    max_tokens: body.max_tokens,
    thinking: body.thinking,
    output_config: body.output_config,
  };
}

if (RUNTIMES.length === 0) {
  describe("e2e warm", () => {
    it.skip("no runtime selected (E2E_RUNTIMES)", () => {});
  });
}

for (const runtime of RUNTIMES) describeRuntime(runtime);

function describeRuntime(runtime: E2eRuntime): void {
  describe(`warm CLI processes on ${runtime}`, () => {
    let proxy: ProxyProcess;
    let tmp: string;
    const client = (apiKey = "key-a") =>
      new OpenAI({ baseURL: proxy.url, apiKey, maxRetries: 0, timeout: 60_000 });
    const claudes = () => claudeProcesses({ pid: proxy.process.pid, dir: tmp });

    async function expectClean(timeoutMs: number): Promise<void> {
      const pids = await waitForNoClaude({ pid: proxy.process.pid, dir: tmp }, timeoutMs);
      killPids(pids);
      expect(pids, "claude processes left behind").toEqual([]);
      expect(await waitForNoLeftovers(tmp, 5_000), "run dirs left behind").toEqual([]);
    }

    beforeAll(async () => {
      tmp = join(dirs.tmp, runtime);
      await mkdir(tmp);
      proxy = await startProxy(runtime, {
        env: proxyEnv(fake.url, { home: dirs.home, tmp }),
        args: [
          "--kill-grace",
          "1000",
          "--warm-ttl",
          String(WARM_TTL_MS),
          "--resume-start-timeout",
          String(WARM_START_TIMEOUT_MS),
        ],
      });
    });
    afterEach(async () => {
      fake.reset();
      if (proxy !== undefined) await expectClean(WARM_TTL_MS + 5_000);
    });
    afterAll(async () => {
      await proxy?.stop();
      if (tmp !== undefined) expect(proxyTempDirs(tmp)).toEqual([]);
    });

    function answerByText(): void {
      fake.setHandler((req) => ({
        content: [{ type: "text", text: ANSWERS[lastUserText(req.body)] ?? "?" }],
      }));
    }

    it("answers follow-up turns on the same CLI process, sending the API what a cold run sends", async () => {
      answerByText();
      const u1: ChatCompletionMessageParam = { role: "user", content: "Hi, I am Ann." };
      const u2: ChatCompletionMessageParam = { role: "user", content: "What is my name?" };
      const u3: ChatCompletionMessageParam = { role: "user", content: "And backwards?" };
      const system: ChatCompletionMessageParam = { role: "system", content: SYSTEM };
      const base = { model: "sonnet", tools: TOOLS } as const;

      let t = performance.now();
      const first = await client().chat.completions.create({ ...base, messages: [system, u1] });
      const firstMs = performance.now() - t;
      const a1 = first.choices[0]?.message.content ?? "";
      expect(a1).toBe("Hello Ann!");
      // The process stays alive, waiting for the next turn.
      expect(claudes()).toHaveLength(1);

      // Streaming follow-up: the same process answers.
      const history2: ChatCompletionMessageParam[] = [
        system,
        u1,
        { role: "assistant", content: a1 },
        u2,
      ];
      t = performance.now();
      const stream = await client().chat.completions.create({
        ...base,
        messages: history2,
        stream: true,
      });
      const a2 = streamedContent(await readChunks(stream));
      const secondMs = performance.now() - t;
      expect(a2).toBe("Your name is Ann.");
      expect(fake.requests).toHaveLength(2);
      expect(heads()).toBe(1);

      // Non-streaming, a third turn: still the same process.
      const history3: ChatCompletionMessageParam[] = [
        ...history2,
        { role: "assistant", content: a2 },
        u3,
      ];
      t = performance.now();
      const third = await client().chat.completions.create({ ...base, messages: history3 });
      const thirdMs = performance.now() - t;
      expect(third.choices[0]?.message.content).toBe("nnA");
      expect(fake.requests).toHaveLength(3);
      expect(heads()).toBe(1);
      expect(proxy.stderr()).toContain('"warm":true');
      expect(await (await fetch(`${proxy.origin}/metrics`)).text()).toContain("warm_hits_total 2");

      // The same conversation from another key goes cold: a new process, the same traffic.
      t = performance.now();
      const cold = await client("key-b").chat.completions.create({ ...base, messages: history3 });
      const coldMs = performance.now() - t;
      expect(cold.choices[0]?.message.content).toBe("nnA");
      expect(fake.requests).toHaveLength(4);
      expect(heads()).toBe(2);
      const warmBody = fake.requests[2]?.body;
      const coldBody = fake.requests[3]?.body;
      expect(traffic(warmBody)).toEqual(traffic(coldBody));
      expect(traffic(warmBody).turns).toEqual([
        { role: "user", blocks: ["text:Hi, I am Ann."] },
        { role: "assistant", blocks: ["text:Hello Ann!"] },
        { role: "user", blocks: ["text:What is my name?"] },
        { role: "assistant", blocks: ["text:Your name is Ann."] },
        { role: "user", blocks: ["text:And backwards?"] },
      ]);
      console.log(
        `[e2e warm] ${runtime}: first turn ${firstMs.toFixed(0)} ms, warm follow-ups ${secondMs.toFixed(0)} ms (stream) / ${thirdMs.toFixed(0)} ms, cold follow-up ${coldMs.toFixed(0)} ms`,
      );
    });

    it("keeps a tool loop's process warm for the next user turn", async () => {
      fake.script(
        {
          content: [
            { type: "text", text: "Let me check." },
            {
              type: "tool_use",
              id: "toolu_warm_1",
              name: "mcp__client__get_weather",
              input: { city: "Paris" },
            },
          ],
        },
        { content: [{ type: "text", text: "Sunny in Paris." }] },
        { content: [{ type: "text", text: "Take sunglasses." }] },
        { content: [{ type: "text", text: "Take sunglasses." }] },
      );
      const question: ChatCompletionMessageParam = { role: "user", content: "Weather in Paris?" };
      const first = await client().chat.completions.create({
        model: "sonnet",
        tools: TOOLS,
        messages: [question],
      });
      const calling = first.choices[0]?.message as ChatCompletionMessageParam;
      expect(first.choices[0]?.finish_reason).toBe("tool_calls");
      const history: ChatCompletionMessageParam[] = [
        question,
        calling,
        { role: "tool", tool_call_id: "toolu_warm_1", content: "sunny" },
      ];
      const second = await client().chat.completions.create({
        model: "sonnet",
        tools: TOOLS,
        messages: history,
      });
      expect(second.choices[0]?.message.content).toBe("Sunny in Paris.");
      const followUp: ChatCompletionMessageParam[] = [
        ...history,
        { role: "assistant", content: "Sunny in Paris." },
        { role: "user", content: "What should I take?" },
      ];
      const third = await client().chat.completions.create({
        model: "sonnet",
        tools: TOOLS,
        messages: followUp,
      });
      expect(third.choices[0]?.message.content).toBe("Take sunglasses.");
      expect(heads()).toBe(1);
      const cold = await client("key-b").chat.completions.create({
        model: "sonnet",
        tools: TOOLS,
        messages: followUp,
      });
      expect(cold.choices[0]?.message.content).toBe("Take sunglasses.");
      expect(heads()).toBe(2);
      expect(traffic(fake.requests[2]?.body)).toEqual(traffic(fake.requests[3]?.body));
      expect(traffic(fake.requests[2]?.body).turns).toEqual([
        { role: "user", blocks: ["text:Weather in Paris?"] },
        {
          role: "assistant",
          blocks: ["text:Let me check.", "tool_use:toolu_warm_1:mcp__client__get_weather"],
        },
        { role: "user", blocks: ["tool_result:toolu_warm_1:sunny"] },
        { role: "assistant", blocks: ["text:Sunny in Paris."] },
        { role: "user", blocks: ["text:What should I take?"] },
      ]);
    });

    it("serves previous_response_id (Responses) and the Messages API from the warm process", async () => {
      answerByText();
      const first = await client().responses.create({
        model: "sonnet",
        instructions: SYSTEM,
        input: "Hi, I am Ann.",
      });
      expect(first.output_text).toBe("Hello Ann!");
      const second = await client().responses.create({
        model: "sonnet",
        instructions: SYSTEM,
        previous_response_id: first.id,
        input: "What is my name?",
      });
      expect(second.output_text).toBe("Your name is Ann.");
      expect(heads()).toBe(1);

      const messages = async (body: unknown) => {
        const response = await fetch(`${proxy.url}/messages`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-api-key": "key-a",
            "anthropic-version": "2023-06-01",
          },
          body: JSON.stringify(body),
        });
        expect(response.status).toBe(200);
        return (await response.json()) as { content: Array<{ text?: string }> };
      };
      const base = { model: "sonnet", max_tokens: 1000, system: SYSTEM };
      const m1 = await messages({
        ...base,
        messages: [{ role: "user", content: "Hi, I am Ann." }],
      });
      expect(m1.content[0]?.text).toBe("Hello Ann!");
      const m2 = await messages({
        ...base,
        messages: [
          { role: "user", content: "Hi, I am Ann." },
          { role: "assistant", content: [{ type: "text", text: "Hello Ann!" }] },
          { role: "user", content: [{ type: "text", text: "What is my name?" }] },
        ],
      });
      expect(m2.content[0]?.text).toBe("Your name is Ann.");
      expect(fake.requests).toHaveLength(4);
      expect(heads()).toBe(2);
    });

    it("replaces a warm process that hangs or died by a cold one, invisibly", async () => {
      answerByText();
      const first: ChatCompletionMessageParam[] = [{ role: "user", content: "Hi, I am Ann." }];
      const followUp: ChatCompletionMessageParam[] = [
        ...first,
        { role: "assistant", content: "Hello Ann!" },
        { role: "user", content: "What is my name?" },
      ];
      // Hung: the warm process is stopped (SIGSTOP) and never answers its new turn.
      await client().chat.completions.create({ model: "sonnet", messages: first });
      const [hung] = claudes();
      expect(hung).toBeDefined();
      process.kill(hung as number, "SIGSTOP");
      let t = performance.now();
      const afterHang = await client().chat.completions.create({
        model: "sonnet",
        messages: followUp,
      });
      expect(afterHang.choices[0]?.message.content).toBe("Your name is Ann.");
      expect(performance.now() - t).toBeGreaterThanOrEqual(WARM_START_TIMEOUT_MS - 100);
      expect(heads()).toBe(2);
      expect(proxy.stderr()).toContain("A warm claude CLI process did not take the next turn");
      // Died: the warm process is killed; the follow-up goes cold at once.
      const [died] = claudes().filter((pid) => pid !== hung);
      expect(died).toBeDefined();
      process.kill(died as number, "SIGKILL");
      t = performance.now();
      const afterDeath = await client().chat.completions.create({
        model: "sonnet",
        messages: [
          ...followUp,
          { role: "assistant", content: "Your name is Ann." },
          { role: "user", content: "And backwards?" },
        ],
      });
      expect(afterDeath.choices[0]?.message.content).toBe("nnA");
      expect(heads()).toBe(3);
      expect(performance.now() - t).toBeLessThan(WARM_START_TIMEOUT_MS);
    });

    it("sends an edited history to a cold process", async () => {
      answerByText();
      const messages: ChatCompletionMessageParam[] = [
        { role: "system", content: SYSTEM },
        { role: "user", content: "Hi, I am Ann." },
      ];
      const first = await client().chat.completions.create({ model: "sonnet", messages });
      expect(first.choices[0]?.message.content).toBe("Hello Ann!");
      const edited = await client().chat.completions.create({
        model: "sonnet",
        messages: [
          ...messages,
          { role: "assistant", content: "Hello Anne!" },
          { role: "user", content: "What is my name?" },
        ],
      });
      expect(edited.choices[0]?.message.content).toBe("Your name is Ann.");
      expect(heads()).toBe(2);
      expect(turns(fake.requests[1]?.body)[1]).toEqual({
        role: "assistant",
        blocks: ["text:Hello Anne!"],
      });
      // Another system prompt (launch profile) goes cold too.
      await client().chat.completions.create({
        model: "sonnet",
        messages: [
          { role: "system", content: "You are verbose." },
          { role: "user", content: "Hi, I am Ann." },
          { role: "assistant", content: "Hello Ann!" },
          { role: "user", content: "What is my name?" },
        ],
      });
      expect(heads()).toBe(3);
    });

    it("stops a warm process once --warm-ttl passed", async () => {
      answerByText();
      const started = Date.now();
      await client().chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "Hi, I am Ann." }],
      });
      expect(claudes()).toHaveLength(1);
      const pids = await waitForNoClaude({ pid: proxy.process.pid, dir: tmp }, WARM_TTL_MS + 3_000);
      expect(pids).toEqual([]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(WARM_TTL_MS - 500);
      // A follow-up after the TTL is served cold.
      await client().chat.completions.create({
        model: "sonnet",
        messages: [
          { role: "user", content: "Hi, I am Ann." },
          { role: "assistant", content: "Hello Ann!" },
          { role: "user", content: "What is my name?" },
        ],
      });
      expect(heads()).toBe(2);
    });
  });

  describe(`warm CLI processes and shutdown on ${runtime}`, () => {
    it("a proxy stopped with a warm process leaves no CLI and no temp dir", async () => {
      const tmp = join(dirs.tmp, `${runtime}-stop`);
      await mkdir(tmp);
      const proxy = await startProxy(runtime, {
        env: proxyEnv(fake.url, { home: dirs.home, tmp }, { WARM_TTL_MS: "300000" }),
        args: ["--kill-grace", "1000"],
      });
      try {
        const client = new OpenAI({ baseURL: proxy.url, apiKey: "k", maxRetries: 0 });
        await client.chat.completions.create({
          model: "sonnet",
          messages: [{ role: "user", content: "Hi" }],
        });
        expect(claudeProcesses({ pid: proxy.process.pid, dir: tmp })).toHaveLength(1);
        const health = (await (await fetch(`${proxy.origin}/health`)).json()) as {
          processes: { warm: number; running: number };
        };
        expect(health.processes).toMatchObject({ warm: 1, running: 0 });
        const metrics = await (await fetch(`${proxy.origin}/metrics`)).text();
        expect(metrics).toContain("claude_processes_warm 1");
        const pid = proxy.process.pid;
        await proxy.stop();
        expect(proxy.process.exitCode).toBe(0);
        const left = claudeProcesses({ pid, dir: tmp });
        killPids(left);
        expect(left).toEqual([]);
        expect(proxyTempDirs(tmp)).toEqual([]);
      } finally {
        await proxy.stop();
      }
    });
  });
}
