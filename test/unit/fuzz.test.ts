/**
 * Property-based fuzzing of `POST /v1/chat/completions` with fast-check: random JSON, requests
 * with random subsets of fields holding plausible or wrong values, valid requests, huge strings,
 * deep nesting, odd unicode and text that is not JSON, sent in-process to `createApp`.
 *
 * The CLI is replaced by a fake child that replays `test/fixtures/cli/text.jsonl`, which was
 * recorded from the real claude CLI (@anthropic-ai/claude-code 2.1.197, by
 * test/fixtures/cli/record.ts): stdout from the file, exit code 0 once stdin is closed.
 *
 * Properties: never a 5xx and never a crashed handler; every non-2xx body is OpenAI's error shape;
 * every 200 is a `chat.completion` (or, for `stream: true`, SSE chunks ending in `data: [DONE]`);
 * argv stays small and free of NUL bytes; stdin is stream-json lines; afterwards no fake CLI
 * process is left and the temp root holds no run directory.
 *
 * Reproduce a failure with FUZZ_SEED=<seed printed by fast-check>; FUZZ_RUNS sets the run count.
 */
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import type { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { parseCommand } from "../../src/config.ts";
import type { AppDeps } from "../../src/deps.ts";
import { ProcessPool } from "../../src/engine/pool.ts";
import { ToolRuns } from "../../src/engine/registry.ts";
import { MAX_CONTENT_PARTS, MAX_JSON_VALUES, MAX_MESSAGES, MAX_STOP } from "../../src/http/json.ts";
import { Lifecycle } from "../../src/lifecycle.ts";
import { ConcurrencyLimiter } from "../../src/limiter.ts";
import { RateLimits } from "../../src/limits.ts";
import { createLogger } from "../../src/log.ts";
import { createMetrics } from "../../src/metrics.ts";
import { nodeRuntime } from "../../src/runtime/node.ts";
import type { ExitStatus, Spawn, Subprocess } from "../../src/runtime/types.ts";
import { MAX_TOOL_CALLS, MAX_TOOLS } from "../../src/surfaces/chat/schema.ts";
import { UsageStore } from "../../src/usage.ts";

const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/** A request that takes longer than this counts as hung, ms. */
const REQUEST_DEADLINE_MS = 15_000;
/** Windows caps a whole command line at ~32 K characters (DESIGN.md). */
const MAX_ARGV_CHARS = 32_000;

/** The real CLI's stdout for a plain text answer ("Hello world!"), recorded from 2.1.197. */
const RECORDED_STDOUT = readFileSync(
  fileURLToPath(new URL("../fixtures/cli/text.jsonl", import.meta.url)),
);
/** stdout arrives in chunks of these sizes, in turn, so that lines are split at odd places. */
const CHUNK_SIZES = [1, 17, 300, 4096, 2];

/** What the fake CLI saw, for the argv and stdin properties. */
interface FakeCli {
  spawn: Spawn;
  /** Children that have not exited. */
  live: Set<Subprocess>;
  spawned: number;
  /** Problems found in what the proxy passed to a child. */
  problems: string[];
}

function fakeCli(): FakeCli {
  const cli: FakeCli = { spawn: undefined as never, live: new Set(), spawned: 0, problems: [] };
  let nextPid = 100_000;
  cli.spawn = (command, args, options) => {
    // Node's spawn throws synchronously on NUL bytes in argv or env (ERR_INVALID_ARG_VALUE).
    for (const arg of [command, ...args, ...Object.values(options.env)]) {
      if (arg.includes("\0")) throw new TypeError("The argument contains a null byte");
    }
    const argvChars = args.reduce((sum, arg) => sum + arg.length + 1, command.length);
    if (argvChars > MAX_ARGV_CHARS) cli.problems.push(`argv of ${argvChars} characters`);
    cli.spawned++;
    let resolveExit!: (status: ExitStatus) => void;
    const exited = new Promise<ExitStatus>((resolve) => {
      resolveExit = resolve;
    });
    let stdoutController!: ReadableStreamDefaultController<Uint8Array>;
    let stderrController!: ReadableStreamDefaultController<Uint8Array>;
    let ended = false;
    const end = (status: ExitStatus) => {
      if (ended) return;
      ended = true;
      for (const controller of [stdoutController, stderrController]) {
        try {
          controller.close();
        } catch {
          // already cancelled by the reader
        }
      }
      cli.live.delete(child);
      resolveExit(status);
    };
    const stdout = new ReadableStream<Uint8Array>({
      start(controller) {
        stdoutController = controller;
        let at = 0;
        for (let i = 0; at < RECORDED_STDOUT.length; i++) {
          const size = CHUNK_SIZES[i % CHUNK_SIZES.length] ?? 1;
          controller.enqueue(RECORDED_STDOUT.subarray(at, at + size));
          at += size;
        }
      },
    });
    const stderr = new ReadableStream<Uint8Array>({
      start(controller) {
        stderrController = controller;
      },
    });
    const stdinChunks: Uint8Array[] = [];
    const stdin = new WritableStream<Uint8Array>({
      write(chunk) {
        stdinChunks.push(chunk);
      },
      close() {
        const text = new TextDecoder().decode(Buffer.concat(stdinChunks));
        const lines = text.split("\n");
        if (lines.pop() !== "" || lines.length === 0) cli.problems.push("stdin is not whole lines");
        for (const line of lines) {
          try {
            const turn = JSON.parse(line) as { type?: unknown };
            // The last line is the user turn; an `assistant` line (replayed tool calls) may
            // come before it (session.ts).
            const last = line === lines.at(-1);
            if (last ? turn.type !== "user" : turn.type !== "assistant")
              cli.problems.push("stdin lines are not [assistant,] user");
          } catch {
            cli.problems.push("stdin line is not JSON");
          }
        }
        // The real CLI exits (code 0) once its stdin is closed after the result.
        queueMicrotask(() => end({ exitCode: 0, signal: null }));
      },
      abort() {
        end({ exitCode: 0, signal: null });
      },
    });
    const child: Subprocess = {
      pid: nextPid++,
      stdin,
      stdout,
      stderr,
      exited,
      kill(signal) {
        end({ exitCode: null, signal });
      },
    };
    cli.live.add(child);
    return child;
  };
  return cli;
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** A 1x1 PNG. */
const PNG_DATA_URL =
  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/** Replaced in the JSON text by a deeply nested value (built as text: too deep to stringify). */
const DEEP_MARKER = "\u0001deep\u0001";
/** Replaced in the JSON text by a string holding deeply nested JSON (tool call arguments). */
const DEEP_STRING_MARKER = "\u0001deep-string\u0001";
/** Replaced in the JSON text by the key `__proto__`. */
const PROTO_MARKER = "\u0001proto\u0001";

const oddText = fc.constantFrom(
  "\ud800",
  "\udfff",
  "a\u0000b",
  "\u202e\u202d",
  "\ufeff",
  "👩‍👩‍👧‍👦",
  "\u2028\u2029",
  "\r\n\r\n",
  "𝕏𝔸",
  "\u0301\u0301",
  "\\",
  '"}]',
  "</s>",
  "null",
  "\t",
);

const hugeText = fc
  .tuple(
    fc.constantFrom("x", "é", "😀", "\ud800", "\n", "ab\u0000", '"'),
    fc.integer({ min: 1, max: 200_000 }),
  )
  .map(([unit, n]) => unit.repeat(n));

/** Strings: ordinary, any code unit, odd unicode, sometimes huge. */
const text = fc.oneof(
  { weight: 30, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 15, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 15, arbitrary: oddText },
  { weight: 1, arbitrary: hugeText },
  { weight: 1, arbitrary: fc.constant(DEEP_MARKER) },
);

const anyJson = fc.oneof(
  { weight: 10, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constant(DEEP_MARKER) },
);

/** A plausible value most of the time, else any JSON value (mostly the wrong type). */
function field<T>(plausible: fc.Arbitrary<T>): fc.Arbitrary<T | unknown> {
  return fc.oneof({ weight: 4, arbitrary: plausible }, { weight: 1, arbitrary: anyJson });
}

const modelName = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.constantFrom(
      "sonnet",
      "opus",
      "haiku",
      "Sonnet",
      "claude-sonnet",
      "gpt-4o",
      "gpt-3.5-turbo",
      "claude-sonnet-4-5-20250929",
      "anthropic/claude-3-5-haiku-latest",
      "claude-code/opus",
      "no-such-model",
      "",
      " sonnet ",
    ),
  },
  { weight: 4, arbitrary: text },
  {
    weight: 1,
    // Looks like a full Claude id, and the model goes on argv.
    arbitrary: fc.integer({ min: 200, max: 150_000 }).map((n) => `claude-${"a".repeat(n)}`),
  },
);

