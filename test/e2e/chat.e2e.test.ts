/**
 * The core issue end to end: the proxy as a real process on each runtime (see harness.ts),
 * driven by the official `openai` client, running the real pinned `claude` CLI against the
 * fake Anthropic API. About 20 CLI runs per runtime.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import OpenAI from "openai";
import type { ChatCompletionChunk } from "openai/resources/chat/completions";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { NEWEST_TESTED_CLI, OLDEST_TESTED_CLI } from "../../src/claude/supported.ts";
import {
  clientSystemText,
  type FakeAnthropic,
  lastUserText,
  startFakeAnthropic,
} from "../fixtures/fake-anthropic.ts";
import {
  apiError,
  claudeProcesses,
  type E2eDirs,
  killPids,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  proxyTempDirs,
  RUNTIMES,
  sleep,
  startProxy,
  waitForNoClaude,
  waitForNoLeftovers,
} from "./harness.ts";

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

/** Reads a whole stream, with the arrival time of each chunk. */
async function readStream(
  stream: AsyncIterable<ChatCompletionChunk>,
): Promise<{ chunks: ChatCompletionChunk[]; times: number[] }> {
  const chunks: ChatCompletionChunk[] = [];
  const times: number[] = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
    times.push(performance.now());
  }
  return { chunks, times };
}

