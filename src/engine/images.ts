/**
 * `image_url` parts → base64 image blocks: `data:` URLs are decoded, http(s) URLs fetched by the
 * proxy with a size cap and a timeout. The Messages API takes png, jpeg, gif and webp
 * (https://docs.anthropic.com/en/docs/build-with-claude/vision).
 *
 * Fetching is an SSRF surface: a client names the URL, the proxy connects from inside the
 * user's network. So every host is resolved first and refused when any of its addresses is
 * loopback, private, link-local, metadata and the like (net/addresses.ts), the connection goes
 * to the vetted address (no second resolution), redirects are followed by hand with the same
 * check on every hop, and every failure gives one message that says nothing about the target.
 * A request holds at most `maxImages` images and `maxTotalBytes` bytes of them; at most
 * `concurrency` fetches run at once and the rest are cancelled when one fails.
 */
import type { ResolvedImage } from "../claude/session.ts";
import { ProxyError } from "../errors.ts";
import { isAllowedAddress, isIpLiteral } from "../net/addresses.ts";
import type { Lookup, PinnedFetch } from "../runtime/types.ts";
import type { Turn } from "./conversation.ts";

/** Media types the API accepts. */
export const IMAGE_MEDIA_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"] as const;

/** Redirects followed per image URL. */
export const MAX_REDIRECTS = 3;

/** Settings for image fetching. */
export interface ImageOptions {
  /** Fetch http(s) URLs; when false such a part is a 400. */
  fetchRemote: boolean;
  /** Also fetch from loopback, private, link-local and similar addresses (never metadata ones). */
  allowPrivate: boolean;
  /** Largest image, bytes. */
  maxBytes: number;
  /** Largest sum of the images of one request (every part counts, data URLs too), bytes. */
  maxTotalBytes: number;
  /** Most `image_url` parts in one request. */
  maxImages: number;
  /** Most fetches at once. */
  concurrency: number;
  /** Timeout for one image URL, redirects included, ms. */
  timeoutMs: number;
  /** Resolves a host name (the runtime's). */
  lookup: Lookup;
  /** GETs a URL from a vetted address (the runtime's). */
  fetch: PinnedFetch;
  /** The client's request: when it aborts, fetching stops. */
  signal?: AbortSignal;
  /** Told why a fetch failed (the client is not: see the module doc). */
  onFetchFailure?: (failure: { index: number; reason: string }) => void;
}

/** Sniffs the media type from the first bytes (magic numbers), or null. */
export function sniffMediaType(bytes: Uint8Array): string | null {
  const b = (i: number) => bytes[i] ?? -1;
  if (b(0) === 0x89 && b(1) === 0x50 && b(2) === 0x4e && b(3) === 0x47) return "image/png";
  if (b(0) === 0xff && b(1) === 0xd8 && b(2) === 0xff) return "image/jpeg";
  if (b(0) === 0x47 && b(1) === 0x49 && b(2) === 0x46) return "image/gif";
  if (
    b(0) === 0x52 &&
    b(1) === 0x49 &&
    b(2) === 0x46 &&
    b(3) === 0x46 &&
    b(8) === 0x57 &&
    b(9) === 0x45
  ) {
    return "image/webp";
  }
  return null;
}

function normaliseType(type: string): string {
  const t = type.split(";")[0]?.trim().toLowerCase() ?? "";
  return t === "image/jpg" ? "image/jpeg" : t;
}

/** Decoded size of base64 text. */
function decodedSize(base64: string): number {
  const padding = base64.endsWith("==") ? 2 : base64.endsWith("=") ? 1 : 0;
  return Math.floor((base64.length * 3) / 4) - padding;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) {
    binary += String.fromCharCode(...bytes.subarray(i, i + step));
  }
  return btoa(binary);
}

/**
 * Decodes a `data:` URL.
 * @throws ProxyError 400 for a malformed URL or an unsupported media type.
 */
