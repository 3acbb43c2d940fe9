import { describe, expect, it } from "vitest";
import { ProxyError } from "../../src/openai/errors.ts";
import {
  decodeDataUrl,
  type ImageOptions,
  MAX_REDIRECTS,
  resolveImages,
  sniffMediaType,
} from "../../src/openai/images.ts";
import {
  type ChatCompletionMessageParam,
  parseChatCompletionRequest,
} from "../../src/openai/schema.ts";
import type { Lookup, PinnedFetch } from "../../src/runtime/types.ts";

/** A 1x1 PNG. */
const PNG_BASE64 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
const PNG_BYTES = Uint8Array.from(atob(PNG_BASE64), (c) => c.charCodeAt(0));

function userImages(...urls: string[]): ChatCompletionMessageParam[] {
  return parseChatCompletionRequest({
    model: "sonnet",
    messages: [
      { role: "system", content: "sys" },
      {
        role: "user",
        content: [
          { type: "text", text: "look" },
          ...urls.map((url) => ({ type: "image_url", image_url: { url } })),
        ],
      },
    ],
  }).messages;
}

async function rejection(promise: Promise<unknown>): Promise<ProxyError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ProxyError) return error;
    throw error;
  }
  throw new Error("no error");
}

function syncRejection(run: () => unknown): ProxyError {
  try {
    run();
  } catch (error) {
    if (error instanceof ProxyError) return error;
    throw error;
  }
  throw new Error("no error");
}

/** A public address the lookup stub hands out; nothing ever connects to it (fetch is a stub). */
const PUBLIC = "93.184.215.14";

/** A pinned fetch answering every URL with `body` and `headers`, recording URLs and addresses. */
function fakeFetch(
  body: BodyInit | null,
  init: ResponseInit = {},
): { fetch: PinnedFetch; urls: string[]; addresses: string[] } {
  const urls: string[] = [];
  const addresses: string[] = [];
  const f: PinnedFetch = async (url, options) => {
    urls.push(url);
    addresses.push(options.address);
    return new Response(body, init);
  };
  return { fetch: f, urls, addresses };
}

/** A lookup answering from `table` (PUBLIC for names not in it), recording the names asked. */
function fakeLookup(table: Record<string, string[]> = {}): { lookup: Lookup; names: string[] } {
  const names: string[] = [];
  const lookup: Lookup = async (hostname) => {
    names.push(hostname);
    return table[hostname] ?? [PUBLIC];
  };
  return { lookup, names };
}

const unusedFetch: PinnedFetch = async () => {
  throw new Error("fetch called");
};

const base: ImageOptions = {
  fetchRemote: true,
  allowPrivate: false,
  maxBytes: 1024 * 1024,
  maxTotalBytes: 4 * 1024 * 1024,
  maxImages: 20,
  concurrency: 4,
  timeoutMs: 5000,
  lookup: fakeLookup().lookup,
  fetch: unusedFetch,
};

const GENERIC = /^Could not fetch image_url #\d+: the URL is not reachable or not an image$/;

describe("sniffMediaType", () => {
  it("recognises png, jpeg, gif and webp by their first bytes", () => {
    expect(sniffMediaType(PNG_BYTES)).toBe("image/png");
    expect(sniffMediaType(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]))).toBe("image/jpeg");
    expect(sniffMediaType(new TextEncoder().encode("GIF89a"))).toBe("image/gif");
    expect(sniffMediaType(new TextEncoder().encode("RIFF\0\0\0\0WEBPVP8 "))).toBe("image/webp");
  });

  it("gives null for anything else", () => {
    expect(sniffMediaType(new TextEncoder().encode("<!doctype html>"))).toBeNull();
    expect(sniffMediaType(new TextEncoder().encode("RIFF\0\0\0\0WAVEfmt "))).toBeNull();
    expect(sniffMediaType(new Uint8Array())).toBeNull();
  });
});

describe("decodeDataUrl", () => {
  it("decodes a base64 data URL", () => {
    expect(decodeDataUrl(`data:image/png;base64,${PNG_BASE64}`, "p", 1000)).toEqual({
      media_type: "image/png",
      data: PNG_BASE64,
    });
  });

  it("normalises image/jpg, parameters and whitespace", () => {
    expect(decodeDataUrl("data:IMAGE/JPG;name=a.jpg;base64,/9j/\n4AAQ", "p", 1000)).toEqual({
      media_type: "image/jpeg",
      data: "/9j/4AAQ",
    });
  });

  it.each([
    ["data:image/png,rawbytes", "invalid_image_url"],
    ["data:image/svg+xml;base64,PHN2Zz4=", "invalid_image_format"],
    ["data:text/plain;base64,aGk=", "invalid_image_format"],
    ["data:image/png;base64,not base64!", "invalid_image_url"],
    ["data:image/png;base64,", "invalid_image_url"],
  ])("rejects %s with %s, naming the part", (url, code) => {
    const error = syncRejection(() => decodeDataUrl(url, "messages[1].content[2]", 1000));
    expect(error.status).toBe(400);
    expect(error.code).toBe(code);
    expect(error.param).toBe("messages[1].content[2]");
  });

  it("rejects an image over the size cap", () => {
    const error = syncRejection(() =>
      decodeDataUrl(`data:image/png;base64,${PNG_BASE64}`, "p", 10),
    );
    expect(error.code).toBe("image_too_large");
    expect(error.message).toContain("10 bytes");
  });
});

