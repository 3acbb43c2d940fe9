/**
 * Load test (issue 4): starts the fake Anthropic API and the proxy (a real process running the
 * real `claude` CLI), fires chat completions at it from many clients at once (half of them
 * streaming), and reports answered / rejected (429) / other errors, p50/p95 latency, peak RSS
 * of the proxy and the most `claude` processes seen at once. Afterwards no `claude` process and
 * no temp file may remain. Exits 1 when a request got anything but 200 or 429, something was
 * left behind, the concurrency cap was exceeded, or the time budget ran out.
 *
 *   npx tsx scripts/load.ts [--requests 200] [--concurrency 32] [--max-concurrency 4]
 *     [--max-queue N] [--max-queue-wait MS] [--runtime node|bun|deno|binary]
 *     [--budget SECONDS] [--reply-delay MS]
 *
 * Linux only (reads /proc). `--max-queue` / `--max-queue-wait` default to the proxy's own.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  claudeChildren,
  claudePids,
  killAll,
  servingPid,
  sseContent,
  sseData,
  vmRssKiB,
  waitForLeftovers,
} from "../test/e2e/fault-helpers.ts";
import {
  ALL_RUNTIMES,
  type E2eRuntime,
  makeE2eDirs,
  proxyEnv,
  proxyTempDirs,
  startProxy,
} from "../test/e2e/harness.ts";
import { lastUserText, startFakeAnthropic } from "../test/fixtures/fake-anthropic.ts";

const { values: opts } = parseArgs({
  options: {
    requests: { type: "string", default: "200" },
    concurrency: { type: "string", default: "32" },
    "max-concurrency": { type: "string", default: "4" },
    "max-queue": { type: "string" },
    "max-queue-wait": { type: "string" },
    runtime: { type: "string", default: "node" },
    budget: { type: "string", default: "600" },
    "reply-delay": { type: "string", default: "0" },
  },
});
const requests = Number(opts.requests);
const concurrency = Number(opts.concurrency);
const maxConcurrency = Number(opts["max-concurrency"]);
const budgetMs = Number(opts.budget) * 1000;
const replyDelayMs = Number(opts["reply-delay"]);
const runtime = opts.runtime as E2eRuntime;
if (!ALL_RUNTIMES.includes(runtime)) throw new Error(`unknown runtime ${runtime}`);

/** The outcome of one request. */
interface Outcome {
  index: number;
  stream: boolean;
  status: number | "network-error" | "timeout";
  ms: number;
  /** Why an answer with status 200 or 429 still counts as wrong. */
  problem?: string;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;

const fake = await startFakeAnthropic();
fake.setHandler((req) => ({
  content: [{ type: "text", text: `echo: ${lastUserText(req.body)}` }],
  delayMs: replyDelayMs,
}));
const dirs = await makeE2eDirs("claude-openai-proxy-load-");
const tmp = join(dirs.tmp, runtime);
await mkdir(tmp);
const proxyArgs = [
  "--max-concurrency",
  String(maxConcurrency),
  "--kill-grace",
  "1000",
  ...(opts["max-queue"] === undefined ? [] : ["--max-queue", opts["max-queue"]]),
  ...(opts["max-queue-wait"] === undefined ? [] : ["--max-queue-wait", opts["max-queue-wait"]]),
];
const proxy = await startProxy(runtime, {
  env: proxyEnv(fake.url, { home: dirs.home, tmp }),
  args: proxyArgs,
}).catch(async (error: unknown) => {
  await fake.close();
  await dirs.cleanup();
  throw error;
});
const serverPid = servingPid(proxy);
const wrapperPid = proxy.process.pid ?? serverPid;
console.log(
  `proxy on ${runtime} (pid ${serverPid}) ${proxyArgs.join(" ")}; ${requests} requests, ${concurrency} clients`,
);

// Samplers: the proxy's RSS (and the tsx wrapper's on node) and the claude processes.
let peakRss = vmRssKiB(serverPid) ?? 0;
let peakWrapperRss = wrapperPid === serverPid ? 0 : (vmRssKiB(wrapperPid) ?? 0);
/** claude children of the proxy at once (the cap applies to these). */
let peakClaude = 0;
/** claude processes under the proxy's TMPDIR, the CLI's own short-lived forks included. */
let peakClaudeAll = 0;
let peakClaudeRss = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, vmRssKiB(serverPid) ?? 0);
  if (wrapperPid !== serverPid)
    peakWrapperRss = Math.max(peakWrapperRss, vmRssKiB(wrapperPid) ?? 0);
  peakClaude = Math.max(peakClaude, claudeChildren(serverPid).length);
  const pids = claudePids(tmp);
  peakClaudeAll = Math.max(peakClaudeAll, pids.length);
  peakClaudeRss = Math.max(
    peakClaudeRss,
    pids.reduce((sum, pid) => sum + (vmRssKiB(pid) ?? 0), 0),
  );
}, 200);

const deadline = AbortSignal.timeout(budgetMs);

