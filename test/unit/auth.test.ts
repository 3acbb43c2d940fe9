import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { apiKeyAuth, isLoopbackHost, keyMatches, presentedKey } from "../../src/auth.ts";
import { ProxyError } from "../../src/errors.ts";

/** A tiny app with the middleware and an onError rendering ProxyErrors as the proxy does. */
function app(keys: string[]): Hono {
  const hono = new Hono();
  hono.use(
    "*",
    apiKeyAuth(keys, (path) => path === "/health"),
  );
  hono.get("/health", (c) => c.json({ status: "ok" }));
  hono.get("/v1/models", (c) => c.json({ object: "list", data: [] }));
  hono.on("OPTIONS", "/v1/models", (c) => c.body(null, 204));
  hono.onError((error, c) => {
    if (!(error instanceof ProxyError)) throw error;
    return c.json(error.toJSON(), error.status as 401);
  });
  return hono;
}

describe("presentedKey", () => {
  it("reads a Bearer token or x-api-key", () => {
    expect(presentedKey(new Headers({ authorization: "Bearer sk-123" }))).toBe("sk-123");
    expect(presentedKey(new Headers({ authorization: "bearer   sk-123  " }))).toBe("sk-123");
    expect(presentedKey(new Headers({ "x-api-key": "sk-456" }))).toBe("sk-456");
    expect(
      presentedKey(new Headers({ authorization: "Basic dXNlcg==", "x-api-key": "sk-7" })),
    ).toBe("sk-7");
  });

  it("gives null without a usable key", () => {
    expect(presentedKey(new Headers())).toBeNull();
    expect(presentedKey(new Headers({ authorization: "Bearer" }))).toBeNull();
    expect(presentedKey(new Headers({ "x-api-key": "  " }))).toBeNull();
  });
});

describe("keyMatches", () => {
  it("matches only a configured key, exactly", async () => {
    expect(await keyMatches("k2", ["k1", "k2"])).toBe(true);
    expect(await keyMatches("k3", ["k1", "k2"])).toBe(false);
    expect(await keyMatches("k1 ", ["k1"])).toBe(false);
    expect(await keyMatches("K1", ["k1"])).toBe(false);
    expect(await keyMatches("k", [])).toBe(false);
  });
});

describe("apiKeyAuth", () => {
  it("answers 401 in OpenAI's shape without a key", async () => {
    const response = await app(["secret"]).request("/v1/models");
    expect(response.status).toBe(401);
    const body = await response.json();
    expect(body).toEqual({
      error: {
        message: expect.stringContaining("Authorization: Bearer"),
        type: "invalid_request_error",
        param: null,
        code: "invalid_api_key",
      },
    });
  });

  it("answers 401 for a wrong key", async () => {
    const response = await app(["secret"]).request("/v1/models", {
      headers: { authorization: "Bearer guess" },
    });
    expect(response.status).toBe(401);
    expect((await response.json()).error.message).toBe("Incorrect API key provided");
  });

  it("lets a right key through as Bearer or x-api-key", async () => {
    const hono = app(["k1", "secret"]);
    const bearer = await hono.request("/v1/models", {
      headers: { authorization: "Bearer secret" },
    });
    expect(bearer.status).toBe(200);
    const header = await hono.request("/v1/models", { headers: { "x-api-key": "k1" } });
    expect(header.status).toBe(200);
    expect(await header.json()).toEqual({ object: "list", data: [] });
  });

  it("keeps /health and CORS preflights public", async () => {
    const hono = app(["secret"]);
    expect((await hono.request("/health")).status).toBe(200);
    expect((await hono.request("/v1/models", { method: "OPTIONS" })).status).toBe(204);
  });

  it("does nothing without configured keys", async () => {
    expect((await app([]).request("/v1/models")).status).toBe(200);
  });
});

describe("isLoopbackHost", () => {
  it.each(["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]"])(
    "%s is loopback",
    (host) => {
      expect(isLoopbackHost(host)).toBe(true);
    },
  );

  it.each([
    "0.0.0.0",
    "::",
    "192.168.1.10",
    "10.0.0.1",
    "example.com",
    "127.0.0.1.nip.io",
    "localhost.evil",
  ])("%s is not loopback", (host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });
});
