/**
 * Issue 11's benchmark: what the process pool (warm and spare CLI processes) buys, against the
 * fake Messages API, each figure as a ratio to a cold direct `claude -p` run measured in the
 * same script run (median of N; every proxy request streamed through the official `openai`
 * client and timed until the end of its answer).
 *
 *   npx tsx scripts/bench-warm.ts [--runs 10] [--runtime node|bun|deno|binary]
 *   CLAUDE_CLI_BIN=/path/to/claude npx tsx scripts/bench-warm.ts   (another CLI release)
 *
 * - direct: `claude -p` with the proxy's argv, one user turn on stdin, until `result`.
 * - follow-up: a conversation's second user turn (its warm process takes it). Goal ≤ 0.12x.
 * - cold follow-up: the same turn from another API key (no warm process matches).
 * - first turn (known profile): a new conversation whose system prompt and tools were seen
 *   before (a spare takes it). Goal ≤ 0.25x.
 * - tool loop: ten requests of one agent (the first turn calls a client tool, nine follow-ups
 *   carry the results, the tenth answers), total time over ten direct runs. Goal ≤ 0.2x.
 * - peak RSS of the proxy and its CLI processes with the defaults: idle after start, under 8
 *   concurrent conversations (3 turns each), idle after them (warm processes kept).
 * Linux only for RSS (/proc).
 */
import OpenAI from "openai";
import type {
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from "openai/resources/chat/completions";
import { servingPid, vmRssKiB } from "../test/e2e/fault-helpers.ts";
import {
  claudeProcesses,
  type E2eRuntime,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  startProxy,
} from "../test/e2e/harness.ts";
import { claudeBin } from "../test/fixtures/claude-cli.ts";
import { type FakeReply, startFakeAnthropic } from "../test/fixtures/fake-anthropic.ts";
import { directRun, median, option } from "./bench-common.ts";

const args = process.argv.slice(2);
const RUNS = Number(option(args, "runs", "10"));
const RUNTIME = option(args, "runtime", "node") as E2eRuntime;

const TOOLS: ChatCompletionTool[] = [
  {
    type: "function",
    function: {
      name: "read_page",
      description: "Reads one page of a document",
      parameters: { type: "object", properties: { page: { type: "integer" } }, required: ["page"] },
    },
  },
];
const SYSTEM = "You are a careful research assistant. Answer briefly.";
/** Tool calls in the agent loop before its final answer (ten requests in all). */
const LOOP_CALLS = 9;

const fake = await startFakeAnthropic();
/** Answers "Noted.", or in the tool loop calls read_page until the last page. */
fake.setHandler((req): FakeReply => {
  // biome-ignore lint/suspicious/noExplicitAny: raw request body
  const messages = (req.body as any).messages as Array<{ content: unknown }>;
  const text = JSON.stringify(messages[0]?.content ?? "");
  if (!text.includes("Read the report")) return { content: [{ type: "text", text: "Noted." }] };
  const results = JSON.stringify(messages).split('"tool_result"').length - 1;
  if (results >= LOOP_CALLS) return { content: [{ type: "text", text: "Done reading." }] };
  return {
    content: [
      {
        type: "tool_use",
        id: `toolu_bench_${req.headers["x-claude-code-session-id"]?.slice(0, 8)}_${results}`,
        name: "mcp__client__read_page",
        input: { page: results + 1 },
      },
    ],
  };
});
const dirs = await makeE2eDirs("claude-openai-proxy-bench-warm-");

/** A cold direct `claude -p` run with the proxy's argv (bench-common.ts): ms until `result`. */
const direct = async () => (await directRun(fake.url, dirs, "Remember 7.")).total;

let proxy: ProxyProcess | undefined;
const client = (key: string) => new OpenAI({ baseURL: proxy?.url, apiKey: key, maxRetries: 0 });

/** Streams one request to its end; returns the time taken (ms) and the message it ended with. */
async function timed(
  key: string,
  messages: ChatCompletionMessageParam[],
  tools?: ChatCompletionTool[],
): Promise<{ ms: number; message: ChatCompletionMessageParam }> {
  const started = performance.now();
  const stream = await client(key).chat.completions.create({
    model: "sonnet",
    stream: true,
    messages,
    ...(tools === undefined ? {} : { tools }),
  });
  let content = "";
  const calls: Array<{ id: string; name: string; arguments: string }> = [];
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.delta;
    content += delta?.content ?? "";
    for (const call of delta?.tool_calls ?? []) {
      const slot = calls[call.index] ?? { id: "", name: "", arguments: "" };
      calls[call.index] = slot;
      slot.id += call.id ?? "";
      slot.name += call.function?.name ?? "";
      slot.arguments += call.function?.arguments ?? "";
    }
  }
  const message: ChatCompletionMessageParam =
    calls.length === 0
      ? { role: "assistant", content }
      : {
          role: "assistant",
          content: content === "" ? null : content,
          tool_calls: calls.map((c) => ({
            id: c.id,
            type: "function",
            function: { name: c.name, arguments: c.arguments },
          })),
        };
  return { ms: performance.now() - started, message };
}

