/**
 * What the proxy adds to a direct `claude -p` run, measured against the fake Messages API:
 * time to first token and total time, median of N runs each, printed with the ratio.
 *
 *   npx tsx scripts/bench.ts [--runs 10] [--runtime node|bun|deno|binary]
 *
 * Direct: the real CLI with the flags the proxy uses, one stream-json user turn on stdin; the
 * first token is the first `text_delta` on stdout, the total is the `result` line.
 * Proxy: the same question through the official `openai` client, streaming; the first token is
 * the first chunk with content, the total the end of the stream.
 */
import OpenAI from "openai";
import { type E2eRuntime, makeE2eDirs, proxyEnv, startProxy } from "../test/e2e/harness.ts";
import { startFakeAnthropic } from "../test/fixtures/fake-anthropic.ts";
import { directRun, median, option } from "./bench-common.ts";

const args = process.argv.slice(2);
const RUNS = Number(option(args, "runs", "10"));
const RUNTIME = option(args, "runtime", "node") as E2eRuntime;

/** The reply: 20 text chunks, 10 ms apart (a short answer streamed the way the API does). */
const REPLY = {
  content: [
    { type: "text" as const, text: "The quick brown fox jumps over the lazy dog. ".repeat(2) },
  ],
  chunkSize: 5,
  delayMs: 10,
};

const fake = await startFakeAnthropic();
fake.setHandler(() => REPLY);
const dirs = await makeE2eDirs("claude-openai-proxy-bench-");
const env = proxyEnv(fake.url, dirs);

/** A cold direct `claude -p` run (bench-common.ts). */
const direct = () => directRun(fake.url, dirs);

const proxy = await startProxy(RUNTIME, { env });
const client = new OpenAI({ baseURL: proxy.url, apiKey: "bench", maxRetries: 0 });
async function viaProxy(): Promise<{ ttft: number; total: number }> {
  const started = performance.now();
  let ttft = 0;
  const stream = await client.chat.completions.create({
    model: "sonnet",
    stream: true,
    messages: [{ role: "user", content: "Say something" }],
  });
  for await (const chunk of stream) {
    if (ttft === 0 && (chunk.choices[0]?.delta.content ?? "") !== "")
      ttft = performance.now() - started;
  }
  return { ttft, total: performance.now() - started };
}

try {
  await direct(); // warm-up: file cache
  await viaProxy();
  const d: Array<{ ttft: number; total: number }> = [];
  const p: Array<{ ttft: number; total: number }> = [];
  for (let i = 0; i < RUNS; i++) {
    d.push(await direct());
    p.push(await viaProxy());
  }
  const row = (name: string, xs: Array<{ ttft: number; total: number }>) => ({
    name,
    ttft: median(xs.map((x) => x.ttft)),
    total: median(xs.map((x) => x.total)),
  });
  const a = row("direct claude -p", d);
  const b = row(`proxy (${RUNTIME})`, p);
  console.log(`runs: ${RUNS} each, medians in ms`);
  for (const r of [a, b])
    console.log(
      `${r.name.padEnd(22)} first token ${r.ttft.toFixed(0).padStart(6)}   total ${r.total.toFixed(0).padStart(6)}`,
    );
  console.log(
    `ratio proxy/direct: first token ${(b.ttft / a.ttft).toFixed(3)}x (+${(b.ttft - a.ttft).toFixed(0)} ms), total ${(b.total / a.total).toFixed(3)}x (+${(b.total - a.total).toFixed(0)} ms)`,
  );
} finally {
  await proxy.stop();
  await fake.close();
  await dirs.cleanup();
}
