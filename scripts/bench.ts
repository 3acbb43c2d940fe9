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
import { spawn } from "node:child_process";
import OpenAI from "openai";
import { buildArgs } from "../src/claude/argv.ts";
import { userTurnLine } from "../src/claude/session.ts";
import { type E2eRuntime, makeE2eDirs, proxyEnv, startProxy } from "../test/e2e/harness.ts";
import { claudeBin, cliEnv } from "../test/fixtures/claude-cli.ts";
import { startFakeAnthropic } from "../test/fixtures/fake-anthropic.ts";
import { median, option } from "./bench-common.ts";

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

async function direct(): Promise<{ ttft: number; total: number }> {
  const started = performance.now();
  const child = spawn(
    claudeBin(),
    // The argv the proxy itself builds (without a system prompt file).
    buildArgs({ model: "sonnet", systemPromptMode: "append", settingSources: "" }),
    {
      env: { ...cliEnv(fake.url, dirs.home), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1" },
      cwd: dirs.tmp,
      stdio: ["pipe", "pipe", "ignore"],
    },
  );
  child.stdin.write(userTurnLine([{ type: "text", text: "Say something" }]));
  let ttft = 0;
  let buffer = "";
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      buffer += chunk;
      let index = buffer.indexOf("\n");
      while (index >= 0) {
        const line = buffer.slice(0, index);
        buffer = buffer.slice(index + 1);
        index = buffer.indexOf("\n");
        if (ttft === 0 && line.includes('"text_delta"')) ttft = performance.now() - started;
        // Parse: from 2.1.3xx a result line need not start with "type".
        if (
          line.includes('"result"') &&
          (JSON.parse(line) as { type?: string }).type === "result"
        ) {
          const total = performance.now() - started;
          child.stdin.end();
          child.once("exit", () => resolve({ ttft, total }));
        }
      }
    });
    child.once("error", reject);
  });
}

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
