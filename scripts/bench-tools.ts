/**
 * How fast a tool follow-up is answered, against the fake Messages API: the request that
 * carries the `tool` results, timed from the client until the end of the answer (streaming,
 * through the official `openai` client), median of N runs each.
 *
 *   npx tsx scripts/bench-tools.ts [--runs 10] [--runtime node|bun|deno|binary]
 *   CLAUDE_CLI_BIN=/path/to/claude npx tsx scripts/bench-tools.ts   (another CLI release)
 *
 * Continuation: the follow-up reaches the run that made the call, still waiting on its MCP call.
 * Replay: the same follow-up with ids no run knows (a conversation that began elsewhere): a new
 * CLI resumes the history as native turns.
 */
import OpenAI from "openai";
import type {
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from "openai/resources/chat/completions";
import { type E2eRuntime, makeE2eDirs, proxyEnv, startProxy } from "../test/e2e/harness.ts";
import { claudeBin } from "../test/fixtures/claude-cli.ts";
import { startFakeAnthropic } from "../test/fixtures/fake-anthropic.ts";
import { median, option } from "./bench-common.ts";

const args = process.argv.slice(2);
const RUNS = Number(option(args, "runs", "10"));
const RUNTIME = option(args, "runtime", "node") as E2eRuntime;

const TOOLS: ChatCompletionTool[] = [
  {
    type: "function",
    function: {
      name: "get_time",
      parameters: { type: "object", properties: { timezone: { type: "string" } } },
    },
  },
];

const fake = await startFakeAnthropic();
const dirs = await makeE2eDirs("claude-openai-proxy-bench-tools-");
const proxy = await startProxy(RUNTIME, { env: proxyEnv(fake.url, dirs) });
const client = new OpenAI({ baseURL: proxy.url, apiKey: "bench", maxRetries: 0 });
const question: ChatCompletionMessageParam = { role: "user", content: "Time in UTC?" };

/** Streams a request to its end; returns the time taken, ms. */
async function timed(messages: ChatCompletionMessageParam[]): Promise<number> {
  const started = performance.now();
  const stream = await client.chat.completions.create({
    model: "sonnet",
    stream: true,
    messages,
    tools: TOOLS,
  });
  for await (const _chunk of stream) {
    // read to the end
  }
  return performance.now() - started;
}

/** One tool loop: the call (not timed), then the follow-up (timed). */
async function loop(kind: "continuation" | "replay", n: number): Promise<number> {
  const id = `toolu_bench_${kind}_${n}`;
  fake.script(
    {
      content: [
        { type: "tool_use", id, name: "mcp__client__get_time", input: { timezone: "UTC" } },
      ],
    },
    { content: [{ type: "text", text: "It is noon." }] },
  );
  const first = await client.chat.completions.create({
    model: "sonnet",
    messages: [question],
    tools: TOOLS,
  });
  const message = first.choices[0]?.message as ChatCompletionMessageParam;
  if (kind === "continuation") {
    return timed([question, message, { role: "tool", tool_call_id: id, content: "12:00" }]);
  }
  // Unknown ids and other arguments: no parked run matches; the parked one waits on (stopped at the end).
  fake.reset();
  fake.script({ content: [{ type: "text", text: "It is noon." }] });
  const elsewhere: ChatCompletionMessageParam = {
    role: "assistant",
    content: null,
    tool_calls: [
      {
        id: `call_elsewhere_${n}`,
        type: "function",
        function: { name: "get_time", arguments: '{"timezone":"CET"}' },
      },
    ],
  };
  const ms = await timed([
    question,
    elsewhere,
    { role: "tool", tool_call_id: `call_elsewhere_${n}`, content: "13:00" },
  ]);
  // Finish the parked run so that it does not hold a slot.
  fake.script({ content: [{ type: "text", text: "done" }] });
  await timed([question, message, { role: "tool", tool_call_id: id, content: "12:00" }]);
  return ms;
}

try {
  console.log(`CLI: ${claudeBin()}; runtime: ${RUNTIME}; runs: ${RUNS} each, medians in ms`);
  await loop("continuation", -1); // warm-up
  const results: Record<string, number[]> = { continuation: [], replay: [] };
  for (let i = 0; i < RUNS; i++) {
    results.continuation?.push(await loop("continuation", i));
    results.replay?.push(await loop("replay", i));
  }
  for (const [kind, xs] of Object.entries(results)) {
    console.log(
      `${kind.padEnd(13)} follow-up answered in ${median(xs).toFixed(0).padStart(6)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`,
    );
  }
} finally {
  await proxy.stop();
  await fake.close();
  await dirs.cleanup();
}
