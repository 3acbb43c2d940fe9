/**
 * The Messages surface in the app: errors in Anthropic's shape under /v1/messages (401, 404,
 * 400), x-api-key, count_tokens, and /v1/models in Anthropic's shape with `anthropic-version`.
 */
import { afterEach, describe, expect, it } from "vitest";
import { wantsAnthropicErrors } from "../../src/app.ts";
import { fixtureLines, type StubApp, stubApp } from "./stub-app.ts";

let stub: StubApp | undefined;
afterEach(async () => {
  await stub?.close();
  stub = undefined;
});

function post(
  app: StubApp["app"],
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  return Promise.resolve(
    app.request(path, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    }),
  );
}

/** An Anthropic error body of `type`, with the request id. */
function anthropicError(type: string, message: unknown = expect.any(String)) {
  return { type: "error", error: { type, message }, request_id: expect.any(String) };
}

describe("errors on the Messages surface", () => {
  it("are chosen by path (and by anthropic-version on /v1/models)", () => {
    const none = new Headers();
    const versioned = new Headers({ "anthropic-version": "2023-06-01" });
    expect(wantsAnthropicErrors("/v1/messages", none)).toBe(true);
    expect(wantsAnthropicErrors("/v1/messages/count_tokens", none)).toBe(true);
    expect(wantsAnthropicErrors("/v1/messagesx", none)).toBe(false);
    expect(wantsAnthropicErrors("/v1/chat/completions", versioned)).toBe(false);
    expect(wantsAnthropicErrors("/v1/models", none)).toBe(false);
    expect(wantsAnthropicErrors("/v1/models/opus", versioned)).toBe(true);
  });

  it("401 without a key, in Anthropic's shape with a request-id header; x-api-key is accepted", async () => {
    stub = await stubApp(["--api-key", "secret"]);
    const body = { model: "sonnet", max_tokens: 10, messages: [] };
    const missing = await post(stub.app, "/v1/messages", body);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual(anthropicError("authentication_error"));
    expect(missing.headers.get("request-id")).toMatch(/.+/);
    const wrong = await post(stub.app, "/v1/messages", body, { "x-api-key": "nope" });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual(
      anthropicError("authentication_error", "Incorrect API key provided"),
    );
    // With the key, the request gets past authentication (and fails validation: empty messages).
    const keyed = await post(stub.app, "/v1/messages", body, {
      "x-api-key": "secret",
      "anthropic-version": "2023-06-01",
    });
    expect(keyed.status).toBe(400);
    expect(await keyed.json()).toEqual(anthropicError("invalid_request_error"));
    // Chat completions keep OpenAI's shape.
    const chat = await post(stub.app, "/v1/chat/completions", {});
    expect(await chat.json()).toMatchObject({ error: { code: "invalid_api_key" } });
  });

  it("404 for unknown routes under /v1/messages in Anthropic's shape", async () => {
    stub = await stubApp();
    const response = await post(stub.app, "/v1/messages/batches", {});
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual(anthropicError("not_found_error"));
  });

  it("400 naming the field for a bad body, and for bad JSON", async () => {
    stub = await stubApp();
    const noMax = await post(stub.app, "/v1/messages", {
      model: "sonnet",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(noMax.status).toBe(400);
    expect(await noMax.json()).toEqual(
      anthropicError("invalid_request_error", expect.stringContaining("'max_tokens'")),
    );
    const bad = await post(stub.app, "/v1/messages", "{");
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual(
      anthropicError("invalid_request_error", expect.stringContaining("JSON")),
    );
  });

  it("404 not_found_error for a model that maps to nothing", async () => {
    stub = await stubApp();
    const response = await post(stub.app, "/v1/messages", {
      model: "gpt-nothing",
      max_tokens: 10,
      messages: [{ role: "user", content: "hi" }],
    });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual(
      anthropicError("not_found_error", expect.stringContaining("gpt-nothing")),
    );
  });
});

describe("POST /v1/messages/count_tokens", () => {
  it("answers 501 in Anthropic's shape, not to be retried", async () => {
    stub = await stubApp();
    const response = await post(stub.app, "/v1/messages/count_tokens", {
      model: "sonnet",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(response.status).toBe(501);
    expect(response.headers.get("x-should-retry")).toBe("false");
    expect(await response.json()).toEqual(
      anthropicError("api_error", expect.stringContaining("cannot count tokens")),
    );
  });
});

describe("GET /v1/models", () => {
  it("answers in Anthropic's shape with anthropic-version, OpenAI's otherwise", async () => {
    stub = await stubApp(["--extra-models", "claude-opus-4-1"]);
    const headers = { "anthropic-version": "2023-06-01" };
    const anthropic = await stub.app.request("/v1/models", { headers });
    const list = (await anthropic.json()) as Record<string, unknown>;
    expect(list).toEqual({
      data: ["opus", "sonnet", "haiku", "claude-opus-4-1"].map((id) => ({
        type: "model",
        id,
        display_name: id,
        created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      })),
      has_more: false,
      first_id: "opus",
      last_id: "claude-opus-4-1",
    });
    const one = await stub.app.request("/v1/models/sonnet", { headers });
    expect(await one.json()).toMatchObject({ type: "model", id: "sonnet", display_name: "sonnet" });
    const missing = await stub.app.request("/v1/models/gpt-nothing", { headers });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual(anthropicError("not_found_error"));
    const openai = await stub.app.request("/v1/models");
    expect(await openai.json()).toMatchObject({ object: "list" });
  });
});

/** The `[event, data]` pairs of an SSE body (comments skipped). */
function sseEvents(text: string): Array<[string, Record<string, unknown>]> {
  return text
    .split("\n\n")
    .filter((frame) => frame.trim() !== "" && !frame.startsWith(":"))
    .map((frame) => [
      /^event: (.+)$/m.exec(frame)?.[1] ?? "",
      JSON.parse(/^data: (.+)$/m.exec(frame)?.[1] ?? "null"),
    ]);
}

describe("POST /v1/messages with recorded CLI output", () => {
  const ask = { model: "sonnet", max_tokens: 100, messages: [{ role: "user", content: "Hi" }] };

  it("answers a whole Message (text fixture)", async () => {
    stub = await stubApp([], { script: () => ({ lines: fixtureLines("text") }) });
    const response = await post(stub.app, "/v1/messages", ask);
    expect(response.status).toBe(200);
    expect(response.headers.get("request-id")).toMatch(/.+/);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      type: "message",
      role: "assistant",
      model: "sonnet",
      content: [{ type: "text", text: "Hello world!" }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: {
        input_tokens: 12,
        output_tokens: 5,
        cache_creation_input_tokens: 20,
        cache_read_input_tokens: 100,
      },
    });
    expect(String(body.id)).toMatch(/^msg_/);
  });

  it("streams thinking (when asked) and text as Anthropic's events (thinking fixture)", async () => {
    stub = await stubApp([], { script: () => ({ lines: fixtureLines("thinking") }) });
    const response = await post(stub.app, "/v1/messages", {
      ...ask,
      stream: true,
      thinking: { type: "enabled", budget_tokens: 2048 },
    });
    expect(response.status).toBe(200);
    const events = sseEvents(await response.text()).filter(([event]) => event !== "ping");
    for (const [event, data] of events) expect(data.type).toBe(event);
    expect(events.map(([event]) => event)).toEqual([
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const deltas = events.filter(([e]) => e === "content_block_delta").map(([, d]) => d.delta);
    expect(deltas[3]).toEqual({
      type: "signature_delta",
      signature: "ZmFrZS1zaWduYXR1cmU6MjA6VGhlIHVzZXIgc2F5cyBoZWxsby4=",
    });
    expect(events.at(-2)?.[1]).toMatchObject({
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: { input_tokens: 10, output_tokens: 8 },
    });
  });

  it("leaves thinking out when the request does not ask for it", async () => {
    stub = await stubApp([], { script: () => ({ lines: fixtureLines("thinking") }) });
    const response = await post(stub.app, "/v1/messages", ask);
    const body = (await response.json()) as { content: unknown[] };
    expect(body.content).toEqual([{ type: "text", text: "Hi there!" }]);
  });

  it("answers an upstream 529 as 529 overloaded_error (error-529 fixture)", async () => {
    stub = await stubApp([], { script: () => ({ lines: fixtureLines("error-529") }) });
    const response = await post(stub.app, "/v1/messages", ask);
    expect(response.status).toBe(529);
    expect(await response.json()).toEqual(anthropicError("overloaded_error"));
  });
});