/** /health's processes. */
async function pool(): Promise<Record<string, number>> {
  const health = (await (await fetch(`${proxy?.origin}/health`)).json()) as {
    processes: Record<string, number>;
  };
  return health.processes;
}

/** Waits until a spare is kept and its CLI has had time to start (a user's think time). */
async function spareReady(): Promise<void> {
  const deadline = Date.now() + 15_000;
  while ((await pool()).spare !== 1 && Date.now() < deadline) await sleep(50);
  await sleep(1500);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** RSS of the proxy and every CLI process under it now, MiB. */
function rssMiB(p: ProxyProcess): number {
  const pids = [servingPid(p), ...claudeProcesses({ pid: p.process.pid })];
  const kib = pids.reduce((sum, pid) => sum + (vmRssKiB(pid) ?? 0), 0);
  return kib / 1024;
}

/** Samples {@link rssMiB} every 50 ms while `work` runs; returns the peak, MiB. */
async function peakDuring(p: ProxyProcess, work: () => Promise<unknown>): Promise<number> {
  let peak = rssMiB(p);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMiB(p));
  }, 50);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, rssMiB(p));
}

/** One agent: ten requests, the tool results sent back each time; total ms. */
async function toolLoop(n: number): Promise<number> {
  const messages: ChatCompletionMessageParam[] = [
    { role: "system", content: SYSTEM },
    { role: "user", content: `Read the report ${n}.` },
  ];
  let total = 0;
  for (let step = 0; step <= LOOP_CALLS; step++) {
    const { ms, message } = await timed("bench-a", messages, TOOLS);
    total += ms;
    messages.push(message);
    const calls = "tool_calls" in message ? (message.tool_calls ?? []) : [];
    if (calls.length === 0) {
      if (step !== LOOP_CALLS) throw new Error(`the loop ended after ${step + 1} requests`);
      return total;
    }
    for (const call of calls) {
      messages.push({ role: "tool", tool_call_id: call.id, content: `page ${step + 1} text` });
    }
  }
  throw new Error("the loop did not end");
}

/** Eight conversations at once, three turns each. */
async function concurrentConversations(): Promise<void> {
  await Promise.all(
    Array.from({ length: 8 }, async (_, n) => {
      const messages: ChatCompletionMessageParam[] = [
        { role: "system", content: `Conversation ${n}.` },
      ];
      for (const text of ["Remember 7.", "Which number?", "Thanks."]) {
        messages.push({ role: "user", content: text });
        messages.push((await timed(`bench-c${n}`, messages)).message);
      }
    }),
  );
}

