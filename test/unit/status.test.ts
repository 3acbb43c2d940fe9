import { describe, expect, it } from "vitest";
import type { CliEvent, ResultEvent } from "../../src/claude/events.ts";
import {
  connectionCause,
  contextLengthError,
  contextWindowRefusal,
  DEFAULT_RETRY_AFTER_SECONDS,
  errorForStatus,
  promptTooLong,
  resultError,
  retryError,
  unreachableError,
  upstreamMessage,
} from "../../src/claude/status.ts";
import { fixtureEvents } from "./cli-fixtures.ts";

type ApiRetry = Extract<CliEvent, { type: "api_retry" }>;

function recordedResult(name: string): ResultEvent {
  const result = fixtureEvents(name).find((e) => e.type === "result");
  if (result?.type !== "result") throw new Error(`${name} has no result`);
  return result;
}

function recordedRetry(name: string): ApiRetry {
  const retry = fixtureEvents(name).find((e) => e.type === "api_retry");
  if (retry?.type !== "api_retry") throw new Error(`${name} has no api_retry`);
  return retry;
}

function retry(status: number | null, delayMs = 2500): ApiRetry {
  return {
    type: "api_retry",
    attempt: 1,
    max_retries: 10,
    retry_delay_ms: delayMs,
    error_status: status,
    error: "upstream said no",
  };
}

describe("upstreamMessage", () => {
  it("strips the CLI's API Error prefix from the recorded error texts", () => {
    expect(upstreamMessage(recordedResult("error-400").result, 400)).toBe(
      "messages: text content blocks must be non-empty",
    );
    expect(upstreamMessage(recordedResult("error-401-retry").result, 401)).toBe(
      "Invalid bearer token",
    );
    expect(upstreamMessage(recordedResult("error-429").result, 429)).toBe(
      "Server is temporarily limiting requests (not your usage limit) · Number of requests has exceeded your rate limit",
    );
    expect(upstreamMessage(recordedResult("drop-error").result, null)).toBe(
      "Unable to connect to API (ECONNRESET)",
    );
  });

  it("keeps a text without the prefix and says something when there is no text", () => {
    expect(upstreamMessage("  Prompt is too long ", 400)).toBe("Prompt is too long");
    expect(upstreamMessage(null, 500)).toBe("Upstream API error 500");
    expect(upstreamMessage("API Error: 502", 502)).toBe("Upstream API error 502");
    expect(upstreamMessage("", null)).toBe("The claude CLI reported an error");
  });
});

describe("errorForStatus", () => {
  it.each([
    [400, 400, "invalid_request_error", "upstream_invalid_request"],
    [403, 403, "permission_error", "upstream_permission_denied"],
    [404, 404, "not_found_error", "model_not_found"],
    [413, 413, "invalid_request_error", "request_too_large"],
    [500, 502, "api_error", "upstream_error"],
    [503, 502, "api_error", "upstream_error"],
    [529, 503, "overloaded_error", "upstream_overloaded"],
    [422, 422, "invalid_request_error", "upstream_error"],
    [302, 502, "server_error", "upstream_error"],
  ] as const)("maps upstream %i to HTTP %i %s (%s)", (upstream, status, type, code) => {
    const error = errorForStatus(upstream, "boom");
    expect(error.status).toBe(status);
    expect(error.toJSON().error).toEqual({ message: "boom", type, param: null, code });
  });

  it("adds the login hint to a 401", () => {
    const error = errorForStatus(401, "Invalid bearer token");
    expect(error.status).toBe(401);
    expect(error.type).toBe("authentication_error");
    expect(error.message).toMatch(/^Invalid bearer token\. The claude CLI is not logged in/);
    expect(error.message).toContain("claude setup-token");
  });

  it("always gives a 429 or 529 a Retry-After, the reported one when known", () => {
    expect(errorForStatus(429, "slow down").headers()).toEqual({
      "Retry-After": String(DEFAULT_RETRY_AFTER_SECONDS),
    });
    expect(errorForStatus(429, "slow down", 7).headers()).toEqual({ "Retry-After": "7" });
    expect(errorForStatus(529, "overloaded", 0.2).headers()).toEqual({ "Retry-After": "1" });
    expect(errorForStatus(400, "bad", 7).headers()).toEqual({});
  });
});