const textPart = fc.record({ type: fc.constant("text"), text: field(text) });
const imagePart = fc.record(
  {
    type: fc.constant("image_url"),
    image_url: field(
      fc.record(
        {
          url: fc.constantFrom(
            PNG_DATA_URL,
            "data:image/png;base64,!!!not base64",
            "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
            "data:text/plain;base64,aGVsbG8=",
            "data:,",
            "https://example.invalid/cat.png",
            "ftp://example.invalid/cat.png",
            "",
          ),
          detail: fc.constantFrom("auto", "low", "high", "odd"),
        },
        { requiredKeys: ["url"] },
      ),
    ),
  },
  { requiredKeys: ["type"] },
);
const otherPart = fc.record({
  type: fc.constantFrom("input_audio", "file", "refusal", "video", ""),
  refusal: field(text),
});
const userContent = fc.oneof(
  text,
  fc.array(fc.oneof({ weight: 4, arbitrary: textPart }, imagePart, otherPart), { maxLength: 4 }),
);

const toolCallId = fc.oneof(fc.constantFrom("call_1", "call_2", "toolu_01"), text);
const toolCall = fc.record(
  {
    id: field(toolCallId),
    type: field(fc.constant("function")),
    function: field(
      fc.record({
        name: field(fc.constantFrom("get_weather", "search", "a-b_c", "bad name!")),
        arguments: field(
          fc.oneof(
            fc.constant('{"city":"Paris"}'),
            fc.constant(""),
            fc.constant(DEEP_STRING_MARKER),
            text,
          ),
        ),
      }),
    ),
  },
  { requiredKeys: ["id", "function"] },
);

