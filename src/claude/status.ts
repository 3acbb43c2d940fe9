/**
 * Maps the CLI's failures to OpenAI-shaped HTTP errors. Facts (DESIGN.md "Events on stdout"):
 * an API error arrives as a `result` with `is_error: true` and `api_error_status`, its text
 * "API Error: 400 ..."; retries show up first as `system/api_retry` events.
 */
import { ProxyError } from "../openai/errors.ts";
import type { CliEvent, ResultEvent } from "./events.ts";

type ApiRetryEvent = Extract<CliEvent, { type: "api_retry" }>;

/** The hint attached to authentication failures. */
export const LOGIN_HINT =
  "The claude CLI is not logged in or its credentials were rejected: run `claude` once and log in " +
  "(or set CLAUDE_CODE_OAUTH_TOKEN from `claude setup-token`)";

/** Default `Retry-After` (seconds) for a rate limit whose delay the CLI did not report. */
export const DEFAULT_RETRY_AFTER_SECONDS = 30;

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
    case 400:
      return new ProxyError(400, message, {
        type: "invalid_request_error",
        code: "upstream_invalid_request",
      });
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
 */
export function resultError(
  result: ResultEvent,
  lastRetry?: ApiRetryEvent,
  rateLimitResetsAt?: number | null,
  nowMs: number = Date.now(),
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
  if (status !== null)
    return errorForStatus(status, upstreamMessage(result.result, status), retryAfter);
  const detail = result.result ?? result.subtype;
  return new ProxyError(502, `The claude CLI failed (${result.subtype}): ${detail}`, {
    type: "api_error",
    code: "cli_error",
  });
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
