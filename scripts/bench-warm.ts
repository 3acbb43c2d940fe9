/**
 * How fast a conversation's next user turn is answered with and without a warm process
 * (`--warm-ttl`, issue 11), against the fake Messages API: each request timed from the client
 * until the end of the answer (streaming, through the official `openai` client), median of N.
 *
 *   npx tsx scripts/bench-warm.ts [--runs 10] [--runtime node|bun|deno|binary]
 *   CLAUDE_CLI_BIN=/path/to/claude npx tsx scripts/bench-warm.ts   (another CLI release)
 *
 * first: a new conversation's first turn (a CLI starts). warm: its follow-up (same key: the
 * process that answered takes the new turn on stdin). cold: the same follow-up from another key
 * (no warm process matches: a CLI starts and resumes the history).
 */
import OpenAI from "openai";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import { type E2eRuntime, makeE2eDirs, proxyEnv, startProxy } from "../test/e2e/harness.ts";
import { claudeBin } from "../test/fixtures/claude-cli.ts";
import { startFakeAnthropic } from "../test/fixtures/fake-anthropic.ts";
import { median, option } from "./bench-common.ts";

const args = process.argv.slice(2);
const RUNS = Number(option(args, "runs", "10"));
const RUNTIME = option(args, "runtime", "node") as E2eRuntime;

const fake = await startFakeAnthropic();
fake.setHandler(() => ({ content: [{ type: "text", text: "Noted." }] }));
const dirs = await makeE2eDirs("claude-openai-proxy-bench-warm-");
const proxy = await startProxy(RUNTIME, {
  env: proxyEnv(fake.url, dirs, { WARM_TTL_MS: "60000" }),
});
const clients = {
  a: new OpenAI({ baseURL: proxy.url, apiKey: "bench-a", maxRetries: 0 }),
  b: new OpenAI({ baseURL: proxy.url, apiKey: "bench-b", maxRetries: 0 }),
};

/** Streams a request to its end; returns the time taken, ms. */
async function timed(client: OpenAI, messages: ChatCompletionMessageParam[]): Promise<number> {
  const started = performance.now();
  const stream = await client.chat.completions.create({ model: "sonnet", stream: true, messages });
  for await (const _chunk of stream) {
    // read to the end
  }
  return performance.now() - started;
}

/** One conversation: first turn, warm follow-up, cold follow-up (ms each). */
async function conversation(n: number): Promise<[number, number, number]> {
  const system: ChatCompletionMessageParam = { role: "system", content: `Bench ${n}.` };
  const first: ChatCompletionMessageParam[] = [system, { role: "user", content: "Remember 7." }];
  const firstMs = await timed(clients.a, first);
  const followUp: ChatCompletionMessageParam[] = [
    ...first,
    { role: "assistant", content: "Noted." },
    { role: "user", content: "Which number?" },
  ];
  const warmMs = await timed(clients.a, followUp);
  const coldMs = await timed(clients.b, followUp);
  return [firstMs, warmMs, coldMs];
}

try {
  console.log(`CLI: ${claudeBin()}; runtime: ${RUNTIME}; runs: ${RUNS}, medians in ms`);
  await conversation(-1); // warm-up (file caches)
  const results: Record<string, number[]> = { first: [], warm: [], cold: [] };
  for (let i = 0; i < RUNS; i++) {
    const [f, w, c] = await conversation(i);
    results.first?.push(f);
    results.warm?.push(w);
    results.cold?.push(c);
  }
  for (const [kind, xs] of Object.entries(results)) {
    console.log(
      `${kind.padEnd(6)} ${median(xs).toFixed(0).padStart(6)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`,
    );
  }
  const ratio = median(results.warm ?? []) / median(results.cold ?? []);
  console.log(`warm follow-up / cold follow-up: ${ratio.toFixed(3)}x`);
} finally {
  await proxy.stop();
  await fake.close();
  await dirs.cleanup();
}
