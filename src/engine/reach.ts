/**
 * The `--upstream-unreachable-timeout` clock. When the CLI cannot connect to the Messages API
 * (connection refused, DNS failure, network down) it says only `api_retry` with
 * `error_status: null, error: "unknown"` and retries with backoff (10 times by default, minutes
 * in all); it names the cause only in its final result. So the clock starts at the first such
 * retry; when it runs out before the API answered, the proxy tries the same URL itself to name
 * the cause and stops the run with 502 `upstream_unreachable`.
 */
import { unreachableError } from "../claude/status.ts";
import type { ProxyError } from "../errors.ts";
import type { UpstreamWatch } from "./turn.ts";

/** The API the CLI talks to when ANTHROPIC_BASE_URL is not set. */
export const DEFAULT_API_URL = "https://api.anthropic.com";

/** Longest the proxy's own connection attempt may take, ms. */
const PROBE_TIMEOUT_MS = 3_000;

/** Text of an error and its causes (fetch wraps the socket error in `cause`). */
function errorText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    if (typeof current !== "object") {
      parts.push(String(current));
      break;
    }
    const e = current as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown };
    for (const value of [e.code, e.name, e.message]) {
      if (typeof value === "string" && value !== "") parts.push(value);
    }
    const errors = (current as { errors?: unknown }).errors;
    if (Array.isArray(errors)) parts.push(...errors.map(errorText));
    current = e.cause;
  }
  return parts.join(" ");
}

/**
 * Names the cause of a failed connection attempt (`fetch`'s error on Node, Bun or Deno):
 * "connection refused (ECONNREFUSED)", "DNS lookup failed (ENOTFOUND)", ...; the error's own
 * text when it is none of those.
 */
export function fetchFailureCause(error: unknown): string {
  const text = errorText(error);
  if (/ECONNREFUSED|ConnectionRefused|connection refused/i.test(text))
    return "connection refused (ECONNREFUSED)";
  if (
    /ENOTFOUND|EAI_AGAIN|EAI_NONAME|dns error|failed to lookup|getaddrinfo|Name or service not known/i.test(
      text,
    )
  )
    return "DNS lookup failed (ENOTFOUND)";
  if (/ENETUNREACH|network is unreachable/i.test(text)) return "network unreachable (ENETUNREACH)";
  if (/EHOSTUNREACH|no route to host/i.test(text)) return "host unreachable (EHOSTUNREACH)";
  if (/TimeoutError|ETIMEDOUT|timed out|aborted/i.test(text)) return "connection timed out";
  return innermostMessage(error) ?? "no connection";
}

/** The message of the deepest `cause` ("fetch failed" says less than "bad port"). */
function innermostMessage(error: unknown): string | null {
  let message: string | null = null;
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const e = current as { message?: unknown; cause?: unknown };
    if (typeof e.message === "string" && e.message !== "") message = e.message;
    current = e.cause;
  }
  return message;
}

/**
 * Tries to connect to `url` as the CLI would and names why that fails; null when something
 * answered (the proxy reaches the API where the CLI does not: e.g. HTTPS_PROXY for the CLI).
 */
export async function probeCause(
  url: string,
  fetchImpl: (url: string, init: RequestInit) => Promise<Response> = fetch,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<string | null> {
  try {
    const response = await fetchImpl(url, {
      method: "HEAD",
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel().catch(() => {});
    return null;
  } catch (error) {
    return fetchFailureCause(error);
  }
}

/** What {@link reachWatch} needs. */
export interface ReachOptions {
  /** `--upstream-unreachable-timeout`, ms from the first connection failure; 0: at once. */
  timeoutMs: number;
  /** ANTHROPIC_BASE_URL of the CLI's environment, when set. */
  baseUrl: string | undefined;
  /** Stops the run with this error (aborts its controller). */
  stop: (error: ProxyError) => void;
  /** The proxy's own connection attempt (tests replace it). */
  probe?: (url: string) => Promise<string | null>;
}

/** The clock for one run (reused by each leg of a tool loop). */
export function reachWatch(options: ReachOptions): UpstreamWatch {
  const probe = options.probe ?? ((url: string) => probeCause(url));
  let timer: ReturnType<typeof setTimeout> | undefined;
  let firstFailure = 0;
  let attempts = 0;
  let closed = false;
  const fire = async () => {
    timer = undefined;
    const cause = await probe(options.baseUrl ?? DEFAULT_API_URL);
    if (closed || firstFailure === 0) return;
    const waited = { ms: Date.now() - firstFailure, attempts };
    options.stop(
      unreachableError(
        cause ?? "no connection, although the proxy itself reaches it (check HTTPS_PROXY)",
        options.baseUrl,
        waited,
      ),
    );
  };
  return {
    baseUrl: options.baseUrl,
    connectionFailed(event) {
      closed = false;
      attempts = event.attempt;
      if (firstFailure === 0) firstFailure = Date.now();
      if (timer !== undefined) return;
      const left = Math.max(0, firstFailure + options.timeoutMs - Date.now());
      timer = setTimeout(() => void fire(), left);
    },
    reached() {
      firstFailure = 0;
      attempts = 0;
      clearTimeout(timer);
      timer = undefined;
    },
    close() {
      closed = true;
      firstFailure = 0;
      attempts = 0;
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
