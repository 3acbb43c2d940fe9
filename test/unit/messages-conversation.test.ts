/** The Messages surface: request validation (schema.ts) and request → Conversation (conversation.ts). */
import { describe, expect, it } from "vitest";
import { ProxyError } from "../../src/errors.ts";
import {
  effortOf,
  systemOf,
  thinkingDisplay,
  toConversation,
} from "../../src/surfaces/messages/conversation.ts";
import {
  MAX_MESSAGES_TOOLS,
  parseMessagesBody,
  parseMessagesRequest,
} from "../../src/surfaces/messages/schema.ts";

const base = { model: "sonnet", max_tokens: 1024 };

/** The ProxyError `fn` throws. */
function thrown(fn: () => unknown): ProxyError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ProxyError) return error;
    throw error;
  }
  throw new Error("expected a ProxyError");
}

function convert(body: Record<string, unknown>) {
  return toConversation(parseMessagesRequest({ ...base, ...body }));
}

describe("parseMessagesRequest", () => {
  it("accepts the SDK's fields, tolerating cache_control, metadata, sampling and unknown fields", () => {
    const request = parseMessagesRequest({
      ...base,
      system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }],
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "Hi", cache_control: { type: "ephemeral" }, citations: null },
          ],
        },
      ],
      metadata: { user_id: "u1" },
      temperature: 0.2,
      top_p: 0.9,
      top_k: 5,
      service_tier: "auto",
      stop_sequences: [],
      container: null,
      context_management: { edits: [] },
      stream: true,
    });
    expect(request.stream).toBe(true);
    expect(request.messages).toHaveLength(1);
  });

  it("requires model, max_tokens >= 1 and messages, naming the field", () => {
    expect(
      thrown(() => parseMessagesRequest({ messages: [{ role: "user", content: "x" }] })).message,
    ).toMatch(/'model'/);
    const noMax = thrown(() =>
      parseMessagesRequest({ model: "sonnet", messages: [{ role: "user", content: "x" }] }),
    );
    expect(noMax.status).toBe(400);
    expect(noMax.message).toMatch(/'max_tokens'/);
    expect(
      thrown(() => parseMessagesRequest({ ...base, max_tokens: 0, messages: [] })).message,
    ).toMatch(/max_tokens/);
    expect(thrown(() => parseMessagesRequest({ ...base, messages: [] })).message).toMatch(
      /'messages'/,
    );
    const role = thrown(() =>
      parseMessagesRequest({ ...base, messages: [{ role: "tool", content: "x" }] }),
    );
    expect(role.message).toMatch(/'messages\[0\]\.role'/);
  });

  it("names a bad block field by its path", () => {
    const error = thrown(() =>
      parseMessagesRequest({
        ...base,
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "a" },
              { type: "text", text: 3 },
            ],
          },
        ],
      }),
    );
    expect(error.status).toBe(400);
    expect(error.type).toBe("invalid_request_error");
    expect(error.message).toMatch(/'messages\[0\]\.content\[1\]\.text'/);
  });

  it("refuses documents, search results and server blocks with a clear 400 naming the type", () => {
    for (const type of ["document", "search_result", "server_tool_use", "web_search_tool_result"]) {
      const error = thrown(() =>
        parseMessagesRequest({
          ...base,
          messages: [{ role: "user", content: [{ type, source: {} }] }],
        }),
      );
      expect(error.status).toBe(400);
      expect(error.message).toContain(`'${type}'`);
      expect(error.message).toContain("messages[0].content[0]");
    }
    const file = thrown(() =>
      parseMessagesRequest({
        ...base,
        messages: [
          { role: "user", content: [{ type: "image", source: { type: "file", file_id: "f" } }] },
        ],
      }),
    );
    expect(file.message).toMatch(/Files API/);
    const inner = thrown(() =>
      parseMessagesRequest({
        ...base,
        messages: [
          {
            role: "user",
            content: [{ type: "tool_result", tool_use_id: "t", content: [{ type: "document" }] }],
          },
        ],
      }),
    );
    expect(inner.message).toMatch(/tool_result content of type 'document'/);
  });

  it("refuses server and built-in tools, naming them", () => {
    for (const tool of [
      { type: "bash_20250124", name: "bash" },
      { type: "web_search_20250305", name: "web_search", max_uses: 3 },
      { type: "text_editor_20250728", name: "str_replace_based_edit_tool" },
      { type: "computer_20250124", name: "computer", display_width_px: 1 },
    ]) {
      const error = thrown(() =>
        parseMessagesRequest({
          ...base,
          messages: [{ role: "user", content: "x" }],
          tools: [tool],
        }),
      );
      expect(error.status).toBe(400);
      expect(error.message).toContain(`'${tool.type}'`);
      expect(error.message).toContain(`'${tool.name}'`);
      expect(error.param).toBe("tools[0].type");
    }
  });

  it("accepts custom tools (type absent, null or custom; cache_control tolerated)", () => {
    const request = parseMessagesRequest({
      ...base,
      messages: [{ role: "user", content: "x" }],
      tools: [
        { name: "a", input_schema: { type: "object" } },
        {
          type: "custom",
          name: "b",
          input_schema: { type: "object" },
          cache_control: { type: "ephemeral" },
        },
        { type: null, name: "c", description: "C", input_schema: { type: "object" } },
      ],
    });
    expect(request.tools?.map((t) => t.name)).toEqual(["a", "b", "c"]);
    expect(
      thrown(() =>
        parseMessagesRequest({
          ...base,
          messages: [{ role: "user", content: "x" }],
          tools: [{ name: "bad name", input_schema: {} }],
        }),
      ).message,
    ).toMatch(/tools\[0\]\.name/);
    expect(
      thrown(() =>
        parseMessagesRequest({
          ...base,
          messages: [{ role: "user", content: "x" }],
          tools: [{ name: "a", input_schema: {} }],
          tool_choice: { type: "tool", name: "b" },
        }),
      ).message,
    ).toMatch(/no tool named 'b'/);
  });

  it("passes stop_sequences on to the conversation (the engine applies them)", () => {
    const request = parseMessagesRequest({
      ...base,
      messages: [{ role: "user", content: "x" }],
      stop_sequences: ["\n\n", "END"],
    });
    expect(toConversation(request).stopSequences).toEqual(["\n\n", "END"]);
  });

  it("bounds arrays and the body before validating", () => {
    const many = Array.from({ length: MAX_MESSAGES_TOOLS + 1 }, (_, i) => ({
      name: `t${i}`,
      input_schema: {},
    }));
    expect(
      thrown(() =>
        parseMessagesRequest({ ...base, messages: [{ role: "user", content: "x" }], tools: many }),
      ).code,
    ).toBe("array_above_max_length");
    expect(thrown(() => parseMessagesBody("{")).code).toBe("invalid_json");
    expect(thrown(() => parseMessagesBody(`[${"[],".repeat(300_000)}[]]`)).code).toBe(
      "too_many_values",
    );
  });
});

