/**
 * Issue 12 end to end: agent mode (`--agent-tools`, `--agent-dir`): Claude Code's own tools
 * run on the server, confined to the directory. The proxy runs as a real process with the real
 * CLI against the fake Messages API, which scripts the model's tool_use blocks; what reached
 * the model's context is read from the fake's received requests.
 *
 * Two proxies per runtime: "read" (`Read,Glob,Grep`) and "bash" (`Read,Bash,Write` and the
 * MCP tool `mcp__notes__lookup` of test/fixtures/mcp-stdio-server.mjs,
 * `--agent-max-turns 2`). The full set runs on the runtimes named by E2E_AGENT_FULL (default:
 * node); the others (the binary) get a smoke subset: a read inside the directory, one outside.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import OpenAI from "openai";
import type { ChatCompletionChunk } from "openai/resources/chat/completions";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type FakeAnthropic, startFakeAnthropic } from "../fixtures/fake-anthropic.ts";
import {
  claudeProcesses,
  type E2eDirs,
  type E2eRuntime,
  killPids,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  RUNTIMES,
  repoRoot,
  sleep,
  startProxy,
  waitForNoClaude,
  waitForNoLeftovers,
} from "./harness.ts";
import {
  functionCalls,
  readChunks,
  streamedContent,
  streamedFinishReason,
} from "./tools-helpers.ts";

const FULL_RUNTIMES = (process.env.E2E_AGENT_FULL ?? "node")
  .split(",")
  .map((s) => s.trim().toLowerCase());

const INSIDE = "INSIDE-NOTES-7d1f";
const OUTSIDE = "OUTSIDE-SECRET-93ab";
/**
 * A duration nothing else on the machine sleeps for, to find the Bash child. Run through
 * `sh -c`: 2.1.332 refuses a plain long `sleep` command ("Blocked: sleep ...").
 */
const SLEEP_ARG = "30.4242";

/** `--request-timeout` of the "bash" proxy, ms: longer than any of its other tests' requests. */
const BASH_REQUEST_TIMEOUT_MS = 7_000;

let fake: FakeAnthropic;
let dirs: E2eDirs;
let agentDir: string;
let outsideFile: string;
/** `<config dir>/projects/<agent dir mangled>`: the CLI's own folder for the agent dir. */
let projectDir: string;
/** A marker in that folder's files: it must never reach the model. */
const MEMORY = "MEMORY-MARKER-7f3a";
/** The operator's MCP config for the "bash" proxy: test/fixtures/mcp-stdio-server.mjs as `notes`. */
let mcpConfig: string;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  dirs = await makeE2eDirs("claude-openai-proxy-e2e-agent-");
  agentDir = join(dirs.root, "agent");
  mkdirSync(agentDir);
  writeFileSync(join(agentDir, "notes.txt"), `${INSIDE}\n`);
  outsideFile = join(dirs.root, "outside.txt");
  writeFileSync(outsideFile, `${OUTSIDE}\n`);
  symlinkSync(outsideFile, join(agentDir, "link.txt"));
  mkdirSync(join(dirs.root, "elsewhere"));
  symlinkSync(join(dirs.root, "elsewhere"), join(agentDir, "linkdir"));
  // The CLI's own project folder for the agent dir (auto memory, transcripts): outside the dir.
  projectDir = join(
    dirs.home,
    ".claude",
    "projects",
    realpathSync(agentDir).replace(/[^A-Za-z0-9]/g, "-"),
  );
  mkdirSync(join(projectDir, "memory"), { recursive: true });
  writeFileSync(join(projectDir, "memory", "MEMORY.md"), `Always say ${MEMORY}.\n`);
  writeFileSync(join(projectDir, "old-session.jsonl"), `${MEMORY}\n`);
  mcpConfig = join(dirs.root, "agent-mcp.json");
  const server = join(repoRoot, "test", "fixtures", "mcp-stdio-server.mjs");
  writeFileSync(
    mcpConfig,
    JSON.stringify({
      mcpServers: { notes: { type: "stdio", command: process.execPath, args: [server] } },
    }),
  );
});
afterAll(async () => {
  await fake?.close();
  await dirs?.cleanup();
});

