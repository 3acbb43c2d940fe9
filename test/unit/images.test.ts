import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  decodeDataUrl,
  type ImageOptions,
  MAX_REDIRECTS,
  resolveImages as resolveTurnImages,
  sniffMediaType,
} from "../../src/engine/images.ts";
import { ProxyError } from "../../src/errors.ts";
import { nodeRuntime } from "../../src/runtime/node.ts";
import type { Lookup, PinnedFetch } from "../../src/runtime/types.ts";
import { chatTurns } from "../../src/surfaces/chat/conversation.ts";
import {
  type ChatCompletionMessageParam,
  parseChatCompletionRequest,
} from "../../src/surfaces/chat/schema.ts";

/** Resolves the images of chat messages (as the chat surface hands them to the engine). */
async function resolveImages(
  messages: readonly ChatCompletionMessageParam[],
  options: ImageOptions,
) {
  return resolveTurnImages(chatTurns(messages), options);
}

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

describe("resolveImages: addresses (SSRF)", () => {
  /** Options whose fetch and lookup record whether they were called at all. */
  function watched(overrides: Partial<ImageOptions> = {}) {
    const { fetch, urls } = fakeFetch(PNG_BYTES);
    const { lookup, names } = fakeLookup();
    return { options: { ...base, fetch, lookup, ...overrides }, urls, names };
  }

  it.each([
    "http://127.0.0.1/x.png",
    "http://127.0.0.1:8080/x.png",
    "http://[::1]/x.png",
    "http://0.0.0.0/x.png",
    "http://[::]/x.png",
    "http://10.0.0.1/x.png",
    "http://172.16.5.5/x.png",
    "http://192.168.1.1/x.png",
    "http://100.64.0.1/x.png",
    "http://169.254.1.1/x.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fe80::1]/x.png",
    "http://[fc00::1]/x.png",
    "http://224.0.0.1/x.png",
    "http://255.255.255.255/x.png",
    "http://2130706433/x.png",
    "http://0177.0.0.1/x.png",
    "http://127.1/x.png",
    "http://0x7f.1/x.png",
    "http://[::ffff:127.0.0.1]/x.png",
    "http://[::ffff:a9fe:a9fe]/x.png",
    "http://[64:ff9b::7f00:1]/x.png",
    "http://[2002:c0a8:101::1]/x.png",
    "https://user:pass@127.0.0.1/x.png",
  ])("refuses %s before connecting", async (url) => {
    const { options, urls, names } = watched();
    const error = await rejection(resolveImages(userImages(url), options));
    expect([error.status, error.code, error.param]).toEqual([
      400,
      "image_fetch_failed",
      "messages[1].content[1].image_url.url",
    ]);
    expect(error.message).toMatch(GENERIC);
    expect(urls).toEqual([]);
    expect(names).toEqual([]);
  });

  it("refuses a name when any of its addresses is not public", async () => {
    for (const addresses of [
      ["127.0.0.1"],
      ["10.1.2.3"],
      [PUBLIC, "::1"],
      ["169.254.169.254"],
      [],
    ]) {
      const { fetch, urls } = fakeFetch(PNG_BYTES);
      const { lookup, names } = fakeLookup({ "images.example.com": addresses });
      const error = await rejection(
        resolveImages(userImages("https://images.example.com/a.png"), { ...base, fetch, lookup }),
      );
      expect(error.message).toMatch(GENERIC);
      expect(names).toEqual(["images.example.com"]);
      expect(urls).toEqual([]);
    }
  });

  it("refuses a name that does not resolve, with the same message", async () => {
    const lookup: Lookup = async () => {
      throw Object.assign(new Error("getaddrinfo ENOTFOUND nowhere.example"), {
        code: "ENOTFOUND",
      });
    };
    const error = await rejection(
      resolveImages(userImages("https://nowhere.example/a.png"), { ...base, lookup }),
    );
    expect(error.message).toMatch(GENERIC);
  });

  it("connects to the address it vetted, resolving the name once", async () => {
    const { fetch, urls, addresses } = fakeFetch(PNG_BYTES);
    const { lookup, names } = fakeLookup({ "cdn.example.com": ["2606:4700::6810:84e5", PUBLIC] });
    await resolveImages(userImages("https://cdn.example.com/a.png"), { ...base, fetch, lookup });
    expect(names).toEqual(["cdn.example.com"]);
    expect(urls).toEqual(["https://cdn.example.com/a.png"]);
    expect(addresses).toEqual(["2606:4700::6810:84e5"]);
  });

  /** A fetch answering by URL from `routes` (a Response factory each), recording every call. */
  function routed(routes: Record<string, () => Response>) {
    const calls: { url: string; address: string }[] = [];
    const fetch: PinnedFetch = async (url, options) => {
      calls.push({ url, address: options.address });
      const route = routes[url];
      if (route === undefined) throw new Error(`unexpected ${url}`);
      return route();
    };
    return { fetch, calls };
  }
  const redirect =
    (location: string, status = 302) =>
    () =>
      new Response(null, { status, headers: { location } });

  it.each([
    "http://127.0.0.1:6379/",
    "http://169.254.169.254/latest/meta-data/iam/",
    "http://[::1]/admin",
    "http://internal.example.com/secret.png",
    "http://2130706433/",
  ])("refuses a redirect to %s without following it", async (location) => {
    const { fetch, calls } = routed({ "https://example.com/a.png": redirect(location) });
    const { lookup, names } = fakeLookup({ "internal.example.com": ["192.168.0.10"] });
    const error = await rejection(
      resolveImages(userImages("https://example.com/a.png"), { ...base, fetch, lookup }),
    );
    expect(error.message).toMatch(GENERIC);
    expect(calls.map((c) => c.url)).toEqual(["https://example.com/a.png"]);
    expect(names.filter((n) => n !== "example.com")).toEqual(
      location.includes("internal") ? ["internal.example.com"] : [],
    );
  });

  it("follows public redirects by hand, relative ones too, vetting every hop", async () => {
    const { fetch, calls } = routed({
      "https://example.com/a.png": redirect("https://cdn.example.net/b.png", 301),
      "https://cdn.example.net/b.png": redirect("/c.png", 307),
      "https://cdn.example.net/c.png": () => new Response(PNG_BYTES),
    });
    const { lookup, names } = fakeLookup({ "cdn.example.net": ["8.8.4.4"] });
    const images = await resolveImages(userImages("https://example.com/a.png"), {
      ...base,
      fetch,
      lookup,
    });
    expect(images.get("https://example.com/a.png")?.media_type).toBe("image/png");
    expect(calls).toEqual([
      { url: "https://example.com/a.png", address: PUBLIC },
      { url: "https://cdn.example.net/b.png", address: "8.8.4.4" },
      { url: "https://cdn.example.net/c.png", address: "8.8.4.4" },
    ]);
    expect(names).toEqual(["example.com", "cdn.example.net", "cdn.example.net"]);
  });

  it(`stops after ${MAX_REDIRECTS} redirects, and at a redirect to another scheme`, async () => {
    const loop = routed({
      "https://example.com/0": redirect("/1"),
      "https://example.com/1": redirect("/2"),
      "https://example.com/2": redirect("/3"),
      "https://example.com/3": redirect("/4"),
      "https://example.com/4": () => new Response(PNG_BYTES),
    });
    const tooMany = await rejection(
      resolveImages(userImages("https://example.com/0"), { ...base, fetch: loop.fetch }),
    );
    expect(tooMany.message).toMatch(GENERIC);
    expect(loop.calls).toHaveLength(MAX_REDIRECTS + 1);
    const scheme = routed({ "https://example.com/a": redirect("file:///etc/passwd") });
    const toFile = await rejection(
      resolveImages(userImages("https://example.com/a"), { ...base, fetch: scheme.fetch }),
    );
    expect(toFile.message).toMatch(GENERIC);
    expect(scheme.calls).toHaveLength(1);
  });

  it("fetches from private addresses with allowPrivate, never from metadata ones", async () => {
    const { options, urls } = watched({ allowPrivate: true });
    await resolveImages(userImages("http://127.0.0.1:9/a.png", "http://[::1]/b.png"), options);
    expect(urls).toEqual(["http://127.0.0.1:9/a.png", "http://[::1]/b.png"]);
    for (const url of ["http://169.254.169.254/", "http://[fd00:ec2::254]/"]) {
      const refused = watched({ allowPrivate: true });
      const error = await rejection(resolveImages(userImages(url), refused.options));
      expect(error.message).toMatch(GENERIC);
      expect(refused.urls).toEqual([]);
    }
  });
});

