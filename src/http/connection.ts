/**
 * What the app tells the server about a request's connection: close it after a refusal (the
 * client may still be sending a body nobody reads: an unauthenticated client must not keep a
 * connection), and hold it open once the request is accepted (its answer may be slow and quiet,
 * e.g. a non-streaming run of minutes). The runtime's `serve` acts on both (src/runtime/).
 */
import type { MiddlewareHandler } from "hono";
import type { ServeEnv } from "../runtime/types.ts";
import { drain } from "./body.ts";

/** Statuses of requests refused before their body was read or trusted. */
const REFUSALS = new Set([401, 403, 408, 413, 415]);

/** Middleware: a refusal (401, 403, 408, 413, 415) goes out with `Connection: close`. */
export function closeAfterRefusal(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    if (REFUSALS.has(c.res.status)) {
      // A body nobody read: take (a bounded part of) it first, so that the client reads the
      // refusal instead of meeting a closed connection in the middle of sending.
      const body = c.req.raw.body;
      if (body !== null && !body.locked && c.req.raw.method !== "GET") {
        await drain(body.getReader());
      }
      try {
        c.res.headers.set("Connection", "close");
      } catch {
        // immutable headers (a Response passed through): the server's own idle bound applies
      }
    }
  };
}

/**
 * Middleware, after auth and the body: lifts the connection's idle timeout for this request
 * (the runtime restores it once the response has been sent). A no-op when the server passes no
 * {@link ServeEnv} (in-process tests).
 */
export function holdOpen(): MiddlewareHandler {
  return async (c, next) => {
    (c.env as Partial<ServeEnv> | undefined)?.connection?.holdOpen();
    return next();
  };
}