/** The proxy's JSON log lines. */
function logLines(stderr: string): Record<string, unknown>[] {
  return stderr.split("\n").flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/** `delta.reasoning_content`, an extension of the OpenAI wire format (DeepSeek, vLLM). */
function reasoningOf(chunk: ChatCompletionChunk): string {
  const delta = chunk.choices[0]?.delta as { reasoning_content?: string } | undefined;
  return delta?.reasoning_content ?? "";
}

function contentOf(chunks: readonly ChatCompletionChunk[]): string {
  return chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
}

if (RUNTIMES.length === 0) {
  describe("e2e", () => {
    it.skip("no runtime selected (E2E_RUNTIMES)", () => {});
  });
}

for (const runtime of RUNTIMES) {
  describe(`chat completions end to end on ${runtime}`, () => {
    let proxy: ProxyProcess;
    let client: OpenAI;
    let tmp: string;
    let started = 0;

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
        env: proxyEnv(fake.url, { home: dirs.home, tmp }),
        args: ["--kill-grace", "1000"],
      });
      client = new OpenAI({ baseURL: proxy.url, apiKey: "x", maxRetries: 0, timeout: 60_000 });
    });
    afterEach(async () => {
      fake.reset();
      if (proxy !== undefined) await expectClean();
    });
    afterAll(async () => {
      await proxy?.stop();
      if (tmp !== undefined) {
        expect(proxyTempDirs(tmp), "proxy temp dir after stop").toEqual([]);
        const pids = claudeProcesses({ dir: tmp });
        killPids(pids);
        expect(pids, "claude processes after stop").toEqual([]);
      }
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(`[e2e] ${runtime}: ${seconds} s`);
    });

    it("answers a non-streaming request with content, finish_reason and usage", async () => {
      fake.script({
        content: [{ type: "text", text: "Hello from the fake." }],
        usage: {
          input_tokens: 100,
          cache_read_input_tokens: 30,
          cache_creation_input_tokens: 20,
          output_tokens: 7,
        },
      });
      const completion = await client.chat.completions.create({
        model: "gpt-4o",
        messages: [{ role: "user", content: "Say hello" }],
      });
      expect(completion.object).toBe("chat.completion");
      expect(completion.model).toBe("gpt-4o");
      expect(completion.id).toMatch(/^chatcmpl-/);
      expect(completion.choices).toHaveLength(1);
      expect(completion.choices[0]?.message.role).toBe("assistant");
      expect(completion.choices[0]?.message.content).toBe("Hello from the fake.");
      expect(completion.choices[0]?.finish_reason).toBe("stop");
      expect(completion.usage).toMatchObject({
        prompt_tokens: 150,
        completion_tokens: 7,
        total_tokens: 157,
        prompt_tokens_details: { cached_tokens: 30 },
      });
      // gpt-4o maps to sonnet; the CLI sends its full sonnet id.
      expect(fake.requests).toHaveLength(1);
      expect(String(fake.requests[0]?.body.model)).toContain("sonnet");
      expect(lastUserText(fake.requests[0]?.body)).toBe("Say hello");
    });

    it("streams: role delta first, text deltas in order, finish chunk, usage chunk, one id", async () => {
      const text = "The quick brown fox jumps over the lazy dog.";
      fake.script({
        content: [{ type: "text", text }],
        usage: { input_tokens: 12, cache_read_input_tokens: 3, output_tokens: 9 },
        chunkSize: 5,
      });
      const stream = await client.chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "Stream please" }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const { chunks } = await readStream(stream);
      expect(chunks.length).toBeGreaterThan(4);
      expect(chunks[0]?.choices[0]?.delta).toEqual({ role: "assistant", content: "" });
      const contentChunks = chunks.filter((c) => (c.choices[0]?.delta.content ?? "") !== "");
      expect(contentChunks.length).toBeGreaterThan(1);
      expect(contentOf(chunks)).toBe(text);
      const finish = chunks.filter((c) => c.choices[0]?.finish_reason != null);
      expect(finish).toHaveLength(1);
      expect(finish[0]?.choices[0]?.finish_reason).toBe("stop");
      const last = chunks.at(-1);
      expect(last?.choices).toEqual([]);
      expect(last?.usage).toMatchObject({
        prompt_tokens: 15,
        completion_tokens: 9,
        total_tokens: 24,
        prompt_tokens_details: { cached_tokens: 3 },
      });
      expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
      expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
      expect(chunks.every((c) => c.model === "sonnet")).toBe(true);
    });

    it("ends the SSE body with data: [DONE]", async () => {
      const response = await fetch(`${proxy.url}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer x" },
        body: JSON.stringify({
          model: "haiku",
          messages: [{ role: "user", content: "raw stream" }],
          stream: true,
        }),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toContain("text/event-stream");
      const body = await response.text();
      expect(body.trimEnd().endsWith("data: [DONE]")).toBe(true);
      const frames = body
        .split("\n\n")
        .map((f) => f.trim())
        .filter((f) => f.startsWith("data: ") && f !== "data: [DONE]")
        .map((f) => JSON.parse(f.slice(6)) as ChatCompletionChunk);
      expect(contentOf(frames)).toBe("echo: raw stream");
    });

    it("streams thinking as delta.reasoning_content", async () => {
      fake.script({
        content: [
          { type: "thinking", thinking: "Let me think about this carefully." },
          { type: "text", text: "Forty-two." },
        ],
      });
      const stream = await client.chat.completions.create({
        model: "opus",
        messages: [{ role: "user", content: "What is the answer?" }],
        stream: true,
      });
      const { chunks } = await readStream(stream);
      const reasoning = chunks.map(reasoningOf).join("");
      expect(reasoning).toBe("Let me think about this carefully.");
      expect(contentOf(chunks)).toBe("Forty-two.");
      const firstReasoning = chunks.findIndex((c) => reasoningOf(c) !== "");
      const firstContent = chunks.findIndex((c) => c.choices[0]?.delta.content);
      expect(firstReasoning).toBeGreaterThan(0);
      expect(firstReasoning).toBeLessThan(firstContent);
    });

    it("streams text incrementally, not all at the end", async () => {
      const delayMs = 150;
      fake.script({
        content: [{ type: "text", text: "one two three four five six seven eight" }],
        chunkSize: 5,
        delayMs,
      });
      const stream = await client.chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "slowly" }],
        stream: true,
      });
      const { chunks, times } = await readStream(stream);
      const contentTimes = chunks
        .map((c, i) => ((c.choices[0]?.delta.content ?? "") === "" ? -1 : i))
        .filter((i) => i >= 0)
        .map((i) => times[i] ?? 0);
      expect(contentTimes.length).toBeGreaterThanOrEqual(6);
      const first = contentTimes[0] ?? 0;
      const last = contentTimes.at(-1) ?? 0;
      // 8 deltas sent 150 ms apart: a buffering proxy would deliver them all together.
      expect(last - first).toBeGreaterThan(3 * delayMs);
      // And in order: each arrived no earlier than the one before.
      for (let i = 1; i < contentTimes.length; i++) {
        expect(contentTimes[i]).toBeGreaterThanOrEqual(contentTimes[i - 1] ?? 0);
      }
      expect(contentOf(chunks)).toBe("one two three four five six seven eight");
    });

    it("sends system and developer messages as the system prompt and earlier turns along", async () => {
      const completion = await client.chat.completions.create({
        model: "sonnet",
        messages: [
          { role: "system", content: "SYSTEM-ALPHA: you are terse." },
          { role: "developer", content: "DEVELOPER-BETA: answer in English." },
          { role: "user", content: "EARLIER-QUESTION-Q1 about the moon" },
          { role: "assistant", content: "EARLIER-ANSWER-A1 it is round" },
          { role: "user", content: "FINAL-QUESTION-Q2" },
        ],
      });
      expect(fake.requests).toHaveLength(1);
      const body = fake.requests[0]?.body;
      const system = clientSystemText(body);
      expect(system).toContain("SYSTEM-ALPHA: you are terse.");
      expect(system).toContain("DEVELOPER-BETA: answer in English.");
      const transcript = JSON.stringify(body.messages);
      expect(transcript).toContain("EARLIER-QUESTION-Q1 about the moon");
      expect(transcript).toContain("EARLIER-ANSWER-A1 it is round");
      expect(lastUserText(body)).toContain("FINAL-QUESTION-Q2");
      expect(transcript).not.toContain("SYSTEM-ALPHA");
      expect(completion.choices[0]?.message.content).toContain("FINAL-QUESTION-Q2");
    });

    it("passes a 500 KB system prompt and a 500 KB user message", async () => {
      const size = 500 * 1024;
      const filler = (tag: string) => {
        const unit = `${tag} lorem ipsum dolor sit amet ${"x".repeat(30)}\n`;
        return `${tag}-START\n${unit.repeat(Math.ceil(size / unit.length))}${tag}-END`;
      };
      const system = filler("SYS");
      const user = filler("USR");
      fake.script({ content: [{ type: "text", text: "got it" }] });
      const completion = await client.chat.completions.create({
        model: "sonnet",
        messages: [
          { role: "system", content: system },
          { role: "user", content: user },
        ],
      });
      expect(completion.choices[0]?.message.content).toBe("got it");
      expect(fake.requests).toHaveLength(1);
      const body = fake.requests[0]?.body;
      const receivedSystem = clientSystemText(body);
      const receivedUser = lastUserText(body);
      expect(receivedSystem.length).toBeGreaterThanOrEqual(size);
      expect(receivedSystem).toContain("SYS-START");
      expect(receivedSystem).toContain("SYS-END");
      expect(receivedUser.length).toBeGreaterThanOrEqual(size);
      expect(receivedUser.startsWith("USR-START")).toBe(true);
      expect(receivedUser.endsWith("USR-END")).toBe(true);
    });

    describe("upstream API errors", () => {
      const ask = () =>
        client.chat.completions.create({
          model: "sonnet",
          messages: [{ role: "user", content: "this will fail" }],
        });

      it("400 becomes BadRequestError 400", async () => {
        fake.setHandler(() => ({
          error: { status: 400, type: "invalid_request_error", message: "prompt is malformed" },
        }));
        const t0 = performance.now();
        const error = await apiError(ask());
        expect(performance.now() - t0).toBeLessThan(5_000);
        expect(error).toBeInstanceOf(OpenAI.BadRequestError);
        expect(error.status).toBe(400);
        expect(error.message).toContain("prompt is malformed");
      });

      it("401 answers at once although the upstream asks to retry after 5 s", async () => {
        fake.setHandler(() => ({
          error: {
            status: 401,
            type: "authentication_error",
            message: "invalid x-api-key",
            retryAfterSeconds: 5,
          },
        }));
        const t0 = performance.now();
        const error = await apiError(ask());
        expect(performance.now() - t0).toBeLessThan(5_000);
        expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
        expect(error.status).toBe(401);
      });

      it("429 becomes 429 with a retry-after header", async () => {
        fake.setHandler(() => ({
          error: {
            status: 429,
            type: "rate_limit_error",
            message: "Number of requests has exceeded your rate limit",
            retryAfterSeconds: 10,
          },
        }));
        const t0 = performance.now();
        const error = await apiError(ask());
        expect(performance.now() - t0).toBeLessThan(5_000);
        expect(error).toBeInstanceOf(OpenAI.RateLimitError);
        expect(error.status).toBe(429);
        const retryAfter = error.headers?.get("retry-after");
        expect(retryAfter).toBeTruthy();
        expect(Number(retryAfter)).toBeGreaterThan(0);
      });

      it("529 (overloaded) becomes 503 at once, without waiting out the CLI's retries", async () => {
        fake.setHandler(() => ({
          // A proxy that let the CLI retry would wait 10 s per attempt (~21 s in all).
          error: {
            status: 529,
            type: "overloaded_error",
            message: "Overloaded",
            retryAfterSeconds: 10,
          },
        }));
        const t0 = performance.now();
        const error = await apiError(ask());
        expect(performance.now() - t0).toBeLessThan(5_000);
        expect(error).toBeInstanceOf(OpenAI.InternalServerError);
        expect(error.status).toBe(503);
      });
    });

    describe("requests the proxy rejects itself", () => {
      it("unknown model → 404 model_not_found", async () => {
        const error = await apiError(
          client.chat.completions.create({
            model: "no-such-model",
            messages: [{ role: "user", content: "hi" }],
          }),
        );
        expect(error).toBeInstanceOf(OpenAI.NotFoundError);
        expect(error.status).toBe(404);
        expect(error.code).toBe("model_not_found");
      });

      it("n: 2 → 400", async () => {
        const error = await apiError(
          client.chat.completions.create({
            model: "sonnet",
            n: 2,
            messages: [{ role: "user", content: "hi" }],
          }),
        );
        expect(error).toBeInstanceOf(OpenAI.BadRequestError);
        expect(error.status).toBe(400);
        expect(error.param).toBe("n");
      });

      it("malformed JSON → 400 in OpenAI's error shape", async () => {
        const response = await fetch(`${proxy.url}/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"model": "sonnet", "messages": [',
        });
        expect(response.status).toBe(400);
        const body = (await response.json()) as { error: Record<string, unknown> };
        expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
        expect(body.error.type).toBe("invalid_request_error");
        expect(typeof body.error.message).toBe("string");
      });

      it("GET /v1/models lists opus, sonnet and haiku", async () => {
        const models = [];
        for await (const model of client.models.list()) models.push(model.id);
        expect(models).toEqual(expect.arrayContaining(["opus", "sonnet", "haiku"]));
      });

      it("GET /health reports the claude version and the tested range", async () => {
        const response = await fetch(`${proxy.origin}/health`);
        expect(response.status).toBe(200);
        const health = (await response.json()) as {
          status: string;
          claude: {
            found: boolean;
            version: string | null;
            supported: string;
            tested_range: { oldest: string; newest: string };
          };
          runtime: { name: string };
        };
        expect(health.status).toBe("ok");
        expect(health.claude.found).toBe(true);
        expect(health.claude.version).toMatch(/^\d+\.\d+\.\d+/);
        expect(health.claude.tested_range).toEqual({
          oldest: OLDEST_TESTED_CLI,
          newest: NEWEST_TESTED_CLI,
        });
        // `npm run test:cli -- latest` may run a release newer than the tested range.
        expect(["yes", "newer"]).toContain(health.claude.supported);
        expect(health.runtime.name).toBe(runtime === "binary" ? "bun" : runtime);
      });
    });

    it("kills the CLI and removes its files when the client disconnects mid-stream", async () => {
      fake.script({
        // ~60 deltas 500 ms apart: the CLI would run for half a minute if nobody killed it.
        content: [
          { type: "text", text: "a slow answer that takes a long time to arrive ".repeat(4) },
        ],
        chunkSize: 3,
        delayMs: 500,
      });
      const controller = new AbortController();
      const stream = await client.chat.completions.create(
        {
          model: "sonnet",
          messages: [{ role: "user", content: "take your time" }],
          stream: true,
        },
        { signal: controller.signal },
      );
      const received: ChatCompletionChunk[] = [];
      try {
        for await (const chunk of stream) {
          received.push(chunk);
          if (received.length === 2) controller.abort();
        }
      } catch (error) {
        // openai-node ends an aborted stream quietly; some versions throw APIUserAbortError.
        expect(error).toBeInstanceOf(OpenAI.APIUserAbortError);
      }
      expect(received).toHaveLength(2);
      expect(received[1]?.choices[0]?.delta.content).toBeTruthy();
      const abortedAt = performance.now();
      await expectClean(5_000);
      expect(performance.now() - abortedAt).toBeLessThan(5_000);
      // Logged once the run is closed, a moment after its files are gone.
      const logged = () =>
        logLines(proxy.stderr()).some((l) => l.msg === "chat completion" && l.status === 499);
      for (let i = 0; i < 50 && !logged(); i++) await sleep(100);
      expect(logged(), "a chat completion log line with status 499").toBe(true);
      // The proxy is still serving.
      const after = await client.chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "still there?" }],
      });
      expect(after.choices[0]?.message.content).toBe("echo: still there?");
    });

    it("answers 8 concurrent requests each with its own answer", async () => {
      const questions = Array.from({ length: 8 }, (_, i) => `question number ${i}`);
      const answers = await Promise.all(
        questions.map((q, i) =>
          i % 2 === 0
            ? client.chat.completions
                .create({ model: "sonnet", messages: [{ role: "user", content: q }] })
                .then((c) => c.choices[0]?.message.content)
            : client.chat.completions
                .create({ model: "sonnet", messages: [{ role: "user", content: q }], stream: true })
                .then(readStream)
                .then(({ chunks }) => contentOf(chunks)),
        ),
      );
      expect(answers).toEqual(questions.map((q) => `echo: ${q}`));
      expect(fake.requests).toHaveLength(8);
    });

    if (runtime === "node") {
      describe("with --request-timeout 1500", () => {
        let slow: ProxyProcess;
        let slowTmp: string;
        beforeAll(async () => {
          slowTmp = join(dirs.tmp, `${runtime}-timeout`);
          await mkdir(slowTmp);
          slow = await startProxy(runtime, {
            env: proxyEnv(fake.url, { home: dirs.home, tmp: slowTmp }),
            args: ["--request-timeout", "1500", "--kill-grace", "1000"],
          });
        });
        afterAll(async () => {
          await slow?.stop();
        });

        it("answers 504 when the upstream hangs and leaves no CLI behind", async () => {
          fake.script({ hang: true });
          const slowClient = new OpenAI({ baseURL: slow.url, apiKey: "x", maxRetries: 0 });
          const t0 = performance.now();
          const error = await apiError(
            slowClient.chat.completions.create({
              model: "sonnet",
              messages: [{ role: "user", content: "hang" }],
            }),
          );
          expect(error.status).toBe(504);
          expect(performance.now() - t0).toBeLessThan(10_000);
          const pids = await waitForNoClaude({ pid: slow.process.pid, dir: slowTmp });
          killPids(pids);
          expect(pids).toEqual([]);
          expect(await waitForNoLeftovers(slowTmp)).toEqual([]);
        });
      });
    }
  });
}