const message = fc.oneof(
  fc.record(
    {
      role: fc.constantFrom("system", "developer"),
      content: field(fc.oneof(text, fc.array(textPart, { maxLength: 3 }))),
      name: field(text),
    },
    { requiredKeys: ["role", "content"] },
  ),
  { weight: 4, arbitrary: fc.record({ role: fc.constant("user"), content: field(userContent) }) },
  fc.record(
    {
      role: fc.constant("assistant"),
      content: field(
        fc.oneof(
          text,
          fc.constant(null),
          fc.array(fc.oneof(textPart, otherPart), { maxLength: 3 }),
        ),
      ),
      tool_calls: field(fc.array(toolCall, { maxLength: 3 })),
      function_call: field(fc.record({ name: text, arguments: text })),
    },
    { requiredKeys: ["role"] },
  ),
  fc.record({
    role: fc.constant("tool"),
    content: field(fc.oneof(text, fc.array(textPart, { maxLength: 2 }))),
    tool_call_id: field(toolCallId),
  }),
  fc.record({
    role: fc.constant("function"),
    content: field(fc.oneof(text, fc.constant(null))),
    name: field(text),
  }),
  fc.record({ role: field(fc.constantFrom("bot", "", "USER")), content: field(text) }),
);

const jsonSchema = fc.oneof(
  fc.constant({ type: "object", properties: { answer: { type: "string" } }, required: ["answer"] }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
  fc.constant(DEEP_MARKER),
);

const tool = fc.record(
  {
    type: field(fc.constant("function")),
    function: field(
      fc.record(
        {
          name: field(
            fc.constantFrom(
              "get_weather",
              "search",
              "a".repeat(64),
              "a".repeat(65),
              "bad name!",
              "",
            ),
          ),
          description: field(text),
          parameters: field(jsonSchema),
          strict: field(fc.boolean()),
        },
        { requiredKeys: ["name"] },
      ),
    ),
  },
  { requiredKeys: ["type", "function"] },
);

const toolChoice = fc.oneof(
  fc.constantFrom("none", "auto", "required", "any"),
  fc.record({
    type: field(fc.constant("function")),
    function: field(fc.record({ name: field(fc.constantFrom("get_weather", "missing")) })),
  }),
);

const responseFormat = fc.oneof(
  fc.record({ type: fc.constantFrom("text", "json_object", "xml") }),
  fc.record({
    type: fc.constant("json_schema"),
    json_schema: field(
      fc.record(
        {
          name: field(text),
          description: field(text),
          schema: field(jsonSchema),
          strict: field(fc.boolean()),
        },
        { requiredKeys: ["name"] },
      ),
    ),
  }),
);

const smallInt = fc.oneof(fc.integer({ min: -3, max: 5 }), fc.integer(), fc.double());

/** Every field of a chat completion request (plus unknown ones), each present or not. */
const requestFields = {
  model: field(modelName),
  messages: field(fc.array(message, { minLength: 0, maxLength: 6 })),
  stream: field(fc.boolean()),
  stream_options: field(fc.record({ include_usage: field(fc.boolean()) })),
  n: field(smallInt),
  logprobs: field(fc.boolean()),
  top_logprobs: field(smallInt),
  reasoning_effort: field(
    fc.constantFrom("none", "minimal", "low", "medium", "high", "xhigh", "max", ""),
  ),
  max_tokens: field(fc.oneof(smallInt, fc.integer({ min: 1, max: 200_000 }))),
  max_completion_tokens: field(fc.oneof(smallInt, fc.integer({ min: 1, max: 200_000 }))),
  temperature: field(fc.double({ min: -1, max: 3 })),
  top_p: field(fc.double({ min: 0, max: 1 })),
  presence_penalty: field(fc.double()),
  frequency_penalty: field(fc.double()),
  seed: field(fc.integer()),
  stop: field(fc.oneof(text, fc.array(text, { maxLength: 4 }))),
  user: field(text),
  tools: field(fc.array(tool, { maxLength: 3 })),
  tool_choice: field(toolChoice),
  parallel_tool_calls: field(fc.boolean()),
  response_format: field(responseFormat),
  metadata: anyJson,
  // Becomes "__proto__" in the JSON text (an object literal key would set the prototype).
  [PROTO_MARKER]: anyJson,
  constructor: anyJson,
};

/** Requests with a random subset of the fields. */
const partialRequest = fc.record(requestFields, { requiredKeys: [] });

const validText = fc.oneof(fc.string({ maxLength: 30 }), oddText);
const validTextPart = fc.record({ type: fc.constant("text"), text: validText });
const validUserContent = fc.oneof(
  { weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: 30 }) },
  { weight: 3, arbitrary: oddText },
  { weight: 1, arbitrary: hugeText },
  {
    weight: 3,
    arbitrary: fc.array(
      fc.oneof(validTextPart, fc.constant({ type: "image_url", image_url: { url: PNG_DATA_URL } })),
      { minLength: 1, maxLength: 3 },
    ),
  },
);
/** A past tool call and its result, as clients replay them. */
const toolExchange = fc
  .tuple(
    fc.constantFrom("call_1", "call_2", "toolu_01"),
    fc.constantFrom("get_weather", "search"),
    fc.constantFrom('{"q":"x"}', "{}", "", "not json", "[1,2]", DEEP_STRING_MARKER),
    validText,
  )
  .map(([id, name, args, result]) => [
    {
      role: "assistant",
      content: null,
      tool_calls: [{ id, type: "function", function: { name, arguments: args } }],
    },
    { role: "tool", tool_call_id: id, content: result },
  ]);