async function one(index: number): Promise<Outcome> {
  const stream = index % 2 === 1;
  const question = `load request ${index}`;
  const started = performance.now();
  const outcome = (status: Outcome["status"], problem?: string): Outcome => ({
    index,
    stream,
    status,
    ms: performance.now() - started,
    ...(problem === undefined ? {} : { problem }),
  });
  try {
    const response = await fetch(`${proxy.url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "sonnet",
        messages: [{ role: "user", content: question }],
        stream,
      }),
      signal: deadline,
    });
    const text = await response.text();
    if (response.status === 429) {
      const retryAfter = Number(response.headers.get("retry-after"));
      return outcome(429, retryAfter > 0 ? undefined : "429 without Retry-After");
    }
    if (response.status !== 200) return outcome(response.status, text.slice(0, 300));
    const content = stream
      ? sseContent(text)
      : ((JSON.parse(text) as { choices: Array<{ message: { content: string } }> }).choices[0]
          ?.message.content ?? "");
    if (content !== `echo: ${question}`) return outcome(200, `wrong content: ${content}`);
    if (stream) {
      const data = sseData(text);
      if (data.at(-1) !== "[DONE]") return outcome(200, "stream without [DONE]");
      if (data.some((d) => d.startsWith('{"error"'))) return outcome(200, "error frame");
    }
    return outcome(200);
  } catch (error) {
    return outcome(deadline.aborted ? "timeout" : "network-error", String(error));
  }
}

const t0 = performance.now();
const outcomes: Outcome[] = [];
let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < requests) {
      const index = next++;
      outcomes.push(await one(index));
    }
  }),
);
const wallMs = performance.now() - t0;

// Afterwards: nothing may be left while the proxy still runs...
const left = await waitForLeftovers(tmp, 10_000);
clearInterval(sampler);
killAll(left.pids);
// ...and stopping it (SIGTERM) must remove its temp dir.
await proxy.stop();
const tempDirsAfterStop = proxyTempDirs(tmp);
killAll(claudePids(tmp));
await fake.close();
await dirs.cleanup();

const answered = outcomes.filter((o) => o.status === 200 && o.problem === undefined);
const rejected = outcomes.filter((o) => o.status === 429 && o.problem === undefined);
const wrong = outcomes.filter((o) => !answered.includes(o) && !rejected.includes(o));
const latencies = answered.map((o) => o.ms).sort((a, b) => a - b);
const rejectLatencies = rejected.map((o) => o.ms).sort((a, b) => a - b);
const fmt = (ms: number) => (Number.isNaN(ms) ? "-" : `${(ms / 1000).toFixed(2)} s`);

const rows: Array<[string, string]> = [
  ["requests", `${outcomes.length} (${outcomes.filter((o) => o.stream).length} streaming)`],
  ["clients at once", String(concurrency)],
  ["proxy cap", `--max-concurrency ${maxConcurrency}`],
  ["wall time", fmt(wallMs)],
  ["answered (200)", String(answered.length)],
  ["rejected (429)", String(rejected.length)],
  ["other errors", String(wrong.length)],
  [
    "latency of answered p50 / p95 / max",
    `${fmt(percentile(latencies, 50))} / ${fmt(percentile(latencies, 95))} / ${fmt(latencies.at(-1) ?? Number.NaN)}`,
  ],
  ["latency of rejected p50", fmt(percentile(rejectLatencies, 50))],
  ["throughput", `${(answered.length / (wallMs / 1000)).toFixed(2)} answers/s`],
  [
    "peak RSS of the proxy",
    `${mib(peakRss)}${peakWrapperRss > 0 ? ` (+ ${mib(peakWrapperRss)} tsx wrapper)` : ""}`,
  ],
  [
    "most claude processes at once",
    `${peakClaude} children of the proxy (${peakClaudeAll} with the CLI's own forks)`,
  ],
  ["peak RSS of all claude processes", mib(peakClaudeRss)],
  ["claude processes left", String(left.pids.length)],
  ["run temp files left", String(left.files.length)],
  ["proxy temp dirs after stop", String(tempDirsAfterStop.length)],
];
const width = Math.max(...rows.map(([k]) => k.length));
for (const [key, value] of rows) console.log(`${key.padEnd(width)}  ${value}`);
for (const o of wrong.slice(0, 10)) {
  console.log(`  #${o.index} ${o.stream ? "stream" : "json"} ${o.status}: ${o.problem ?? ""}`);
}

const failures = [
  wrong.length > 0 ? `${wrong.length} requests got something other than 200 or 429` : "",
  left.pids.length > 0 ? `${left.pids.length} claude processes left` : "",
  left.files.length > 0 ? `${left.files.length} run temp files left` : "",
  tempDirsAfterStop.length > 0 ? "the proxy's temp dir survived its shutdown" : "",
  peakClaude > maxConcurrency
    ? `${peakClaude} claude processes at once (cap ${maxConcurrency})`
    : "",
  outcomes.length < requests ? "not every request was sent" : "",
].filter((f) => f !== "");
if (failures.length > 0) {
  console.error(`FAILED: ${failures.join("; ")}`);
  process.exit(1);
}
console.log("OK");