describe("resolveImages: bounds", () => {
  const dataUrl = `data:image/png;base64,${PNG_BASE64}`;

  it("refuses more images than maxImages before any fetch, data URLs counted", async () => {
    const { fetch, urls } = fakeFetch(PNG_BYTES);
    const many = [
      ...Array.from({ length: 2 }, () => dataUrl),
      ...Array.from({ length: 2 }, (_, i) => `https://example.com/${i}.png`),
    ];
    const error = await rejection(
      resolveImages(userImages(...many), { ...base, maxImages: 3, fetch }),
    );
    expect([error.status, error.code, error.param]).toEqual([
      400,
      "too_many_images",
      "messages[1].content[4]",
    ]);
    expect(error.message).toContain("at most 3 images");
    expect(urls).toEqual([]);
    await expect(
      resolveImages(userImages(...many.slice(0, 3)), { ...base, maxImages: 3, fetch }),
    ).resolves.toBeDefined();
  });

  it("refuses data URLs over the total, each part counted", async () => {
    const size = PNG_BYTES.length;
    const error = await rejection(
      resolveImages(userImages(dataUrl, dataUrl, dataUrl), { ...base, maxTotalBytes: 2 * size }),
    );
    expect([error.code, error.param]).toEqual(["images_too_large", "messages"]);
    await expect(
      resolveImages(userImages(dataUrl, dataUrl), { ...base, maxTotalBytes: 2 * size }),
    ).resolves.toBeDefined();
  });

  it("refuses fetched images over the total, stopping the downloads", async () => {
    const { fetch } = fakeFetch(new Uint8Array(600).fill(7));
    const urls = Array.from({ length: 5 }, (_, i) => `https://example.com/${i}.png`);
    const error = await rejection(
      resolveImages(userImages(...urls), { ...base, maxBytes: 1000, maxTotalBytes: 1000, fetch }),
    );
    expect([error.code, error.param]).toEqual(["images_too_large", "messages"]);
  });

  /** A fetch whose answers wait until released or aborted; counts what is in flight. */
  function gated() {
    const state = { started: 0, inFlight: 0, maxInFlight: 0, aborted: 0 };
    const release: (() => void)[] = [];
    const fetch: PinnedFetch = (url, options) =>
      new Promise<Response>((resolve, reject) => {
        state.started++;
        state.inFlight++;
        state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
        const done = () => {
          state.inFlight--;
          options.signal.removeEventListener("abort", onAbort);
        };
        const onAbort = () => {
          state.aborted++;
          done();
          reject(options.signal.reason);
        };
        options.signal.addEventListener("abort", onAbort, { once: true });
        release.push(() => {
          done();
          if (url.includes("fail")) resolve(new Response("no", { status: 500 }));
          else resolve(new Response(PNG_BYTES));
        });
      });
    return { fetch, state, release };
  }

  const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

  it("runs at most `concurrency` fetches at once", async () => {
    const { fetch, state, release } = gated();
    const urls = Array.from({ length: 100 }, (_, i) => `https://example.com/${i}.png`);
    const pending = resolveImages(userImages(...urls), {
      ...base,
      maxImages: 100,
      concurrency: 4,
      fetch,
    });
    for (let i = 0; i < 200 && state.started < 100; i++) {
      await tick();
      expect(state.inFlight).toBeLessThanOrEqual(4);
      for (const go of release.splice(0)) go();
    }
    const images = await pending;
    expect(images.size).toBe(100);
    expect(state.maxInFlight).toBe(4);
  });

  it("cancels the other fetches when one fails, and starts no more", async () => {
    const { fetch, state, release } = gated();
    const urls = Array.from({ length: 30 }, (_, i) =>
      i === 2 ? "https://example.com/fail.png" : `https://example.com/${i}.png`,
    );
    const pending = rejection(
      resolveImages(userImages(...urls), { ...base, maxImages: 30, concurrency: 4, fetch }),
    );
    await tick();
    expect(state.started).toBe(4);
    release[2]?.(); // the failing one answers; the other three hang
    const error = await pending;
    expect(error.param).toBe("messages[1].content[3].image_url.url");
    expect(error.message).toBe(
      "Could not fetch image_url #3: the URL is not reachable or not an image",
    );
    expect(state).toMatchObject({ started: 4, inFlight: 0, aborted: 3 });
  });

  it("stops fetching when the client's signal aborts", async () => {
    const { fetch, state } = gated();
    const client = new AbortController();
    const urls = Array.from({ length: 10 }, (_, i) => `https://example.com/${i}.png`);
    const pending = rejection(
      resolveImages(userImages(...urls), { ...base, fetch, signal: client.signal }),
    );
    await tick();
    client.abort();
    const error = await pending;
    expect(error.code).toBe("image_fetch_failed");
    expect(state).toMatchObject({ started: 4, inFlight: 0, aborted: 4 });
  });
});