describe("resultError", () => {
  it("is null for the successful recorded runs", () => {
    for (const name of ["text", "thinking", "tool-use", "drop-fallback"]) {
      expect(resultError(recordedResult(name))).toBeNull();
    }
  });

  it("derives the status from api_error_status, not from subtype", () => {
    const result = recordedResult("error-400");
    expect(result.subtype).toBe("success");
    expect(resultError(result)?.status).toBe(400);
    expect(resultError(recordedResult("error-401-retry"))?.status).toBe(401);
    expect(resultError(recordedResult("error-529"))?.status).toBe(503);
  });

  it("takes the Retry-After from the CLI's last retry delay", () => {
    const error = resultError(recordedResult("error-529"), recordedRetry("error-529"));
    expect(error?.headers()).toEqual({ "Retry-After": "1" });
    const fallback = resultError(recordedResult("error-429"));
    expect(fallback?.headers()).toEqual({ "Retry-After": String(DEFAULT_RETRY_AFTER_SECONDS) });
  });

  it("answers 502 cli_error for a failure without an API status", () => {
    const error = resultError(recordedResult("drop-error"));
    expect(error?.status).toBe(502);
    expect(error?.code).toBe("cli_error");
    expect(error?.message).toContain("Unable to connect to API (ECONNRESET)");
  });

  it("answers 401 with the login hint when the CLI has no credentials (recorded on 2.1.332)", () => {
    const result = recordedResult("not-logged-in");
    expect(result.api_error_status).toBeNull();
    const error = resultError(result);
    expect(error?.status).toBe(401);
    expect(error?.code).toBe("cli_not_logged_in");
    expect(error?.type).toBe("authentication_error");
    expect(error?.message).toContain("run `claude` once and log in");
    expect(error?.message).not.toContain("(success)");
  });

  it("answers 502 for a run that ended in an error subtype", () => {
    const maxTurns: ResultEvent = {
      ...recordedResult("text"),
      subtype: "error_max_turns",
      is_error: false,
      result: null,
    };
    const error = resultError(maxTurns);
    expect(error?.status).toBe(502);
    expect(error?.message).toContain("error_max_turns");
  });
});

describe("retryError", () => {
  const failFast = { retryRateLimits: false, retryServerErrors: false };
  const patient = { retryRateLimits: true, retryServerErrors: true };

  it("never waits out an authentication failure", () => {
    const recorded = recordedRetry("error-401-retry");
    expect(retryError(recorded, patient)?.status).toBe(401);
    expect(retryError(retry(403), patient)?.status).toBe(403);
  });

  it("answers a 429 at once unless rate limits are retried", () => {
    const error = retryError(retry(429, 2500), failFast);
    expect(error?.status).toBe(429);
    expect(error?.headers()).toEqual({ "Retry-After": "3" });
    expect(retryError(retry(429), { ...failFast, retryRateLimits: true })).toBeNull();
  });

  it("answers 5xx and 529 at once unless server errors are retried", () => {
    expect(retryError(recordedRetry("error-529"), failFast)?.status).toBe(503);
    expect(retryError(retry(500), failFast)?.status).toBe(502);
    expect(
      retryError(recordedRetry("error-529"), { ...failFast, retryServerErrors: true }),
    ).toBeNull();
  });

  it("lets connection errors (no status) retry", () => {
    expect(retryError(retry(null), failFast)).toBeNull();
  });
});

describe("Retry-After of a 429 from the CLI's rate_limit_event", () => {
  it("uses resetsAt (Unix seconds) of a rejected rate_limit_event when the CLI reports no delay", async () => {
    const { parseLine } = await import("../../src/claude/events.ts");
    const { resultError } = await import("../../src/claude/status.ts");
    // The shape the CLI prints (its d7l() copies resetsAt from the API's unified rate-limit headers).
    const event = parseLine(
      '{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1800000120,"rateLimitType":"five_hour","isUsingOverage":false},"uuid":"u","session_id":"s"}',
    );
    expect(event).toMatchObject({ type: "rate_limit", status: "rejected", resetsAt: 1800000120 });
    const result = parseLine(
      '{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"result":"API Error: 429 slow down","stop_reason":"stop_sequence","session_id":"s","usage":{},"total_cost_usd":0}',
    );
    if (result?.type !== "result") throw new Error("expected a result");
    const error = resultError(result, undefined, 1800000120, 1800000000 * 1000);
    expect(error?.status).toBe(429);
    expect(error?.code).toBe("usage_limit_reached");
    // Two minutes away: the SDKs, which ignore a Retry-After over a minute, are told not to retry.
    expect(error?.headers()).toEqual({ "Retry-After": "120", "x-should-retry": "false" });
    const soon = resultError(result, undefined, 1800000030, 1800000000 * 1000);
    expect(soon?.headers()).toEqual({ "Retry-After": "30" });
    // A 429 without the subscription's reset: a plain rate limit.
    const plain = resultError(result, undefined, null);
    expect(plain?.code).toBe("rate_limit_exceeded");
    expect(plain?.headers()).toEqual({ "Retry-After": "30" });
  });
});

