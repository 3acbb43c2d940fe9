import { describe, expect, it } from "vitest";
import { type ResolvedImage, userTurnLine } from "../../src/claude/session.ts";
import { buildPrompt } from "../../src/engine/prompt.ts";
import { ProxyError } from "../../src/errors.ts";
import { chatTurns, contentText, systemPromptOf } from "../../src/surfaces/chat/conversation.ts";
import {
  type ChatCompletionMessageParam,
  parseChatCompletionRequest,
} from "../../src/surfaces/chat/schema.ts";

/** The transcript prompt of chat messages, with their system prompt. */
function transcript(list: ChatCompletionMessageParam[], resolved?: Map<string, ResolvedImage>) {
  return {
    systemPrompt: systemPromptOf(list),
    ...buildPrompt(chatTurns(list), resolved),
  };
}

/** Messages as the schema parses them from a client body. */
function messages(list: unknown[]): ChatCompletionMessageParam[] {
  return parseChatCompletionRequest({ model: "sonnet", messages: list }).messages;
}

const PNG = "data:image/png;base64,iVBORw0KGgo=";
const images = new Map<string, ResolvedImage>([
  [PNG, { media_type: "image/png", data: "iVBORw0KGgo=" }],
]);

describe("contentText", () => {
  it("joins text and refusal parts with newlines and skips the rest", () => {
    const [assistant] = messages([
      {
        role: "assistant",
        content: [
          { type: "text", text: "first" },
          { type: "refusal", refusal: "I can't" },
          { type: "text", text: "last" },
        ],
      },
    ]);
    expect(contentText(assistant?.content)).toBe("first\nI can't\nlast");
    const [user] = messages([
      {
        role: "user",
        content: [
          { type: "image_url", image_url: { url: PNG } },
          { type: "text", text: "what?" },
        ],
      },
    ]);
    expect(contentText(user?.content)).toBe("what?");
    expect(contentText(null)).toBe("");
    expect(contentText(undefined)).toBe("");
  });
});

describe("systemPromptOf", () => {
  it("joins system and developer messages in order, or gives null", () => {
    const list = messages([
      { role: "system", content: "Be brief." },
      { role: "user", content: "hi" },
      { role: "developer", content: [{ type: "text", text: "Use British spelling." }] },
    ]);
    expect(systemPromptOf(list)).toBe("Be brief.\n\nUse British spelling.");
    expect(systemPromptOf(messages([{ role: "user", content: "hi" }]))).toBeNull();
  });
});

describe("buildPrompt", () => {
  it("sends a lone user message as it is, images included", () => {
    const plan = transcript(
      messages([
        { role: "system", content: "Be brief." },
        {
          role: "user",
          content: [
            { type: "text", text: "What is in this picture?" },
            { type: "image_url", image_url: { url: PNG } },
          ],
        },
      ]),
      images,
    );
    expect(plan.systemPrompt).toBe("Be brief.");
    expect(plan.turn).toEqual([
      { type: "text", text: "What is in this picture?" },
      { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
    ]);
  });

  it("puts earlier turns in a delimited transcript before the final message", () => {
    const plan = transcript(
      messages([
        { role: "system", content: "sys" },
        { role: "user", content: "What's the weather in Paris?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"Paris"}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "18C, sunny" },
        { role: "assistant", content: "It is 18C and sunny." },
        { role: "user", content: "And tomorrow?" },
      ]),
    );
    expect(plan.systemPrompt).toBe("sys");
    expect(plan.turn).toHaveLength(1);
    const [head] = plan.turn;
    if (head?.type !== "text") throw new Error("no text block");
    const text = head.text;
    expect(text.startsWith("<conversation_history>\n")).toBe(true);
    expect(text.endsWith("</conversation_history>\n\nAnd tomorrow?")).toBe(true);
    const order = [
      '<turn role="user">\nWhat\'s the weather in Paris?\n</turn>',
      '<tool_call id="call_1" name="get_weather">{"city":"Paris"}</tool_call>',
      '<turn role="tool" tool_call_id="call_1">\n18C, sunny\n</turn>',
      '<turn role="assistant">\nIt is 18C and sunny.\n</turn>',
    ].map((s) => text.indexOf(s));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // the system prompt goes to its file, not into the transcript
    expect(text).not.toContain("sys");
  });

  it("notes images of earlier turns and keeps the final turn's images as blocks", () => {
    const plan = transcript(
      messages([
        {
          role: "user",
          content: [
            { type: "image_url", image_url: { url: PNG } },
            { type: "text", text: "A" },
          ],
        },
        { role: "assistant", content: "A cat." },
        { role: "user", content: [{ type: "image_url", image_url: { url: PNG } }] },
      ]),
      images,
    );
    const [head, image] = plan.turn;
    expect(head?.type === "text" && head.text).toContain(
      "[1 image(s) attached to this turn are not repeated]",
    );
    expect(image).toEqual({
      type: "image",
      source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" },
    });
  });

  it("asks to continue when the conversation ends with the assistant", () => {
    const plan = transcript(
      messages([
        { role: "user", content: "Write a haiku" },
        { role: "assistant", content: "Autumn moonlight" },
      ]),
    );
    const [head] = plan.turn;
    expect(head?.type === "text" && head.text).toMatch(
      /<turn role="assistant">\nAutumn moonlight\n<\/turn>\nContinue the conversation\.$/,
    );
  });

  it("rejects a conversation of system messages only", () => {
    const run = () => transcript(messages([{ role: "system", content: "sys" }]));
    expect(run).toThrow(ProxyError);
    try {
      run();
    } catch (error) {
      expect((error as ProxyError).status).toBe(400);
      expect((error as ProxyError).param).toBe("messages");
    }
  });
});

describe("userTurnLine", () => {
  it("is one stream-json user line ending in a newline", () => {
    const line = userTurnLine([{ type: "text", text: "hi\nthere" }]);
    expect(line.endsWith("\n")).toBe(true);
    expect(line.slice(0, -1)).not.toContain("\n");
    expect(JSON.parse(line)).toEqual({
      type: "user",
      message: { role: "user", content: [{ type: "text", text: "hi\nthere" }] },
      parent_tool_use_id: null,
      session_id: "",
    });
  });
});
