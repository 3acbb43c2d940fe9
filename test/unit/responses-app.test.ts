/**
 * The Responses surface in the app, with recorded CLI output (test/fixtures/cli): whole and
 * streamed answers, the stored response read, listed and deleted, per-key ownership, and the
 * errors in OpenAI's shape.
 */
import { afterEach, describe, expect, it } from "vitest";
import { fixtureLines, type StubApp, stubApp } from "./stub-app.ts";

let stub: StubApp | undefined;
afterEach(async () => {
  await stub?.close();
  stub = undefined;
});

function request(
  app: StubApp["app"],
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return Promise.resolve(
    app.request(path, {
      method,
      headers: { "content-type": "application/json", ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
  );
}

type Payload = Record<string, unknown> & { type: string; sequence_number: number };

/** `[event, payload]` of each SSE frame with data (comments skipped). */
function sseEvents(text: string): Array<[string | undefined, Payload]> {
  return text
    .split("\n\n")
    .filter((frame) => frame.includes("data:"))
    .map((frame) => {
      const event = /^event: ?(.*)$/m.exec(frame)?.[1];
      const data = frame
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.replace(/^data: ?/, ""))
        .join("\n");
      return [event, JSON.parse(data) as Payload];
    });
}

describe("POST /v1/responses with recorded CLI output", () => {
  it("answers a whole response, stores it, lists its input, deletes it (text fixture)", async () => {
    stub = await stubApp([], { script: () => ({ lines: fixtureLines("text") }) });
    const response = await request(stub.app, "POST", "/v1/responses", {
      model: "gpt-5",
      input: "Hi",
      metadata: { run: "1" },
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown> & { id: string };
    expect(body).toMatchObject({
      object: "response",
      status: "completed",
      model: "gpt-5",
      metadata: { run: "1" },
      output: [
        {
          type: "message",
          role: "assistant",
          status: "completed",
          content: [{ type: "output_text", text: "Hello world!", annotations: [] }],
        },
      ],
      usage: {
        input_tokens: 132,
        input_tokens_details: { cached_tokens: 100 },
        output_tokens: 5,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 137,
      },
      error: null,
      incomplete_details: null,
    });
    expect(body.id).toMatch(/^resp_/);

    const got = await request(stub.app, "GET", `/v1/responses/${body.id}`);
    expect(await got.json()).toEqual(body);
    const items = await request(stub.app, "GET", `/v1/responses/${body.id}/input_items`);
    expect(await items.json()).toMatchObject({
      object: "list",
      data: [{ type: "message", role: "user", content: [{ type: "input_text", text: "Hi" }] }],
      has_more: false,
    });
    const bad = await request(stub.app, "GET", `/v1/responses/${body.id}/input_items?order=up`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { param: "order" } });

    const deleted = await request(stub.app, "DELETE", `/v1/responses/${body.id}`);
    expect(await deleted.json()).toEqual({
      id: body.id,
      object: "response.deleted",
      deleted: true,
    });
    const gone = await request(stub.app, "GET", `/v1/responses/${body.id}`);
    expect(gone.status).toBe(404);
    expect(await gone.json()).toMatchObject({
      error: { type: "invalid_request_error", code: "not_found" },
    });
  });

  it("resolves item_reference items (as the AI SDK sends them with store on) from the stored response", async () => {
    stub = await stubApp([], { script: () => ({ lines: fixtureLines("text") }) });
    const first = await request(stub.app, "POST", "/v1/responses", {
      model: "sonnet",
      input: "Hi",
    });
    const answer = (await first.json()) as { output: Array<{ id: string }> };
    const messageId = answer.output[0]?.id ?? "";
    expect(messageId).toMatch(/^msg_[0-9a-f]{48}_0$/);
    const items = (await (
      await request(
        stub.app,
        "GET",
        `/v1/responses/${(answer as unknown as { id: string }).id}/input_items`,
      )
    ).json()) as { data: Array<{ id: string }> };
    const userId = items.data[0]?.id ?? "";
    const second = await request(stub.app, "POST", "/v1/responses", {
      model: "sonnet",
      input: [
        { type: "item_reference", id: userId },
        { type: "item_reference", id: messageId },
        { role: "user", content: "Again" },
      ],
    });
    expect(second.status).toBe(200);
    const { id } = (await second.json()) as { id: string };
    const stored = (await (
      await request(stub.app, "GET", `/v1/responses/${id}/input_items?order=asc`)
    ).json()) as { data: Array<Record<string, unknown>> };
    expect(stored.data).toMatchObject([
      { id: userId, type: "message", role: "user", content: [{ type: "input_text", text: "Hi" }] },
      {
        id: messageId,
        type: "message",
        role: "assistant",
        content: [{ type: "output_text", text: "Hello world!" }],
      },
      { type: "message", role: "user", content: [{ type: "input_text", text: "Again" }] },
    ]);
    const unknown = await request(stub.app, "POST", "/v1/responses", {
      model: "sonnet",
      input: [
        { type: "item_reference", id: `msg_${"0".repeat(48)}_0` },
        { role: "user", content: "x" },
      ],
    });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({
      error: { code: "item_not_found", param: "input[0]" },
    });
  });

  it("streams thinking as a reasoning item, then the text (thinking fixture)", async () => {
    stub = await stubApp([], { script: () => ({ lines: fixtureLines("thinking") }) });
    const response = await request(stub.app, "POST", "/v1/responses", {
      model: "sonnet",
      input: "Hi",
      reasoning: { effort: "high" },
      stream: true,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const events = sseEvents(await response.text());
    for (const [event, data] of events) expect(event).toBe(data.type);
    expect(events.map(([, data]) => data.sequence_number)).toEqual(events.map((_, i) => i));
    const types = events.map(([event]) => event);
    expect(types.slice(0, 4)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.reasoning_summary_part.added",
    ]);
    expect(types.at(-1)).toBe("response.completed");
    const completed = events.at(-1)?.[1].response as {
      id: string;
      output: Array<Record<string, unknown>>;
    };
    expect(completed.output.map((item) => item.type)).toEqual(["reasoning", "message"]);
    expect(completed.output[0]?.encrypted_content).toBe(
      "claude-thinking-signature:ZmFrZS1zaWduYXR1cmU6MjA6VGhlIHVzZXIgc2F5cyBoZWxsby4=",
    );
    expect(completed.output[1]).toMatchObject({
      content: [{ type: "output_text", text: "Hi there!" }],
    });
    // What was stored is what the client saw.
    const got = await request(stub.app, "GET", `/v1/responses/${completed.id}`);
    expect(await got.json()).toEqual(completed);
  });

  it("keeps store: false responses nowhere, and each key's responses to that key", async () => {
    stub = await stubApp(["--api-key", "k1", "--api-key", "k2"], {
      script: () => ({ lines: fixtureLines("text") }),
    });
    const k1 = { authorization: "Bearer k1" };
    const k2 = { authorization: "Bearer k2" };
    const unstored = await request(
      stub.app,
      "POST",
      "/v1/responses",
      { model: "sonnet", input: "Hi", store: false },
      k1,
    );
    const { id: unstoredId } = (await unstored.json()) as { id: string };
    expect(
      (await request(stub.app, "GET", `/v1/responses/${unstoredId}`, undefined, k1)).status,
    ).toBe(404);
    const stored = await request(
      stub.app,
      "POST",
      "/v1/responses",
      { model: "sonnet", input: "Hi" },
      k1,
    );
    const { id } = (await stored.json()) as { id: string };
    expect((await request(stub.app, "GET", `/v1/responses/${id}`, undefined, k1)).status).toBe(200);
    expect((await request(stub.app, "GET", `/v1/responses/${id}`, undefined, k2)).status).toBe(404);
    const follow = await request(
      stub.app,
      "POST",
      "/v1/responses",
      { model: "sonnet", input: "Again", previous_response_id: id },
      k2,
    );
    expect(follow.status).toBe(400);
    expect(await follow.json()).toMatchObject({
      error: { code: "previous_response_not_found", param: "previous_response_id" },
    });
  });

  it("refuses built-in tools and unknown models in OpenAI's shape, before any CLI run", async () => {
    let spawned = 0;
    stub = await stubApp([], {
      script: () => {
        spawned++;
        return { lines: fixtureLines("text") };
      },
    });
    const builtIn = await request(stub.app, "POST", "/v1/responses", {
      model: "sonnet",
      input: "Search",
      tools: [{ type: "file_search", vector_store_ids: ["vs_1"] }],
    });
    expect(builtIn.status).toBe(400);
    expect(await builtIn.json()).toEqual({
      error: {
        message: expect.stringContaining("'file_search'"),
        type: "invalid_request_error",
        param: "tools[0]",
        code: "unsupported_value",
      },
    });
    const model = await request(stub.app, "POST", "/v1/responses", { model: "llama", input: "x" });
    expect(model.status).toBe(404);
    expect(await model.json()).toMatchObject({ error: { code: "model_not_found" } });
    expect(spawned).toBe(0);
  });

  it("ends a stream dropped upstream with error and response.failed (drop-stream-retry fixture)", async () => {
    stub = await stubApp([], { script: () => ({ lines: fixtureLines("drop-stream-retry") }) });
    const response = await request(stub.app, "POST", "/v1/responses", {
      model: "sonnet",
      input: "Hi",
      stream: true,
    });
    expect(response.status).toBe(200);
    const events = sseEvents(await response.text());
    expect(events.map(([event]) => event).slice(-2)).toEqual(["error", "response.failed"]);
    expect(events.at(-2)?.[1]).toMatchObject({ code: "upstream_stream_dropped" });
    const failed = events.at(-1)?.[1].response as { id: string; status: string; output: unknown[] };
    expect(failed).toMatchObject({
      status: "failed",
      error: { code: "upstream_stream_dropped" },
      output: [{ type: "message", status: "incomplete" }],
    });
    // A failed response is not stored.
    expect((await request(stub.app, "GET", `/v1/responses/${failed.id}`)).status).toBe(404);
  });

  it("answers an upstream overload with 503 before the stream opens (error-529 fixture)", async () => {
    stub = await stubApp([], { script: () => ({ lines: fixtureLines("error-529") }) });
    const response = await request(stub.app, "POST", "/v1/responses", {
      model: "sonnet",
      input: "Hi",
      stream: true,
    });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ error: { code: "upstream_overloaded" } });
  });
});

describe("stored conversations are bounded", () => {
  it("a follow-up whose stored conversation would pass --max-body-size is a 400 before any run", async () => {
    let spawned = 0;
    stub = await stubApp(["--max-body-size", "4000"], {
      script: () => {
        spawned++;
        return { lines: fixtureLines("text") };
      },
    });
    const first = await request(stub.app, "POST", "/v1/responses", {
      model: "sonnet",
      input: "x".repeat(1500),
    });
    expect(first.status).toBe(200);
    const { id } = (await first.json()) as { id: string };
    // Each request fits the body limit; the conversation stored with the second would not.
    const second = await request(stub.app, "POST", "/v1/responses", {
      model: "sonnet",
      input: "y".repeat(2500),
      previous_response_id: id,
    });
    expect(second.status).toBe(400);
    expect(await second.json()).toMatchObject({
      error: { code: "conversation_too_large", param: "previous_response_id" },
    });
    expect(spawned).toBe(1);
    // Without storing, the same follow-up runs.
    const unstored = await request(stub.app, "POST", "/v1/responses", {
      model: "sonnet",
      input: "y".repeat(2500),
      previous_response_id: id,
      store: false,
    });
    expect(unstored.status).toBe(200);
  });
});