describe("context window (recorded on CLI 2.1.332)", () => {
  it("a local refusal (api_error_status null, blocking_limit) → 400 context_length_exceeded", () => {
    const result = recordedResult("prompt-too-long-local");
    expect(result.api_error_status).toBeNull();
    expect(result.terminal_reason).toBe("blocking_limit");
    const error = resultError(result);
    expect(error?.status).toBe(400);
    expect(error?.toJSON().error).toMatchObject({
      type: "invalid_request_error",
      param: "messages",
      code: "context_length_exceeded",
    });
    expect(error?.message).toContain("maximum context length");
    expect(error?.message).toContain("Prompt is too long");
  });

  it("the API's 400 with compaction off (no numbers) → 400 context_length_exceeded", () => {
    const result = recordedResult("prompt-too-long-400");
    expect(result.api_error_status).toBe(400);
    expect(result.result).toBe("Prompt is too long");
    const error = resultError(result);
    expect(error?.status).toBe(400);
    expect(error?.code).toBe("context_length_exceeded");
    expect(error?.param).toBe("messages");
  });

  it("carries the CLI's numbers when it gives them", () => {
    const error = resultError(recordedResult("prompt-too-long-400-counted"));
    expect(error?.code).toBe("context_length_exceeded");
    expect(error?.message).toMatch(
      /^This model's maximum context length is 200000 tokens\. However, your messages resulted in 250000 tokens/,
    );
  });

  it("promptTooLong reads both wordings of the numbers", () => {
    expect(promptTooLong("Prompt is too long")).toEqual({ tokens: null, limit: null });
    expect(
      promptTooLong("Prompt is too long · the request is ~250,000 tokens (limit 200000) but ..."),
    ).toEqual({ tokens: 250000, limit: 200000 });
    expect(
      promptTooLong(
        'API Error: 400 {"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 250000 tokens > 200000 maximum"}}',
      ),
    ).toEqual({ tokens: 250000, limit: 200000 });
    expect(promptTooLong("messages: text content blocks must be non-empty")).toBeNull();
    expect(promptTooLong(null)).toBeNull();
  });

  it("errorForStatus(400) with a prompt-too-long text → context_length_exceeded; others unchanged", () => {
    const error = errorForStatus(400, "prompt is too long: 250000 tokens > 200000 maximum");
    expect(error.code).toBe("context_length_exceeded");
    expect(error.message).toContain("200000");
    expect(errorForStatus(400, "bad request").code).toBe("upstream_invalid_request");
  });

  it("contextWindowRefusal ignores successes and other statuses", () => {
    const result = recordedResult("prompt-too-long-400");
    expect(contextWindowRefusal({ ...result, is_error: false })).toBeNull();
    expect(contextWindowRefusal({ ...result, api_error_status: 500 })).toBeNull();
    expect(contextWindowRefusal(recordedResult("error-400"))).toBeNull();
    expect(contextLengthError({ tokens: null, limit: 1000 }, "x").message).toContain("1000");
  });
});

describe("an unreachable API", () => {
  it("the CLI's final connection error (2.1.332, ECONNREFUSED) → 502 upstream_unreachable naming it", () => {
    const result = recordedResult("unreachable-refused");
    const error = resultError(result, undefined, null, Date.now(), "http://127.0.0.1:1");
    expect(error?.status).toBe(502);
    expect(error?.code).toBe("upstream_unreachable");
    expect(error?.message).toContain("ECONNREFUSED");
    expect(error?.message).toContain("ANTHROPIC_BASE_URL http://127.0.0.1:1");
  });

  it("connectionCause reads both releases' texts; a reset is not unreachable", () => {
    expect(connectionCause("API Error: Unable to connect to API (ConnectionRefused)")).toBe(
      "connection refused (ECONNREFUSED)",
    );
    expect(connectionCause("API Error: Unable to connect to API (ENOTFOUND)")).toBe(
      "DNS lookup failed (ENOTFOUND)",
    );
    expect(
      connectionCause(
        "API Error: Can't reach the API server — check your internet or DNS (ENOTFOUND)",
        "connection_failed",
      ),
    ).toBe("DNS lookup failed (ENOTFOUND)");
    expect(connectionCause("API Error: Unable to connect to API (ECONNRESET)")).toBeNull();
    expect(connectionCause("API Error: something (EWHATEVER)", "connection_failed")).toBe(
      "EWHATEVER",
    );
  });

  it("unreachableError names the URL, the cause and the wait", () => {
    const error = unreachableError("DNS lookup failed (ENOTFOUND)", "http://x.invalid", {
      ms: 20_400,
      attempts: 5,
    });
    expect(error.status).toBe(502);
    expect(error.message).toBe(
      "The claude CLI cannot reach ANTHROPIC_BASE_URL http://x.invalid: DNS lookup failed (ENOTFOUND) (the claude CLI tried 5 times over 20 s)",
    );
    expect(unreachableError(null, undefined).message).toContain("the Anthropic API");
  });
});
