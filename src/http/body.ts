/**
 * Reads a request body before any route sees it, bounded in size and in time: larger than
 * `--max-body-size` → 413, not complete within `--body-timeout` → 408. Works for bodies with a
 * `Content-Length` and chunked ones alike, on every runtime. (Hono's `bodyLimit` re-creates the
 * request from the runtime's own Request object, which fails on @hono/node-server without its
 * global overrides: every chunked body and every OPTIONS request became a 500 there.)
 */
import type { MiddlewareHandler } from "hono";
import { ProxyError } from "../errors.ts";

/** Methods whose body is never read (and never buffered). */
const BODYLESS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Headers that describe the framing of the original body, not the buffered copy. */
const FRAMING = ["content-length", "transfer-encoding"];

function tooLarge(maxBytes: number): ProxyError {
  return new ProxyError(413, `The request body is larger than ${maxBytes} bytes`, {
    code: "request_too_large",
  });
}

/** How much of an unwanted body is read and dropped before a refusal, so the client sees it. */
export const DRAIN_BOUND = { bytes: 1024 * 1024, ms: 1_000 };

/**
 * Reads and drops what is left of a body, at most {@link DRAIN_BOUND}, then cancels the rest.
 * A client still sending would otherwise meet a closed connection (EPIPE) instead of the answer.
 */
export async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"expired">((resolve) => {
    timer = setTimeout(() => resolve("expired"), DRAIN_BOUND.ms);
  });
  let size = 0;
  try {
    while (size <= DRAIN_BOUND.bytes) {
      const step = await Promise.race([reader.read(), expired]);
      if (step === "expired" || step.done) break;
      size += step.value.byteLength;
    }
  } catch {
    // the client went away
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
  }
}

/**
 * Reads `body` completely, at most `maxBytes`, within `timeoutMs` (0: no time bound).
 * @throws ProxyError 413 `request_too_large` or 408 `request_timeout`; the stream is cancelled.
 */
export async function readBounded(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  timeoutMs: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const reader = body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"expired">((resolve) => {
    if (timeoutMs > 0) timer = setTimeout(() => resolve("expired"), timeoutMs);
  });
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const step = await Promise.race([reader.read(), expired]);
      if (step === "expired") {
        throw new ProxyError(408, `The request body did not arrive within ${timeoutMs} ms`, {
          code: "request_timeout",
        });
      }
      if (step.done) break;
      size += step.value.byteLength;
      if (size > maxBytes) {
        await drain(reader);
        throw tooLarge(maxBytes);
      }
      chunks.push(step.value);
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** Options of {@link boundedBody}. */
export interface BoundedBodyOptions {
  /** `--max-body-size`. */
  maxBytes: number;
  /** `--body-timeout`; 0: no time bound. */
  timeoutMs: number;
}

/**
 * The middleware: a declared `Content-Length` over the limit is refused before reading; any
 * other body is read (see {@link readBounded}) and the request replaced by one holding the bytes,
 * with the same URL, method, headers and abort signal.
 * @throws ProxyError 413 or 408 in OpenAI's shape.
 */
export function boundedBody(options: BoundedBodyOptions): MiddlewareHandler {
  return async (c, next) => {
    const raw = c.req.raw;
    if (BODYLESS.has(raw.method) || raw.body === null) return next();
    const declared = raw.headers.get("content-length");
    if (declared !== null && Number(declared) > options.maxBytes) throw tooLarge(options.maxBytes);
    const bytes = await readBounded(raw.body, options.maxBytes, options.timeoutMs);
    const headers = new Headers(raw.headers);
    for (const name of FRAMING) headers.delete(name);
    c.req.raw = new Request(raw.url, {
      method: raw.method,
      headers,
      body: bytes,
      signal: raw.signal,
    });
    return next();
  };
}
