/**
 * Context window and an unreachable API (issue 8, items 6 and 7), on the real CLI (the pinned
 * one, or CLAUDE_CLI_BIN) and the fake Anthropic API; Node only. A conversation over the window
 * gets OpenAI's 400 `context_length_exceeded`, whether the CLI refuses it itself or the API
 * does, and never reaches the API as a request for a summary unless `--auto-compact`. An API
 * that cannot be connected to gets 502 `upstream_unreachable` naming the cause, within the
 * budget. After every case: no `claude` process and no run directory left.
 */
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeAnthropic,
  type RecordedRequest,
  startFakeAnthropic,
} from "../fixtures/fake-anthropic.ts";
import { claudePids, killAll, SseReader, sseData, waitForLeftovers } from "./fault-helpers.ts";
import {
  type E2eDirs,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  proxyTempDirs,
  RUNTIMES,
  startProxy,
} from "./harness.ts";

const enabled = RUNTIMES.includes("node");

let fake: FakeAnthropic;
let dirs: E2eDirs;
const proxies: Array<{ proxy: ProxyProcess; tmp: string }> = [];

async function contextProxy(
  name: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<ProxyProcess> {
  const tmp = join(dirs.tmp, name);
  await mkdir(tmp, { recursive: true });
  const proxy = await startProxy("node", {
    env: proxyEnv(fake.url, { home: dirs.home, tmp }, env),
    args,
  });
  proxies.push({ proxy, tmp });
  return proxy;
}

function post(proxy: ProxyProcess, body: unknown): Promise<Response> {
  return fetch(`${proxy.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function errorBody(response: Response, status: number): Promise<ErrorBody> {
  const body = (await response.json()) as ErrorBody;
  expect(response.status, JSON.stringify(body)).toBe(status);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  return body;
}

/**
 * A loopback port nothing listens on (one the OS just handed out; not port 1, which `fetch`
 * refuses to try as a "bad port").
 */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** ~5.1 MB of text: over the context window of every model of both releases (1M tokens). */
const HUGE = "lorem ipsum dolor sit amet ".repeat(190_000);

/** The API's real error body for a prompt over the window. */
const TOO_LONG = {
  error: {
    status: 400,
    type: "invalid_request_error",
    message: "prompt is too long: 250000 tokens > 200000 maximum",
  },
};

/** A short conversation with history (the CLI resumes it from a session file). */
const CONVERSATION = [
  { role: "user", content: "first question" },
  { role: "assistant", content: "first answer" },
  { role: "user", content: "second question" },
  { role: "assistant", content: "second answer" },
  { role: "user", content: "Say hi." },
];

/** Whether a request to the API asks for a summary of the conversation (a compaction). */
function isSummaryRequest(request: RecordedRequest): boolean {
  return JSON.stringify(request.body?.messages ?? []).includes("CRITICAL: Respond with TEXT ONLY");
}

describe.skipIf(!enabled)("context window and an unreachable API (node)", () => {
  beforeAll(async () => {
    fake = await startFakeAnthropic();
    dirs = await makeE2eDirs("claude-openai-proxy-context-");
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
    for (const { tmp } of proxies) expect(proxyTempDirs(tmp), `temp dir of ${tmp}`).toEqual([]);
    killAll(claudePids(dirs?.tmp ?? "/nonexistent"));
    await fake?.close();
    await dirs?.cleanup();
  });

  describe("by default (auto-compaction off)", () => {
    let proxy: ProxyProcess;
    beforeAll(async () => {
      proxy = await contextProxy("default", ["--kill-grace", "1000"]);
    });

    it("a prompt the CLI refuses itself → 400 context_length_exceeded, nothing sent upstream", async () => {
      for (const stream of [false, true]) {
        const response = await post(proxy, {
          model: "sonnet",
          messages: [
            { role: "user", content: "earlier" },
            { role: "assistant", content: "ok" },
            { role: "user", content: `${HUGE}\nSay hi.` },
          ],
          stream,
        });
        // Streaming too: the refusal comes before the first token, so as a real status.
        const body = await errorBody(response, 400);
        expect(body.error).toMatchObject({
          type: "invalid_request_error",
          param: "messages",
          code: "context_length_exceeded",
        });
        expect(body.error.message).toContain("maximum context length");
        expect(body.error.message).toContain("Prompt is too long");
        expect(response.headers.get("x-claude-compacted")).toBeNull();
      }
      expect(fake.requests).toHaveLength(0);
      // Refused once, not retried as a transcript.
      expect(proxy.stderr()).not.toContain("rejected a resumed session");
    });

    it("the API's 400 prompt is too long → 400 context_length_exceeded, no compaction request", async () => {
      fake.setHandler(() => TOO_LONG);
      for (const stream of [false, true]) {
        const response = await post(proxy, { model: "sonnet", messages: CONVERSATION, stream });
        const body = await errorBody(response, 400);
        expect(body.error.code).toBe("context_length_exceeded");
        expect(body.error.param).toBe("messages");
      }
      expect(fake.requests).toHaveLength(2);
      expect(fake.requests.filter(isSummaryRequest)).toEqual([]);
    });

    it("a single turn the API refuses: the same 400", async () => {
      fake.setHandler(() => TOO_LONG);
      const response = await post(proxy, {
        model: "sonnet",
        messages: [{ role: "user", content: "hi" }],
      });
      const body = await errorBody(response, 400);
      expect(body.error.code).toBe("context_length_exceeded");
      expect(fake.requests).toHaveLength(1);
    });
  });

  describe("--auto-compact", () => {
    let proxy: ProxyProcess;
    beforeAll(async () => {
      proxy = await contextProxy("compact", ["--auto-compact", "--kill-grace", "1000"]);
    });

    it("lets the CLI summarise after the API's 400 and says so: x-claude-compacted: true", async () => {
      fake.setHandler((_req, index) =>
        index === 0 ? TOO_LONG : { content: [{ type: "text", text: `answer ${index}` }] },
      );
      const response = await post(proxy, { model: "sonnet", messages: CONVERSATION });
      expect(response.status).toBe(200);
      expect(response.headers.get("x-claude-compacted")).toBe("true");
      const completion = (await response.json()) as {
        choices: Array<{ message: { content: string } }>;
      };
      expect(completion.choices[0]?.message.content).toMatch(/^answer \d$/);
      // 2.1.221 asks for the summary once, 2.1.332 twice.
      expect(fake.requests.filter(isSummaryRequest).length).toBeGreaterThan(0);
    });

    it("a stream says only that compaction is allowed; an answer without one has no header", async () => {
      const streamed = await post(proxy, {
        model: "sonnet",
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      });
      expect(streamed.status).toBe(200);
      expect(streamed.headers.get("x-claude-compacted")).toBe("allowed");
      expect(sseData(await new SseReader(streamed).rest()).at(-1)).toBe("[DONE]");
      const plain = await post(proxy, {
        model: "sonnet",
        messages: [{ role: "user", content: "hi" }],
      });
      expect(plain.status).toBe(200);
      expect(plain.headers.get("x-claude-compacted")).toBeNull();
      await plain.json();
    });
  });

  describe("the API unreachable", () => {
    it("connection refused, the CLI retrying 10 times: 502 upstream_unreachable within 30 s by default", async () => {
      const baseUrl = `http://127.0.0.1:${await closedPort()}`;
      const proxy = await contextProxy("refused", [], {
        ANTHROPIC_BASE_URL: baseUrl,
        CLAUDE_CODE_MAX_RETRIES: "10",
      });
      const t0 = performance.now();
      const response = await post(proxy, {
        model: "sonnet",
        messages: [{ role: "user", content: "hi" }],
      });
      const body = await errorBody(response, 502);
      expect(performance.now() - t0).toBeLessThan(30_000);
      expect(body.error.code).toBe("upstream_unreachable");
      expect(body.error.message).toContain("ECONNREFUSED");
      expect(body.error.message).toContain(baseUrl);
    });

    it("a name that does not resolve, --upstream-unreachable-timeout 2000, streaming: an error frame naming DNS", async () => {
      const proxy = await contextProxy("dns", ["--upstream-unreachable-timeout", "2000"], {
        ANTHROPIC_BASE_URL: "http://unreachable.invalid",
        CLAUDE_CODE_MAX_RETRIES: "10",
      });
      const t0 = performance.now();
      const response = await post(proxy, {
        model: "sonnet",
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      });
      // The CLI's retries start the stream (SSE comments); the error then comes as a frame.
      let error: ErrorBody["error"] | undefined;
      if (response.status === 200) {
        const data = sseData(await new SseReader(response).rest());
        expect(data.at(-1)).toBe("[DONE]");
        error = (JSON.parse(data.at(-2) ?? "{}") as Partial<ErrorBody>).error;
      } else {
        error = (await errorBody(response, 502)).error;
      }
      expect(performance.now() - t0).toBeLessThan(15_000);
      expect(error?.code).toBe("upstream_unreachable");
      expect(error?.message).toContain("ENOTFOUND");
      expect(error?.message).toContain("http://unreachable.invalid");
    });

    it("the CLI giving up first (CLAUDE_CODE_MAX_RETRIES=0): its own cause, the same 502", async () => {
      const proxy = await contextProxy("refused-result", [], {
        ANTHROPIC_BASE_URL: "http://127.0.0.1:1",
        CLAUDE_CODE_MAX_RETRIES: "0",
      });
      const response = await post(proxy, {
        model: "sonnet",
        messages: [{ role: "user", content: "hi" }],
      });
      const body = await errorBody(response, 502);
      expect(body.error.code).toBe("upstream_unreachable");
      expect(body.error.message).toContain("ECONNREFUSED");
    });
  });
});
