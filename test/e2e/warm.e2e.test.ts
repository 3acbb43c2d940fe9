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

/** `--warm-start-timeout` of these tests: how long a warm or spare process may stay silent. */
const WARM_START_TIMEOUT_MS = 5_000;

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

/** The fake answers each user text from {@link ANSWERS}. */
function answerByText(): void {
  fake.setHandler((req) => ({
    content: [{ type: "text", text: ANSWERS[lastUserText(req.body)] ?? "?" }],
  }));
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
    const claudes = () => claudeProcesses({ pid: proxy.process.pid, dir: tmp, topLevel: true });

    async function expectClean(timeoutMs: number): Promise<void> {
      const pids = await waitForNoClaude({ pid: proxy.process.pid, dir: tmp }, timeoutMs);
      killPids(pids);
      expect(pids, "claude processes left behind").toEqual([]);
      expect(await waitForNoLeftovers(tmp, 5_000), "run dirs left behind").toEqual([]);
    }

    beforeAll(async () => {
      // The fake is shared by every runtime's tests: start from nothing recorded.
      fake.reset();
      tmp = join(dirs.tmp, runtime);
      await mkdir(tmp);
      proxy = await startProxy(runtime, {
        env: proxyEnv(fake.url, { home: dirs.home, tmp }),
        args: [
          "--kill-grace",
          "1000",
          "--warm-ttl",
          String(WARM_TTL_MS),
          "--warm-start-timeout",
          String(WARM_START_TIMEOUT_MS),
          // Spares have their own tests below; here each first turn starts its own process.
          "--spares",
          "0",
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
      expect(proxy.stderr()).toContain('"process":"warm"');
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
      const t = performance.now();
      const afterHang = await client().chat.completions.create({
        model: "sonnet",
        messages: followUp,
      });
      expect(afterHang.choices[0]?.message.content).toBe("Your name is Ann.");
      expect(performance.now() - t).toBeGreaterThanOrEqual(WARM_START_TIMEOUT_MS - 100);
      expect(heads()).toBe(2);
      expect(proxy.stderr()).toContain("A warm claude CLI process did not take the next turn");
      // Died: the warm process is killed; the follow-up goes cold at once.
      const silentMisses = async () =>
        /^warm_misses_total\{reason="silent"\} (\d+)$/m.exec(
          await (await fetch(`${proxy.origin}/metrics`)).text(),
        )?.[1];
      const silentBefore = await silentMisses();
      expect(silentBefore).toBeDefined();
      const [died] = claudes().filter((pid) => pid !== hung);
      expect(died).toBeDefined();
      process.kill(died as number, "SIGKILL");
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
      // Not waited out as a silent one: the exit was noticed.
      expect(await silentMisses()).toBe(silentBefore);
    });

    it("does not keep a process whose model thought: its follow-up goes cold, the same traffic as cold", async () => {
      // The live CLI would send its earlier thinking with the next turn; a cold run does not.
      fake.script(
        {
          content: [
            { type: "thinking", thinking: "A greeting." },
            { type: "text", text: "Hello Ann!" },
          ],
        },
        { content: [{ type: "text", text: "Your name is Ann." }] },
        { content: [{ type: "text", text: "Your name is Ann." }] },
      );
      const first: ChatCompletionMessageParam[] = [{ role: "user", content: "Hi, I am Ann." }];
      const answered = await client().chat.completions.create({
        model: "sonnet",
        messages: first,
        reasoning_effort: "high",
      });
      expect(answered.choices[0]?.message.content).toBe("Hello Ann!");
      const followUp: ChatCompletionMessageParam[] = [
        ...first,
        { role: "assistant", content: "Hello Ann!" },
        { role: "user", content: "What is my name?" },
      ];
      const ask = { model: "sonnet", messages: followUp, reasoning_effort: "high" } as const;
      await client().chat.completions.create(ask);
      await client("key-b").chat.completions.create(ask);
      expect(heads()).toBe(3);
      expect(traffic(fake.requests[1]?.body)).toEqual(traffic(fake.requests[2]?.body));
      expect(turns(fake.requests[1]?.body)[1]).toEqual({
        role: "assistant",
        blocks: ["text:Hello Ann!"],
      });
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

  describe(`spare CLI processes and --max-processes on ${runtime}`, () => {
    let proxy: ProxyProcess | undefined;
    let tmp: string;
    const client = (p: ProxyProcess) =>
      new OpenAI({ baseURL: p.url, apiKey: "key-a", maxRetries: 0, timeout: 60_000 });
    const system: ChatCompletionMessageParam = { role: "system", content: SYSTEM };
    const firstTurn = (text: string) => ({
      model: "sonnet",
      tools: TOOLS,
      messages: [system, { role: "user", content: text }] as ChatCompletionMessageParam[],
    });
    const health = async (p: ProxyProcess) =>
      (
        (await (await fetch(`${p.origin}/health`)).json()) as {
          processes: Record<string, number>;
        }
      ).processes;
    const metric = async (p: ProxyProcess, name: string): Promise<number> => {
      const text = await (await fetch(`${p.origin}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith(`${name} `));
      return line === undefined ? 0 : Number(line.split(" ")[1]);
    };
    /** Waits (up to 10 s) until `done` holds. */
    async function until(done: () => Promise<boolean>): Promise<void> {
      const deadline = Date.now() + 10_000;
      while (!(await done()) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await done()).toBe(true);
    }
    /** Waits until /health shows `spare` spare processes. */
    const spares = (p: ProxyProcess, spare: number) =>
      until(async () => (await health(p)).spare === spare);
    const start = async (name: string, args: string[]) => {
      tmp = join(dirs.tmp, `${runtime}-${name}`);
      await mkdir(tmp);
      proxy = await startProxy(runtime, {
        env: proxyEnv(fake.url, { home: dirs.home, tmp }, { WARM_TTL_MS: String(WARM_TTL_MS) }),
        args: [
          "--kill-grace",
          "1000",
          "--warm-start-timeout",
          String(WARM_START_TIMEOUT_MS),
          ...args,
        ],
      });
      return proxy;
    };
    afterEach(async () => {
      fake.reset();
      if (proxy === undefined) return;
      const pid = proxy.process.pid;
      const stopped = proxy;
      await proxy.stop();
      proxy = undefined;
      // A clean shutdown (not the harness's SIGKILL after 5 s), which stopped every process.
      expect(stopped.process.exitCode, stopped.stderr().slice(-3000)).toBe(0);
      const left = await waitForNoClaude({ pid, dir: tmp }, 3_000);
      killPids(left);
      expect(left, "claude processes left behind").toEqual([]);
      expect(proxyTempDirs(tmp)).toEqual([]);
    });

    it("answers a first turn of a known profile on a spare, sending what a cold run sends", async () => {
      answerByText();
      const p = await start("spare", ["--spares", "1"]);
      // Two first turns with one system prompt and tool set: a spare is started for them.
      expect(
        (await client(p).chat.completions.create(firstTurn("Hi, I am Ann."))).choices[0]?.message
          .content,
      ).toBe("Hello Ann!");
      expect(await metric(p, "spares_started_total")).toBe(0);
      await client(p).chat.completions.create(firstTurn("What is my name?"));
      await spares(p, 1);
      // A spare sends nothing to the API before it has a turn.
      expect(fake.requests).toHaveLength(2);
      expect(heads()).toBe(2);

      // The same first turn again, streamed: the spare answers it.
      const t = performance.now();
      const stream = await client(p).chat.completions.create({
        ...firstTurn("Hi, I am Ann."),
        stream: true,
      });
      expect(streamedContent(await readChunks(stream))).toBe("Hello Ann!");
      const spareMs = performance.now() - t;
      expect(await metric(p, "spare_hits_total"), p.stderr()).toBe(1);
      expect(p.stderr()).toContain('"process":"spare"');
      expect(heads()).toBe(3);
      // The same API traffic as the cold run of that turn.
      expect(traffic(fake.requests[2]?.body)).toEqual(traffic(fake.requests[0]?.body));
      expect(traffic(fake.requests[2]?.body).turns).toEqual([
        { role: "user", blocks: ["text:Hi, I am Ann."] },
      ]);
      // The spare is replaced after use; the used one is now the conversation's warm process
      // (in place of the first cold run's, which held the same conversation: stopped).
      await spares(p, 1);
      await until(async () => (await health(p)).busy === 0);
      expect(await health(p)).toMatchObject({ warm: 2, spare: 1, busy: 0, total: 3 });
      const follow = await client(p).chat.completions.create({
        ...firstTurn("Hi, I am Ann."),
        messages: [
          system,
          { role: "user", content: "Hi, I am Ann." },
          { role: "assistant", content: "Hello Ann!" },
          { role: "user", content: "What is my name?" },
        ],
      });
      expect(follow.choices[0]?.message.content).toBe("Your name is Ann.");
      expect(heads()).toBe(3);
      console.log(`[e2e warm] ${runtime}: first turn on a spare ${spareMs.toFixed(0)} ms`);
    });

    it("replaces a spare that hangs or died by a cold process, invisibly", async () => {
      answerByText();
      const p = await start("spare-faults", ["--spares", "1", "--warm-ttl", "60000"]);
      const c = client(p);
      await c.chat.completions.create(firstTurn("Hi, I am Ann."));
      await c.chat.completions.create(firstTurn("What is my name?"));
      await spares(p, 1);
      // The spare is the process started last.
      await until(
        async () => claudeProcesses({ pid: p.process.pid, dir: tmp, topLevel: true }).length === 3,
      );
      const before = claudeProcesses({ pid: p.process.pid, dir: tmp, topLevel: true });
      const spare = Math.max(...before);
      process.kill(spare, "SIGSTOP");
      const t = performance.now();
      const hung = await c.chat.completions.create(firstTurn("And backwards?"));
      expect(hung.choices[0]?.message.content).toBe("nnA");
      expect(performance.now() - t).toBeGreaterThanOrEqual(WARM_START_TIMEOUT_MS - 100);
      expect(p.stderr()).toContain("A spare claude CLI process did not take the next turn");
      expect(await metric(p, "spare_hits_total")).toBe(0);
      expect(await metric(p, 'spare_misses_total{reason="silent"}')).toBe(1);
      expect(claudeProcesses({ pid: p.process.pid, dir: tmp, topLevel: true })).not.toContain(
        spare,
      );

      // Died: the replacement spare is killed; the next first turn goes cold at once.
      await spares(p, 1);
      await until(
        async () => claudeProcesses({ pid: p.process.pid, dir: tmp, topLevel: true }).length === 4,
      );
      const replacement = Math.max(
        ...claudeProcesses({ pid: p.process.pid, dir: tmp, topLevel: true }),
      );
      process.kill(replacement, "SIGKILL");
      const dead = await c.chat.completions.create(firstTurn("Hi, I am Ann."));
      expect(dead.choices[0]?.message.content).toBe("Hello Ann!");
      expect(await metric(p, "spare_hits_total")).toBe(0);
      expect(fake.requests).toHaveLength(4);
    });

    it("keeps every process under --max-processes, stopping idle ones first", async () => {
      answerByText();
      const p = await start("max", [
        "--spares",
        "1",
        "--max-concurrency",
        "1",
        "--max-processes",
        "1",
      ]);
      const c = client(p);
      const seen: number[] = [];
      const sample = setInterval(() => {
        seen.push(claudeProcesses({ pid: p.process.pid, dir: tmp, topLevel: true }).length);
      }, 25);
      try {
        await c.chat.completions.create(firstTurn("Hi, I am Ann."));
        expect(await health(p)).toMatchObject({ warm: 1, total: 1, max: 1 });
        // Another conversation: the warm process is stopped to make room, no spare fits.
        await c.chat.completions.create(firstTurn("What is my name?"));
        expect(await health(p)).toMatchObject({ warm: 1, spare: 0, total: 1 });
        // The first conversation's follow-up finds no warm process: cold, with its history.
        const follow = await c.chat.completions.create({
          ...firstTurn("Hi, I am Ann."),
          messages: [
            system,
            { role: "user", content: "Hi, I am Ann." },
            { role: "assistant", content: "Hello Ann!" },
            { role: "user", content: "And backwards?" },
          ],
        });
        expect(follow.choices[0]?.message.content).toBe("nnA");
        expect(heads()).toBe(3);
        expect(await metric(p, 'warm_misses_total{reason="history"}')).toBe(1);
      } finally {
        clearInterval(sample);
      }
      expect(Math.max(...seen)).toBe(1);
      expect(await metric(p, "spares_started_total")).toBe(0);
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
        expect(claudeProcesses({ pid: proxy.process.pid, dir: tmp, topLevel: true })).toHaveLength(
          1,
        );
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
        fake.reset();
      }
    });
  });
}