export function decodeDataUrl(url: string, param: string, maxBytes: number): ResolvedImage {
  const match = /^data:([^;,]+)?((?:;[^;,]*)*?);base64,(.*)$/s.exec(url);
  if (match === null) {
    throw new ProxyError(400, "Image data URLs must be base64: data:image/png;base64,...", {
      param,
      code: "invalid_image_url",
    });
  }
  const mediaType = normaliseType(match[1] ?? "");
  if (!(IMAGE_MEDIA_TYPES as readonly string[]).includes(mediaType)) {
    throw new ProxyError(400, `Unsupported image type '${mediaType}': use png, jpeg, gif or webp`, {
      param,
      code: "invalid_image_format",
    });
  }
  const data = (match[3] ?? "").replace(/\s+/g, "");
  if (data.length === 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) {
    throw new ProxyError(400, "The image data URL is not valid base64", {
      param,
      code: "invalid_image_url",
    });
  }
  if ((data.length * 3) / 4 > maxBytes) {
    throw new ProxyError(400, `The image is larger than ${maxBytes} bytes`, {
      param,
      code: "image_too_large",
    });
  }
  return { media_type: mediaType, data };
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Why a fetch failed, for the log only. */
class FetchFailure extends Error {}

/** One distinct http(s) URL to fetch, with where it first appears. */
interface FetchJob {
  url: string;
  /** 1-based position among the request's image parts. */
  index: number;
  param: string;
}

/** Bytes fetched so far by all of a request's fetches. */
interface Budget {
  used: number;
}

function tooLargeInAll(maxTotalBytes: number): ProxyError {
  return new ProxyError(
    400,
    `The images of this request are larger than ${maxTotalBytes} bytes in all (--image-max-total-bytes)`,
    { param: "messages", code: "images_too_large" },
  );
}

/** Rejects when `signal` aborts; for steps that take no signal (a DNS lookup). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new FetchFailure("aborted"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new FetchFailure("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * The address to connect to for `hostname`: the literal itself, or the first address it
 * resolves to when every one of them is allowed.
 * @throws FetchFailure when it does not resolve or any address is refused.
 */
async function vetHost(
  hostname: string,
  options: ImageOptions,
  signal: AbortSignal,
): Promise<string> {
  const host =
    hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
  const addresses = isIpLiteral(host)
    ? [host]
    : await untilAborted(options.lookup(host), signal).catch((error: unknown) => {
        if (error instanceof FetchFailure) throw error;
        throw new FetchFailure(`cannot resolve ${host}`);
      });
  const refused = addresses.filter((address) => !isAllowedAddress(address, options.allowPrivate));
  if (addresses.length === 0 || refused.length > 0) {
    throw new FetchFailure(
      `${host} resolves to ${refused.join(", ") || "nothing"}: not a public address (see --image-fetch-allow-private)`,
    );
  }
  return addresses[0] as string;
}

/** Reads a body up to `maxBytes`, adding to the request's budget; stops when `signal` aborts. */
async function readCapped(
  body: ReadableStream<Uint8Array>,
  options: ImageOptions,
  signal: AbortSignal,
  budget: Budget,
): Promise<Uint8Array> {
  const reader = body.getReader();
  const onAbort = () => {
    reader.cancel().catch(() => {});
  };
  signal.addEventListener("abort", onAbort, { once: true });
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (signal.aborted) throw new FetchFailure("aborted");
      if (done) break;
      size += value.length;
      budget.used += value.length;
      if (size > options.maxBytes) throw new FetchFailure(`larger than ${options.maxBytes} bytes`);
      if (budget.used > options.maxTotalBytes) throw tooLargeInAll(options.maxTotalBytes);
      chunks.push(value);
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    if (error instanceof FetchFailure || error instanceof ProxyError) throw error;
    throw new FetchFailure(`body: ${(error as Error).message}`);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** Fetches one image, vetting the address of every hop. */
async function fetchImage(
  job: FetchJob,
  options: ImageOptions,
  requestSignal: AbortSignal,
  budget: Budget,
): Promise<ResolvedImage> {
  const signal = AbortSignal.any([requestSignal, AbortSignal.timeout(options.timeoutMs)]);
  try {
    let url = new URL(job.url);
    let response: Response;
    for (let hop = 0; ; hop++) {
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new FetchFailure(`redirected to ${url.protocol}`);
      }
      const address = await vetHost(url.hostname, options, signal);
      response = await options
        .fetch(url.href, { address, signal, headers: { accept: "image/*" } })
        .catch((error: unknown) => {
          throw new FetchFailure(signal.aborted ? "aborted" : String(error));
        });
      if (!REDIRECTS.has(response.status)) break;
      await response.body?.cancel().catch(() => {});
      const location = response.headers.get("location");
      if (location === null) throw new FetchFailure(`HTTP ${response.status} without a location`);
      if (hop >= MAX_REDIRECTS) throw new FetchFailure(`more than ${MAX_REDIRECTS} redirects`);
      url = new URL(location, url);
    }
    if (!response.ok || response.body === null) {
      await response.body?.cancel().catch(() => {});
      throw new FetchFailure(`${url.host} answered HTTP ${response.status}`);
    }
    const declared = Number(response.headers.get("content-length") ?? "0");
    if (declared > options.maxBytes) {
      await response.body.cancel().catch(() => {});
      throw new FetchFailure(`declares ${declared} bytes`);
    }
    const bytes = await readCapped(response.body, options, signal, budget);
    const mediaType =
      sniffMediaType(bytes) ?? normaliseType(response.headers.get("content-type") ?? "");
    if (!(IMAGE_MEDIA_TYPES as readonly string[]).includes(mediaType)) {
      throw new FetchFailure(`not png, jpeg, gif or webp (${mediaType || "unknown type"})`);
    }
    return { media_type: mediaType, data: toBase64(bytes) };
  } catch (error) {
    if (error instanceof ProxyError) throw error;
    const reason =
      error instanceof FetchFailure ? error.message : `${(error as Error).name}: ${error}`;
    options.onFetchFailure?.({ index: job.index, reason });
    throw new ProxyError(
      400,
      `Could not fetch image_url #${job.index}: the URL is not reachable or not an image`,
      { param: job.param, code: "image_fetch_failed" },
    );
  }
}

/**
 * Runs the fetches, `options.concurrency` at a time; the first failure (or the client leaving)
 * aborts the others, which are settled before this returns.
 */
async function fetchAll(
  jobs: readonly FetchJob[],
  options: ImageOptions,
  budget: Budget,
  images: Map<string, ResolvedImage>,
): Promise<void> {
  const controller = new AbortController();
  const signal =
    options.signal === undefined
      ? controller.signal
      : AbortSignal.any([options.signal, controller.signal]);
  const queue = [...jobs];
  let failure: { error: unknown } | null = null;
  const worker = async () => {
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
      if (failure !== null || signal.aborted) return;
      try {
        images.set(job.url, await fetchImage(job, options, signal, budget));
      } catch (error) {
        failure ??= { error };
        controller.abort();
      }
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency, jobs.length));
  await Promise.all(Array.from({ length: workers }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
}

/**
 * Resolves every image block of the turns, keyed by URL. Everything that can be checked
 * without the network (counts, data URLs, schemes) is checked before any fetch.
 * @throws ProxyError 400 naming the part (the block's `param`) for bad data URLs, unsupported
 *   types, failed or disabled fetches and images over the size cap; 400 naming `messages` for
 *   too many images or too many bytes of them in all.
 */
export async function resolveImages(
  turns: readonly Turn[],
  options: ImageOptions,
): Promise<Map<string, ResolvedImage>> {
  const images = new Map<string, ResolvedImage>();
  const parts: { url: string; param: string; urlParam: string }[] = [];
  turns.forEach((turn, i) => {
    turn.content.forEach((block, j) => {
      if (block.type !== "image") return;
      const param = block.param ?? `messages[${i}].content[${j}]`;
      parts.push({ url: block.url, param, urlParam: block.urlParam ?? `${param}.url` });
      if (parts.length > options.maxImages) {
        throw new ProxyError(
          400,
          `A request may hold at most ${options.maxImages} images (--max-images)`,
          { param, code: "too_many_images" },
        );
      }
    });
  });
  const jobs: FetchJob[] = [];
  const queued = new Set<string>();
  let dataBytes = 0;
  parts.forEach(({ url, param, urlParam }, k) => {
    if (url.startsWith("data:")) {
      let image = images.get(url);
      if (image === undefined) {
        image = decodeDataUrl(url, param, options.maxBytes);
        images.set(url, image);
      }
      dataBytes += decodedSize(image.data);
      if (dataBytes > options.maxTotalBytes) throw tooLargeInAll(options.maxTotalBytes);
    } else if (/^https?:\/\//i.test(url)) {
      if (!options.fetchRemote) {
        throw new ProxyError(
          400,
          "Image URLs are not fetched by this proxy (--image-fetch is off): send the image as a base64 data URL",
          { param, code: "image_fetch_disabled" },
        );
      }
      if (queued.has(url)) return;
      queued.add(url);
      jobs.push({ url, index: k + 1, param: urlParam });
    } else {
      throw new ProxyError(400, "Image URLs must be data: or http(s): URLs", {
        param: urlParam,
        code: "invalid_image_url",
      });
    }
  });
  await fetchAll(jobs, options, { used: dataBytes }, images);
  // Every part goes upstream, so a URL used twice counts twice.
  let total = 0;
  for (const { url } of parts) total += decodedSize(images.get(url)?.data ?? "");
  if (total > options.maxTotalBytes) throw tooLargeInAll(options.maxTotalBytes);
  return images;
}
