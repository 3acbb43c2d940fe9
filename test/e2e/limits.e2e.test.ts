/**
 * Subscription limits end to end: the fake API sends `anthropic-ratelimit-unified-*` headers as
 * the real one does for a subscription login, the real CLI reports them (`rate_limit_event`),
 * and the proxy shows them: response headers on chat, responses and messages (streaming and
 * not), `/health` `limits`, `/metrics` gauges, and a rejection as 429 with Retry-After on each
 * surface, through the official SDKs. Six CLI runs per runtime.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeAnthropic,
  type FakeUnifiedLimits,
  startFakeAnthropic,
  unifiedHeaders,
} from "../fixtures/fake-anthropic.ts";
import {
  apiError,
  type E2eDirs,
  killPids,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  RUNTIMES,
  startProxy,
  waitForNoClaude,
} from "./harness.ts";

const KEY = "sk-limits-e2e";

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

if (RUNTIMES.length === 0) {
  describe("e2e", () => {
    it.skip("no runtime selected (E2E_RUNTIMES)", () => {});
  });
}

/** Unix seconds from now. */
const inSeconds = (s: number) => Math.floor(Date.now() / 1000) + s;

for (const runtime of RUNTIMES) {
  describe(`subscription limits end to end on ${runtime}`, () => {
    let proxy: ProxyProcess;
    let tmp: string;
    const auth = { authorization: `Bearer ${KEY}` };
    const fiveHour = inSeconds(3 * 3600);
    const sevenDay = inSeconds(4 * 86400);
    const warning: FakeUnifiedLimits = {
      status: "allowed_warning",
      resetsAt: sevenDay,
      claim: "seven_day",
      windows: {
        "5h": { utilization: 0.25, resetsAt: fiveHour, status: "allowed" },
        "7d": {
          utilization: 0.8,
          resetsAt: sevenDay,
          status: "allowed_warning",
          surpassedThreshold: 0.75,
        },
      },
    };
    /** Every answer carries `limits`. */
    const answerWith = (limits: FakeUnifiedLimits) =>
      fake.setHandler(() => ({
        content: [{ type: "text", text: "Hello." }],
        headers: unifiedHeaders(limits),
      }));
    const post = (path: string, body: unknown) =>
      fetch(`${proxy.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth },
        body: JSON.stringify(body),
      });
    const limitHeaders = (response: Response) =>
      Object.fromEntries(
        [...response.headers].filter(([name]) => name.startsWith("anthropic-ratelimit-unified-")),
      );

    beforeAll(async () => {
      tmp = join(dirs.tmp, `limits-${runtime}`);
      await mkdir(tmp);
      proxy = await startProxy(runtime, {
        env: proxyEnv(fake.url, { home: dirs.home, tmp }),
        args: ["--kill-grace", "1000", "--api-key", KEY],
      });
    });
    afterEach(async () => {
      fake.reset();
      const pids = await waitForNoClaude({ pid: proxy?.process.pid, dir: tmp }, 5_000);
      killPids(pids);
      expect(pids, "claude processes left behind").toEqual([]);
    });
    afterAll(async () => {
      await proxy?.stop();
    });

    it("headers on every surface, /health limits and /metrics gauges", async () => {
      answerWith(warning);
      // Nothing reported yet: a stream's headers go out before its run reports (at its end).
      const stream = await post("/chat/completions", {
        model: "sonnet",
        stream: true,
        messages: [{ role: "user", content: "hi" }],
      });
      expect(stream.status).toBe(200);
      expect(limitHeaders(stream)).toEqual({});
      expect(await stream.text()).toContain("[DONE]");

      // A whole answer goes out after its run: the state it reported is there. 2.1.332 reports
      // every window (unifiedWindows); 2.1.221 only the binding one, seven_day here.
      const whole = await post("/responses", { model: "sonnet", input: "hi" });
      expect(whole.status).toBe(200);
      const everyWindow = "anthropic-ratelimit-unified-5h-utilization" in limitHeaders(whole);
      const expected = {
        "anthropic-ratelimit-unified-status": "allowed_warning",
        "anthropic-ratelimit-unified-reset": String(sevenDay),
        "anthropic-ratelimit-unified-representative-claim": "seven_day",
        ...(everyWindow
          ? {
              "anthropic-ratelimit-unified-5h-utilization": "0.25",
              "anthropic-ratelimit-unified-5h-reset": String(fiveHour),
              "anthropic-ratelimit-unified-5h-status": "allowed",
            }
          : {}),
        "anthropic-ratelimit-unified-7d-utilization": "0.8",
        "anthropic-ratelimit-unified-7d-reset": String(sevenDay),
        "anthropic-ratelimit-unified-7d-status": "allowed_warning",
      };
      expect(limitHeaders(whole)).toEqual(expected);
      // A stream on the Messages surface: the state the earlier runs reported.
      const messages = await post("/messages", {
        model: "sonnet",
        max_tokens: 100,
        stream: true,
        messages: [{ role: "user", content: "hi" }],
      });
      expect(messages.status).toBe(200);
      expect(limitHeaders(messages)).toEqual(expected);
      expect(await messages.text()).toContain("message_stop");

      const health = async (headers: Record<string, string>) =>
        (await fetch(`${proxy.origin}/health`, { headers })).json();
      expect(await health({})).toEqual({ status: "ok" });
      const iso = (s: number) => new Date(s * 1000).toISOString();
      const { limits } = (await health(auth)) as { limits: Record<string, unknown> };
      expect(limits).toEqual({
        updated_at: expect.any(String),
        status: "allowed_warning",
        type: "seven_day",
        resets_at: iso(sevenDay),
        windows: [
          ...(everyWindow
            ? [
                {
                  type: "five_hour",
                  status: "allowed",
                  utilization: 0.25,
                  resets_at: iso(fiveHour),
                },
              ]
            : []),
          {
            type: "seven_day",
            status: "allowed_warning",
            utilization: 0.8,
            resets_at: iso(sevenDay),
          },
        ],
        overage: null,
      });
      expect(Date.now() - Date.parse(String(limits.updated_at))).toBeLessThan(60_000);

      const metrics = await (await fetch(`${proxy.origin}/metrics`, { headers: auth })).text();
      for (const line of [
        'claude_rate_limit_status{window="unified",status="allowed_warning"} 1',
        'claude_rate_limit_status{window="seven_day",status="allowed_warning"} 1',
        'claude_rate_limit_utilization_ratio{window="seven_day"} 0.8',
        `claude_rate_limit_reset_timestamp_seconds{window="seven_day"} ${sevenDay}`,
      ]) {
        expect(metrics.split("\n")).toContain(line);
      }
      if (everyWindow) {
        expect(metrics).toContain(
          'claude_rate_limit_status{window="five_hour",status="allowed"} 1',
        );
        expect(metrics).toContain('claude_rate_limit_utilization_ratio{window="five_hour"} 0.25');
      }
    });

    it("a rejection by the subscription limit: 429 with Retry-After on each surface, not retried", async () => {
      const reset = inSeconds(2 * 3600);
      fake.setHandler(() => ({
        error: {
          status: 429,
          type: "rate_limit_error",
          message: "Number of requests has exceeded your rate limit",
        },
        headers: unifiedHeaders({
          status: "rejected",
          resetsAt: reset,
          claim: "five_hour",
          windows: {
            "5h": { utilization: 1, resetsAt: reset, status: "rejected" },
            "7d": { utilization: 0.5, resetsAt: inSeconds(86400), status: "allowed" },
          },
          overage: { status: "rejected", disabledReason: "out_of_credits" },
        }),
      }));
      const retryAfter = (headers: Headers | undefined) => {
        const seconds = Number(headers?.get("retry-after"));
        expect(seconds).toBeGreaterThan(2 * 3600 - 60);
        expect(seconds).toBeLessThanOrEqual(2 * 3600 + 1);
        // The SDKs would retry at once otherwise (they ignore a Retry-After over a minute).
        expect(headers?.get("x-should-retry")).toBe("false");
        expect(headers?.get("anthropic-ratelimit-unified-status")).toBe("rejected");
        expect(headers?.get("anthropic-ratelimit-unified-5h-status")).toBe("rejected");
        expect(headers?.get("anthropic-ratelimit-unified-5h-reset")).toBe(String(reset));
      };
      // The SDKs' default retries are on: x-should-retry keeps each to one request.
      const openai = new OpenAI({ baseURL: proxy.url, apiKey: KEY });
      const chat = await apiError(
        openai.chat.completions.create({
          model: "sonnet",
          stream: true,
          messages: [{ role: "user", content: "hi" }],
        }),
      );
      expect(chat.status).toBe(429);
      expect(chat.type).toBe("rate_limit_error");
      expect(chat.code).toBe("usage_limit_reached");
      expect(chat.message).toMatch(/You've hit your (5-hour|session) limit · resets /);
      retryAfter(chat.headers);

      const responses = await apiError(openai.responses.create({ model: "sonnet", input: "hi" }));
      expect([responses.status, responses.code]).toEqual([429, "usage_limit_reached"]);
      retryAfter(responses.headers);

      const anthropic = new Anthropic({ baseURL: proxy.origin, apiKey: KEY });
      let messages: InstanceType<typeof Anthropic.APIError> | undefined;
      try {
        await anthropic.messages.create({
          model: "sonnet",
          max_tokens: 100,
          messages: [{ role: "user", content: "hi" }],
        });
      } catch (error) {
        if (error instanceof Anthropic.APIError) messages = error;
        else throw error;
      }
      expect(messages?.status).toBe(429);
      expect(messages?.error).toMatchObject({ type: "error", error: { type: "rate_limit_error" } });
      retryAfter(messages?.headers as Headers | undefined);
      // One request each: neither the CLI nor the SDKs retried.
      expect(fake.requests).toHaveLength(3);

      const health = (await (await fetch(`${proxy.origin}/health`, { headers: auth })).json()) as {
        limits: Record<string, unknown>;
      };
      expect(health.limits).toMatchObject({
        status: "rejected",
        type: "five_hour",
        overage: { status: "rejected", resets_at: null, in_use: false },
      });
    });
  });
}
