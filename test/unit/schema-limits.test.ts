import { describe, expect, it } from "vitest";
import { parseArguments } from "../../src/claude/session.ts";
import { ProxyError } from "../../src/openai/errors.ts";
import {
  exceedsJsonDepth,
  MAX_JSON_DEPTH,
  MAX_MODEL_LENGTH,
  parseChatCompletionRequest,
} from "../../src/openai/schema.ts";

/** `depth` levels of nested arrays, built as text (too deep to build by recursion). */
function nested(depth: number): unknown {
  return JSON.parse(`${"[".repeat(depth)}${"]".repeat(depth)}`);
}

const hi = { role: "user", content: "hi" };

function rejection(body: unknown): ProxyError {
  try {
    parseChatCompletionRequest(body);
  } catch (error) {
    if (error instanceof ProxyError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

describe("exceedsJsonDepth", () => {
  it("counts levels of arrays and objects", () => {
    expect(exceedsJsonDepth(1, 0)).toBe(false);
    expect(exceedsJsonDepth({}, 1)).toBe(false);
    expect(exceedsJsonDepth({ a: [] }, 1)).toBe(true);
    expect(exceedsJsonDepth({ a: [{ b: 1 }] }, 3)).toBe(false);
    expect(exceedsJsonDepth({ a: [{ b: {} }] }, 3)).toBe(true);
    expect(exceedsJsonDepth(nested(MAX_JSON_DEPTH))).toBe(false);
    expect(exceedsJsonDepth(nested(MAX_JSON_DEPTH + 1))).toBe(true);
  });

  it("copes with any depth (no recursion)", () => {
    expect(exceedsJsonDepth(nested(1_000_000))).toBe(true);
  });
});

describe("request limits that keep JSON.stringify and argv safe", () => {
  const deepSchema = { type: "object", properties: { a: nested(20_000) } };

  it("rejects a response schema nested too deeply with a 400", () => {
    const error = rejection({
      model: "sonnet",
      messages: [hi],
      response_format: { type: "json_schema", json_schema: { name: "x", schema: deepSchema } },
    });
    expect(error.status).toBe(400);
    expect(error.param).toBe("response_format.json_schema.schema");
  });

  it("rejects tool parameters nested too deeply with a 400", () => {
    const error = rejection({
      model: "sonnet",
      messages: [hi],
      tools: [{ type: "function", function: { name: "f", parameters: deepSchema } }],
    });
    expect(error.status).toBe(400);
    expect(error.param).toBe("tools[0].function.parameters");
  });

  it("rejects a model name longer than the limit", () => {
    const model = `claude-${"a".repeat(MAX_MODEL_LENGTH)}`;
    const error = rejection({ model, messages: [hi] });
    expect(error.status).toBe(400);
    expect(error.param).toBe("model");
  });

  it("keeps tool call arguments nested too deeply as raw text", () => {
    const text = `${"[".repeat(20_000)}${"]".repeat(20_000)}`;
    expect(parseArguments(text)).toEqual({ _raw: text });
    expect(parseArguments('{"city":"Paris"}')).toEqual({ city: "Paris" });
  });
});
