/**
 * Issue 9, findings 5, 6 and 7, end to end on every runtime of E2E_RUNTIMES, with the real CLI
 * against the fake Messages API:
 * - a parked run gives its slot to requests already queued (arrival order);
 * - a parked run belongs to the API key and the conversation that made its calls: another
 *   key's follow-up, echoing its tool_call_id, is answered from its own conversation by a new
 *   CLI and never reaches the parked run;
 * - the MCP secret is on no command line, `/mcp` refuses requests without it and a second
 *   `tools/call` for the same call, and the legitimate follow-up still gets its result.
 * After every case: no `claude` process and no run directory left.
 */
import { readdirSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import OpenAI from "openai";
import type {
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from "openai/resources/chat/completions";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type FakeAnthropic, startFakeAnthropic } from "../fixtures/fake-anthropic.ts";
import { claudePids, killAll, waitForLeftovers } from "./fault-helpers.ts";
import {
  type E2eDirs,
  type E2eRuntime,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  RUNTIMES,
  startProxy,
} from "./harness.ts";
import { turns } from "./tools-helpers.ts";

const TOOLS: ChatCompletionTool[] = [
  {
    type: "function",
    function: {
      name: "get_time",
      parameters: { type: "object", properties: { timezone: { type: "string" } } },
    },
  },
];

let fake: FakeAnthropic;
let dirs: E2eDirs;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  dirs = await makeE2eDirs("claude-openai-proxy-e2e-tool-safety-");
});
afterAll(async () => {
  await fake?.close();
  await dirs?.cleanup();
});

if (RUNTIMES.length === 0) {
  describe("tool safety", () => {
    it.skip("no runtime selected (E2E_RUNTIMES)", () => {});
  });
}

/** A tool call the fake answers with. */
function callReply(id: string, delayMs = 0) {
  return {
    content: [
      { type: "tool_use" as const, id, name: "mcp__client__get_time", input: { timezone: "UTC" } },
    ],
    ...(delayMs > 0 ? { delayMs } : {}),
  };
}