const validHistory = fc
  .array(
    fc.oneof(
      fc
        .record({
          role: fc.constantFrom("system", "developer", "user", "assistant"),
          content: validText,
        })
        .map((m) => [m]),
      toolExchange,
    ),
    { maxLength: 4 },
  )
  .map((groups) => groups.flat());
const validTool = fc.record({
  type: fc.constant("function"),
  function: fc.record({
    name: fc.constantFrom("get_weather", "search"),
    parameters: fc.oneof(
      {
        weight: 8,
        arbitrary: fc.constant({ type: "object", properties: { q: { type: "string" } } }),
      },
      { weight: 1, arbitrary: fc.constant(DEEP_MARKER) },
    ),
  }),
});

/** Requests that are mostly answered 200 (deep schemas excepted). */
const validRequest = fc.record(
  {
    model: fc.oneof(
      {
        weight: 20,
        arbitrary: fc.constantFrom("sonnet", "opus", "haiku", "gpt-4o", "claude-3-5-haiku-latest"),
      },
      { weight: 1, arbitrary: fc.constantFrom("gpt-4o-2024-08-06", "llama-3", "o1-pro") },
      // Looks like a full Claude id, and the model goes on argv.
      {
        weight: 1,
        arbitrary: fc.integer({ min: 200, max: 150_000 }).map((n) => `claude-${"a".repeat(n)}`),
      },
    ),
    messages: fc
      .tuple(
        validHistory,
        fc.oneof(
          fc.record({ role: fc.constant("user"), content: validUserContent }).map((m) => [m]),
          toolExchange,
        ),
      )
      .map(([history, last]) => [...history, ...last]),
    stream: fc.boolean(),
    stream_options: fc.record({ include_usage: fc.boolean() }),
    max_tokens: fc.integer({ min: 1, max: 64_000 }),
    temperature: fc.double({ min: 0, max: 2, noNaN: true }),
    reasoning_effort: fc.constantFrom("low", "medium", "high"),
    tools: fc.array(validTool, { maxLength: 2 }),
    tool_choice: fc.constantFrom("auto", "none", "required"),
    response_format: fc.oneof(
      fc.constant({ type: "text" }),
      fc.constant({ type: "json_object" }),
      fc.constant({
        type: "json_schema",
        json_schema: { name: "answer", schema: { type: "object" } },
      }),
      fc.constant({ type: "json_schema", json_schema: { name: "deep", schema: DEEP_MARKER } }),
      fc.constant({ type: "json_object" }),
      fc.constant({ type: "text" }),
    ),
  },
  { requiredKeys: ["model", "messages"] },
);

