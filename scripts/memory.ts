/**
 * Memory and event-loop measurement of the request bounds (issue 9, finding 1): starts the
 * proxy as a real process (its CLI a stub that answers with the recorded text fixture, so that
 * only the proxy is measured), sends the worst bodies the bounds allow and a few they refuse,
 * one at a time, and reports for each the status, the time to answer, the proxy's peak RSS and
 * the longest a `GET /health` polled every 10 ms (from a worker thread) meanwhile waited: the
 * proxy's longest event-loop stall, plus a little network. Not a test: it fails only when the proxy dies or a body gets
 * an unexpected status.
 *
 *   npx tsx scripts/memory.ts [--runtime node|bun|deno|binary] [--repeat 2] [--only NAME]
 *
 * Linux only (reads /proc/PID/status; resets the peak with /proc/PID/clear_refs).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import {
  countJsonValues,
  MAX_CONTENT_PARTS,
  MAX_JSON_VALUES,
  MAX_MESSAGES,
} from "../src/http/json.ts";
import { MAX_TOOL_CALLS, MAX_TOOLS, parseChatCompletionBody } from "../src/surfaces/chat/schema.ts";
import { servingPid, vmRssKiB } from "../test/e2e/fault-helpers.ts";
import {
  ALL_RUNTIMES,
  type E2eRuntime,
  makeE2eDirs,
  proxyEnv,
  repoRoot,
  startProxy,
} from "../test/e2e/harness.ts";

const { values: opts } = parseArgs({
  options: {
    runtime: { type: "string", default: "node" },
    repeat: { type: "string", default: "2" },
    only: { type: "string" },
  },
});
const runtime = opts.runtime as E2eRuntime;
if (!ALL_RUNTIMES.includes(runtime)) throw new Error(`unknown runtime ${runtime}`);
const repeat = Number(opts.repeat);

/** The default --max-body-size (32 MiB). */
const MAX_BODY = 33_554_432;

const hi = '{"role":"user","content":"hi"}';
const repeatJoin = (item: string, n: number) => Array(n).fill(item).join(",");
/** A body whose `messages` end in a user turn, `extra` fields before them. */
const body = (messages: string, extra = "") =>
  `{"model":"sonnet",${extra}"messages":[${messages}]}`;

/** A body of exactly `size` bytes: one user message whose text fills it with `unit`. */
function fullBody(size: number, unit: string): string {
  const shell = body('{"role":"user","content":""}');
  const unitBytes = Buffer.byteLength(unit);
  const room = Math.floor((size - Buffer.byteLength(shell)) / unitBytes);
  return body(`{"role":"user","content":"${unit.repeat(room)}"}`);
}

/**
 * The body `make(n)` with the largest `n` whose JSON values stay within {@link MAX_JSON_VALUES}
 * (the count grows linearly with `n`).
 */
function atValueCap(make: (n: number) => string, measure = allValues): string {
  const one = measure(make(1));
  const slope = measure(make(2)) - one;
  return make(Math.floor((MAX_JSON_VALUES - one) / slope) + 1);
}

function allValues(text: string): number {
  return countJsonValues(text, Number.POSITIVE_INFINITY);
}

/** The body's values plus those of every tool call's arguments (they share the budget). */
function withArguments(text: string): number {
  const request = JSON.parse(text) as {
    messages: Array<{ tool_calls?: Array<{ function: { arguments: string } }> }>;
  };
  const calls = request.messages.flatMap((message) => message.tool_calls ?? []);
  return calls.reduce((sum, call) => sum + allValues(call.function.arguments), allValues(text));
}

/** `n` messages of `partsEach` text parts each. */
function messagesOfParts(n: number, partsEach: number): string {
  const part = '{"type":"text","text":"a"}';
  const message = `{"role":"user","content":[${repeatJoin(part, partsEach)}]}`;
  return repeatJoin(message, n);
}