if (RUNTIMES.length === 0) {
  describe("e2e agent", () => {
    it.skip("no runtime selected (E2E_RUNTIMES)", () => {});
  });
}

/** The names of the tools offered in the fake's first request, sorted. */
function offeredTools(): string[] {
  const tools: Array<{ name: string }> = fake.requests[0]?.body.tools ?? [];
  return tools.map((t) => t.name).sort();
}

/** Everything the fake received, as text (for "never reached the model" checks). */
function everythingSent(): string {
  return JSON.stringify(fake.requests.map((r) => r.body));
}

/** The tool_result blocks of the last user message of a request body. */
// biome-ignore lint/suspicious/noExplicitAny: raw API request body
function lastToolResults(body: any): Array<{ tool_use_id: string; content: string }> {
  const messages = Array.isArray(body?.messages) ? body.messages : [];
  const last = messages.filter((m: { role: string }) => m.role === "user").at(-1);
  const content: unknown[] = Array.isArray(last?.content) ? last.content : [];
  return content
    .filter((b) => (b as { type?: string }).type === "tool_result")
    .map((b) => {
      const block = b as { tool_use_id: string; content: unknown };
      return { tool_use_id: block.tool_use_id, content: JSON.stringify(block.content) };
    });
}

/** The streamed `reasoning_content` (where agent progress goes on chat completions). */
function streamedReasoning(chunks: readonly ChatCompletionChunk[]): string {
  return chunks
    .map(
      (c) =>
        (c.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ??
        "",
    )
    .join("");
}

/** Pids of live processes whose command line holds `needle` (Linux /proc). */
function processesWith(needle: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
      if (argv[0] === "sleep" && argv.includes(needle)) pids.push(Number(name));
    } catch {
      // gone
    }
  }
  return pids;
}

/** Server-sent events of a raw response body: `{event, data}` with data parsed. */
async function sseEvents(response: Response): Promise<Array<{ event: string; data: unknown }>> {
  const text = await response.text();
  const out: Array<{ event: string; data: unknown }> = [];
  for (const block of text.split("\n\n")) {
    const event = /^event: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (event !== undefined && data !== undefined) out.push({ event, data: JSON.parse(data) });
  }
  return out;
}

