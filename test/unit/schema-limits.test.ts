import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProxyError } from "../../src/errors.ts";
import {
  countJsonValues,
  exceedsJsonDepth,
  MAX_CONTENT_PARTS,
  MAX_JSON_DEPTH,
  MAX_JSON_VALUES,
  MAX_MESSAGES,
  MAX_MODEL_LENGTH,
  MAX_STOP,
  parseArguments,
} from "../../src/http/json.ts";
import {
  MAX_TOOL_CALLS,
  MAX_TOOLS,
  parseChatCompletionBody,
  parseChatCompletionRequest,
} from "../../src/surfaces/chat/schema.ts";

/** `depth` levels of nested arrays, built as text (too deep to build by recursion). */
function nested(depth: number): unknown {
  return JSON.parse(`${"[".repeat(depth)}${"]".repeat(depth)}`);
}

const hi = { role: "user", content: "hi" };

function rejection(body: unknown): ProxyError {
  try {
    if (typeof body === "string") parseChatCompletionBody(body);
    else parseChatCompletionRequest(body);
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

describe("bounds checked before parsing and validation (issue 9, finding 1)", () => {
  const tool = { type: "function", function: { name: "f" } };
  const call = { id: "c", type: "function", function: { name: "f", arguments: "{}" } };

  it("counts JSON values without parsing, ignoring what is inside strings", () => {
    expect(countJsonValues("1")).toBe(0);
    expect(countJsonValues("[1,2,3]")).toBe(3);
    expect(countJsonValues('{"a":[{},{}]}')).toBe(5);
    expect(countJsonValues(JSON.stringify(["{[,", "\\", '\\"[,']))).toBe(3);
    expect(countJsonValues(`[${"1,".repeat(100)}1]`, 10)).toBe(11);
  });

  it("counts as a character-by-character scan would, for any JSON text", () => {
    const naive = (text: string) => {
      let count = 0;
      let inString = false;
      for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (inString) {
          if (c === "\\") i++;
          else if (c === '"') inString = false;
        } else if (c === '"') inString = true;
        else if (c === "{" || c === "[" || c === ",") count++;
      }
      return count;
    };
    const texts = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v) ?? "null"),
      fc.json(),
      fc.string({ unit: fc.constantFrom('"', "\\", "{", "[", ",", "a", "]") }),
    );
    fc.assert(
      fc.property(texts, (text) => {
        expect(countJsonValues(text, Number.POSITIVE_INFINITY)).toBe(naive(text));
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses 15 million array elements in 30 MB at once, before JSON.parse", () => {
    const body = `{"model":"sonnet","messages":[${"1,".repeat(15_000_000)}1]}`;
    const started = performance.now();
    const error = rejection(body);
    expect(error.status).toBe(400);
    expect(error.code).toBe("too_many_values");
    // Counting 30 MB takes well under a second; parsing and validating it took 52 s to crash.
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it("refuses 2.5 million messages of {role: x} the same way", () => {
    const body = `{"model":"sonnet","messages":[${'{"role":"x"},'.repeat(2_500_000)}{"role":"x"}]}`;
    expect(rejection(body).code).toBe("too_many_values");
  });

  it("caps messages, tools, content parts, tool calls and stop, naming the array", () => {
    const cases: Array<[unknown, string]> = [
      [{ model: "sonnet", messages: Array(MAX_MESSAGES + 1).fill(hi) }, "messages"],
      [{ model: "sonnet", messages: Array(200_000).fill(hi) }, "messages"],
      [{ model: "sonnet", messages: [hi], tools: Array(MAX_TOOLS + 1).fill(tool) }, "tools"],
      [{ model: "sonnet", messages: [hi], tools: Array(3_000).fill(tool) }, "tools"],
      [{ model: "sonnet", messages: [hi], stop: Array(MAX_STOP + 1).fill("x") }, "stop"],
      [
        {
          model: "sonnet",
          messages: [
            hi,
            {
              role: "user",
              content: Array(MAX_CONTENT_PARTS + 1).fill({ type: "text", text: "a" }),
            },
          ],
        },
        "messages[1].content",
      ],
      [
        {
          model: "sonnet",
          messages: [hi, { role: "assistant", tool_calls: Array(MAX_TOOL_CALLS + 1).fill(call) }],
        },
        "messages[1].tool_calls",
      ],
    ];
    for (const [body, param] of cases) {
      const error = rejection(body);
      expect(error.status, param).toBe(400);
      expect(error.code, param).toBe("array_above_max_length");
      expect(error.param).toBe(param);
    }
  });

  it("accepts every array at its cap", () => {
    const request = parseChatCompletionRequest({
      model: "sonnet",
      messages: [
        ...Array(MAX_MESSAGES - 2).fill(hi),
        { role: "assistant", tool_calls: Array(MAX_TOOL_CALLS).fill(call) },
        { role: "user", content: Array(MAX_CONTENT_PARTS).fill({ type: "text", text: "a" }) },
      ],
      tools: Array(MAX_TOOLS).fill(tool),
      stop: Array(MAX_STOP).fill("x"),
    });
    expect(request.messages).toHaveLength(MAX_MESSAGES);
    expect(request.tools).toHaveLength(MAX_TOOLS);
  });

  it("counts tool call arguments (parsed again later) against the same budget", () => {
    const args = `[${"1,".repeat(MAX_JSON_VALUES)}1]`;
    const body = {
      model: "sonnet",
      messages: [
        hi,
        { role: "assistant", tool_calls: [{ ...call, function: { name: "f", arguments: args } }] },
      ],
    };
    const error = rejection(body);
    expect(error.code).toBe("too_many_values");
    expect(error.param).toBe("messages[1].tool_calls[0].function.arguments");
    expect(rejection(JSON.stringify(body)).param).toBe(error.param);
  });

  it("stops validating at the first bad message: one issue, however many bad ones follow", () => {
    const bad = { role: "x" };
    const started = performance.now();
    const error = rejection({ model: "sonnet", messages: Array(MAX_MESSAGES).fill(bad) });
    expect(error.param).toBe("messages[0].role");
    const parts = Array(MAX_CONTENT_PARTS).fill({ type: "nope" });
    const many = Array(MAX_MESSAGES).fill({ role: "user", content: parts });
    expect(rejection({ model: "sonnet", messages: many }).param).toMatch(/^messages\[0\]/);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it("checks that the model is a string before anything else", () => {
    const error = rejection({ model: { toString: 1 }, messages: Array(MAX_MESSAGES + 1).fill(hi) });
    expect(error.param).toBe("model");
    expect(error.code).toBe("invalid_type");
  });

  it("names the element of a bad tool or message as before", () => {
    expect(rejection({ model: "sonnet", messages: [hi, { role: "user", content: 5 }] }).param).toBe(
      "messages[1].content",
    );
    const badTool = { type: "function", function: { name: "bad name!" } };
    expect(rejection({ model: "sonnet", messages: [hi], tools: [tool, badTool] }).param).toBe(
      "tools[1].function.name",
    );
    expect(rejection({ model: "sonnet", messages: [] }).param).toBe("messages");
  });
});