function describeRuntime(runtime: E2eRuntime): void {
  describe(`tool runs are fair and private on ${runtime}`, () => {
    const proxies: Array<{ proxy: ProxyProcess; tmp: string }> = [];

    async function proxyWith(name: string, args: readonly string[]): Promise<ProxyProcess> {
      const tmp = join(dirs.tmp, `${runtime}-${name}`);
      await mkdir(tmp, { recursive: true });
      const proxy = await startProxy(runtime, {
        env: proxyEnv(fake.url, { home: dirs.home, tmp }),
        args: ["--kill-grace", "1000", "--tool-result-timeout", "20000", ...args],
      });
      proxies.push({ proxy, tmp });
      return proxy;
    }

    const client = (proxy: ProxyProcess, apiKey = "x") =>
      new OpenAI({ baseURL: proxy.url, apiKey, maxRetries: 0, timeout: 60_000 });

    afterEach(async () => {
      fake.reset();
      for (const { proxy } of proxies.splice(0)) await proxy.stop();
      const left = await waitForLeftovers(dirs.tmp, 8_000);
      killAll(left.pids);
      expect(left.pids, "claude processes left behind").toEqual([]);
      expect(left.files, "run dirs left behind").toEqual([]);
    });

    it("a parked run gives its slot to the request queued before it parked", async () => {
      const proxy = await proxyWith("fair", [
        "--max-concurrency",
        "1",
        "--max-queue-wait",
        "30000",
      ]);
      // A's answer trickles (the fake pauses between SSE events), so that B arrives while A runs.
      fake.script(callReply("toolu_fair_a", 300));
      const question: ChatCompletionMessageParam = { role: "user", content: "A: time?" };
      const a = client(proxy).chat.completions.create({
        model: "sonnet",
        messages: [question],
        tools: TOOLS,
      });
      // B arrives while A is still answering: it queues.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const b = client(proxy).chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "B: hello" }],
      });
      const first = await a;
      const parkedAt = performance.now();
      expect(first.choices[0]?.finish_reason).toBe("tool_calls");
      const answer = await b;
      // Served as soon as A parked (a CLI start and one answer), not after the 30 s queue wait.
      expect(answer.choices[0]?.message.content).toBe("echo: B: hello");
      expect(performance.now() - parkedAt).toBeLessThan(15_000);
      // A's follow-up still gets its answer (its run gave the slot up: a new CLI replays it).
      fake.script({ content: [{ type: "text", text: "It is noon." }] });
      const second = await client(proxy).chat.completions.create({
        model: "sonnet",
        messages: [
          question,
          first.choices[0]?.message as ChatCompletionMessageParam,
          { role: "tool", tool_call_id: "toolu_fair_a", content: "12:00" },
        ],
        tools: TOOLS,
      });
      expect(second.choices[0]?.message.content).toBe("It is noon.");
    });

    it("another key's follow-up with the pending tool_call_id never reaches the parked run", async () => {
      const proxy = await proxyWith("owner", ["--api-key", "key-alice", "--api-key", "key-bob"]);
      fake.script(callReply("toolu_owner_1"));
      const aliceQuestion: ChatCompletionMessageParam = { role: "user", content: "Alice: time?" };
      const alice = client(proxy, "key-alice");
      const first = await alice.chat.completions.create({
        model: "sonnet",
        messages: [aliceQuestion],
        tools: TOOLS,
      });
      expect(first.choices[0]?.finish_reason).toBe("tool_calls");
      const aliceCall = first.choices[0]?.message as ChatCompletionMessageParam;
      const parked = claudePids(dirs.tmp);
      expect(parked).toHaveLength(1);

      // Bob, with his own key, model, system prompt and question, echoes Alice's call.
      fake.script({ content: [{ type: "text", text: "Bob's answer." }] });
      const bob = await client(proxy, "key-bob").chat.completions.create({
        model: "haiku",
        messages: [
          { role: "system", content: "BOB-SYSTEM" },
          { role: "user", content: "Bob: what time?" },
          aliceCall,
          { role: "tool", tool_call_id: "toolu_owner_1", content: "BOB-INJECTED" },
        ],
        tools: TOOLS,
      });
      expect(bob.choices[0]?.message.content).toBe("Bob's answer.");
      // A new CLI answered Bob from Bob's conversation, with Bob's model.
      const bobRequest = fake.requests.at(-1)?.body;
      expect(String(bobRequest?.model)).toMatch(/haiku/);
      expect(turns(bobRequest)[0]).toEqual({ role: "user", blocks: ["text:Bob: what time?"] });
      expect(JSON.stringify(bobRequest?.system)).toContain("BOB-SYSTEM");
      // Alice's run is still parked and continues with her own result.
      expect(claudePids(dirs.tmp)).toEqual(expect.arrayContaining(parked));
      fake.script({ content: [{ type: "text", text: "Alice: it is noon." }] });
      const second = await alice.chat.completions.create({
        model: "sonnet",
        messages: [
          aliceQuestion,
          aliceCall,
          { role: "tool", tool_call_id: "toolu_owner_1", content: "12:00" },
        ],
        tools: TOOLS,
      });
      expect(second.choices[0]?.message.content).toBe("Alice: it is noon.");
      const aliceFollowUp = fake.requests.at(-1);
      expect(String(aliceFollowUp?.body.model)).not.toMatch(/haiku/);
      expect(turns(aliceFollowUp?.body).at(-1)).toEqual({
        role: "user",
        blocks: ["tool_result:toolu_owner_1:12:00"],
      });
      expect(JSON.stringify(fake.requests.map((r) => r.body))).not.toMatch(
        /BOB-INJECTED[\s\S]*Alice: it is noon|tool_result:toolu_owner_1:BOB/,
      );
    });

    it.runIf(process.platform === "linux")(
      "the MCP secret is on no command line; /mcp refuses callers without it and a second call for the same id",
      async () => {
        const proxy = await proxyWith("mcp", []);
        fake.script(callReply("toolu_mcp_1"));
        const question: ChatCompletionMessageParam = { role: "user", content: "time?" };
        const first = await client(proxy).chat.completions.create({
          model: "sonnet",
          messages: [question],
          tools: TOOLS,
        });
        expect(first.choices[0]?.finish_reason).toBe("tool_calls");
        const [pid] = claudePids(dirs.tmp);
        expect(pid).toBeDefined();
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        const configPath = cmdline[cmdline.indexOf("--mcp-config") + 1] ?? "";
        expect(cmdline.join(" ")).not.toMatch(/\/mcp\/|Bearer|mcpServers/);
        // The config file (0600, in the run's private directory) holds the URL and the secret.
        const config = JSON.parse(readFileSync(configPath, "utf8")) as {
          mcpServers: { client: { url: string; headers: { Authorization: string } } };
        };
        const { url, headers } = config.mcpServers.client;
        expect(url).toContain("/mcp/");
        const rpc = (authorization: string | null, id: number) =>
          fetch(url, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              accept: "application/json, text/event-stream",
              "mcp-protocol-version": "2025-06-18",
              ...(authorization === null ? {} : { authorization }),
            },
            body: JSON.stringify({
              jsonrpc: "2.0",
              id,
              method: "tools/call",
              params: {
                name: "get_time",
                arguments: {},
                _meta: { "claudecode/toolUseId": "toolu_mcp_1" },
              },
            }),
          });
        // Without the secret, or with the URL alone: nothing there.
        expect((await rpc(null, 1)).status).toBe(404);
        expect((await rpc("Bearer wrong", 2)).status).toBe(404);
        // With it (as only the run's own user can read it): a second call for the same id is refused.
        const duplicate = await rpc(headers.Authorization, 3);
        expect(duplicate.status).toBe(200);
        expect(JSON.stringify(await duplicate.json())).toContain("already made");
        // The legitimate follow-up continues and its result reaches the model.
        fake.script({ content: [{ type: "text", text: "noon" }] });
        const second = await client(proxy).chat.completions.create({
          model: "sonnet",
          messages: [
            question,
            first.choices[0]?.message as ChatCompletionMessageParam,
            { role: "tool", tool_call_id: "toolu_mcp_1", content: "12:00" },
          ],
          tools: TOOLS,
        });
        expect(second.choices[0]?.message.content).toBe("noon");
        expect(turns(fake.requests.at(-1)?.body).at(-1)).toEqual({
          role: "user",
          blocks: ["tool_result:toolu_mcp_1:12:00"],
        });
        expect(readdirSync(dirs.tmp).length).toBeGreaterThan(0);
      },
    );
  });
}

for (const runtime of RUNTIMES) describeRuntime(runtime);
