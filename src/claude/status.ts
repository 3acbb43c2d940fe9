/**
 * Maps the CLI's failures to OpenAI-shaped HTTP errors. Facts (DESIGN.md "Events on stdout"):
 * an API error arrives as a `result` with `is_error: true` and `api_error_status`, its text
 * "API Error: 400 ..."; retries show up first as `system/api_retry` events.
 *
 * Context window (CLI 2.1.221 and 2.1.332, DESIGN.md "Context window and an unreachable API"):
 * a prompt the CLI itself estimates too large ends in a result `api_error_status: null`,
 * `terminal_reason: "blocking_limit"`, text "Prompt is too long"; the API's own 400 in
 * `api_error_status: 400`, `terminal_reason: "prompt_too_long"`, text "Prompt is too long" or
 * "Prompt is too long · the request is ~N tokens (limit M) ...". Both become OpenAI's 400
 * `context_length_exceeded`. An unreachable API ends (after the CLI's retries) in
 * "API Error: Unable to connect to API (ConnectionRefused)" (2.1.221) or "API Error: Connection
 * refused — ... (ECONNREFUSED)" with `api_error: "connection_failed"` (2.1.332).
 */
import { ProxyError } from "../errors.ts";
import type { CliEvent, ResultEvent } from "./events.ts";

type ApiRetryEvent = Extract<CliEvent, { type: "api_retry" }>;

/** The hint attached to authentication failures. */
export const LOGIN_HINT =
  "The claude CLI is not logged in or its credentials were rejected: run `claude` once and log in " +
  "(or set CLAUDE_CODE_OAUTH_TOKEN from `claude setup-token`)";

/** Default `Retry-After` (seconds) for a rate limit whose delay the CLI did not report. */
export const DEFAULT_RETRY_AFTER_SECONDS = 30;

/** What the CLI said about a prompt over the context window; the numbers when it gave them. */
export interface PromptTooLong {
  /** Tokens of the request (the CLI's or the API's count). */
  tokens: number | null;
  /** The model's context window, tokens. */
  limit: number | null;
}

const PROMPT_TOO_LONG = /prompt is too long/i;
/** "the request is ~250000 tokens (limit 200000)" (the CLI) and "250000 tokens > 200000 maximum" (the API). */
const TOKEN_COUNTS = [/~?([\d,]+) tokens \(limit ([\d,]+)\)/, /([\d,]+) tokens > ([\d,]+) maximum/];

function count(text: string | undefined): number | null {
  if (text === undefined) return null;
  const n = Number(text.replaceAll(",", ""));
  return Number.isFinite(n) ? n : null;
}

/** Whether an error text says the prompt exceeds the context window, and its numbers. */
export function promptTooLong(text: string | null): PromptTooLong | null {
  if (text === null || !PROMPT_TOO_LONG.test(text)) return null;
  for (const pattern of TOKEN_COUNTS) {
    const match = pattern.exec(text);
    if (match !== null) return { tokens: count(match[1]), limit: count(match[2]) };
  }
  return { tokens: null, limit: null };
}

/**
 * Whether a `result` is the CLI refusing a conversation over the context window (locally, or
 * after the API's 400): `terminal_reason` when the CLI gives one, else the text.
 */
export function contextWindowRefusal(result: ResultEvent): PromptTooLong | null {
  if (!result.is_error) return null;
  const status = result.api_error_status;
  if (status !== null && status !== 400 && status !== 413) return null;
  const found = promptTooLong(result.result);
  if (found !== null) return found;
  const reason = result.terminal_reason;
  return reason === "blocking_limit" || reason === "prompt_too_long"
    ? { tokens: null, limit: null }
    : null;
}

/**
 * OpenAI's 400 for a conversation over the context window (`code: context_length_exceeded`,
 * `param: messages`), worded as OpenAI words it ("This model's maximum context length is ...")
 * because some clients match the text, with the CLI's numbers when it gave them.
 */
export function contextLengthError(found: PromptTooLong, detail: string): ProxyError {
  const { tokens, limit } = found;
  const head =
    limit !== null && tokens !== null
      ? `This model's maximum context length is ${limit} tokens. However, your messages resulted in ${tokens} tokens`
      : limit !== null
        ? `This model's maximum context length is ${limit} tokens, which the messages exceed`
        : "This model's maximum context length was exceeded by the messages";
  return new ProxyError(
    400,
    `${head} (the claude CLI said: ${detail}). Please reduce the length of the messages`,
    { type: "invalid_request_error", param: "messages", code: "context_length_exceeded" },
  );
}

