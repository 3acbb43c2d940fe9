/** The Responses surface's request side: body → validated request → engine Conversation. */
import { describe, expect, it } from "vitest";
import { ProxyError } from "../../src/errors.ts";
import { MAX_JSON_VALUES, MAX_MESSAGES } from "../../src/http/json.ts";
import {
  SIGNATURE_PREFIX,
  signatureOf,
  toConversation,
} from "../../src/surfaces/responses/conversation.ts";
import { parseResponseBody, parseResponseRequest } from "../../src/surfaces/responses/schema.ts";

function fails(body: unknown): ProxyError {
  try {
    parseResponseRequest(body);
  } catch (error) {
    expect(error).toBeInstanceOf(ProxyError);
    return error as ProxyError;
  }
  throw new Error("expected a 400");
}

describe("parseResponseRequest", () => {
  it("takes a string input as one user message, with OpenAI's defaults", () => {
    const request = parseResponseRequest({ model: "gpt-5", input: "Hi" });
    expect(request.input).toEqual([{ role: "user", content: "Hi" }]);
    expect(request.tools).toEqual([]);
    expect(request.tool_choice).toBe("auto");
  });

  it("tolerates unknown fields, temperature, top_p, user, metadata, include", () => {
    const request = parseResponseRequest({
      model: "gpt-5",
      input: "Hi",
      temperature: 0.2,
      top_p: 0.9,
      user: "u1",
      metadata: { a: "b" },
      include: ["reasoning.encrypted_content"],
      service_tier: "auto",
      prompt_cache_key: "k",
    });
    expect(request.metadata).toEqual({ a: "b" });
    expect(request.temperature).toBe(0.2);
  });

  it.each([
    "web_search",
    "web_search_preview",
    "file_search",
    "computer_use_preview",
    "code_interpreter",
    "image_generation",
    "mcp",
    "local_shell",
  ])("refuses the built-in tool %s naming it (tools[i], unsupported_value)", (type) => {
    const error = fails({
      model: "gpt-5",
      input: "Hi",
      tools: [{ type: "function", name: "ok", parameters: { type: "object" } }, { type }],
    });
    expect(error.status).toBe(400);
    expect(error.param).toBe("tools[1]");
    expect(error.code).toBe("unsupported_value");
    expect(error.message).toContain(`'${type}'`);
  });

  it("refuses n > 1, background, conversation and prompt clearly", () => {
    expect(fails({ model: "m", input: "x", n: 2 }).param).toBe("n");
    expect(fails({ model: "m", input: "x", background: true }).param).toBe("background");
    expect(fails({ model: "m", input: "x", conversation: "conv_1" }).param).toBe("conversation");
    expect(fails({ model: "m", input: "x", prompt: { id: "p" } }).param).toBe("prompt");
  });

  it("names wrong fields in OpenAI's param style", () => {
    expect(fails({ model: "m", input: [{ role: "user", content: 5 }] }).param).toBe(
      "input[0].content",
    );
    expect(fails({ model: "m", input: [{ type: "function_call", name: "f" }] }).param).toMatch(
      /^input\[0\]\./,
    );
    expect(fails({ model: 5, input: "x" }).param).toBe("model");
    expect(fails({ model: "m", input: "x", max_output_tokens: 0 }).param).toBe("max_output_tokens");
    expect(
      fails({ model: "m", input: "x", tool_choice: { type: "web_search_preview" } }).param,
    ).toBe("tool_choice");
  });

  it("refuses unsupported items and parts", () => {
    expect(fails({ model: "m", input: [{ type: "local_shell_call", id: "x" }] })).toMatchObject({
      param: "input[0]",
      code: "unsupported_value",
    });
    const file = fails({
      model: "m",
      input: [{ role: "user", content: [{ type: "input_file", file_id: "f" }] }],
    });
    expect(file.param).toBe("input[0].content[0]");
    const image = fails({
      model: "m",
      input: [{ role: "user", content: [{ type: "input_image", file_id: "f" }] }],
    });
    expect(image.param).toBe("input[0].content[0].image_url");
  });

  it("needs input unless previous_response_id is given", () => {
    expect(fails({ model: "m" }).param).toBe("input");
    expect(parseResponseRequest({ model: "m", previous_response_id: "resp_1" }).input).toEqual([]);
  });

  it("bounds input length and the JSON values of a body", () => {
    const input = Array.from({ length: MAX_MESSAGES + 1 }, () => ({ role: "user", content: "x" }));
    expect(fails({ model: "m", input })).toMatchObject({
      param: "input",
      code: "array_above_max_length",
    });
    const text = JSON.stringify({
      model: "m",
      input: "x",
      metadata: {},
      junk: new Array(MAX_JSON_VALUES + 1).fill(0),
    });
    expect(() => parseResponseBody(text)).toThrow(/more than/);
    expect(() => parseResponseBody("{")).toThrow(ProxyError);
  });

  it("refuses deeply nested tool parameters", () => {
    let schema: Record<string, unknown> = { type: "object" };
    for (let i = 0; i < 200; i++) schema = { type: "object", properties: { a: schema } };
    const error = fails({
      model: "m",
      input: "x",
      tools: [{ type: "function", name: "deep", parameters: schema }],
    });
    expect(error.param).toMatch(/^tools\[0\]\.parameters/);
  });
});

