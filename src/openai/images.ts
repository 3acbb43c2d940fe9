/**
 * `image_url` parts → base64 image blocks: `data:` URLs are decoded, http(s) URLs fetched by the
 * proxy with a size cap and a timeout. The Messages API takes png, jpeg, gif and webp
 * (https://docs.anthropic.com/en/docs/build-with-claude/vision).
 */
import type { ResolvedImage } from "../claude/session.ts";
import { ProxyError } from "./errors.ts";
import type { ChatCompletionMessageParam } from "./schema.ts";

/** Media types the API accepts. */
export const IMAGE_MEDIA_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"] as const;

/** Settings for image fetching. */
export interface ImageOptions {
  /** Fetch http(s) URLs; when false such a part is a 400. */
  fetchRemote: boolean;
  /** Largest image, bytes. */
  maxBytes: number;
  /** Fetch timeout, ms. */
  timeoutMs: number;
  /** Injectable fetch (tests). */
  fetch?: typeof fetch;
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

async function fetchImage(
  url: string,
  param: string,
  options: ImageOptions,
): Promise<ResolvedImage> {
  const doFetch = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await doFetch(url, {
      signal: AbortSignal.timeout(options.timeoutMs),
      redirect: "follow",
    });
  } catch (error) {
    throw new ProxyError(400, `Could not fetch the image at ${url}: ${(error as Error).message}`, {
      param,
      code: "image_fetch_failed",
    });
  }
  if (!response.ok || response.body === null) {
    await response.body?.cancel();
    throw new ProxyError(400, `Could not fetch the image at ${url}: HTTP ${response.status}`, {
      param,
      code: "image_fetch_failed",
    });
  }
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > options.maxBytes) {
    await response.body.cancel();
    throw new ProxyError(400, `The image at ${url} is larger than ${options.maxBytes} bytes`, {
      param,
      code: "image_too_large",
    });
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body) {
      size += chunk.length;
      if (size > options.maxBytes) {
        throw new ProxyError(400, `The image at ${url} is larger than ${options.maxBytes} bytes`, {
          param,
          code: "image_too_large",
        });
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof ProxyError) throw error;
    throw new ProxyError(400, `Could not fetch the image at ${url}: ${(error as Error).message}`, {
      param,
      code: "image_fetch_failed",
    });
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  const mediaType =
    sniffMediaType(bytes) ?? normaliseType(response.headers.get("content-type") ?? "");
  if (!(IMAGE_MEDIA_TYPES as readonly string[]).includes(mediaType)) {
    throw new ProxyError(400, `The image at ${url} is not png, jpeg, gif or webp`, {
      param,
      code: "invalid_image_format",
    });
  }
  return { media_type: mediaType, data: toBase64(bytes) };
}

/**
 * Resolves every `image_url` part of the messages, keyed by URL.
 * @throws ProxyError 400 naming the part for bad data URLs, unsupported types, failed or
 *   disabled fetches and images over the size cap.
 */
export async function resolveImages(
  messages: readonly ChatCompletionMessageParam[],
  options: ImageOptions,
): Promise<Map<string, ResolvedImage>> {
  const images = new Map<string, ResolvedImage>();
  const pending: Promise<void>[] = [];
  messages.forEach((message, i) => {
    if (message.role !== "user" || typeof message.content === "string") return;
    message.content.forEach((part, j) => {
      const param = `messages[${i}].content[${j}]`;
      if (part.type !== "image_url") {
        if (part.type !== "text") {
          throw new ProxyError(400, `Content parts of type '${part.type}' are not supported`, {
            param,
            code: "unsupported_content",
          });
        }
        return;
      }
      const url = part.image_url.url;
      if (images.has(url)) return;
      if (url.startsWith("data:")) {
        images.set(url, decodeDataUrl(url, param, options.maxBytes));
      } else if (/^https?:\/\//i.test(url)) {
        if (!options.fetchRemote) {
          throw new ProxyError(
            400,
            "Image URLs are not fetched by this proxy (--image-fetch is off): send the image as a base64 data URL",
            { param, code: "image_fetch_disabled" },
          );
        }
        pending.push(
          fetchImage(url, `${param}.image_url.url`, options).then((image) => {
            images.set(url, image);
          }),
        );
      } else {
        throw new ProxyError(400, "Image URLs must be data: or http(s): URLs", {
          param: `${param}.image_url.url`,
          code: "invalid_image_url",
        });
      }
    });
  });
  await Promise.all(pending);
  return images;
}