describe("resolveImages against a local server (Node runtime's lookup and fetch)", () => {
  let server: Server;
  let port = 0;
  const hits: string[] = [];
  const sockets = new Set<Socket>();
  let maxOpen = 0;
  let closed = 0;

  beforeAll(async () => {
    server = createServer((request, response) => {
      hits.push(request.url ?? "");
      if (request.url?.startsWith("/fail")) {
        setTimeout(() => response.writeHead(404).end("no"), 30);
      } else if (request.url?.startsWith("/hang")) {
        // Never answers: only the client going away ends it.
      } else {
        setTimeout(
          () => response.writeHead(200, { "content-type": "image/png" }).end(PNG_BYTES),
          20,
        );
      }
    });
    server.on("connection", (socket) => {
      sockets.add(socket);
      maxOpen = Math.max(maxOpen, sockets.size);
      socket.on("close", () => {
        sockets.delete(socket);
        closed++;
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  const live = (overrides: Partial<ImageOptions> = {}): ImageOptions => ({
    ...base,
    lookup: nodeRuntime.lookup,
    fetch: nodeRuntime.fetchPinned,
    ...overrides,
  });

  it("refuses localhost and 127.0.0.1 by default without a single connection", async () => {
    hits.length = 0;
    const before = closed + sockets.size;
    for (const url of [`http://localhost:${port}/a.png`, `http://127.0.0.1:${port}/b.png`]) {
      const error = await rejection(resolveImages(userImages(url), live()));
      expect(error.message).toMatch(GENERIC);
    }
    expect(hits).toEqual([]);
    expect(closed + sockets.size).toBe(before);
  });

  it("fetches from localhost with allowPrivate", async () => {
    const url = `http://localhost:${port}/pixel`;
    const images = await resolveImages(userImages(url), live({ allowPrivate: true }));
    expect(images.get(url)).toEqual({ media_type: "image/png", data: PNG_BASE64 });
  });

  it("opens at most `concurrency` connections for 100 URLs", async () => {
    maxOpen = sockets.size;
    const urls = Array.from({ length: 100 }, (_, i) => `http://127.0.0.1:${port}/img${i}.png`);
    const images = await resolveImages(
      userImages(...urls),
      live({ allowPrivate: true, maxImages: 100, concurrency: 4 }),
    );
    expect(images.size).toBe(100);
    expect(maxOpen).toBeLessThanOrEqual(4);
  });

  it("closes the other connections when one fetch fails and starts no more", async () => {
    hits.length = 0;
    const urls = Array.from({ length: 20 }, (_, i) =>
      i === 1 ? `http://127.0.0.1:${port}/fail` : `http://127.0.0.1:${port}/hang${i}`,
    );
    const error = await rejection(
      resolveImages(userImages(...urls), live({ allowPrivate: true, concurrency: 4 })),
    );
    expect(error.message).toBe(
      "Could not fetch image_url #2: the URL is not reachable or not an image",
    );
    expect(hits).toHaveLength(4);
    for (let i = 0; i < 100 && sockets.size > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(sockets.size).toBe(0);
    expect(hits).toHaveLength(4);
  });
});
