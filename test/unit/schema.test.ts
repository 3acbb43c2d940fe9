import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { ProxyError } from "../../src/errors.ts";
import { formatParam } from "../../src/http/json.ts";
import { parseChatCompletionRequest } from "../../src/surfaces/chat/schema.ts";

/** The JSON body the official openai client sends for `params`. */
async function openaiNodeBody(params: OpenAI.ChatCompletionCreateParams): Promise<unknown> {
  let body: unknown;
  const client = new OpenAI({
    apiKey: "sk-test",
    baseURL: "http://proxy.test/v1",
    maxRetries: 0,
    fetch: async (_url, init) => {
      body = JSON.parse(String(init?.body));
      return new Response(
        JSON.stringify({
          id: "chatcmpl-1",
          object: "chat.completion",
          created: 0,
          model: "sonnet",
          choices: [
            { index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" },
          ],
        }),
        { headers: { "content-type": "application/json" } },
      );
    },
  });
  await client.chat.completions.create({ ...params, stream: false });
  return body;
}

/** The ProxyError `parseChatCompletionRequest` throws for `body`. */
function rejection(body: unknown): ProxyError {
  try {
    parseChatCompletionRequest(body);
  } catch (error) {
    if (error instanceof ProxyError) return error;
    throw error;
  }
  throw new Error("the body was accepted");
}

const valid = { model: "sonnet", messages: [{ role: "user", content: "hi" }] };

describe("parseChatCompletionRequest accepts real client bodies", () => {
  it("takes an openai-node body with tools, tool messages, images and unknown fields", async () => {
    const body = await openaiNodeBody({
      model: "gpt-4o",
      messages: [
        { role: "developer", content: "Answer in French." },
        {
          role: "user",
          content: [
            { type: "text", text: "What's the weather where this photo was taken?" },
            {
              type: "image_url",
              image_url: { url: "data:image/png;base64,iVBORw0KGgo=", detail: "low" },
            },
          ],
        },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_abc",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"Paris"}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_abc", content: "18C and sunny" },
      ],
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            description: "Current weather",
            parameters: {
              type: "object",
              properties: { city: { type: "string" } },
              required: ["city"],
            },
            strict: true,
          },
        },
      ],
      tool_choice: "auto",
      parallel_tool_calls: false,
      temperature: 0.2,
      max_completion_tokens: 256,
      reasoning_effort: "low",
      stream_options: { include_usage: true },
      store: false,
      metadata: { run: "unit" },
      service_tier: "auto",
      n: 1,
    });
    const request = parseChatCompletionRequest(body);
    expect(request.model).toBe("gpt-4o");
    expect(request.messages.map((m) => m.role)).toEqual(["developer", "user", "assistant", "tool"]);
    expect(request.tools?.[0]?.function.parameters).toEqual({
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
    });
    expect(request.stream_options?.include_usage).toBe(true);
    // unknown fields are kept, not rejected
    expect((request as Record<string, unknown>).metadata).toEqual({ run: "unit" });
  });

  it("takes a streaming body with json_schema response_format and a named tool_choice", () => {
    const request = parseChatCompletionRequest({
      model: "anthropic/claude-sonnet-4-5",
      messages: [
        { role: "system", content: [{ type: "text", text: "sys" }] },
        { role: "user", content: "hi", name: "alice" },
        { role: "assistant", content: [{ type: "refusal", refusal: "no" }] },
        { role: "function", name: "legacy", content: null },
      ],
      stream: true,
      stream_options: null,
      tool_choice: { type: "function", function: { name: "get_weather" } },
      response_format: {
        type: "json_schema",
        json_schema: { name: "answer", schema: { type: "object" }, strict: true },
      },
      stop: ["\n\n"],
      logprobs: false,
      x_vendor_extension: { anything: [1, 2, 3] },
    });
    expect(request.stream).toBe(true);
    expect(request.response_format?.type).toBe("json_schema");
  });
});

describe("parseChatCompletionRequest rejects wrong types naming the field", () => {
  it.each([
    [{ messages: valid.messages }, "model"],
    [{ ...valid, model: "" }, "model"],
    [{ model: "sonnet", messages: [] }, "messages"],
    [{ model: "sonnet", messages: "hi" }, "messages"],
    [{ model: "sonnet", messages: [{ role: "user", content: 5 }] }, "messages[0].content"],
    [{ model: "sonnet", messages: [{ role: "robot", content: "x" }] }, "messages[0].role"],
    [
      { model: "sonnet", messages: [valid.messages[0], { role: "tool", content: "x" }] },
      "messages[1].tool_call_id",
    ],
    [{ ...valid, temperature: "hot" }, "temperature"],
    [{ ...valid, stream: "yes" }, "stream"],
    [{ ...valid, max_tokens: 0 }, "max_tokens"],
    [
      { ...valid, tools: [{ type: "function", function: { name: "get weather!" } }] },
      "tools[0].function.name",
    ],
    [{ ...valid, response_format: { type: "xml" } }, "response_format.type"],
  ])("%j → 400 param %s", (body, param) => {
    const error = rejection(body);
    expect(error.status).toBe(400);
    expect(error.param).toBe(param);
    expect(error.toJSON().error.type).toBe("invalid_request_error");
    expect(error.message).toContain(`'${param}'`);
  });

  it("rejects a body that is not an object without a param", () => {
    for (const body of [null, [], "hi"]) {
      const error = rejection(body);
      expect(error.status).toBe(400);
      expect(error.param).toBeNull();
      expect(error.message).toContain("request body");
    }
  });

  it("rejects n > 1 and logprobs with the param named", () => {
    const n = rejection({ ...valid, n: 2 });
    expect([n.status, n.param, n.code]).toEqual([400, "n", "unsupported_value"]);
    const logprobs = rejection({ ...valid, logprobs: true, top_logprobs: 2 });
    expect([logprobs.status, logprobs.param, logprobs.code]).toEqual([
      400,
      "logprobs",
      "unsupported_value",
    ]);
    expect(parseChatCompletionRequest({ ...valid, n: 1, logprobs: false }).n).toBe(1);
  });
});

describe("formatParam", () => {
  it("names nested fields the way OpenAI does", () => {
    expect(formatParam(["messages", 2, "content", 0, "image_url", "url"])).toBe(
      "messages[2].content[0].image_url.url",
    );
    expect(formatParam([])).toBe("");
  });
});
