/**
 * What the other suites leave out, end to end (Node only: none of it is runtime-specific):
 * streams that start while the request waits in the queue (comment pings, then the answer or
 * a queue_timeout error frame) and fast errors that still get a real status; the transcript
 * fallback when the CLI rejects a resumed session; the privacy of a run's temp files; the
 * `/metrics` counters and the `/v1/usage` totals across a restart. The proxy runs as a real
 * process with the real pinned `claude` CLI against the fake Messages API. After every case:
 * no `claude` process and no run directory left.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { claudeBin } from "../fixtures/claude-cli.ts";
import {
  type FakeAnthropic,
  type FakeReply,
  lastUserText,
  startFakeAnthropic,
} from "../fixtures/fake-anthropic.ts";
import {
  chatBody,
  claudePids,
  hasContent,
  killAll,
  logLines,
  SseReader,
  sseContent,
  sseData,
  waitForLeftovers,
  waitUntil,
} from "./fault-helpers.ts";
import {
  type E2eDirs,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  proxyTempDirs,
  RUNTIMES,
  startProxy,
} from "./harness.ts";
import { clientMessages, jsonlFilesUnder } from "./tools-helpers.ts";

const enabled = RUNTIMES.includes("node");

let fake: FakeAnthropic;
let dirs: E2eDirs;
/** Every proxy started by this file, with its TMPDIR. */
const proxies: Array<{ proxy: ProxyProcess; tmp: string }> = [];

/** Starts a Node proxy with its own TMPDIR `dirs.tmp/name`. */
async function extraProxy(name: string, args: readonly string[]): Promise<ProxyProcess> {
  const tmp = join(dirs.tmp, name);
  await mkdir(tmp, { recursive: true });
  const proxy = await startProxy("node", {
    env: proxyEnv(fake.url, { home: dirs.home, tmp }),
    args,
  });
  proxies.push({ proxy, tmp });
  return proxy;
}

function client(proxy: ProxyProcess): OpenAI {
  return new OpenAI({ baseURL: proxy.url, apiKey: "x", maxRetries: 0, timeout: 60_000 });
}