const call = (args: string) =>
  `{"id":"c1","type":"function","function":{"name":"f","arguments":${JSON.stringify(args)}}}`;
const tool = (i: number) =>
  `{"type":"function","function":{"name":"t${i}","parameters":{"type":"object","properties":{"q":{"type":"string"}}}}}`;

/** The bodies: name, text, the status expected. */
const cases: Array<{ name: string; text: string; status: number }> = [
  // What issue 9 sent: refused before JSON.parse.
  {
    name: "15M elements in messages (30 MB)",
    text: body(repeatJoin("1", 15_000_000)),
    status: 400,
  },
  {
    name: "2.5M {role:x} messages",
    text: body(repeatJoin('{"role":"x"}', 2_500_000)),
    status: 400,
  },
  // The worst the bounds allow.
  {
    name: "{} in an unknown field, values at the cap",
    text: atValueCap((n) => body(hi, `"metadata":[${repeatJoin("{}", n)}],`)),
    status: 200,
  },
  {
    name: "1 in an unknown field, values at the cap",
    text: atValueCap((n) => body(hi, `"metadata":[${repeatJoin("1", n)}],`)),
    status: 200,
  },
  {
    name: `${MAX_MESSAGES} messages of text parts, values at the cap`,
    text: body(messagesOfParts(MAX_MESSAGES, 1), `"metadata":[${repeatJoin("[]", 60_000)}],`),
    status: 200,
  },
  {
    name: "text parts in one message up to the cap, values at the cap",
    text: atValueCap((n) =>
      body(
        repeatJoin(
          `{"role":"user","content":[${repeatJoin('{"type":"text","text":"a"}', MAX_CONTENT_PARTS)}]}`,
          n,
        ),
      ),
    ),
    status: 200,
  },
  {
    name: `${MAX_MESSAGES} bad messages`,
    text: body(repeatJoin('{"role":"x"}', MAX_MESSAGES)),
    status: 400,
  },
  {
    name: `${MAX_MESSAGES} messages of ${MAX_CONTENT_PARTS / 50} bad parts`,
    text: body(
      repeatJoin(
        `{"role":"user","content":[${repeatJoin('{"type":"x"}', MAX_CONTENT_PARTS / 50)}]}`,
        MAX_MESSAGES,
      ),
    ),
    status: 400,
  },
  {
    name: `${MAX_TOOLS} tools, ${MAX_TOOL_CALLS} tool calls, arguments: values at the cap`,
    text: atValueCap(
      (n) =>
        body(
          [
            hi,
            `{"role":"assistant","content":null,"tool_calls":[${[
              call(`{"a":[${repeatJoin("{}", n)}]}`),
              ...Array(MAX_TOOL_CALLS - 1).fill(call("{}")),
            ].join(",")}]}`,
            '{"role":"tool","tool_call_id":"c1","content":"ok"}',
            hi,
          ].join(","),
          `"tools":[${Array.from({ length: MAX_TOOLS }, (_, i) => tool(i)).join(",")}],`,
        ),
      withArguments,
    ),
    status: 200,
  },
  { name: "32 MiB body, one ASCII string", text: fullBody(MAX_BODY, "x"), status: 200 },
  { name: "32 MiB body, one non-Latin-1 string", text: fullBody(MAX_BODY, "😀"), status: 200 },
  {
    name: "32 MiB body of escapes (\\u0041)",
    text: fullBody(MAX_BODY, "\\u0041"),
    status: 200,
  },
];

// A stub in place of claude: answers --version, then the recorded text answer to any turn.
const dirs = await makeE2eDirs("claude-openai-proxy-memory-");
const fixture = join(repoRoot, "test", "fixtures", "cli", "text.jsonl");
const stub = join(dirs.root, "stub", "claude");
await mkdir(join(dirs.root, "stub"), { recursive: true });
writeFileSync(
  stub,
  [
    "#!/bin/sh",
    'if [ "$1" = "--version" ]; then echo "2.1.332 (Claude Code)"; exit 0; fi',
    "head -c 1 > /dev/null",
    `cat '${fixture}'`,
    "cat > /dev/null",
    "",
  ].join("\n"),
);
await chmod(stub, 0o755);