/** Connection failures the CLI names in its final error text, by their code in parentheses. */
const CONNECTION_CODES: Record<string, string> = {
  ECONNREFUSED: "connection refused (ECONNREFUSED)",
  ConnectionRefused: "connection refused (ECONNREFUSED)",
  ENOTFOUND: "DNS lookup failed (ENOTFOUND)",
  EAI_AGAIN: "DNS lookup failed (EAI_AGAIN)",
  ENETUNREACH: "network unreachable (ENETUNREACH)",
  EHOSTUNREACH: "host unreachable (EHOSTUNREACH)",
  ETIMEDOUT: "connection timed out (ETIMEDOUT)",
  ConnectionTimeout: "connection timed out (ETIMEDOUT)",
};

/**
 * The cause of a connection failure from the CLI's final error text ("... (ECONNREFUSED)"),
 * or null when the text names no connection failure. A connection reset (ECONNRESET) is a
 * dropped answer, not an unreachable API, and gives null.
 */
export function connectionCause(text: string | null, apiError?: string): string | null {
  const code = /\(([A-Za-z_]+)\)\s*$/.exec((text ?? "").trim())?.[1];
  if (code !== undefined && code in CONNECTION_CODES) return CONNECTION_CODES[code] ?? null;
  if (apiError === "connection_failed") return code ?? "connection failed";
  return null;
}

/**
 * 502 `upstream_unreachable`: the CLI could not connect to the Messages API.
 * @param cause e.g. "connection refused (ECONNREFUSED)"; null when unknown
 * @param baseUrl ANTHROPIC_BASE_URL when set
 */
export function unreachableError(
  cause: string | null,
  baseUrl: string | undefined,
  waited?: { ms: number; attempts: number },
): ProxyError {
  const where = baseUrl === undefined ? "the Anthropic API" : `ANTHROPIC_BASE_URL ${baseUrl}`;
  const how =
    waited === undefined
      ? ""
      : ` (the claude CLI tried ${waited.attempts} time${waited.attempts === 1 ? "" : "s"} over ${Math.round(waited.ms / 1000)} s)`;
  return new ProxyError(
    502,
    `The claude CLI cannot reach ${where}: ${cause ?? "no connection"}${how}`,
    { type: "api_error", code: "upstream_unreachable" },
  );
}

/** Strips the CLI's "API Error: 400 " prefix from an error text. */
export function upstreamMessage(text: string | null, status: number | null): string {
  const raw = (text ?? "").trim();
  const stripped = raw
    .replace(/^(Failed to authenticate\.\s*)?API Error:\s*(\d{3}\s*)?/, "")
    .trim();
  if (stripped !== "") return stripped;
  return status === null ? "The claude CLI reported an error" : `Upstream API error ${status}`;
}

/**
 * The HTTP error for an upstream status (`api_error_status` or an `api_retry` `error_status`).
 * 5xx become 502, 529 (overloaded) becomes 503.
 */
export function errorForStatus(
  status: number,
  message: string,
  retryAfterSeconds?: number,
): ProxyError {
  const retry = retryAfterSeconds === undefined ? {} : { retryAfterSeconds };
  switch (status) {
    case 400: {
      const tooLong = promptTooLong(message);
      if (tooLong !== null) return contextLengthError(tooLong, message);
      return new ProxyError(400, message, {
        type: "invalid_request_error",
        code: "upstream_invalid_request",
      });
    }
    case 401:
      return new ProxyError(401, `${message}. ${LOGIN_HINT}`, {
        type: "authentication_error",
        code: "upstream_authentication_failed",
      });
    case 403:
      return new ProxyError(403, message, {
        type: "permission_error",
        code: "upstream_permission_denied",
      });
    case 404:
      return new ProxyError(404, message, { type: "not_found_error", code: "model_not_found" });
    case 413:
      return new ProxyError(413, message, {
        type: "invalid_request_error",
        code: "request_too_large",
      });
    case 429:
      return new ProxyError(429, message, {
        type: "rate_limit_error",
        code: "rate_limit_exceeded",
        retryAfterSeconds: retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS,
      });
    case 529:
      return new ProxyError(503, message, {
        type: "overloaded_error",
        code: "upstream_overloaded",
        retryAfterSeconds: retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS,
      });
    default:
      if (status >= 500) {
        return new ProxyError(502, message, {
          type: "api_error",
          code: "upstream_error",
          ...retry,
        });
      }
      return new ProxyError(status >= 400 && status < 600 ? status : 502, message, {
        code: "upstream_error",
      });
  }
}

