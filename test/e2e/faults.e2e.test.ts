/**
 * The fault suite (issue 4): the proxy as a real process (on Node only: none of these faults is
 * runtime-specific; E2E_FAULTS_RUNTIME=deno runs it on Deno instead, which serves through the
 * same node:http code), the real pinned `claude` CLI and the fake Anthropic API. CLI missing,
 * killed, hanging; upstream 400/401/429/529 and dropped connections; client disconnects; bad
 * input; access control, CORS, request ids; the concurrency limit. After every case: no
 * `claude` process and no run directory left.
 */
import { spawn } from "node:child_process";
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
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
  apiError,
  chatBody,
  claudePids,
  hasContent,
  killAll,
  logLines,
  SseReader,
  servingPid,
  sseContent,
  sseData,
  waitForLeftovers,
  waitUntil,
} from "./fault-helpers.ts";
import {
  type E2eDirs,
  type E2eRuntime,
  makeE2eDirs,
  type ProxyProcess,
  proxyCommand,
  proxyEnv,
  proxyTempDirs,
  RUNTIMES,
  repoRoot,
  selectedRuntimes,
  startProxy,
} from "./harness.ts";
import { clientMessages } from "./tools-helpers.ts";

/** The runtime the suite runs on (E2E_FAULTS_RUNTIME, default node), when it is selected. */
const FAULTS_RUNTIME: E2eRuntime =
  selectedRuntimes(process.env.E2E_FAULTS_RUNTIME ?? "node")[0] ?? "node";
const enabled = RUNTIMES.includes(FAULTS_RUNTIME);

let fake: FakeAnthropic;
let dirs: E2eDirs;
/** Every proxy started by this file, with its TMPDIR. */
const proxies: Array<{ proxy: ProxyProcess; tmp: string }> = [];

