/**
 * API-key access control: with keys configured, every route needs `Authorization: Bearer KEY`
 * or `x-api-key: KEY`, except `/health` (which then shows only its `status` to a request
 * without a valid key) and the per-run MCP endpoints (which check their own per-run secret,
 * engine/bridge.ts). Keys are compared in constant time (Hono's `timingSafeEqual`, which hashes both
 * sides first).
 */
import type { MiddlewareHandler } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import { ProxyError } from "./errors.ts";

/** The key a request presents, or null. */
export function presentedKey(headers: Headers): string | null {
  const authorization = headers.get("authorization");
  if (authorization !== null) {
    const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (match?.[1] !== undefined) return match[1].trim();
  }
  const apiKey = headers.get("x-api-key");
  return apiKey === null || apiKey.trim() === "" ? null : apiKey.trim();
}

/** Whether `key` equals one of `keys` (constant time per comparison; all keys are compared). */
export async function keyMatches(key: string, keys: readonly string[]): Promise<boolean> {
  let found = false;
  for (const candidate of keys) {
    if (await timingSafeEqual(candidate, key)) found = true;
  }
  return found;
}

/**
 * The middleware; a no-op without keys.
 * @throws ProxyError 401 `invalid_api_key` in OpenAI's shape for a missing or wrong key.
 */
export function apiKeyAuth(
  keys: readonly string[],
  isPublic: (path: string) => boolean,
): MiddlewareHandler {
  return async (c, next) => {
    if (keys.length === 0 || isPublic(c.req.path) || c.req.method === "OPTIONS") return next();
    const key = presentedKey(c.req.raw.headers);
    if (key === null) {
      throw new ProxyError(
        401,
        "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY' or 'x-api-key: YOUR_KEY'",
        { type: "invalid_request_error", code: "invalid_api_key" },
      );
    }
    if (!(await keyMatches(key, keys))) {
      throw new ProxyError(401, "Incorrect API key provided", {
        type: "invalid_request_error",
        code: "invalid_api_key",
      });
    }
    return next();
  };
}

/** Whether a host name or address is loopback (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}