/** POST /v1/chat/completions with a raw JSON body. */
function post(proxy: ProxyProcess, body: string): Promise<Response> {
  return fetch(`${proxy.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
}

/** A reply that trickles: `count` text deltas of "abc", `delayMs` apart. */
function trickle(count: number, delayMs: number): FakeReply {
  return { content: [{ type: "text", text: "abc".repeat(count) }], chunkSize: 3, delayMs };
}

/** Answers the user text `hold` with `reply`, anything else with its echo. */
function holdWith(reply: FakeReply | (() => Promise<FakeReply>)): void {
  fake.setHandler(async (req) => {
    const text = lastUserText(req.body);
    if (text === "hold") return typeof reply === "function" ? reply() : reply;
    return { content: [{ type: "text", text: `echo: ${text}` }] };
  });
}

async function health(proxy: ProxyProcess): Promise<{ running: number; queued: number }> {
  const body = (await (await fetch(`${proxy.origin}/health`)).json()) as {
    processes: { running: number; queued: number };
  };
  return { running: body.processes.running, queued: body.processes.queued };
}

/** Polls /health until it reports `want`; fails the test after 20 s. */
async function waitHealth(
  proxy: ProxyProcess,
  want: { running: number; queued: number },
): Promise<void> {
  const deadline = Date.now() + 20_000;
  let now = await health(proxy);
  while ((now.running !== want.running || now.queued !== want.queued) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    now = await health(proxy);
  }
  expect(now).toEqual(want);
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** The parsed `data:` payloads of an SSE text, `[DONE]` left as the string. */
function frames(text: string): unknown[] {
  return sseData(text).map((d) => (d === "[DONE]" ? d : (JSON.parse(d) as unknown)));
}

/** Permission bits of a path. */
function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

/** The CLI's project directory name for a cwd (every character but [A-Za-z0-9] becomes "-"). */
function projectDirName(cwd: string): string {
  return cwd.replace(/[^A-Za-z0-9]/g, "-");
}

describe.skipIf(!enabled)("extras (node)", () => {
  beforeAll(async () => {
    fake = await startFakeAnthropic();
    dirs = await makeE2eDirs("claude-openai-proxy-extras-");
  });
  afterEach(async () => {
    fake?.reset();
    if (dirs === undefined) return;
    const left = await waitForLeftovers(
      dirs.tmp,
      8_000,
      proxies.map(({ tmp }) => tmp),
    );
    killAll(left.pids);
    expect(left.pids, "claude processes left behind").toEqual([]);
    expect(left.files, "run dirs left behind").toEqual([]);
  });
  afterAll(async () => {
    for (const { proxy } of proxies) await proxy.stop();
    // A proxy stopped with SIGTERM removes its own temp dir.
    for (const { tmp } of proxies) expect(proxyTempDirs(tmp), `temp dir of ${tmp}`).toEqual([]);
    killAll(claudePids(dirs?.tmp ?? "/nonexistent"));
    await fake?.close();
    await dirs?.cleanup();
  });

  describe("streaming while queued (--max-concurrency 1 --sse-ping-interval 300)", () => {
    it("a queued stream gets 200 and `: ping` comments while it waits, then its answer and [DONE]", async () => {
      const proxy = await extraProxy("queue-ping", [
        "--max-concurrency",
        "1",
        "--sse-ping-interval",
        "300",
      ]);
      // 8 deltas 250 ms apart: the first run holds the only slot for ~3 s.
      holdWith(trickle(8, 250));
      const firstResponse = await post(proxy, chatBody("hold", { stream: true }));
      expect(firstResponse.status).toBe(200);
      const first = new SseReader(firstResponse);
      expect(await first.until(hasContent)).toBe(true);
      let firstDone = false;
      const firstText = first.rest().then((text) => {
        firstDone = true;
        return text;
      });

      const t0 = performance.now();
      const second = await post(proxy, chatBody("queued", { stream: true }));
      // The headers come after one ping interval, long before the slot frees up.
      expect(performance.now() - t0).toBeLessThan(2_000);
      expect(second.status).toBe(200);
      expect(second.headers.get("content-type")).toContain("text/event-stream");
      const sse = new SseReader(second);
      expect(await sse.until((text) => /^: ping$/m.test(text))).toBe(true);
      // Still queued: the first run holds the slot and the second never reached the upstream.
      expect(firstDone).toBe(false);
      expect(await health(proxy)).toEqual({ running: 1, queued: 1 });
      expect(fake.requests.map((r) => lastUserText(r.body))).toEqual(["hold"]);

      const text = await sse.rest();
      expect(sseContent(await firstText)).toBe("abc".repeat(8));
      expect(firstDone).toBe(true);
      expect(sseContent(text)).toBe("echo: queued");
      // The role delta opens the stream; comments while queued; then the answer; [DONE].
      const data = frames(text);
      expect(data[0]).toMatchObject({
        object: "chat.completion.chunk",
        choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }],
      });
      expect(data.at(-1)).toBe("[DONE]");
      expect(data.at(-2)).toMatchObject({ choices: [{ finish_reason: "stop" }] });
      expect(data.some((d) => typeof d === "object" && d !== null && "error" in d)).toBe(false);
      const firstContent = text.indexOf('"content":"e');
      expect(text.indexOf(": ping")).toBeLessThan(firstContent);
      // ~2.5 s in the queue, then the CLI's start: a ping every 300 ms.
      expect(text.slice(0, firstContent).match(/^: ping$/gm)?.length).toBeGreaterThanOrEqual(4);
      expect(fake.requests.map((r) => lastUserText(r.body))).toEqual(["hold", "queued"]);
      await waitHealth(proxy, { running: 0, queued: 0 });
    });

    it("a queued stream whose wait runs out (--max-queue-wait 1000) ends in a queue_timeout frame, then [DONE]", async () => {
      const proxy = await extraProxy("queue-timeout", [
        "--max-concurrency",
        "1",
        "--sse-ping-interval",
        "300",
        "--max-queue-wait",
        "1000",
      ]);
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      holdWith(async () => {
        await gate;
        return { content: [{ type: "text", text: "held" }] };
      });
      try {
        const first = client(proxy).chat.completions.create({
          model: "sonnet",
          messages: [{ role: "user", content: "hold" }],
        });
        expect(await waitUntil(() => fake.requests.length === 1, 20_000)).toBe(true);
        const t0 = performance.now();
        const response = await post(proxy, chatBody("too late", { stream: true }));
        expect(response.status).toBe(200);
        expect(response.headers.get("content-type")).toContain("text/event-stream");
        const text = await new SseReader(response).rest();
        const waited = performance.now() - t0;
        expect(waited).toBeGreaterThan(900);
        expect(waited).toBeLessThan(5_000);
        expect(text).toMatch(/^: ping$/m);
        const data = frames(text);
        expect(data[0]).toMatchObject({ choices: [{ delta: { role: "assistant" } }] });
        expect(data.at(-1)).toBe("[DONE]");
        const error = data.at(-2) as ErrorBody;
        expect(Object.keys(error)).toEqual(["error"]);
        expect(error.error.code).toBe("queue_timeout");
        expect(error.error.type).toBe("rate_limit_error");
        expect(error.error.message).toContain("1000 ms");
        expect(text).not.toMatch(/"finish_reason":"(stop|length)"/);
        release();
        expect((await first).choices[0]?.message.content).toBe("held");
        // The queued request never started a CLI.
        expect(fake.requests.map((r) => lastUserText(r.body))).toEqual(["hold"]);
        await waitHealth(proxy, { running: 0, queued: 0 });
      } finally {
        release();
      }
    });
  });

  describe("a proxy with the default settings", () => {
    let proxy: ProxyProcess;
    let tmp: string;
    beforeAll(async () => {
      proxy = await extraProxy("default", []);
      tmp = join(dirs.tmp, "default");
    });

    it("a streaming request whose error comes fast gets a real HTTP 400, not a stream", async () => {
      fake.setHandler(() => ({
        error: { status: 400, type: "invalid_request_error", message: "prompt is malformed" },
      }));
      const response = await post(proxy, chatBody("fail fast", { stream: true }));
      expect(response.status).toBe(400);
      expect(response.headers.get("content-type")).toContain("application/json");
      const body = (await response.json()) as ErrorBody;
      expect(body.error.code).toBe("upstream_invalid_request");
      expect(body.error.message).toContain("prompt is malformed");
      // 2.1.221 asks once; 2.1.332 tries twice more, each time without one beta.
      expect(fake.requests.length).toBeGreaterThanOrEqual(1);
      expect(fake.requests.length).toBeLessThanOrEqual(3);
    });

    it("a run's system prompt and session files are private (0600 in 0700 dirs) and gone after it; nothing under ~/.claude/projects", async () => {
      holdWith(trickle(8, 250));
      const pending = client(proxy).chat.completions.create({
        model: "sonnet",
        messages: [
          { role: "system", content: "Secret system prompt." },
          { role: "user", content: "My secret is 42." },
          { role: "assistant", content: "Noted." },
          { role: "user", content: "hold" },
        ],
      });
      expect(await waitUntil(() => fake.requests.length === 1, 20_000)).toBe(true);
      const bases = proxyTempDirs(tmp);
      expect(bases).toHaveLength(1);
      const base = bases[0] as string;
      const runs = join(base, "runs");
      const runDirs = readdirSync(runs).map((name) => join(runs, name));
      expect(runDirs).toHaveLength(1);
      const runDir = runDirs[0] as string;
      expect(runDir).toMatch(/\/run-[^/]+$/);
      for (const dir of [base, runs, join(base, "cwd"), runDir]) {
        expect(mode(dir).toString(8), dir).toBe("700");
      }
      const files = readdirSync(runDir).sort();
      const sessionFiles = files.filter((name) => name.endsWith(".jsonl"));
      expect(sessionFiles).toHaveLength(1);
      expect(files).toContain("system-prompt.md");
      for (const name of files) expect(mode(join(runDir, name)).toString(8), name).toBe("600");
      expect(readFileSync(join(runDir, "system-prompt.md"), "utf8")).toContain(
        "Secret system prompt.",
      );
      expect(readFileSync(join(runDir, sessionFiles[0] as string), "utf8")).toContain(
        "My secret is 42.",
      );

      const completion = await pending;
      expect(completion.choices[0]?.message.content).toBe("abc".repeat(8));
      // The history reached the API as real turns (resumed from the session file).
      expect(clientMessages(fake.requests[0]?.body).map((m) => m.role)).toEqual([
        "user",
        "assistant",
        "user",
      ]);
      const left = await waitForLeftovers(tmp, 5_000);
      expect(left).toEqual({ pids: [], files: [] });
      expect(existsSync(runDir)).toBe(false);
      // The CLI kept no session of its own for the proxy's work dir.
      const projects = join(dirs.home, ".claude", "projects");
      const workDir = join(base, "cwd");
      expect(existsSync(join(projects, projectDirName(workDir)))).toBe(false);
      const entries = existsSync(projects) ? readdirSync(projects) : [];
      expect(entries.filter((name) => name.includes("claude-openai-proxy"))).toEqual([]);
      expect(jsonlFilesUnder(projects)).toEqual([]);
    });
  });

  describe("the CLI rejects the resumed session (a wrapper that fails on --resume)", () => {
    let proxy: ProxyProcess;
    beforeAll(async () => {
      const wrapper = join(dirs.root, "wrapper", "claude");
      await mkdir(join(dirs.root, "wrapper"), { recursive: true });
      const real = claudeBin().replaceAll("'", "'\\''");
      await writeFile(
        wrapper,
        [
          "#!/bin/sh",
          'for arg in "$@"; do',
          '  if [ "$arg" = "--resume" ]; then',
          '    echo "wrapper: resumed sessions refused" >&2',
          "    exit 1",
          "  fi",
          "done",
          `exec '${real}' "$@"`,
          "",
        ].join("\n"),
        { mode: 0o755 },
      );
      proxy = await extraProxy("fallback", ["--claude-path", wrapper]);
    });

    it("a multi-turn request falls back to a transcript in one user message; the warning is logged once", async () => {
      const messages = [
        { role: "user" as const, content: "My name is Ada." },
        { role: "assistant" as const, content: "Nice to meet you, Ada." },
        { role: "user" as const, content: "What is my name?" },
      ];
      const completion = await client(proxy).chat.completions.create({
        model: "sonnet",
        messages,
      });
      expect(completion.choices[0]?.message.content).toMatch(/^echo: /);
      expect(completion.choices[0]?.finish_reason).toBe("stop");
      expect(fake.requests).toHaveLength(1);
      const sent = clientMessages(fake.requests[0]?.body) as Array<{ role: string }>;
      expect(sent).toHaveLength(1);
      expect(sent[0]?.role).toBe("user");
      const text = lastUserText(fake.requests[0]?.body);
      expect(text).toContain("<conversation_history>");
      expect(text).toContain("</conversation_history>");
      expect(text).toContain("My name is Ada.");
      expect(text).toContain("Nice to meet you, Ada.");
      expect(text).toContain("What is my name?");
      // The earlier turns are in the history, oldest first; the final message after it.
      expect(text.indexOf("My name is Ada.")).toBeLessThan(text.indexOf("Nice to meet you"));
      expect(text.indexOf("</conversation_history>")).toBeLessThan(
        text.lastIndexOf("What is my name?"),
      );

      // Again, streaming: the same fallback, no second warning.
      fake.reset();
      const stream = await client(proxy).chat.completions.create({
        model: "sonnet",
        messages: [
          ...messages,
          { role: "assistant", content: "Ada." },
          { role: "user", content: "And again?" },
        ],
        stream: true,
      });
      let content = "";
      for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? "";
      expect(content).toMatch(/^echo: /);
      expect(fake.requests).toHaveLength(1);
      expect(clientMessages(fake.requests[0]?.body)).toHaveLength(1);
      expect(lastUserText(fake.requests[0]?.body)).toContain("<conversation_history>");

      const warnings = logLines(proxy).filter((l) =>
        String(l.msg ?? "").includes("rejected a resumed session"),
      );
      expect(warnings).toHaveLength(1);
      expect(String(warnings[0]?.error)).toContain("wrapper: resumed sessions refused");
      // The log line may reach this process (a pipe) after the stream's end (a socket).
      const completions = () => logLines(proxy).filter((l) => l.msg === "chat completion");
      await waitUntil(() => completions().length >= 2, 5_000);
      expect(completions().map((l) => l.status)).toEqual([200, 200]);
    });
  });

  describe("a resumed CLI that never starts answering (a wrapper that hangs on --resume)", () => {
    let proxy: ProxyProcess;
    beforeAll(async () => {
      // What 2.1.3xx did with the old deferred-tool marker: read stdin, print nothing, wait.
      const wrapper = join(dirs.root, "hang-wrapper", "claude");
      await mkdir(join(dirs.root, "hang-wrapper"), { recursive: true });
      const real = claudeBin().replaceAll("'", "'\\''");
      await writeFile(
        wrapper,
        [
          "#!/bin/sh",
          'for arg in "$@"; do',
          '  if [ "$arg" = "--resume" ]; then',
          "    exec cat > /dev/null",
          "  fi",
          "done",
          `exec '${real}' "$@"`,
          "",
        ].join("\n"),
        { mode: 0o755 },
      );
      proxy = await extraProxy("hang", [
        "--claude-path",
        wrapper,
        "--resume-start-timeout",
        "2000",
        "--kill-grace",
        "500",
      ]);
    });

    it("a replayed tool result is answered from a transcript after --resume-start-timeout; the hung CLI is stopped", async () => {
      fake.script({ content: [{ type: "text", text: "It is warm." }] });
      const started = performance.now();
      const completion = await client(proxy).chat.completions.create({
        model: "sonnet",
        messages: [
          { role: "user", content: "Weather in Rome?" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              {
                id: "call_hang_1",
                type: "function",
                function: { name: "get_weather", arguments: '{"city":"Rome"}' },
              },
            ],
          },
          { role: "tool", tool_call_id: "call_hang_1", content: "warm" },
        ],
        tools: [
          {
            type: "function",
            function: {
              name: "get_weather",
              parameters: { type: "object", properties: { city: { type: "string" } } },
            },
          },
        ],
      });
      const elapsed = performance.now() - started;
      expect(completion.choices[0]?.message.content).toBe("It is warm.");
      expect(completion.choices[0]?.finish_reason).toBe("stop");
      // It waited for the start timeout, not for the idle timeout (5 min).
      expect(elapsed).toBeGreaterThan(2_000);
      expect(elapsed).toBeLessThan(30_000);
      // The transcript carried the call and its result.
      expect(fake.requests).toHaveLength(1);
      const text = lastUserText(fake.requests[0]?.body);
      expect(text).toContain("<conversation_history>");
      expect(text).toContain("call_hang_1");
      expect(text).toContain("warm");
      await waitUntil(
        () =>
          logLines(proxy).some((l) =>
            String(l.msg ?? "").includes("did not start answering a resumed session"),
          ),
        5_000,
      );
      const left = await waitForLeftovers(join(dirs.tmp, "hang"), 5_000);
      expect(left).toEqual({ pids: [], files: [] });
    });
  });

  describe("--model-map patterns and --default-model", () => {
    it("a name matched by a pattern, and a name that maps to nothing, reach the API as the mapped model", async () => {
      const proxy = await extraProxy("models", [
        "--model-map",
        "gpt-5*=haiku",
        "--default-model",
        "opus",
      ]);
      const mapped = await client(proxy).chat.completions.create({
        model: "gpt-5.1-codex",
        messages: [{ role: "user", content: "which model?" }],
      });
      expect(mapped.model).toBe("gpt-5.1-codex");
      expect(String(fake.requests.at(-1)?.body.model)).toMatch(/haiku/);
      const fallback = await client(proxy).chat.completions.create({
        model: "some-sdk-default",
        messages: [{ role: "user", content: "and now?" }],
      });
      expect(fallback.choices[0]?.message.content).toBe("echo: and now?");
      expect(String(fake.requests.at(-1)?.body.model)).toMatch(/opus/);
    });
  });

  describe("/metrics and /v1/usage", () => {
    it("count completions and tokens as the client saw them; usage totals survive a restart", async () => {
      const dataDir = join(dirs.root, "data");
      const args = ["--data-dir", dataDir];
      const proxy = await extraProxy("metrics", args);
      const usages = {
        one: {
          input_tokens: 11,
          output_tokens: 5,
          cache_read_input_tokens: 3,
          cache_creation_input_tokens: 2,
        },
        two: {
          input_tokens: 7,
          output_tokens: 4,
          cache_read_input_tokens: 0,
          cache_creation_input_tokens: 0,
        },
      };
      fake.setHandler((req) => {
        const text = lastUserText(req.body);
        if (text === "fail") {
          return { error: { status: 400, type: "invalid_request_error", message: "bad" } };
        }
        return {
          content: [{ type: "text", text: `echo: ${text}` }],
          usage: text === "one" ? usages.one : usages.two,
        };
      });
      const api = client(proxy);
      const one = await api.chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "one" }],
      });
      const stream = await api.chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "two" }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let twoUsage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) if (chunk.usage) twoUsage = chunk.usage;
      const failed = await api.chat.completions
        .create({ model: "sonnet", messages: [{ role: "user", content: "fail" }] })
        .catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(OpenAI.BadRequestError);

      // What the client saw, from the fake's token counts.
      expect(one.usage).toMatchObject({
        prompt_tokens: 16,
        completion_tokens: 5,
        total_tokens: 21,
        prompt_tokens_details: { cached_tokens: 3 },
      });
      expect(twoUsage).toMatchObject({
        prompt_tokens: 7,
        completion_tokens: 4,
        total_tokens: 11,
        prompt_tokens_details: { cached_tokens: 0 },
      });
      const seen = [one.usage, twoUsage] as OpenAI.CompletionUsage[];
      const sum = (f: (u: OpenAI.CompletionUsage) => number) => seen.reduce((n, u) => n + f(u), 0);
      const prompt = sum((u) => u.prompt_tokens);
      const completion = sum((u) => u.completion_tokens);
      const cached = sum((u) => u.prompt_tokens_details?.cached_tokens ?? 0);

      const metricsResponse = await fetch(`${proxy.origin}/metrics`);
      expect(metricsResponse.status).toBe(200);
      expect(metricsResponse.headers.get("content-type")).toContain("text/plain");
      const metrics = await metricsResponse.text();
      const sample = (name: string) => {
        const line = metrics.split("\n").find((l) => l.startsWith(`${name} `));
        return line === undefined ? undefined : Number(line.slice(name.length + 1));
      };
      expect(sample('chat_completions_total{model="sonnet",stream="false",status="200"}')).toBe(1);
      expect(sample('chat_completions_total{model="sonnet",stream="true",status="200"}')).toBe(1);
      expect(sample('chat_completions_total{model="sonnet",stream="false",status="400"}')).toBe(1);
      expect(metrics.match(/^chat_completions_total\{/gm)).toHaveLength(3);
      expect(sample('tokens_total{model="sonnet",type="prompt"}')).toBe(prompt);
      expect(sample('tokens_total{model="sonnet",type="completion"}')).toBe(completion);
      expect(sample('tokens_total{model="sonnet",type="cached"}')).toBe(cached);
      expect(sample("claude_processes")).toBe(0);
      expect(sample("claude_processes_waiting_for_tools")).toBe(0);
      expect(sample("queue_depth")).toBe(0);

      const figures = {
        requests: 2,
        prompt_tokens: prompt,
        completion_tokens: completion,
        cached_tokens: cached,
        total_tokens: prompt + completion,
      };
      const usage = (await (await fetch(`${proxy.url}/usage`)).json()) as Record<string, unknown>;
      expect(usage).toMatchObject({ object: "usage", ...figures, by_model: { sonnet: figures } });
      expect(Object.keys(usage.by_model as object)).toEqual(["sonnet"]);
      expect(typeof usage.since).toBe("string");
      expect(usage.cost_usd).toBeGreaterThanOrEqual(0);

      // The usage log is private too.
      const usageFile = join(dataDir, "usage.jsonl");
      expect(mode(dataDir).toString(8)).toBe("700");
      expect(mode(usageFile).toString(8)).toBe("600");
      expect(readFileSync(usageFile, "utf8").trim().split("\n")).toHaveLength(2);

      await proxy.stop();
      const restarted = await extraProxy("metrics-restarted", args);
      const after = (await (await fetch(`${restarted.url}/usage`)).json()) as Record<
        string,
        unknown
      >;
      expect(after).toEqual(usage);
      // Counters start over; the totals do not.
      const fresh = await (await fetch(`${restarted.origin}/metrics`)).text();
      expect(fresh).not.toMatch(/^chat_completions_total\{/m);
      expect(fresh).toMatch(/^claude_processes 0$/m);
    });
  });
});