/** Starts a proxy (on {@link FAULTS_RUNTIME}) with its own TMPDIR under the file's temp root. */
async function faultProxy(
  name: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<ProxyProcess> {
  const tmp = join(dirs.tmp, name);
  await mkdir(tmp, { recursive: true });
  const proxy = await startProxy(FAULTS_RUNTIME, {
    env: proxyEnv(fake.url, { home: dirs.home, tmp }, env),
    args,
  });
  proxies.push({ proxy, tmp });
  return proxy;
}

function client(proxy: ProxyProcess, apiKey = "x"): OpenAI {
  return new OpenAI({ baseURL: proxy.url, apiKey, maxRetries: 0, timeout: 60_000 });
}

/** POST /v1/chat/completions with a raw body. */
function post(
  proxy: ProxyProcess,
  body: BodyInit,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(`${proxy.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
    ...(signal === undefined ? {} : { signal }),
    // Required by fetch for a stream body.
    ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
  } as RequestInit);
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Asserts OpenAI's error shape (exactly these four fields) and returns the body. */
async function errorBody(response: Response, status: number): Promise<ErrorBody> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toContain("application/json");
  const body = (await response.json()) as ErrorBody;
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(typeof body.error.message).toBe("string");
  expect(body.error.message).not.toBe("");
  return body;
}

/** A reply that trickles: `count` text deltas `delayMs` apart. */
function trickle(count: number, delayMs: number): FakeReply {
  return { content: [{ type: "text", text: "abc".repeat(count) }], chunkSize: 3, delayMs };
}

/** The JSON of the error frame of an SSE text (the data payload with an `error` field). */
function errorFrame(text: string): ErrorBody | undefined {
  for (const data of sseData(text)) {
    if (data === "[DONE]") continue;
    const value = JSON.parse(data) as Partial<ErrorBody>;
    if (value.error !== undefined) return value as ErrorBody;
  }
  return undefined;
}

/** Asserts the stream ended with exactly one error frame followed by `data: [DONE]`. */
function expectErrorThenDone(text: string): ErrorBody {
  const data = sseData(text);
  expect(data.at(-1)).toBe("[DONE]");
  const frame = errorFrame(text);
  expect(frame, `no error frame in:\n${text}`).toBeDefined();
  expect(data.at(-2)).toBe(JSON.stringify(frame));
  // No finish_reason: the answer did not end normally.
  expect(text).not.toMatch(/"finish_reason":"(stop|length)"/);
  return frame as ErrorBody;
}

/** Chat completion log lines of a proxy. */
function completionLogs(proxy: ProxyProcess) {
  return logLines(proxy).filter((l) => l.msg === "chat completion");
}

describe.skipIf(!enabled)(`fault suite (${FAULTS_RUNTIME})`, () => {
  beforeAll(async () => {
    fake = await startFakeAnthropic();
    dirs = await makeE2eDirs("claude-openai-proxy-faults-");
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

  describe("the CLI is missing", () => {
    let proxy: ProxyProcess;
    beforeAll(async () => {
      proxy = await faultProxy("missing", ["--claude-path", "/nonexistent/claude"]);
    });

    it("/health reports it and requests get 503 cli_not_found, streaming or not", async () => {
      const health = (await (await fetch(`${proxy.origin}/health`)).json()) as {
        status: string;
        claude: { found: boolean; path: string | null; error?: string };
      };
      expect(health.status).toBe("degraded");
      expect(health.claude.found).toBe(false);
      expect(health.claude.path).toBeNull();
      expect(health.claude.error).toContain("/nonexistent/claude");
      for (const stream of [false, true]) {
        const error = await apiError(
          client(proxy).chat.completions.create({
            model: "sonnet",
            messages: [{ role: "user", content: "hi" }],
            stream,
          }),
        );
        expect(error.status).toBe(503);
        expect(error.code).toBe("cli_not_found");
        expect(error.type).toBe("server_error");
      }
      expect(fake.requests).toHaveLength(0);
    });

    it("a CLI that disappears after start-up: 503 cli_not_found, no run dir left", async () => {
      const link = join(dirs.root, "claude-link");
      await symlink(claudeBin(), link);
      const vanishing = await faultProxy("vanishing", ["--claude-path", link]);
      await rm(link);
      const response = await post(vanishing, chatBody("hi"));
      const body = await errorBody(response, 503);
      expect(body.error.code).toBe("cli_not_found");
      expect(body.error.message).toContain(link);
      // The proxy stays up.
      expect((await fetch(`${vanishing.origin}/health`)).status).toBe(200);
    });
  });

  describe("faults of the CLI and the upstream API", () => {
    let proxy: ProxyProcess;
    let tmp: string;
    beforeAll(async () => {
      // Default ping interval: a stream whose start takes longer than the interval starts with
      // pings, and its errors then come as frames (see the ping tests), not as HTTP statuses.
      proxy = await faultProxy("base", ["--kill-grace", "1000"]);
      tmp = join(dirs.tmp, "base");
    });

    const upstream = [
      {
        status: 400,
        type: "invalid_request_error",
        message: "prompt is malformed",
        expected: 400,
        code: "upstream_invalid_request",
      },
      {
        status: 401,
        type: "authentication_error",
        message: "invalid bearer token",
        expected: 401,
        code: "upstream_authentication_failed",
      },
      {
        status: 429,
        type: "rate_limit_error",
        message: "rate limited",
        expected: 429,
        code: "rate_limit_exceeded",
      },
      {
        status: 529,
        type: "overloaded_error",
        message: "Overloaded",
        expected: 503,
        code: "upstream_overloaded",
      },
    ];
    for (const u of upstream) {
      for (const stream of [false, true]) {
        it(`upstream ${u.status} → ${u.expected} ${u.code} (${stream ? "streaming" : "not streaming"})`, async () => {
          fake.setHandler(() => ({
            error: { status: u.status, type: u.type, message: u.message, retryAfterSeconds: 7 },
          }));
          const t0 = performance.now();
          const error = await apiError(
            client(proxy).chat.completions.create({
              model: "sonnet",
              messages: [{ role: "user", content: "fail please" }],
              stream,
            }),
          );
          // At once: neither the CLI's retries (7 s each) nor its backoff are waited out.
          expect(performance.now() - t0).toBeLessThan(6_000);
          expect(error.status).toBe(u.expected);
          expect(error.code).toBe(u.code);
          // The upstream's text reaches the client when the CLI reports it (in its result);
          // an error it retries is only known by status and category (its api_retry event).
          if (u.status === 400) expect(error.message).toContain(u.message);
          else expect(error.message).toContain(String(u.status));
          expect(error.headers?.get("x-request-id")).toBeTruthy();
          if (u.status === 529) {
            // The upstream's retry-after, as the CLI reported it in its api_retry event: 7 s
            // from 2.1.221; 2.1.332 adds jitter (seen 7.3-8.5 s), rounded up: 7-9 s.
            const retryAfter = Number(error.headers?.get("retry-after"));
            expect(retryAfter).toBeGreaterThanOrEqual(7);
            expect(retryAfter).toBeLessThanOrEqual(9);
          }
          if (u.status === 429) {
            // With a subscription token the CLI does not retry a 429 and reports no delay.
            expect(Number(error.headers?.get("retry-after"))).toBeGreaterThan(0);
          }
          if (u.status === 400) {
            // 2.1.221 asks once; 2.1.332 tries twice more, each time without one beta (see
            // test/unit/fake-anthropic.test.ts): always the client's own conversation.
            expect(fake.requests.length).toBeGreaterThanOrEqual(1);
            expect(fake.requests.length).toBeLessThanOrEqual(3);
            for (const req of fake.requests) {
              expect(clientMessages(req.body).map((m) => m.role)).toEqual(["user"]);
              expect(lastUserText(req.body)).toBe("fail please");
            }
          }
        });
      }
    }

    it("a CLI that is not logged in → 401 with the login hint, at once, streaming or not", async () => {
      // A new user who never ran `claude`: no credentials at all in the CLI's environment.
      const unlogged = await faultProxy("unlogged", ["--kill-grace", "1000"], {
        CLAUDE_CODE_OAUTH_TOKEN: "",
      });
      for (const stream of [false, true]) {
        const t0 = performance.now();
        const error = await apiError(
          client(unlogged).chat.completions.create({
            model: "sonnet",
            messages: [{ role: "user", content: "hello" }],
            stream,
          }),
        );
        expect(performance.now() - t0).toBeLessThan(10_000);
        expect(error.status).toBe(401);
        expect(error.code).toBe("cli_not_logged_in");
        expect(error.message).toContain("not logged in");
        expect(error.message).toContain("claude setup-token");
      }
      // Nothing reached the API.
      expect(fake.requests).toHaveLength(0);
    });

    it("CLI killed (SIGKILL) mid-stream → an error frame, then data: [DONE]", async () => {
      fake.script(trickle(40, 250));
      const response = await post(proxy, chatBody("stream slowly", { stream: true }));
      expect(response.status).toBe(200);
      const sse = new SseReader(response);
      expect(await sse.until(hasContent)).toBe(true);
      const pids = claudePids(tmp);
      expect(pids).toHaveLength(1);
      killAll(pids);
      const text = await sse.rest();
      const frame = expectErrorThenDone(text);
      expect(frame.error.code).toBe("cli_exited");
      expect(frame.error.message).toContain("SIGKILL");
      expect(completionLogs(proxy).at(-1)?.status).toBe(502);
    });

    it("upstream drops mid-answer (streaming): partial text, then an error frame, not a truncated success", async () => {
      fake.script(
        // message_start, content_block_start, ping, then 3 text deltas: the socket dies. Paced,
        // so that the CLI prints the deltas before the drop (2.1.332 may not print them else).
        {
          content: [{ type: "text", text: "Partial answer that never ends" }],
          dropAfterEvents: 6,
          delayMs: 150,
        },
        // The CLI's retry (another stream since 2.1.221) gets a complete answer.
        { content: [{ type: "text", text: "A different complete answer" }] },
      );
      const response = await post(proxy, chatBody("drop it", { stream: true }));
      expect(response.status).toBe(200);
      const text = await new SseReader(response).rest();
      // Of the deltas sent before the drop ("Part", "ial ", "answ") those the CLI printed (2.1.332
      // may lose the last one to the drop), nothing of the retry.
      const content = sseContent(text);
      expect(["Part", "Partial ", "Partial answ"]).toContain(content);
      const frame = expectErrorThenDone(text);
      expect(frame.error.code).toBe("upstream_stream_dropped");
      // The CLI did retry: the retry's answer was there to be appended, and was not.
      expect(fake.requests).toHaveLength(2);
    });

    it("upstream drops mid-answer (not streaming) → 502 upstream_stream_dropped", async () => {
      fake.script(
        {
          content: [{ type: "text", text: "Partial answer that never ends" }],
          dropAfterEvents: 6,
          delayMs: 150,
        },
        { content: [{ type: "text", text: "A different complete answer" }] },
      );
      const error = await apiError(
        client(proxy).chat.completions.create({
          model: "sonnet",
          messages: [{ role: "user", content: "drop it" }],
        }),
      );
      expect(error.status).toBe(502);
      expect(error.code).toBe("upstream_stream_dropped");
    });

    it("upstream drops before any text: the CLI's retry answers, 200", async () => {
      fake.script(
        // message_start and content_block_start only.
        { content: [{ type: "text", text: "lost" }], dropAfterEvents: 2 },
        { content: [{ type: "text", text: "Recovered answer" }] },
      );
      const response = await post(proxy, chatBody("drop early", { stream: true }));
      expect(response.status).toBe(200);
      const text = await new SseReader(response).rest();
      expect(errorFrame(text)).toBeUndefined();
      expect(sseContent(text)).toBe("Recovered answer");
      expect(text).toContain('"finish_reason":"stop"');
      expect(sseData(text).at(-1)).toBe("[DONE]");
    });

    it("upstream drops and the retry fails too → 502, streaming", async () => {
      // Every request after the first drops at once: the CLI's streamed retries, then its
      // non-streaming ones (2.1.221: three of each with CLAUDE_CODE_MAX_RETRIES=2; 2.1.332: one).
      fake.script({ content: [{ type: "text", text: "Partial" }], dropAfterEvents: 2 });
      fake.setHandler(() => ({ content: [{ type: "text", text: "x" }], dropAfterEvents: 0 }));
      const response = await post(proxy, chatBody("drop twice", { stream: true }));
      if (response.status === 200) {
        const frame = expectErrorThenDone(await new SseReader(response).rest());
        expect(frame.error.type).not.toBe("server_error");
      } else {
        const body = await errorBody(response, 502);
        expect(body.error.code).toMatch(/^(cli_error|upstream_error|upstream_stream_dropped)$/);
      }
    });

    it("client disconnects mid-stream → the CLI is killed, 499 logged", async () => {
      fake.script(trickle(60, 250));
      const controller = new AbortController();
      const response = await post(
        proxy,
        chatBody("i will leave", { stream: true }),
        {},
        controller.signal,
      );
      const sse = new SseReader(response);
      expect(await sse.until(hasContent)).toBe(true);
      expect(claudePids(tmp)).toHaveLength(1);
      controller.abort();
      await sse.cancel();
      const left = await waitForLeftovers(tmp, 5_000);
      expect(left).toEqual({ pids: [], files: [] });
      expect(await waitUntil(() => completionLogs(proxy).at(-1)?.status === 499, 5_000)).toBe(true);
    });

    it("client disconnects a stream before its first token → the CLI is killed, 499 logged", async () => {
      fake.script({ hang: true });
      const controller = new AbortController();
      const pending = post(
        proxy,
        chatBody("waiting for the first token", { stream: true }),
        {},
        controller.signal,
      ).catch((error: unknown) => error);
      expect(await waitUntil(() => fake.requests.length === 1, 20_000)).toBe(true);
      controller.abort();
      await pending;
      const left = await waitForLeftovers(tmp, 5_000);
      expect(left).toEqual({ pids: [], files: [] });
      expect(await waitUntil(() => completionLogs(proxy).at(-1)?.status === 499, 5_000)).toBe(true);
    });

    it("long silences in a stream get SSE comment pings (--sse-ping-interval 300)", async () => {
      const pinging = await faultProxy("pings", ["--sse-ping-interval", "300"]);
      fake.script({ content: [{ type: "text", text: "slow words" }], chunkSize: 5, delayMs: 700 });
      const response = await post(pinging, chatBody("pause between words", { stream: true }));
      const text = await new SseReader(response).rest();
      expect(text).toMatch(/^: ping$/m);
      expect(sseContent(text)).toBe("slow words");
      expect(sseData(text).at(-1)).toBe("[DONE]");
    });

    it("client disconnects while a non-streaming answer is pending → the CLI is killed, 499 logged", async () => {
      fake.script({ hang: true });
      const controller = new AbortController();
      const pending = client(proxy)
        .chat.completions.create(
          { model: "sonnet", messages: [{ role: "user", content: "never mind" }] },
          { signal: controller.signal },
        )
        .catch((error: unknown) => error);
      expect(await waitUntil(() => fake.requests.length === 1, 20_000)).toBe(true);
      expect(claudePids(tmp)).toHaveLength(1);
      controller.abort();
      expect(await pending).toBeInstanceOf(OpenAI.APIUserAbortError);
      const left = await waitForLeftovers(tmp, 5_000);
      expect(left).toEqual({ pids: [], files: [] });
      expect(await waitUntil(() => completionLogs(proxy).at(-1)?.status === 499, 5_000)).toBe(true);
    });

    it("malformed JSON → 400 invalid_json in OpenAI's shape, no CLI started", async () => {
      for (const body of ['{"model": "sonnet", "messages": [', "not json at all", ""]) {
        const error = await errorBody(await post(proxy, body), 400);
        expect(error.error.code).toBe("invalid_json");
        expect(error.error.type).toBe("invalid_request_error");
      }
      expect(fake.requests).toHaveLength(0);
    });

    it("wrong types → 400 naming the param, no CLI started", async () => {
      const user = [{ role: "user", content: "hi" }];
      const cases: Array<[unknown, string | null]> = [
        [{ model: "sonnet", messages: "hello" }, "messages"],
        [{ model: 42, messages: user }, "model"],
        [{ messages: user }, "model"],
        [{ model: "sonnet", messages: [] }, "messages"],
        [{ model: "sonnet", messages: user, temperature: "hot" }, "temperature"],
        [{ model: "sonnet", messages: user, stream: "yes" }, "stream"],
        [{ model: "sonnet", messages: user, max_tokens: 1.5 }, "max_tokens"],
        [{ model: "sonnet", messages: [{ role: "user", content: 42 }] }, "messages[0]"],
        [{ model: "sonnet", messages: [{ role: "wizard", content: "hi" }] }, "messages[0]"],
        [["not", "an", "object"], null],
        [null, null],
      ];
      for (const [body, param] of cases) {
        const error = await errorBody(await post(proxy, JSON.stringify(body)), 400);
        expect(error.error.type, JSON.stringify(body)).toBe("invalid_request_error");
        if (param === null) expect(error.error.param, JSON.stringify(body)).toBeNull();
        else
          expect(error.error.param ?? "", JSON.stringify(body)).toMatch(
            new RegExp(`^${param.replace(/[[\]]/g, "\\$&")}`),
          );
      }
      expect(fake.requests).toHaveLength(0);
    });

    it("CORS is off by default: no Access-Control-Allow-Origin anywhere", async () => {
      const origin = "http://a.example";
      const preflight = await fetch(`${proxy.url}/chat/completions`, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization,content-type",
        },
      });
      expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
      // A cross-origin request is refused outright (issue 9: a web page must not use the proxy).
      expect(preflight.status).toBe(403);
      const models = await fetch(`${proxy.url}/models`, { headers: { origin } });
      expect(models.status).toBe(403);
      expect(models.headers.get("access-control-allow-origin")).toBeNull();
      await models.body?.cancel();
    });

    it("x-request-id on every response, echoed when the client sends one", async () => {
      const responses: Array<[string, Response]> = [
        ["health", await fetch(`${proxy.origin}/health`)],
        ["models", await fetch(`${proxy.url}/models`)],
        ["404", await fetch(`${proxy.url}/nope`)],
        ["400", await post(proxy, "{")],
        ["200", await post(proxy, chatBody("with id"))],
        ["200 stream", await post(proxy, chatBody("with id", { stream: true }))],
      ];
      const ids = new Set<string>();
      for (const [what, response] of responses) {
        const id = response.headers.get("x-request-id");
        expect(id, what).toMatch(/^[\w-]{8,}$/);
        ids.add(id ?? "");
        await response.body?.cancel();
      }
      expect(ids.size).toBe(responses.length);

      const mine = "fault-suite-request-42";
      const echoed = await post(proxy, chatBody("echo my id"), { "x-request-id": mine });
      expect(echoed.status).toBe(200);
      expect(echoed.headers.get("x-request-id")).toBe(mine);
      await echoed.json();
      const echoedError = await post(proxy, "{", { "x-request-id": `${mine}-b` });
      expect(echoedError.headers.get("x-request-id")).toBe(`${mine}-b`);
      await echoedError.body?.cancel();
      // The log line of that request carries the id.
      expect(logLines(proxy).some((l) => l.requestId === mine)).toBe(true);
      // An id that is not a safe token is replaced, not echoed.
      const unsafe = await fetch(`${proxy.origin}/health`, {
        headers: { "x-request-id": "bad id\twith spaces" },
      });
      expect(unsafe.headers.get("x-request-id")).toMatch(/^[\w-]{8,}$/);
      await unsafe.body?.cancel();
    });
  });

  describe("a CLI that misbehaves (a stub in place of claude)", () => {
    let proxy: ProxyProcess;
    let tmp: string;
    beforeAll(async () => {
      // Answers --version; then reads the user turn: "crash" exits 3 with a message on
      // stderr, anything else is ignored while the stub ignores SIGTERM and stays silent.
      const stub = join(dirs.root, "stub", "claude");
      await mkdir(join(dirs.root, "stub"), { recursive: true });
      await writeFile(
        stub,
        [
          "#!/bin/sh",
          'if [ "$1" = "--version" ]; then echo "2.1.332 (Claude Code)"; exit 0; fi',
          "trap '' TERM INT",
          "IFS= read -r line",
          'case "$line" in *crash*) echo "stub: something broke" >&2; exit 3;; esac',
          "while :; do sleep 0.2; done",
          "",
        ].join("\n"),
        { mode: 0o755 },
      );
      proxy = await faultProxy("stub", [
        "--claude-path",
        stub,
        "--idle-timeout",
        "1000",
        "--kill-grace",
        "1500",
      ]);
      tmp = join(dirs.tmp, "stub");
    });

    it("a CLI that ignores SIGTERM is SIGKILLed after --kill-grace → 504", async () => {
      const t0 = performance.now();
      const response = await post(proxy, chatBody("stay"));
      const elapsed = performance.now() - t0;
      const body = await errorBody(response, 504);
      expect(body.error.code).toBe("cli_idle_timeout");
      // 1 s of silence, SIGTERM (ignored), SIGKILL 1.5 s later.
      expect(elapsed).toBeGreaterThan(2_400);
      expect(elapsed).toBeLessThan(8_000);
      expect(claudePids(tmp)).toEqual([]);
    });

    it("a CLI that exits without a result → 502 cli_exited with its stderr", async () => {
      const body = await errorBody(await post(proxy, chatBody("crash now")), 502);
      expect(body.error.code).toBe("cli_exited");
      expect(body.error.message).toContain("code 3");
      expect(body.error.message).toContain("stub: something broke");
      const response = await post(proxy, chatBody("crash while streaming", { stream: true }));
      const streamed = await errorBody(response, 502);
      expect(streamed.error.code).toBe("cli_exited");
    });

    // Last of this group: it kills the proxy.
    it("proxy killed hard while a CLI ignores SIGTERM: the watchdog SIGKILLs it and removes the temp dir", async () => {
      const pending = post(proxy, chatBody("stay")).catch((error: unknown) => error);
      expect(await waitUntil(() => claudePids(tmp).length === 1, 10_000)).toBe(true);
      process.kill(servingPid(proxy), "SIGKILL");
      await pending;
      // SIGTERM (ignored), SIGKILL 2 s later.
      const left = await waitForLeftovers(tmp, 6_000);
      expect(left).toEqual({ pids: [], files: [] });
      expect(await waitUntil(() => proxyTempDirs(tmp).length === 0, 3_000)).toBe(true);
    });
  });

  describe("timeouts", () => {
    it("--idle-timeout: a CLI silent for 1.5 s is killed → 504 cli_idle_timeout, streaming or not", async () => {
      const proxy = await faultProxy("idle", ["--idle-timeout", "1500", "--kill-grace", "1000"]);
      for (const stream of [false, true]) {
        fake.script({ hang: true });
        const t0 = performance.now();
        const error = await apiError(
          client(proxy).chat.completions.create({
            model: "sonnet",
            messages: [{ role: "user", content: "hang" }],
            stream,
          }),
        );
        expect(error.status).toBe(504);
        expect(error.code).toBe("cli_idle_timeout");
        expect(error.type).toBe("timeout_error");
        expect(performance.now() - t0).toBeLessThan(10_000);
        const left = await waitForLeftovers(join(dirs.tmp, "idle"), 5_000);
        expect(left).toEqual({ pids: [], files: [] });
      }
    });

    it("--request-timeout: a CLI that talks but never finishes → 504 request_timeout, or an error frame once streaming", async () => {
      // 6 s: a loaded machine can take 3-4 s from spawn to the first delta (2.1.221), and the
      // streaming case below needs that delta before the deadline.
      const proxy = await faultProxy("deadline", [
        "--request-timeout",
        "6000",
        "--kill-grace",
        "1000",
      ]);
      // ~80 deltas 250 ms apart: never silent long enough for an idle timeout, 20 s in all.
      fake.script(trickle(80, 250));
      const t0 = performance.now();
      const error = await apiError(
        client(proxy).chat.completions.create({
          model: "sonnet",
          messages: [{ role: "user", content: "slow" }],
        }),
      );
      expect(error.status).toBe(504);
      expect(error.code).toBe("request_timeout");
      expect(performance.now() - t0).toBeLessThan(12_000);
      const left = await waitForLeftovers(join(dirs.tmp, "deadline"), 5_000);
      expect(left).toEqual({ pids: [], files: [] });

      fake.script(trickle(80, 250));
      const response = await post(proxy, chatBody("slow stream", { stream: true }));
      expect(response.status).toBe(200);
      const text = await new SseReader(response).rest();
      expect(hasContent(text)).toBe(true);
      expect(expectErrorThenDone(text).error.code).toBe("request_timeout");
    });
  });

  describe("access control, CORS and the body limit", () => {
    let proxy: ProxyProcess;
    beforeAll(async () => {
      proxy = await faultProxy("auth", [
        "--api-key",
        "k1",
        "--api-key",
        "k2",
        "--cors-origin",
        "http://a.example",
        "--max-body-size",
        "1000",
        "--kill-grace",
        "1000",
      ]);
    });

    it("no key → 401 invalid_api_key in OpenAI's shape; a wrong key → 401", async () => {
      const noKey = await errorBody(await fetch(`${proxy.url}/models`), 401);
      expect(noKey.error.code).toBe("invalid_api_key");
      const noKeyChat = await errorBody(await post(proxy, chatBody("hi")), 401);
      expect(noKeyChat.error.code).toBe("invalid_api_key");
      for (const headers of [
        { authorization: "Bearer k3" },
        { authorization: "Bearer k1x" },
        { authorization: "Bearer " },
        { authorization: "Basic k1" },
        { "x-api-key": "K1" },
      ]) {
        const wrong = await errorBody(await fetch(`${proxy.url}/models`, { headers }), 401);
        expect(wrong.error.code, JSON.stringify(headers)).toBe("invalid_api_key");
      }
      // The official client surfaces it as an AuthenticationError.
      const error = await apiError(
        client(proxy, "wrong").chat.completions.create({
          model: "sonnet",
          messages: [{ role: "user", content: "hi" }],
        }),
      );
      expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
      expect(error.code).toBe("invalid_api_key");
      expect(fake.requests).toHaveLength(0);
    });

    it("Bearer and x-api-key both accepted, either key; /health open", async () => {
      for (const headers of [
        { authorization: "Bearer k1" },
        { authorization: "bearer k2" },
        { "x-api-key": "k1" },
        { "x-api-key": "k2" },
      ]) {
        const response = await fetch(`${proxy.url}/models`, { headers });
        expect(response.status, JSON.stringify(headers)).toBe(200);
        await response.body?.cancel();
      }
      const health = await fetch(`${proxy.origin}/health`);
      expect(health.status).toBe(200);
      await health.body?.cancel();
      const completion = await client(proxy, "k2").chat.completions.create({
        model: "sonnet",
        messages: [{ role: "user", content: "authorised" }],
      });
      expect(completion.choices[0]?.message.content).toBe("echo: authorised");
    });

    it("--cors-origin: that origin only, preflight included, errors readable", async () => {
      const preflight = (origin: string) =>
        fetch(`${proxy.url}/chat/completions`, {
          method: "OPTIONS",
          headers: {
            origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
          },
        });
      const allowed = await preflight("http://a.example");
      expect(allowed.status).toBeLessThan(300);
      expect(allowed.headers.get("access-control-allow-origin")).toBe("http://a.example");
      expect(allowed.headers.get("access-control-allow-headers")?.toLowerCase()).toContain(
        "authorization",
      );
      expect(allowed.headers.get("access-control-allow-methods")).toContain("POST");
      const denied = await preflight("http://b.example");
      expect(denied.headers.get("access-control-allow-origin")).toBeNull();

      const get = (origin: string, key?: string) =>
        fetch(`${proxy.url}/models`, {
          headers: { origin, ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
        });
      const ok = await get("http://a.example", "k1");
      expect(ok.status).toBe(200);
      expect(ok.headers.get("access-control-allow-origin")).toBe("http://a.example");
      expect(ok.headers.get("access-control-expose-headers")?.toLowerCase()).toContain(
        "x-request-id",
      );
      const other = await get("http://b.example", "k1");
      expect(other.headers.get("access-control-allow-origin")).toBeNull();
      // A browser page of the allowed origin can read the 401.
      const unauthorised = await get("http://a.example");
      expect(unauthorised.status).toBe(401);
      expect(unauthorised.headers.get("access-control-allow-origin")).toBe("http://a.example");
      for (const r of [ok, other, unauthorised, allowed, denied]) await r.body?.cancel();
    });

    it("--max-body-size 1000: a larger body → 413 in OpenAI's shape, with or without Content-Length", async () => {
      const big = chatBody("x".repeat(2000));
      const sized = await errorBody(await post(proxy, big, { authorization: "Bearer k1" }), 413);
      expect(sized.error.code).toBe("request_too_large");
      const bytes = new TextEncoder().encode(big);
      const chunked = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 300) controller.enqueue(bytes.slice(i, i + 300));
          controller.close();
        },
      });
      const streamed = await errorBody(
        await post(proxy, chunked, { authorization: "Bearer k1" }),
        413,
      );
      expect(streamed.error.code).toBe("request_too_large");
      expect(fake.requests).toHaveLength(0);
      // A body under the limit still goes through.
      const small = await post(proxy, chatBody("small"), { authorization: "Bearer k1" });
      expect(small.status).toBe(200);
      await small.json();
    });
  });

  describe("binding a public address", () => {
    it("--host 0.0.0.0 without keys: exits with status 2 and says why", async () => {
      const tmp = join(dirs.tmp, "public-refused");
      await mkdir(tmp, { recursive: true });
      const [program, ...args] = proxyCommand(FAULTS_RUNTIME);
      const child = spawn(program ?? "", [...args, "--port", "0", "--host", "0.0.0.0"], {
        cwd: repoRoot,
        env: proxyEnv(fake.url, { home: dirs.home, tmp }),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => {
        stderr += d;
      });
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          resolve(null);
        }, 30_000);
        child.once("exit", (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      expect(code, stderr).toBe(2);
      expect(stderr).toContain("refusing to listen on 0.0.0.0");
      expect(stderr).toContain("--allow-public-without-keys");
      expect(proxyTempDirs(tmp)).toEqual([]);
    });

    it("--host 0.0.0.0 --allow-public-without-keys: starts and warns", async () => {
      const proxy = await faultProxy("public-allowed", [
        "--host",
        "0.0.0.0",
        "--allow-public-without-keys",
      ]);
      const warning = logLines(proxy).find((l) => String(l.msg).includes("WITHOUT API keys"));
      expect(warning, proxy.stderr()).toBeDefined();
      expect(warning?.level === "warn" || warning?.level === 40).toBe(true);
      const health = await fetch(`http://127.0.0.1:${proxy.port}/health`);
      expect(health.status).toBe(200);
      await health.body?.cancel();
      await proxy.stop();
    });
  });

  describe("--max-concurrency 1 --max-queue 1 --max-queue-wait 2000", () => {
    let proxy: ProxyProcess;
    /** Replies to the user text "hold" wait until `release()`. */
    let release: () => void = () => {};
    beforeAll(async () => {
      proxy = await faultProxy("limits", [
        "--max-concurrency",
        "1",
        "--max-queue",
        "1",
        "--max-queue-wait",
        "2000",
        "--kill-grace",
        "1000",
      ]);
    });
    afterEach(() => release());

    function holdFirst(): void {
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      fake.setHandler(async (req) => {
        const text = lastUserText(req.body);
        if (text === "hold") await gate;
        return { content: [{ type: "text", text: `echo: ${text}` }] };
      });
    }

    async function health(): Promise<{ running: number; queued: number }> {
      const body = (await (await fetch(`${proxy.origin}/health`)).json()) as {
        processes: { running: number; queued: number };
      };
      return { running: body.processes.running, queued: body.processes.queued };
    }

    async function waitHealth(want: { running: number; queued: number }): Promise<void> {
      const deadline = Date.now() + 20_000;
      let now = await health();
      while (
        (now.running !== want.running || now.queued !== want.queued) &&
        Date.now() < deadline
      ) {
        await new Promise((r) => setTimeout(r, 50));
        now = await health();
      }
      expect(now).toEqual(want);
    }

    const ask = (text: string, signal?: AbortSignal) =>
      client(proxy).chat.completions.create(
        { model: "sonnet", messages: [{ role: "user", content: text }] },
        signal === undefined ? {} : { signal },
      );

    it("third concurrent request → 429 queue_full with Retry-After at once; the queued one succeeds", async () => {
      holdFirst();
      const first = ask("hold");
      await waitHealth({ running: 1, queued: 0 });
      expect(await waitUntil(() => fake.requests.length === 1, 20_000)).toBe(true);
      const second = ask("queued");
      await waitHealth({ running: 1, queued: 1 });
      const t0 = performance.now();
      const error = await apiError(ask("rejected"));
      expect(performance.now() - t0).toBeLessThan(1_000);
      expect(error).toBeInstanceOf(OpenAI.RateLimitError);
      expect(error.code).toBe("queue_full");
      expect(Number(error.headers?.get("retry-after"))).toBeGreaterThan(0);
      release();
      expect((await first).choices[0]?.message.content).toBe("echo: hold");
      expect((await second).choices[0]?.message.content).toBe("echo: queued");
      expect(fake.requests.map((r) => lastUserText(r.body))).toEqual(["hold", "queued"]);
      await waitHealth({ running: 0, queued: 0 });
    });

    it("a request queued longer than --max-queue-wait → 429 queue_timeout with Retry-After", async () => {
      holdFirst();
      const first = ask("hold");
      await waitHealth({ running: 1, queued: 0 });
      const t0 = performance.now();
      const error = await apiError(ask("too late"));
      const waited = performance.now() - t0;
      expect(waited).toBeGreaterThan(1_900);
      expect(waited).toBeLessThan(5_000);
      expect(error.status).toBe(429);
      expect(error.code).toBe("queue_timeout");
      expect(Number(error.headers?.get("retry-after"))).toBeGreaterThan(0);
      release();
      await first;
      expect(fake.requests.map((r) => lastUserText(r.body))).toEqual(["hold"]);
    });

    it("a client that gives up while queued leaves the queue and never starts a CLI", async () => {
      holdFirst();
      const first = ask("hold");
      await waitHealth({ running: 1, queued: 0 });
      const controller = new AbortController();
      const gaveUp = ask("gave up", controller.signal).catch((e: unknown) => e);
      await waitHealth({ running: 1, queued: 1 });
      controller.abort();
      expect(await gaveUp).toBeInstanceOf(OpenAI.APIUserAbortError);
      await waitHealth({ running: 1, queued: 0 });
      release();
      await first;
      const after = await ask("after");
      expect(after.choices[0]?.message.content).toBe("echo: after");
      expect(fake.requests.map((r) => lastUserText(r.body))).toEqual(["hold", "after"]);
    });
  });
});