function describeRuntime(runtime: E2eRuntime): void {
  const full = FULL_RUNTIMES.includes(runtime);
  const itFull = full ? it : it.skip;

  describe(`agent mode on ${runtime}${full ? "" : " (smoke)"}`, () => {
    let read: ProxyProcess;
    let bash: ProxyProcess | undefined;
    let client: OpenAI;
    let tmp: string;
    let started = 0;

    async function expectClean(proxy: ProxyProcess): Promise<void> {
      const pids = await waitForNoClaude({ pid: proxy.process.pid, dir: tmp }, 5_000);
      killPids(pids);
      expect(pids, "claude processes left behind").toEqual([]);
      expect(await waitForNoLeftovers(tmp, 5_000), "run dirs left behind").toEqual([]);
    }

    beforeAll(async () => {
      started = performance.now();
      tmp = join(dirs.tmp, runtime);
      await mkdir(tmp);
      const env = proxyEnv(fake.url, { home: dirs.home, tmp });
      const common = ["--kill-grace", "2000", "--agent-dir", agentDir];
      [read, bash] = await Promise.all([
        startProxy(runtime, { env, args: [...common, "--agent-tools", "Read,Glob,Grep"] }),
        full
          ? startProxy(runtime, {
              env,
              args: [
                ...common,
                "--agent-tools",
                "Read,Bash,Write,mcp__notes__lookup",
                "--agent-mcp-config",
                mcpConfig,
                "--agent-max-turns",
                "2",
                "--request-timeout",
                String(BASH_REQUEST_TIMEOUT_MS),
              ],
            })
          : Promise.resolve(undefined),
      ]);
      client = new OpenAI({ baseURL: read.url, apiKey: "x", maxRetries: 0, timeout: 60_000 });
    });
    afterEach(async () => {
      fake.reset();
      await expectClean(read);
    });
    afterAll(async () => {
      await Promise.all([read?.stop(), bash?.stop()]);
      killPids(claudeProcesses({ dir: tmp }));
      console.log(`[e2e agent] ${runtime}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    });

    it("a Read inside the directory comes back, streamed, with progress as reasoning_content", async () => {
      fake.script(
        {
          content: [
            { type: "text", text: "Let me look." },
            { type: "tool_use", name: "Read", input: { file_path: join(agentDir, "notes.txt") } },
          ],
        },
        { content: [{ type: "text", text: `notes.txt says ${INSIDE}` }] },
      );
      const stream = await client.chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "What's in notes.txt?" }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks = await readChunks(stream);
      expect(streamedContent(chunks)).toBe(`Let me look.notes.txt says ${INSIDE}`);
      expect(streamedReasoning(chunks)).toBe("Read notes.txt\n");
      expect(streamedFinishReason(chunks)).toBe("stop");
      expect(chunks.some((c) => c.choices[0]?.delta.tool_calls !== undefined)).toBe(false);
      // Usage of both API messages (the fake counts 10 input tokens each).
      expect(chunks.at(-1)?.usage?.prompt_tokens).toBe(20);
      // Only the named tools were offered; the file came back to the model.
      expect(fake.requests).toHaveLength(2);
      expect(offeredTools()).toEqual(["Glob", "Grep", "Read"]);
      expect(lastToolResults(fake.requests[1]?.body)[0]?.content).toContain(INSIDE);
    });

    it("a Read outside the directory, through a symlink out of it, and an unnamed tool are refused", async () => {
      fake.script(
        {
          content: [
            { type: "tool_use", id: "toolu_out", name: "Read", input: { file_path: outsideFile } },
            {
              type: "tool_use",
              id: "toolu_link",
              name: "Read",
              input: { file_path: join(agentDir, "link.txt") },
            },
            {
              type: "tool_use",
              id: "toolu_bash",
              name: "Bash",
              input: { command: `cat ${outsideFile}` },
            },
          ],
        },
        { content: [{ type: "text", text: "I cannot read that." }] },
      );
      const answer = await client.chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "What's in ../outside.txt?" }],
      });
      const message = answer.choices[0]?.message;
      expect(message?.content).toBe("I cannot read that.");
      expect(functionCalls(message)).toEqual([]);
      expect(answer.choices[0]?.finish_reason).toBe("stop");
      expect(fake.requests).toHaveLength(2);
      const results = lastToolResults(fake.requests[1]?.body);
      expect(results.map((r) => r.tool_use_id).sort()).toEqual([
        "toolu_bash",
        "toolu_link",
        "toolu_out",
      ]);
      expect(results.find((r) => r.tool_use_id === "toolu_out")?.content).toMatch(/denied/i);
      expect(results.find((r) => r.tool_use_id === "toolu_link")?.content).toMatch(/denied/i);
      expect(results.find((r) => r.tool_use_id === "toolu_bash")?.content).toMatch(/No such tool/);
      expect(everythingSent()).not.toContain(OUTSIDE);
    });

    it("the CLI's own project folder (auto memory, transcripts) is out of reach and never injected", async () => {
      fake.script(
        {
          content: [
            {
              type: "tool_use",
              id: "toolu_mem",
              name: "Read",
              input: { file_path: join(projectDir, "memory", "MEMORY.md") },
            },
            {
              type: "tool_use",
              id: "toolu_grep",
              name: "Grep",
              input: { pattern: "MARKER", path: projectDir },
            },
          ],
        },
        { content: [{ type: "text", text: "Nothing there." }] },
      );
      const answer = await client.chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "What do you remember?" }],
      });
      expect(answer.choices[0]?.message.content).toBe("Nothing there.");
      expect(fake.requests).toHaveLength(2);
      const results = lastToolResults(fake.requests[1]?.body);
      expect(results.map((r) => r.tool_use_id).sort()).toEqual(["toolu_grep", "toolu_mem"]);
      expect(results.find((r) => r.tool_use_id === "toolu_mem")?.content).toMatch(/denied/i);
      expect(everythingSent()).not.toContain(MEMORY);
    });

    itFull(
      "client tools and agent tools in one request: only the client's come back as tool_calls",
      async () => {
        fake.script(
          {
            content: [
              {
                type: "tool_use",
                name: "Grep",
                input: { pattern: "INSIDE", output_mode: "content" },
              },
            ],
          },
          {
            content: [
              {
                type: "tool_use",
                id: "toolu_w",
                name: "mcp__client__get_weather",
                input: { city: "Oslo" },
              },
            ],
          },
          { content: [{ type: "text", text: "Sunny, and the notes match." }] },
        );
        const tools = [
          {
            type: "function" as const,
            function: {
              name: "get_weather",
              parameters: { type: "object", properties: { city: { type: "string" } } },
            },
          },
        ];
        const question = { role: "user" as const, content: "Weather in Oslo, and grep the notes" };
        const stream = await client.chat.completions.create({
          model: "sonnet",
          messages: [question],
          tools,
          stream: true,
        });
        const chunks = await readChunks(stream);
        expect(streamedReasoning(chunks)).toBe("Grep INSIDE\n");
        expect(streamedFinishReason(chunks)).toBe("tool_calls");
        const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
        expect(calls.map((c) => c.function?.name).filter(Boolean)).toEqual(["get_weather"]);
        expect(lastToolResults(fake.requests[1]?.body)[0]?.content).toContain(INSIDE);
        expect(offeredTools()).toEqual(["Glob", "Grep", "Read", "mcp__client__get_weather"]);

        const second = await client.chat.completions.create({
          model: "sonnet",
          messages: [
            question,
            {
              role: "assistant",
              content: null,
              tool_calls: [
                {
                  id: "toolu_w",
                  type: "function",
                  function: { name: "get_weather", arguments: '{"city":"Oslo"}' },
                },
              ],
            },
            { role: "tool", tool_call_id: "toolu_w", content: "sunny, 18 C" },
          ],
          tools,
        });
        expect(second.choices[0]?.message.content).toBe("Sunny, and the notes match.");
        expect(fake.requests).toHaveLength(3);
        expect(lastToolResults(fake.requests[2]?.body)[0]?.content).toContain("sunny, 18 C");
      },
    );

    itFull(
      "max_turns ends the answer as cut off (length), with the text so far and all usage",
      async () => {
        const readNotes = {
          content: [
            { type: "text" as const, text: "Reading. " },
            {
              type: "tool_use" as const,
              name: "Read",
              input: { file_path: join(agentDir, "notes.txt") },
            },
          ],
        };
        fake.script(readNotes, readNotes, readNotes);
        const answer = await client.chat.completions.create({
          model: "sonnet",
          messages: [{ role: "user", content: "Read forever" }],
          max_turns: 2,
        } as OpenAI.ChatCompletionCreateParamsNonStreaming);
        expect(answer.choices[0]?.finish_reason).toBe("length");
        expect(answer.choices[0]?.message.content).toBe("Reading. Reading. ");
        expect(answer.usage?.prompt_tokens).toBe(20);
        expect(fake.requests).toHaveLength(2);
      },
    );

    itFull("Responses: progress as reasoning items, metadata.max_turns, incomplete", async () => {
      const readNotes = {
        content: [
          {
            type: "tool_use" as const,
            name: "Read",
            input: { file_path: join(agentDir, "notes.txt") },
          },
        ],
      };
      fake.script(readNotes, readNotes);
      const response = await fetch(`${read.url}/responses`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "sonnet",
          input: "Read it twice",
          stream: true,
          store: false,
          metadata: { max_turns: "1" },
        }),
      });
      const events = await sseEvents(response);
      const summaries = events
        .filter((e) => e.event === "response.reasoning_summary_text.delta")
        .map((e) => (e.data as { delta: string }).delta);
      expect(summaries).toEqual(["Read notes.txt\n"]);
      const done = events.find((e) => e.event === "response.incomplete")?.data as {
        response: { status: string; output: Array<{ type: string }> };
      };
      expect(done?.response.status).toBe("incomplete");
      expect(done.response.output.some((item) => item.type === "function_call")).toBe(false);
      expect(fake.requests).toHaveLength(1);
    });

    itFull("Messages: progress as thinking blocks, never tool_use blocks", async () => {
      fake.script(
        { content: [{ type: "tool_use", name: "Glob", input: { pattern: "*.txt" } }] },
        { content: [{ type: "text", text: "Two files." }] },
      );
      const response = await fetch(`${read.origin}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
        body: JSON.stringify({
          model: "sonnet",
          max_tokens: 2000,
          stream: true,
          // Progress shows where thinking does: a request without thinking gets none.
          thinking: { type: "enabled", budget_tokens: 1024 },
          messages: [{ role: "user", content: "Which text files are there?" }],
        }),
      });
      const events = await sseEvents(response);
      const starts = events
        .filter((e) => e.event === "content_block_start")
        .map((e) => (e.data as { content_block: { type: string } }).content_block.type);
      expect(starts).toEqual(["thinking", "text"]);
      const thinking = events
        .filter((e) => e.event === "content_block_delta")
        .map((e) => (e.data as { delta: { thinking?: string } }).delta.thinking ?? "")
        .join("");
      expect(thinking).toBe("Glob *.txt\n");
      const end = events.find((e) => e.event === "message_delta")?.data as {
        delta: { stop_reason: string };
      };
      expect(end.delta.stop_reason).toBe("end_turn");
    });

    itFull(
      "Write works inside the directory only (not outside, not through a symlink out)",
      async () => {
        if (bash === undefined) throw new Error("no bash proxy");
        const write = (id: string, file_path: string) => ({
          type: "tool_use" as const,
          id,
          name: "Write",
          input: { file_path, content: "WRITTEN" },
        });
        fake.script(
          {
            content: [
              write("toolu_in", join(agentDir, "new.txt")),
              write("toolu_out", join(dirs.root, "new-outside.txt")),
              write("toolu_link", join(agentDir, "linkdir", "new.txt")),
            ],
          },
          { content: [{ type: "text", text: "Wrote one." }] },
        );
        const bashClient = new OpenAI({ baseURL: bash.url, apiKey: "x", maxRetries: 0 });
        const answer = await bashClient.chat.completions.create({
          model: "sonnet",
          messages: [{ role: "user", content: "Write files" }],
        });
        expect(answer.choices[0]?.message.content).toBe("Wrote one.");
        expect(readFileSync(join(agentDir, "new.txt"), "utf8")).toBe("WRITTEN");
        expect(existsSync(join(dirs.root, "new-outside.txt"))).toBe(false);
        expect(existsSync(join(dirs.root, "elsewhere", "new.txt"))).toBe(false);
        const results = lastToolResults(fake.requests[1]?.body);
        expect(results.find((r) => r.tool_use_id === "toolu_out")?.content).toMatch(/denied/i);
        expect(results.find((r) => r.tool_use_id === "toolu_link")?.content).toMatch(/denied/i);
        await expectClean(bash);
      },
    );

    itFull(
      "the operator's MCP tools: a named one runs, an unnamed one of the same server is refused",
      async () => {
        if (bash === undefined) throw new Error("no bash proxy");
        fake.script(
          {
            content: [
              {
                type: "tool_use",
                id: "toolu_lookup",
                name: "mcp__notes__lookup",
                input: { query: "cat" },
              },
              { type: "tool_use", id: "toolu_secret", name: "mcp__notes__secret", input: {} },
            ],
          },
          { content: [{ type: "text", text: "Looked it up." }] },
        );
        const bashClient = new OpenAI({ baseURL: bash.url, apiKey: "x", maxRetries: 0 });
        const stream = await bashClient.chat.completions.create({
          model: "sonnet",
          messages: [{ role: "user", content: "Look up cat" }],
          stream: true,
        });
        const chunks = await readChunks(stream);
        expect(streamedContent(chunks)).toBe("Looked it up.");
        expect(streamedReasoning(chunks)).toBe(
          "mcp__notes__lookup cat\nmcp__notes__secret\nmcp__notes__secret failed or was refused\n",
        );
        const results = lastToolResults(fake.requests[1]?.body);
        expect(results.find((r) => r.tool_use_id === "toolu_lookup")?.content).toContain(
          "LOOKUP-RESULT: cat",
        );
        expect(results.find((r) => r.tool_use_id === "toolu_secret")?.content).toMatch(/denied/i);
        expect(everythingSent()).not.toContain("MCP-SECRET-5e2c");
        await expectClean(bash);
      },
    );

    itFull("a disconnect during a Bash run leaves no process behind", async () => {
      if (bash === undefined) throw new Error("no bash proxy");
      fake.script({
        content: [
          { type: "tool_use", name: "Bash", input: { command: `sh -c "sleep ${SLEEP_ARG}"` } },
        ],
      });
      const controller = new AbortController();
      const request = fetch(`${bash.url}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "sonnet",
          stream: true,
          messages: [{ role: "user", content: "Sleep" }],
        }),
        signal: controller.signal,
      }).then((r) => r.text());
      request.catch(() => {});
      const deadline = Date.now() + 20_000;
      while (processesWith(SLEEP_ARG).length === 0 && Date.now() < deadline) await sleep(100);
      expect(processesWith(SLEEP_ARG), "the Bash child started").not.toEqual([]);
      controller.abort();
      const gone = Date.now() + 8_000;
      while (processesWith(SLEEP_ARG).length > 0 && Date.now() < gone) await sleep(100);
      const left = processesWith(SLEEP_ARG);
      killPids(left);
      expect(left, "sleep processes left behind").toEqual([]);
      await expectClean(bash);
    });

    itFull("the request timeout during a Bash run leaves no process behind", async () => {
      if (bash === undefined) throw new Error("no bash proxy");
      const arg = "30.5151";
      fake.script({
        content: [{ type: "tool_use", name: "Bash", input: { command: `sh -c "sleep ${arg}"` } }],
      });
      const bashClient = new OpenAI({ baseURL: bash.url, apiKey: "x", maxRetries: 0 });
      const answer = bashClient.chat.completions
        .create({ model: "sonnet", messages: [{ role: "user", content: "Sleep" }] })
        .then(
          () => null,
          (error: unknown) => error,
        );
      const deadline = Date.now() + 20_000;
      while (processesWith(arg).length === 0 && Date.now() < deadline) await sleep(100);
      expect(processesWith(arg), "the Bash child started").not.toEqual([]);
      const error = (await answer) as { status?: number; code?: string } | null;
      expect(error?.status).toBe(504);
      expect(error?.code).toBe("request_timeout");
      const gone = Date.now() + 8_000;
      while (processesWith(arg).length > 0 && Date.now() < gone) await sleep(100);
      const left = processesWith(arg);
      killPids(left);
      expect(left, "sleep processes left behind").toEqual([]);
      await expectClean(bash);
    });
  });
}

for (const runtime of RUNTIMES) describeRuntime(runtime);
