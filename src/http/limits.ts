/**
 * Response headers with the subscription's rate-limit state (src/limits.ts), as it stands when
 * the response starts: after the turn for a whole answer or an error, at the first event (or the
 * first ping) for a stream, whose own `rate_limit_event` only comes at its end.
 */
import type { MiddlewareHandler } from "hono";
import type { RateLimits } from "../limits.ts";

/** Adds `anthropic-ratelimit-unified-*` ({@link RateLimits.headers}) to the route's response. */
export function limitHeaders(limits: RateLimits): MiddlewareHandler {
  return async (c, next) => {
    await next();
    for (const [name, value] of Object.entries(limits.headers())) c.res.headers.set(name, value);
  };
}