describe("toConversation", () => {
  it("maps a tool loop as the SDK sends it statelessly: call_id ids, merged roles, system joined", () => {
    const request = parseResponseRequest({
      model: "gpt-5",
      instructions: "Be brief.",
      input: [
        { role: "developer", content: "Use tools." },
        { role: "user", content: "Weather in Paris?" },
        { type: "message", role: "user", content: [{ type: "input_text", text: "And Rome?" }] },
        {
          type: "reasoning",
          id: "rs_1",
          summary: [{ type: "summary_text", text: "Let me look." }],
          encrypted_content: `${SIGNATURE_PREFIX}sig-1`,
        },
        { type: "reasoning", id: "rs_2", summary: [{ type: "summary_text", text: "foreign" }] },
        {
          type: "function_call",
          id: "fc_1",
          call_id: "toolu_1",
          name: "weather",
          arguments: '{"city":"Paris"}',
        },
        { type: "function_call", call_id: "toolu_2", name: "weather", arguments: "not json" },
        { type: "function_call_output", call_id: "toolu_1", output: "18C" },
        {
          type: "function_call_output",
          call_id: "toolu_2",
          output: [{ type: "input_text", text: "21C" }],
        },
      ],
      tools: [
        {
          type: "function",
          name: "weather",
          description: "Weather of a city",
          parameters: { type: "object", properties: { city: { type: "string" } } },
          strict: true,
        },
      ],
      tool_choice: { type: "function", name: "weather" },
      parallel_tool_calls: false,
      reasoning: { effort: "minimal" },
      max_output_tokens: 500,
    });
    expect(toConversation(request)).toEqual({
      system: "Be brief.\n\nUse tools.",
      turns: [
        {
          role: "user",
          content: [
            { type: "text", text: "Weather in Paris?" },
            { type: "text", text: "And Rome?" },
          ],
        },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "Let me look.", signature: "sig-1" },
            { type: "tool_use", id: "toolu_1", name: "weather", input: { city: "Paris" } },
            { type: "tool_use", id: "toolu_2", name: "weather", input: { _raw: "not json" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1", content: "18C" },
            { type: "tool_result", tool_use_id: "toolu_2", content: "21C" },
          ],
        },
      ],
      tools: [
        {
          name: "weather",
          description: "Weather of a city",
          parameters: { type: "object", properties: { city: { type: "string" } } },
        },
      ],
      toolChoice: { name: "weather" },
      parallelToolCalls: false,
      output: { type: "text" },
      effort: "low",
      maxOutputTokens: 500,
    });
  });

  it("prepends the stored conversation of previous_response_id", () => {
    const request = parseResponseRequest({
      model: "m",
      previous_response_id: "resp_1",
      input: [{ type: "function_call_output", call_id: "toolu_9", output: "done" }],
    });
    const conversation = toConversation(request, [
      { type: "message", id: "msg_1", role: "user", content: [{ type: "input_text", text: "Go" }] },
      {
        type: "message",
        id: "msg_2",
        role: "assistant",
        status: "completed",
        content: [{ type: "output_text", text: "Calling." }],
      },
      { type: "function_call", id: "fc_1", call_id: "toolu_9", name: "run", arguments: "{}" },
    ]);
    expect(conversation.turns).toEqual([
      { role: "user", content: [{ type: "text", text: "Go" }] },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Calling." },
          { type: "tool_use", id: "toolu_9", name: "run", input: {} },
        ],
      },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_9", content: "done" }] },
    ]);
    expect(conversation.system).toBeNull();
    expect(conversation.parallelToolCalls).toBe(true);
  });

  it("maps images, text.format and refuses images where the engine cannot take them", () => {
    const request = parseResponseRequest({
      model: "m",
      input: [
        {
          role: "user",
          content: [
            { type: "input_text", text: "What is this?" },
            { type: "input_image", image_url: "data:image/png;base64,AAAA", detail: "auto" },
            { type: "input_image", image_url: "https://example.com/a.png" },
          ],
        },
      ],
      text: {
        format: {
          type: "json_schema",
          name: "answer",
          schema: { type: "object", properties: { a: { type: "string" } } },
          strict: true,
        },
      },
    });
    const conversation = toConversation(request);
    expect(conversation.turns[0]?.content).toEqual([
      { type: "text", text: "What is this?" },
      {
        type: "image",
        url: "data:image/png;base64,AAAA",
        param: "input[0].content[1]",
        urlParam: "input[0].content[1].image_url",
      },
      {
        type: "image",
        url: "https://example.com/a.png",
        param: "input[0].content[2]",
        urlParam: "input[0].content[2].image_url",
      },
    ]);
    expect(conversation.output).toEqual({
      type: "json_schema",
      schema: { type: "object", properties: { a: { type: "string" } } },
      param: "text.format.schema",
    });
    expect(
      toConversation(
        parseResponseRequest({ model: "m", input: "x", text: { format: { type: "json_object" } } }),
      ).output,
    ).toEqual({ type: "json_object" });
    const toolImage = parseResponseRequest({
      model: "m",
      input: [
        {
          type: "function_call_output",
          call_id: "c",
          output: [{ type: "input_image", image_url: "data:image/png;base64,AA" }],
        },
      ],
    });
    expect(() => toConversation(toolImage)).toThrow(/Images in function_call_output/);
  });

  it("refuses a conversation with nothing to answer and a tool_choice naming no tool", () => {
    expect(() =>
      toConversation(
        parseResponseRequest({ model: "m", input: [{ role: "system", content: "s" }] }),
      ),
    ).toThrow(/no message/);
    expect(() =>
      toConversation(
        parseResponseRequest({
          model: "m",
          input: "x",
          tool_choice: { type: "function", name: "nope" },
        }),
      ),
    ).toThrow(/not in tools/);
  });

  it("refuses an item_reference left unresolved (404 item_not_found)", () => {
    const request = parseResponseRequest({
      model: "m",
      input: [
        { role: "user", content: "Hi" },
        { type: "item_reference", id: "msg_unknown" },
      ],
    });
    try {
      toConversation(request);
      throw new Error("expected a 404");
    } catch (error) {
      expect(error).toMatchObject({ status: 404, param: "input[1]", code: "item_not_found" });
    }
  });

  it("knows its own signatures only", () => {
    expect(signatureOf(`${SIGNATURE_PREFIX}abc`)).toBe("abc");
    expect(signatureOf("gAAAAB-openai-encrypted")).toBeNull();
    expect(signatureOf(SIGNATURE_PREFIX)).toBeNull();
    expect(signatureOf(null)).toBeNull();
  });
});