const row = (name: string, xs: number[], base?: number, goal?: number) => {
  const m = median(xs);
  const ratio = base === undefined ? "" : `  ${(m / base).toFixed(3)}x`;
  const target = goal === undefined ? "" : ` (goal ≤ ${goal}x)`;
  console.log(
    `${name.padEnd(30)} ${m.toFixed(0).padStart(6)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})${ratio}${target}`,
  );
};

try {
  proxy = await startProxy(RUNTIME, {
    // The defaults, except that the harness turns warm processes off for other suites.
    env: proxyEnv(fake.url, dirs, { WARM_TTL_MS: "300000" }),
  });
  const idleStart = rssMiB(proxy);
  console.log(`CLI: ${claudeBin()}; runtime: ${RUNTIME}; runs: ${RUNS}, medians`);
  await direct(); // warm-up: file caches
  const results: Record<string, number[]> = {
    direct: [],
    followUp: [],
    coldFollowUp: [],
    spareFirst: [],
    coldFirst: [],
  };
  // Two first turns of the profile: from now on a spare waits for the next one.
  for (const n of [-2, -1]) {
    await timed(
      "bench-a",
      [
        { role: "system", content: SYSTEM },
        { role: "user", content: `Hello ${n}.` },
      ],
      TOOLS,
    );
  }
  for (let i = 0; i < RUNS; i++) {
    results.direct?.push(await direct());
    // A new conversation of a known profile: its first turn (spare), then its follow-up (warm).
    await spareReady();
    const first: ChatCompletionMessageParam[] = [
      { role: "system", content: SYSTEM },
      { role: "user", content: `Remember ${i}.` },
    ];
    const opened = await timed("bench-a", first, TOOLS);
    results.spareFirst?.push(opened.ms);
    const followUp = [
      ...first,
      opened.message,
      { role: "user", content: "Which number?" } as const,
    ];
    results.followUp?.push((await timed("bench-a", followUp, TOOLS)).ms);
    results.coldFollowUp?.push((await timed("bench-b", followUp, TOOLS)).ms);
    // A first turn of a profile never seen: a CLI starts.
    results.coldFirst?.push(
      (
        await timed("bench-a", [
          { role: "system", content: `New ${i}.` },
          { role: "user", content: "Hi" },
        ])
      ).ms,
    );
  }
  const base = median(results.direct ?? []);
  row("direct claude -p (cold)", results.direct ?? [], base);
  row("follow-up (warm)", results.followUp ?? [], base, 0.12);
  row("follow-up, other key (cold)", results.coldFollowUp ?? [], base);
  row("first turn, known profile", results.spareFirst ?? [], base, 0.25);
  row("first turn, new profile", results.coldFirst ?? [], base);

  const loops: number[] = [];
  for (let i = 0; i < Math.max(3, Math.ceil(RUNS / 3)); i++) {
    await spareReady();
    loops.push(await toolLoop(i));
  }
  const m = median(loops);
  console.log(
    `${"10-step tool loop".padEnd(30)} ${m.toFixed(0).padStart(6)} ms (min ${Math.min(...loops).toFixed(0)}, max ${Math.max(...loops).toFixed(0)})  ${(m / (10 * base)).toFixed(3)}x of ten direct runs (goal ≤ 0.2x)`,
  );
  await proxy.stop();

  // Memory with the defaults, in a proxy of its own.
  proxy = await startProxy(RUNTIME, { env: proxyEnv(fake.url, dirs, { WARM_TTL_MS: "300000" }) });
  await sleep(500);
  const idle = rssMiB(proxy);
  const busy = await peakDuring(proxy, concurrentConversations);
  await sleep(1000);
  const after = rssMiB(proxy);
  console.log(
    `peak RSS, proxy + CLIs (defaults): idle ${idle.toFixed(0)} MiB (first proxy ${idleStart.toFixed(0)}), 8 concurrent conversations ${busy.toFixed(0)} MiB, idle after them ${after.toFixed(0)} MiB with ${JSON.stringify(await pool())}`,
  );
} finally {
  await proxy?.stop();
  await fake.close();
  await dirs.cleanup();
}