/**
 * The error a `result` event stands for, or null when the run succeeded.
 * `lastRetry` supplies a `Retry-After` for 429/529 when the CLI reported its delay, and
 * `rateLimitResetsAt` (Unix seconds, from a rejected `rate_limit_event`) one for a 429.
 * `baseUrl` (ANTHROPIC_BASE_URL) is named when the API could not be reached.
 */
export function resultError(
  result: ResultEvent,
  lastRetry?: ApiRetryEvent,
  rateLimitResetsAt?: number | null,
  nowMs: number = Date.now(),
  baseUrl?: string,
): ProxyError | null {
  if (!result.is_error && result.subtype === "success") return null;
  const retryAfter =
    lastRetry !== undefined && lastRetry.retry_delay_ms > 0
      ? lastRetry.retry_delay_ms / 1000
      : result.api_error_status === 429 &&
          rateLimitResetsAt != null &&
          rateLimitResetsAt * 1000 > nowMs
        ? (rateLimitResetsAt * 1000 - nowMs) / 1000
        : undefined;
  const status = result.api_error_status;
  if (status === 429 && (rateLimitResetsAt != null || result.api_error === "usage_limit_reached")) {
    return usageLimitError(upstreamMessage(result.result, status), retryAfter);
  }
  const tooLong = contextWindowRefusal(result);
  if (tooLong !== null) {
    return contextLengthError(tooLong, upstreamMessage(result.result, status));
  }
  if (status !== null)
    return errorForStatus(status, upstreamMessage(result.result, status), retryAfter);
  const cause = connectionCause(result.result, result.api_error);
  if (cause !== null) return unreachableError(cause, baseUrl);
  if (isNotLoggedIn(result)) {
    return new ProxyError(401, `The claude CLI is not logged in. ${LOGIN_HINT}`, {
      type: "authentication_error",
      code: "cli_not_logged_in",
    });
  }
  const detail = result.result ?? result.subtype;
  const how = result.subtype === "success" ? "" : ` (${result.subtype})`;
  return new ProxyError(502, `The claude CLI failed${how}: ${detail}`, {
    type: "api_error",
    code: "cli_error",
  });
}

/**
 * The subscription's usage limit was reached (a 429 with `anthropic-ratelimit-unified-status:
 * rejected`, which the CLI does not retry: "You've hit your 5-hour limit · resets 8:56pm (UTC)"):
 * 429 `usage_limit_reached` with `Retry-After` until the reset. Retrying sooner cannot help, so
 * when that is over a minute away the SDKs are told not to (`x-should-retry: false`).
 */
export function usageLimitError(message: string, retryAfterSeconds?: number): ProxyError {
  const retryAfter = retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
  return new ProxyError(429, message, {
    type: "rate_limit_error",
    code: "usage_limit_reached",
    retryAfterSeconds: retryAfter,
    ...(retryAfter > 60 ? { shouldRetry: false } : {}),
  });
}

/**
 * Whether a result is the CLI's own refusal to run without credentials: 2.1.221 and 2.1.332 end
 * such a run with `is_error`, no `api_error_status` and "Not logged in · Please run /login",
 * before any API request.
 */
export function isNotLoggedIn(result: ResultEvent): boolean {
  return (
    result.is_error &&
    result.api_error_status === null &&
    /not logged in|please run \/login/i.test(result.result ?? "")
  );
}

/** What to do about an `api_retry` event. */
export interface RetryPolicy {
  /** Let the CLI keep retrying 429s instead of answering 429 at once. */
  retryRateLimits: boolean;
  /** Let the CLI keep retrying 5xx/529 (overloaded) instead of answering at once. */
  retryServerErrors: boolean;
}

/**
 * The error that should end the run at once when the CLI announces a retry, or null to let the
 * CLI retry. Authentication failures never wait out the CLI's retries.
 */
export function retryError(event: ApiRetryEvent, policy: RetryPolicy): ProxyError | null {
  const status = event.error_status;
  const retryAfter = event.retry_delay_ms > 0 ? event.retry_delay_ms / 1000 : undefined;
  const message = `Upstream API error ${status ?? "(connection)"}: ${event.error || "request failed"}`;
  if (status === 401 || status === 403) return errorForStatus(status, message);
  if (status === 429 && !policy.retryRateLimits) return errorForStatus(429, message, retryAfter);
  if (status !== null && status >= 500 && !policy.retryServerErrors) {
    return errorForStatus(status, message, retryAfter);
  }
  return null;
}