describe("resolveImages", () => {
  it("decodes data URLs, once per URL, keyed by URL", async () => {
    const url = `data:image/png;base64,${PNG_BASE64}`;
    const images = await resolveImages(userImages(url, url), { ...base, fetchRemote: false });
    expect([...images.entries()]).toEqual([[url, { media_type: "image/png", data: PNG_BASE64 }]]);
  });

  it("fetches http(s) URLs and sniffs the type from the bytes", async () => {
    const { fetch, urls, addresses } = fakeFetch(PNG_BYTES, {
      headers: { "content-type": "application/octet-stream" },
    });
    const url = "https://example.com/pixel";
    const images = await resolveImages(userImages(url), { ...base, fetch });
    expect(urls).toEqual([url]);
    expect(addresses).toEqual([PUBLIC]);
    expect(images.get(url)).toEqual({ media_type: "image/png", data: PNG_BASE64 });
  });

  it("refuses to fetch when fetching is off, without calling fetch", async () => {
    const { fetch, urls } = fakeFetch(PNG_BYTES);
    const error = await rejection(
      resolveImages(userImages("https://example.com/cat.png"), {
        ...base,
        fetchRemote: false,
        fetch,
      }),
    );
    expect(error.status).toBe(400);
    expect(error.code).toBe("image_fetch_disabled");
    expect(error.param).toBe("messages[1].content[1]");
    expect(error.message).toContain("data URL");
    expect(urls).toEqual([]);
  });

  it("rejects a declared size over the cap", async () => {
    const { fetch } = fakeFetch(PNG_BYTES, { headers: { "content-length": "99999" } });
    const error = await rejection(
      resolveImages(userImages("https://example.com/big.png"), { ...base, maxBytes: 100, fetch }),
    );
    expect(error.code).toBe("image_fetch_failed");
    expect(error.message).toMatch(GENERIC);
    expect(error.param).toBe("messages[1].content[1].image_url.url");
  });

  it("stops reading a body that grows over the cap without a content-length", async () => {
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(64));
      },
    });
    const { fetch } = fakeFetch(endless);
    const error = await rejection(
      resolveImages(userImages("https://example.com/stream.png"), {
        ...base,
        maxBytes: 1000,
        fetch,
      }),
    );
    expect(error.code).toBe("image_fetch_failed");
    expect(pulled).toBeLessThan(100);
  }, 5000);

  it("gives up on a fetch that takes longer than the timeout", async () => {
    const hanging: PinnedFetch = (_url, init) =>
      new Promise<Response>((_resolve, reject) => {
        init.signal.addEventListener("abort", () => reject(init.signal.reason));
      });
    const started = Date.now();
    const error = await rejection(
      resolveImages(userImages("https://example.com/slow.png"), {
        ...base,
        timeoutMs: 50,
        fetch: hanging,
      }),
    );
    expect(error.code).toBe("image_fetch_failed");
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("rejects a page that is not an image", async () => {
    const { fetch } = fakeFetch("<!doctype html><title>Not found</title>", {
      headers: { "content-type": "text/html; charset=utf-8" },
    });
    const error = await rejection(
      resolveImages(userImages("https://example.com/page"), { ...base, fetch }),
    );
    expect(error.code).toBe("image_fetch_failed");
    expect(error.message).toMatch(GENERIC);
  });

  it("gives one message for every failure, naming neither status nor error", async () => {
    const failing: PinnedFetch[] = [
      fakeFetch("gone", { status: 404 }).fetch,
      fakeFetch("who", { status: 401 }).fetch,
      fakeFetch("oops", { status: 500 }).fetch,
      fakeFetch(null, { status: 204 }).fetch,
      async () => {
        throw Object.assign(new Error("connect ECONNREFUSED 93.184.215.14:81"), {
          code: "ECONNREFUSED",
        });
      },
      async () => {
        throw new Error("Malformed_HTTP_Response");
      },
    ];
    const messages = new Set<string>();
    const reasons: string[] = [];
    for (const fetch of failing) {
      const error = await rejection(
        resolveImages(userImages("https://example.com/x.png"), {
          ...base,
          fetch,
          onFetchFailure: (failure) => reasons.push(failure.reason),
        }),
      );
      expect([error.status, error.code, error.param]).toEqual([
        400,
        "image_fetch_failed",
        "messages[1].content[1].image_url.url",
      ]);
      messages.add(error.message);
    }
    expect([...messages]).toEqual([
      "Could not fetch image_url #1: the URL is not reachable or not an image",
    ]);
    // The operator's log gets the reason.
    expect(reasons[0]).toContain("HTTP 404");
    expect(reasons[4]).toContain("ECONNREFUSED");
  });

  it("rejects other URL schemes and content parts it cannot pass on", async () => {
    const ftp = await rejection(resolveImages(userImages("ftp://example.com/a.png"), base));
    expect([ftp.code, ftp.param]).toEqual([
      "invalid_image_url",
      "messages[1].content[1].image_url.url",
    ]);
    const audio = parseChatCompletionRequest({
      model: "sonnet",
      messages: [
        {
          role: "user",
          content: [{ type: "input_audio", input_audio: { data: "x", format: "wav" } }],
        },
      ],
    }).messages;
    const unsupported = await rejection(resolveImages(audio, base));
    expect([unsupported.code, unsupported.param]).toEqual([
      "unsupported_content",
      "messages[0].content[0]",
    ]);
  });
});