/** How deep a {@link DEEP_MARKER} is nested, and with which brackets. */
const deepValue = fc
  .tuple(fc.integer({ min: 1, max: 30_000 }), fc.constantFrom("array", "object"))
  .map(([depth, kind]) =>
    kind === "array"
      ? `${"[".repeat(depth)}1${"]".repeat(depth)}`
      : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`,
  );

/** Serialises a body, putting a deeply nested value where a marker is. */
function toBodyText(value: unknown, deep: string): string {
  return JSON.stringify(value)
    .replaceAll(JSON.stringify(DEEP_MARKER), deep)
    .replaceAll(JSON.stringify(DEEP_STRING_MARKER), JSON.stringify(deep))
    .replaceAll(JSON.stringify(PROTO_MARKER), '"__proto__"');
}

/** One request as sent: the body text, its content type, and the parsed value when it is JSON. */
interface Sent {
  kind: string;
  /** Text, or raw bytes (not always UTF-8). */
  body: string | Uint8Array;
  contentType: string | null;
  value: unknown;
}

const jsonBody = (kind: string, value: fc.Arbitrary<unknown>): fc.Arbitrary<Sent> =>
  fc
    .tuple(
      value,
      deepValue,
      fc.constantFrom("application/json", "application/json", "text/plain", null),
    )
    .map(([v, deep, contentType]) => ({
      kind,
      body: toBodyText(v, deep),
      contentType,
      value: v,
    }));

const notJson: fc.Arbitrary<Sent> = fc
  .oneof(
    fc.string({ unit: "binary", maxLength: 60 }),
    fc.constantFrom(
      "",
      " ",
      "{",
      "}",
      "nul",
      "[1,]",
      "{'model':'sonnet'}",
      '{"model":"sonnet",}',
      "NaN",
      "\ufeff{}",
      '{"a":1}}',
      '"\\ud800',
      "\u0000",
    ),
    validRequest.map((v) => {
      const t = JSON.stringify(v);
      return t.slice(0, Math.max(0, t.length - 1));
    }),
  )
  .map((body) => ({ kind: "not-json", body, contentType: "application/json", value: undefined }));

/** Raw bytes: invalid UTF-8, a UTF-16 byte order mark, JSON with a stray byte. */
const rawBytes: fc.Arbitrary<Sent> = fc
  .oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.constant(new Uint8Array([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00])),
    fc.constant(
      new Uint8Array([
        ...new TextEncoder().encode('{"model":"sonnet","messages":[{"role":"user","content":"'),
        0xc3,
        0x28,
        0xff,
        ...new TextEncoder().encode('"}]}'),
      ]),
    ),
  )
  .map((body) => ({ kind: "bytes", body, contentType: "application/json", value: undefined }));

const hi = '{"role":"user","content":"hi"}';

/**
 * Bodies at or just over the bounds checked before parsing and validation (issue 9): the
 * longest arrays allowed, one more, and a body of about {@link MAX_JSON_VALUES} values. At the
 * cap a body is served (or refused for its content), over it a clean 400.
 */
const atBounds: fc.Arbitrary<Sent> = fc
  .tuple(
    fc.constantFrom("messages", "badMessages", "tools", "parts", "toolCalls", "stop", "values"),
    fc.integer({ min: -2, max: 2 }),
    fc.boolean(),
  )
  .map(([which, offset, stream]) => {
    const repeat = (item: string, n: number) => Array(Math.max(0, n)).fill(item).join(",");
    const part = '{"type":"text","text":"a"}';
    const call = '{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}';
    const tool = '{"type":"function","function":{"name":"f"}}';
    const head = `"model":"sonnet","stream":${stream}`;
    const bodies: Record<string, string> = {
      messages: `{${head},"messages":[${repeat(hi, MAX_MESSAGES + offset)}]}`,
      badMessages: `{${head},"messages":[${repeat('{"role":"x"}', MAX_MESSAGES + offset)}]}`,
      tools: `{${head},"messages":[${hi}],"tools":[${repeat(tool, MAX_TOOLS + offset)}]}`,
      parts: `{${head},"messages":[{"role":"user","content":[${repeat(part, MAX_CONTENT_PARTS + offset)}]}]}`,
      toolCalls: `{${head},"messages":[${hi},{"role":"assistant","tool_calls":[${repeat(call, MAX_TOOL_CALLS + offset)}]},{"role":"tool","tool_call_id":"c","content":"ok"}]}`,
      stop: `{${head},"messages":[${hi}],"stop":[${repeat('"x"', MAX_STOP + offset)}]}`,
      // The body's own values (the {, the [ and the commas around messages) come on top.
      values: `{${head},"messages":[${hi}],"metadata":[${repeat("1", MAX_JSON_VALUES - 10 + offset * 5)}]}`,
    };
    const body = bodies[which] ?? "";
    return {
      kind: `bounds-${which}${offset > 0 ? "-over" : ""}`,
      body,
      contentType: "application/json",
      value: JSON.parse(body),
    };
  });

const sent: fc.Arbitrary<Sent> = fc.oneof(
  { weight: 1, arbitrary: atBounds },
  { weight: 2, arbitrary: jsonBody("any-json", anyJson) },
  { weight: 6, arbitrary: jsonBody("partial", partialRequest) },
  { weight: 5, arbitrary: jsonBody("valid", validRequest) },
  { weight: 2, arbitrary: notJson },
  { weight: 1, arbitrary: rawBytes },
);

const nestedObject = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
const nestedArray = (depth: number) => `${"[".repeat(depth)}1${"]".repeat(depth)}`;
const deepCall = (depth: number) =>
  `{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":${JSON.stringify(nestedArray(depth))}}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}`;

/** Bodies that once broke the proxy (run first, every time), and a few close relatives. */
const REGRESSIONS: Sent[] = Object.entries({
  // JSON.stringify of the schema overflowed the stack in jsonSchemaFor: 500.
  deepResponseSchema: `{"model":"sonnet","messages":[${hi}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":${nestedObject(20_000)}}}}`,
  deepToolParameters: `{"model":"sonnet","messages":[${hi}],"tools":[{"type":"function","function":{"name":"f","parameters":${nestedObject(20_000)}}}]}`,
  // The session file line overflowed the stack on deep tool call arguments: 500.
  deepToolArguments: `{"model":"sonnet","tools":[{"type":"function","function":{"name":"f"}}],"messages":[${hi},${deepCall(20_000)},${hi}]}`,
  deepToolArgumentsLast: `{"model":"sonnet","tools":[{"type":"function","function":{"name":"f"}}],"messages":[${hi},${deepCall(20_000)}]}`,
  // A model name that looks like a Claude id went on argv: E2BIG, 503.
  hugeModel: `{"model":"claude-${"a".repeat(200_000)}","messages":[${hi}]}`,
  deepUnknownFields: `{"model":"sonnet","messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":${nestedArray(100_000)}}]}],"metadata":${nestedObject(100_000)}}`,
  protoKey: `{"__proto__":{"stream":true,"n":5},"model":"sonnet","messages":[${hi}]}`,
  manyMessages: `{"model":"sonnet","stream":true,"messages":[${Array(20_000).fill(hi).join(",")}]}`,
  loneSurrogate: `{"model":"sonnet","messages":[{"role":"user","content":"\\ud800"}],"stream":true}`,
  onlyToolMessage: `{"model":"sonnet","messages":[{"role":"tool","tool_call_id":"x","content":"r"}]}`,
  // Issue 9: 15 million elements in 30 MB crashed Node (zod recorded an issue per element);
  // 2.5 million {"role":"x"} held the event loop for 16 s.
  fifteenMillionElements: `{"model":"sonnet","messages":[${"1,".repeat(15_000_000)}1]}`,
  manyBadMessages: `{"model":"sonnet","messages":[${'{"role":"x"},'.repeat(2_500_000)}{"role":"x"}]}`,
  manyTools: `{"model":"sonnet","messages":[${hi}],"tools":[${Array(3_000).fill('{"type":"function","function":{"name":"f"}}').join(",")}]}`,
  manyMessages200k: `{"model":"sonnet","messages":[${Array(200_000).fill(hi).join(",")}]}`,
  modelConstructor: `{"model":"constructor","messages":[${hi}]}`,
  modelProto: `{"model":"__proto__","messages":[${hi}]}`,
}).map(([kind, body]) => ({
  kind,
  body,
  contentType: "application/json",
  // Parsing the largest ones here would cost what the proxy refuses to spend (none streams).
  value: body.length > 1_000_000 ? {} : JSON.parse(body),
}));

// ---------------------------------------------------------------------------------------------
// Checks

/** The start of a body, for messages. */
function preview(request: Sent): string {
  const text =
    typeof request.body === "string" ? request.body : `bytes ${[...request.body.slice(0, 100)]}`;
  return `${JSON.stringify(text.slice(0, 300))}${text.length > 300 ? `... ${text.length} chars` : ""}`;
}

function fail(message: string, sentBody: Sent, status: number, text: string): never {
  throw new Error(
    `${message} (status ${status}, ${sentBody.kind} body ${preview(sentBody)}): ${text.slice(0, 500)}`,
  );
}

function isErrorBody(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const error = (value as { error?: unknown }).error;
  if (typeof error !== "object" || error === null) return false;
  const e = error as Record<string, unknown>;
  return (
    typeof e.message === "string" &&
    typeof e.type === "string" &&
    (typeof e.param === "string" || e.param === null) &&
    (typeof e.code === "string" || e.code === null)
  );
}

function wantsStream(value: unknown): boolean {
  return (
    typeof value === "object" && value !== null && (value as { stream?: unknown }).stream === true
  );
}

async function checkResponse(response: Response, request: Sent): Promise<void> {
  const text = await response.text();
  const { status } = response;
  if (status >= 500) fail("5xx answer", request, status, text);
  if (status !== 200) {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      fail("error body is not JSON", request, status, text);
    }
    if (!isErrorBody(body)) fail("error body is not OpenAI's error shape", request, status, text);
    return;
  }
  const contentType = response.headers.get("content-type") ?? "";
  if (wantsStream(request.value) || contentType.startsWith("text/event-stream")) {
    if (!contentType.startsWith("text/event-stream"))
      fail("stream is not SSE", request, status, text);
    const frames = text
      .split("\n\n")
      .filter((frame) => frame.trim() !== "")
      .map((frame) =>
        frame
          .split("\n")
          .filter((line) => line.startsWith("data: "))
          .map((l) => l.slice(6))
          .join("\n"),
      )
      .filter((data) => data !== "");
    if (frames.at(-1) !== "[DONE]") fail("stream does not end in [DONE]", request, status, text);
    const chunks = frames.slice(0, -1).map((data) => JSON.parse(data) as Record<string, unknown>);
    if (chunks.length === 0) fail("stream has no chunks", request, status, text);
    for (const chunk of chunks) {
      if (isErrorBody(chunk)) fail("stream carries an error frame", request, status, text);
      if (chunk.object !== "chat.completion.chunk")
        fail("frame is not a chunk", request, status, text);
    }
    const finished = chunks.some((chunk) =>
      (chunk.choices as Array<{ finish_reason: unknown }>).some((c) => c.finish_reason !== null),
    );
    if (!finished) fail("stream has no finish_reason", request, status, text);
    return;
  }
  const body = JSON.parse(text) as {
    object?: unknown;
    choices?: Array<{ message?: { role?: unknown; content?: unknown }; finish_reason?: unknown }>;
    usage?: { prompt_tokens?: unknown };
  };
  const choice = body.choices?.[0];
  if (
    body.object !== "chat.completion" ||
    body.choices?.length !== 1 ||
    choice?.message?.role !== "assistant" ||
    typeof choice.message.content !== "string" ||
    typeof choice.finish_reason !== "string" ||
    typeof body.usage?.prompt_tokens !== "number"
  ) {
    fail("200 is not a chat.completion", request, status, text);
  }
}

/** Error codes of the bounds (issue 9). */
const BOUNDS_CODES = ["array_above_max_length", "too_many_values"];

/** Over a bound: a 400 with a bounds code; at it: anything but a bounds code. */
async function checkBounds(response: Response, request: Sent): Promise<void> {
  const text = await response.text();
  const code =
    response.status === 200 ? null : (JSON.parse(text) as { error: { code: unknown } }).error.code;
  const over = request.kind.endsWith("-over");
  if (over && (response.status !== 400 || !BOUNDS_CODES.includes(String(code))))
    fail("a body over a bound was not refused with a 400", request, response.status, text);
  if (!over && BOUNDS_CODES.includes(String(code)))
    fail("a body within the bounds was refused for them", request, response.status, text);
}

function withDeadline<T>(promise: Promise<T>, request: Sent): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${REQUEST_DEADLINE_MS} ms: ${preview(request)}`)),
      REQUEST_DEADLINE_MS,
    );
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------

describe("fuzzing POST /v1/chat/completions", () => {
  let baseDir: string;
  let tempRoot: string;
  let app: Hono;
  let cli: FakeCli;
  let toolRuns: ToolRuns;
  let limiter: ConcurrencyLimiter;
  let lifecycle: Lifecycle;
  const statuses = new Map<number, number>();

  beforeAll(async () => {
    baseDir = await mkdtemp(join(tmpdir(), "fuzz-"));
    const workDir = join(baseDir, "cwd");
    tempRoot = join(baseDir, "runs");
    await nodeRuntime.mkdir(workDir);
    await nodeRuntime.mkdir(tempRoot);
    const command = parseCommand([], {});
    if (command.kind !== "serve") throw new Error("expected a serve command");
    cli = fakeCli();
    const { config } = command;
    toolRuns = new ToolRuns();
    lifecycle = new Lifecycle();
    limiter = new ConcurrencyLimiter(config.maxConcurrency, config.maxQueue, config.maxQueueWaitMs);
    const deps: AppDeps = {
      // Remote images would be fetched from the network: only data: URLs here.
      // The fake CLI answers one turn: no warm or spare processes (tested end to end).
      config: { ...config, imageFetch: false, warmTtlMs: 0 },
      runtime: { ...nodeRuntime, spawn: cli.spawn },
      claude: { path: "/fake/claude", version: "2.1.197 (Claude Code)", error: null },
      workDir,
      tempRoot,
      childEnv: {},
      dropEnv: [],
      limiter,
      lifecycle,
      toolRuns,
      pool: new ProcessPool(toolRuns, lifecycle, { maxProcesses: 8, spares: config.spares }),
      baseUrl: () => "http://127.0.0.1:1",
      anthropicApiKeySet: false,
      watchdog: null,
      metrics: createMetrics(),
      rateLimits: new RateLimits(),
      usage: await UsageStore.open(nodeRuntime, join(baseDir, "data")),
      version: "0.0.0-test",
      log: createLogger("silent"),
    };
    app = createApp(deps);
  });

  afterAll(async () => {
    await rm(baseDir, { recursive: true, force: true });
  });

  it(`answers ${RUNS} random bodies without a 5xx, always in OpenAI's shapes`, {
    timeout: 180_000,
  }, async () => {
    await fc.assert(
      fc.asyncProperty(sent, async (request) => {
        const headers: Record<string, string> = {};
        if (request.contentType !== null) headers["content-type"] = request.contentType;
        const response = await withDeadline(
          Promise.resolve(
            app.request("/v1/chat/completions", {
              method: "POST",
              headers,
              body: request.body as BodyInit,
            }),
          ),
          request,
        );
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        if (process.env.FUZZ_VERBOSE) console.log(response.status, preview(request).slice(0, 200));
        const copy = request.kind.startsWith("bounds-") ? response.clone() : null;
        await withDeadline(checkResponse(response, request), request);
        if (copy !== null) await checkBounds(copy, request);
        if (cli.problems.length > 0) {
          throw new Error(`${cli.problems.join("; ")}: ${preview(request)}`);
        }
      }),
      {
        numRuns: RUNS,
        examples: REGRESSIONS.map((request) => [request] as [Sent]),
        ...(SEED === undefined ? {} : { seed: SEED }),
      },
    );
    // Every kind of answer was exercised: successes, validation errors, unknown models.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(RUNS / 10);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(RUNS / 10);
    expect(statuses.get(404) ?? 0).toBeGreaterThan(0);
    expect(cli.spawned).toBeGreaterThan(RUNS / 10);
  });

  it("leaves no CLI process, parked run or temp directory behind", async () => {
    // Runs end asynchronously after the last byte; give them a moment.
    for (let i = 0; i < 50 && (cli.live.size > 0 || readdirSync(tempRoot).length > 0); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(cli.live.size).toBe(0);
    expect(toolRuns.parkedCount).toBe(0);
    expect(lifecycle.activeCount()).toBe(0);
    expect(limiter.running).toBe(0);
    expect(limiter.queued).toBe(0);
    expect(readdirSync(tempRoot)).toEqual([]);
  });
});