const proxy = await startProxy(runtime, {
  env: proxyEnv("http://127.0.0.1:1", { home: dirs.home, tmp: dirs.tmp }, { CLAUDE_PATH: stub }),
});
const pid = servingPid(proxy);
const health = `${proxy.url.replace(/\/v1$/, "")}/health`;

/** The peak RSS since the last reset, KiB (VmHWM). */
function peakKiB(): number | null {
  const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match?.[1] === undefined ? null : Number(match[1]);
}
/** Resets the peak RSS to the current RSS (clear_refs 5); false when not allowed. */
function resetPeak(): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls /health every `intervalMs` from a worker thread (this thread is busy sending the body)
 * until stopped; the longest answer, ms.
 */
function pollHealth(intervalMs: number): { stop: () => Promise<number> } {
  const worker = new Worker(
    `const { parentPort, workerData } = require("node:worker_threads");
     let running = true, longest = 0;
     parentPort.on("message", () => { running = false; });
     (async () => {
       while (running) {
         const t0 = performance.now();
         await fetch(workerData.url).then((r) => r.arrayBuffer());
         longest = Math.max(longest, performance.now() - t0);
         await new Promise((resolve) => setTimeout(resolve, workerData.intervalMs));
       }
       parentPort.postMessage(longest);
     })();`,
    { eval: true, workerData: { url: health, intervalMs } },
  );
  return {
    stop: async () => {
      const result = new Promise<number>((resolve) => worker.once("message", resolve));
      worker.postMessage("stop");
      const longest = await result;
      await worker.terminate();
      return longest;
    },
  };
}

const mib = (kib: number | null) => (kib === null ? "?" : (kib / 1024).toFixed(0));
console.log(`runtime ${runtime}, proxy pid ${pid}, idle RSS ${mib(vmRssKiB(pid))} MiB`);
const idle = pollHealth(10);
await new Promise((resolve) => setTimeout(resolve, 1000));
console.log(`idle: longest /health ${(await idle.stop()).toFixed(0)} ms`);
const canReset = resetPeak();
if (!canReset) console.log("(cannot reset the peak RSS: peaks are since start)");

let failed = false;
console.log(
  "| body | size | status | answer ms | peak RSS MiB | longest /health ms | count+parse+validate ms |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- |");
for (const c of cases) {
  if (opts.only !== undefined && !c.name.includes(opts.only)) continue;
  for (let i = 0; i < repeat; i++) {
    resetPeak();
    const before = vmRssKiB(pid);
    const poll = pollHealth(10);
    const t0 = performance.now();
    let status = 0;
    try {
      const response = await fetch(`${proxy.url}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: c.text,
      });
      status = response.status;
      await response.arrayBuffer();
    } catch (error) {
      console.log(`  ${c.name}: ${String(error)}`);
    }
    const ms = performance.now() - t0;
    const longest = await poll.stop();
    if (status !== c.status) failed = true;
    const bytes = Buffer.byteLength(c.text);
    // The proxy's own first step, timed here in this process (tsx on Node).
    const p0 = performance.now();
    try {
      parseChatCompletionBody(c.text);
    } catch {
      // refused: timed all the same
    }
    const parseMs = performance.now() - p0;
    console.log(
      `| ${c.name} | ${(bytes / 1048576).toFixed(1)} MiB | ${status}${status === c.status ? "" : ` (expected ${c.status})`} | ${ms.toFixed(0)} | ${mib(before)} → ${mib(peakKiB())} | ${longest.toFixed(0)} | ${parseMs.toFixed(0)} |`,
    );
  }
}
console.log(`after: RSS ${mib(vmRssKiB(pid))} MiB`);
await proxy.stop();
await dirs.cleanup();
if (failed) process.exitCode = 1;