describe("toConversation", () => {
  it("maps system (string, blocks, role system messages), turns and max_tokens", () => {
    const conversation = convert({
      system: [
        { type: "text", text: "x-anthropic-billing-header: cc_version=2.1.332;" },
        { type: "text", text: "You are terse." },
        { type: "text", text: "Answer in French." },
      ],
      messages: [
        { role: "user", content: "Hello" },
        { role: "assistant", content: [{ type: "text", text: "Bonjour" }] },
        { role: "system", content: "Mind the time." },
        {
          role: "user",
          content: [
            { type: "text", text: "" },
            { type: "text", text: "Again" },
          ],
        },
      ],
    });
    expect(conversation.system).toBe("You are terse.\n\nAnswer in French.\n\nMind the time.");
    expect(conversation.turns).toEqual([
      { role: "user", content: [{ type: "text", text: "Hello" }] },
      { role: "assistant", content: [{ type: "text", text: "Bonjour" }] },
      { role: "user", content: [{ type: "text", text: "Again" }] },
    ]);
    expect(conversation.maxOutputTokens).toBe(1024);
    expect(conversation.tools).toEqual([]);
    expect(conversation.toolChoice).toBe("auto");
    expect(conversation.parallelToolCalls).toBe(true);
    expect(conversation.output).toEqual({ type: "text" });
    expect(conversation.effort).toBeUndefined();
    expect(systemOf({ system: "  ", messages: [] })).toBeNull();
  });

  it("turns base64 images into data URLs and url sources into their URL", () => {
    const conversation = convert({
      messages: [
        {
          role: "user",
          content: [
            {
              type: "image",
              source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" },
            },
            { type: "image", source: { type: "url", url: "https://example.com/a.jpg" } },
            { type: "text", text: "What are these?" },
          ],
        },
      ],
    });
    expect(conversation.turns[0]?.content).toEqual([
      {
        type: "image",
        url: "data:image/png;base64,iVBORw0KGgo=",
        param: "messages[0].content[0]",
        urlParam: "messages[0].content[0].source",
      },
      {
        type: "image",
        url: "https://example.com/a.jpg",
        param: "messages[0].content[1]",
        urlParam: "messages[0].content[1].source.url",
      },
      { type: "text", text: "What are these?" },
    ]);
  });

  it("maps a tool loop: tools, tool_use, tool_result (string, blocks, is_error), thinking; drops redacted thinking", () => {
    const conversation = convert({
      tools: [
        {
          name: "get_weather",
          description: "Weather of a city",
          input_schema: { type: "object", properties: { city: { type: "string" } } },
        },
      ],
      tool_choice: { type: "any", disable_parallel_tool_use: true },
      messages: [
        { role: "user", content: "Weather in Paris and Bern?" },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "Two cities.", signature: "sig" },
            { type: "redacted_thinking", data: "xyz" },
            { type: "text", text: "Checking." },
            { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
            { type: "tool_use", id: "toolu_2", name: "get_weather", input: { city: "Bern" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1", content: "sunny" },
            {
              type: "tool_result",
              tool_use_id: "toolu_2",
              is_error: true,
              content: [
                { type: "text", text: "no data" },
                {
                  type: "image",
                  source: { type: "base64", media_type: "image/gif", data: "R0lG" },
                },
                { type: "text", text: "try later" },
              ],
            },
            { type: "text", text: "Summarise." },
          ],
        },
      ],
    });
    expect(conversation.tools).toEqual([
      {
        name: "get_weather",
        description: "Weather of a city",
        parameters: { type: "object", properties: { city: { type: "string" } } },
      },
    ]);
    expect(conversation.toolChoice).toBe("required");
    expect(conversation.parallelToolCalls).toBe(false);
    expect(conversation.turns[1]?.content).toEqual([
      { type: "thinking", thinking: "Two cities.", signature: "sig" },
      { type: "text", text: "Checking." },
      { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
      { type: "tool_use", id: "toolu_2", name: "get_weather", input: { city: "Bern" } },
    ]);
    expect(conversation.turns[2]?.content).toEqual([
      { type: "tool_result", tool_use_id: "toolu_1", content: "sunny" },
      {
        type: "tool_result",
        tool_use_id: "toolu_2",
        content: "no data\ntry later",
        is_error: true,
      },
      {
        type: "image",
        url: "data:image/gif;base64,R0lG",
        param: "messages[2].content[1].content[1]",
        urlParam: "messages[2].content[1].content[1].source",
      },
      { type: "text", text: "Summarise." },
    ]);
  });

  it("gives an image-only tool_result a text pointing at the moved image", () => {
    const conversation = convert({
      messages: [
        { role: "user", content: "Screenshot?" },
        { role: "assistant", content: [{ type: "tool_use", id: "t", name: "shot", input: {} }] },
        {
          role: "user",
          content: [
            {
              type: "tool_result",
              tool_use_id: "t",
              content: [{ type: "image", source: { type: "url", url: "https://x/y.png" } }],
            },
          ],
        },
      ],
    });
    expect(conversation.turns[2]?.content).toEqual([
      { type: "tool_result", tool_use_id: "t", content: "[an image follows the tool results]" },
      {
        type: "image",
        url: "https://x/y.png",
        param: "messages[2].content[0].content[0]",
        urlParam: "messages[2].content[0].content[0].source.url",
      },
    ]);
  });

  it("maps tool_choice auto, none and tool", () => {
    const tools = [{ name: "f", input_schema: { type: "object" } }];
    const messages = [{ role: "user", content: "x" }];
    expect(convert({ tools, messages, tool_choice: { type: "auto" } }).toolChoice).toBe("auto");
    expect(convert({ tools, messages, tool_choice: { type: "none" } }).toolChoice).toBe("none");
    const named = convert({ tools, messages, tool_choice: { type: "tool", name: "f" } });
    expect(named.toolChoice).toEqual({ name: "f" });
    expect(named.parallelToolCalls).toBe(true);
  });

  it("maps thinking budgets and output_config to the CLI's effort and output format", () => {
    expect(effortOf({ thinking: { type: "enabled", budget_tokens: 1024 } })).toBe("low");
    expect(effortOf({ thinking: { type: "enabled", budget_tokens: 4096 } })).toBe("medium");
    expect(effortOf({ thinking: { type: "enabled", budget_tokens: 16_383 } })).toBe("medium");
    expect(effortOf({ thinking: { type: "enabled", budget_tokens: 16_384 } })).toBe("high");
    expect(effortOf({ thinking: { type: "disabled" } })).toBeUndefined();
    expect(effortOf({ thinking: { type: "adaptive" } })).toBeUndefined();
    expect(
      effortOf({
        thinking: { type: "enabled", budget_tokens: 1024 },
        output_config: { effort: "max" },
      }),
    ).toBe("max");
    const structured = convert({
      messages: [{ role: "user", content: "x" }],
      output_config: { format: { type: "json_schema", schema: { type: "object" } } },
    });
    expect(structured.output).toEqual({ type: "json_schema", schema: { type: "object" } });
  });

  it("shows thinking only when the request enables it", () => {
    expect(thinkingDisplay({})).toBe("hide");
    expect(thinkingDisplay({ thinking: { type: "disabled" } })).toBe("hide");
    expect(thinkingDisplay({ thinking: { type: "enabled", budget_tokens: 2000 } })).toBe("show");
    expect(thinkingDisplay({ thinking: { type: "adaptive" } })).toBe("show");
    expect(thinkingDisplay({ thinking: { type: "adaptive", display: "omitted" } })).toBe("omit");
  });
});
