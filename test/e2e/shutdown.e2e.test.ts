/**
 * Shutdown (issue 4): SIGTERM lets a running stream finish within the grace period, kills what
 * is still running after it, and exits 0 with no `claude` child and no temp dir left; a proxy
 * killed hard leaves no child running for long (its watchdog kills them). Signals are
 * runtime-specific: this runs on every selected runtime (E2E_SHUTDOWN_RUNTIMES overrides: a
 * comma-separated list).
 */
import type { ChildProcess } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeAnthropic,
  type FakeReply,
  startFakeAnthropic,
} from "../fixtures/fake-anthropic.ts";
import {
  chatBody,
  claudePids,
  hasContent,
  killAll,
  logLines,
  SseReader,
  servingPid,
  sseContent,
  sseData,
  waitNoClaude,
  waitUntil,
} from "./fault-helpers.ts";
import {
  type E2eDirs,
  type E2eRuntime,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  proxyTempDirs,
  RUNTIMES,
  selectedRuntimes,
  startProxy,
} from "./harness.ts";

const SHUTDOWN_RUNTIMES: readonly E2eRuntime[] =
  process.env.E2E_SHUTDOWN_RUNTIMES === undefined
    ? RUNTIMES
    : selectedRuntimes(process.env.E2E_SHUTDOWN_RUNTIMES).filter((r) => RUNTIMES.includes(r));

let fake: FakeAnthropic;
let dirs: E2eDirs;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  dirs = await makeE2eDirs("claude-openai-proxy-shutdown-");
});
afterAll(async () => {
  killAll(claudePids(dirs?.tmp ?? "/nonexistent"));
  await fake?.close();
  await dirs?.cleanup();
});

/** A reply that trickles: `count` text deltas of "abc" `delayMs` apart. */
function trickle(count: number, delayMs: number): FakeReply {
  return { content: [{ type: "text", text: "abc".repeat(count) }], chunkSize: 3, delayMs };
}

/** Resolves with the exit code (or signal) of a process, or "timeout". */
function exitOf(child: ChildProcess, timeoutMs: number): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve("timeout"), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal ?? "unknown");
    });
  });
}

if (SHUTDOWN_RUNTIMES.length === 0) {
  describe("shutdown", () => {
    it.skip("no runtime selected (E2E_RUNTIMES / E2E_SHUTDOWN_RUNTIMES)", () => {});
  });
}

for (const runtime of SHUTDOWN_RUNTIMES) {
  describe(`shutdown on ${runtime}`, () => {
    let proxy: ProxyProcess | undefined;
    let tmp: string;
    let counter = 0;

    async function start(
      args: readonly string[],
      env: Record<string, string> = {},
    ): Promise<ProxyProcess> {
      tmp = join(dirs.tmp, `${runtime}-${++counter}`);
      await mkdir(tmp, { recursive: true });
      proxy = await startProxy(runtime, {
        env: proxyEnv(fake.url, { home: dirs.home, tmp }, env),
        args: ["--kill-grace", "1000", ...args],
      });
      return proxy;
    }

    /** Starts a stream and reads until its first content delta. */
    async function streamStarted(p: ProxyProcess): Promise<SseReader> {
      const response = await fetch(`${p.url}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: chatBody("a slow answer please", { stream: true }),
      });
      expect(response.status).toBe(200);
      const sse = new SseReader(response);
      expect(await sse.until(hasContent)).toBe(true);
      expect(claudePids(tmp)).toHaveLength(1);
      return sse;
    }

    /**
     * Leaves a CLI process in each idle state of the pool: two warm ones (two first turns of
     * one system prompt and tool), a spare started for them, and a parked one (the second turn
     * called a tool and waits for its result). Returns their pids.
     */
    async function idleProcesses(p: ProxyProcess): Promise<number[]> {
      const tools = [
        { type: "function", function: { name: "lookup", parameters: { type: "object" } } },
      ];
      const post = async (content: string) => {
        const response = await fetch(`${p.url}/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            model: "sonnet",
            tools,
            messages: [
              { role: "system", content: "Be brief." },
              { role: "user", content },
            ],
          }),
        });
        expect(response.status).toBe(200);
        await response.json();
      };
      fake.script(
        { content: [{ type: "text", text: "one" }] },
        {
          content: [{ type: "tool_use", id: "toolu_sd_1", name: "mcp__client__lookup", input: {} }],
        },
      );
      await post("first");
      await post("second");
      const idle = await waitUntil(async () => {
        const health = (await (await fetch(`${p.origin}/health`)).json()) as {
          processes: { warm: number; spare: number; parked: number };
        };
        const { warm, spare, parked } = health.processes;
        return warm === 1 && spare === 1 && parked === 1 && claudePids(tmp).length === 3;
      }, 10_000);
      expect(idle, "a warm, a spare and a parked process").toBe(true);
      return claudePids(tmp);
    }

    it("SIGTERM with warm, spare and parked processes: all stopped at once, exit 0, nothing left", async () => {
      const p = await start([], { WARM_TTL_MS: "300000" });
      const pids = await idleProcesses(p);
      const exited = exitOf(p.process, 30_000);
      const t0 = performance.now();
      p.process.kill("SIGTERM");
      expect(await exited, p.stderr()).toBe(0);
      // Idle processes do not hold the grace period (10 s by default).
      expect(performance.now() - t0).toBeLessThan(8_000);
      const left = await waitNoClaude(tmp, 2_000);
      killAll(left);
      expect(left, `of ${pids.join(", ")}`).toEqual([]);
      expect(proxyTempDirs(tmp)).toEqual([]);
    });

    it("SIGKILL of the proxy with warm, spare and parked processes: the watchdog stops them all", async () => {
      const p = await start([], { WARM_TTL_MS: "300000" });
      await idleProcesses(p);
      process.kill(servingPid(p), "SIGKILL");
      const left = await waitNoClaude(tmp, 10_000);
      killAll(left);
      expect(left).toEqual([]);
      expect(await waitUntil(() => proxyTempDirs(tmp).length === 0, 5_000)).toBe(true);
    });

    afterEach(async () => {
      fake.reset();
      await proxy?.stop();
      proxy = undefined;
      killAll(claudePids(tmp));
    });

    it("SIGTERM during a stream: the stream finishes, no new work is taken, exit 0, nothing left", async () => {
      const p = await start([]);
      // ~3 s of answer, well within the default 10 s grace period.
      fake.script(trickle(12, 250));
      const sse = await streamStarted(p);
      const exited = exitOf(p.process, 30_000);
      p.process.kill("SIGTERM");
      // A new request while draining is refused (503 or a closed listener), and starts no CLI.
      await new Promise((r) => setTimeout(r, 300));
      const late = await fetch(`${p.url}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", connection: "close" },
        body: chatBody("too late"),
      }).then(
        (r) => r.status,
        () => "refused",
      );
      expect([503, "refused"]).toContain(late);
      const text = await sse.rest();
      expect(sseContent(text)).toBe("abc".repeat(12));
      expect(text).toContain('"finish_reason":"stop"');
      expect(sseData(text).at(-1)).toBe("[DONE]");
      expect(await exited, p.stderr()).toBe(0);
      expect(fake.requests).toHaveLength(1);
      expect(claudePids(tmp)).toEqual([]);
      expect(proxyTempDirs(tmp), "temp dir after exit").toEqual([]);
      expect(logLines(p).some((l) => l.msg === "stopped")).toBe(true);
    });

    it("--shutdown-grace 500 and a slower answer: the CLI is killed, the stream ends, exit 0", async () => {
      const p = await start(["--shutdown-grace", "500"]);
      // ~10 s of answer.
      fake.script(trickle(40, 250));
      const sse = await streamStarted(p);
      const exited = exitOf(p.process, 30_000);
      const t0 = performance.now();
      p.process.kill("SIGTERM");
      const text = await sse.rest();
      expect(sseContent(text).length).toBeLessThan(120);
      expect(text).not.toContain('"finish_reason":"stop"');
      const data = sseData(text);
      if (data.at(-1) === "[DONE]") {
        // The proper ending: an error frame saying why, then [DONE].
        const frame = JSON.parse(data.at(-2) ?? "{}") as { error?: { code?: string } };
        expect(frame.error?.code).toBe("shutting_down");
      }
      expect(await exited, p.stderr()).toBe(0);
      expect(performance.now() - t0).toBeLessThan(8_000);
      expect(claudePids(tmp)).toEqual([]);
      expect(proxyTempDirs(tmp), "temp dir after exit").toEqual([]);
    });

    if (runtime === "node") {
      it("a request queued for a slot when SIGTERM arrives gets 503 and starts no CLI", async () => {
        const p = await start(["--max-concurrency", "1", "--shutdown-grace", "500"]);
        fake.setHandler(() => trickle(40, 250));
        const sse = await streamStarted(p);
        const queued = fetch(`${p.url}/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: chatBody("queued"),
        }).then(
          async (r) => ({ status: r.status, body: await r.text() }),
          (error: unknown) => ({ status: 0, body: String(error) }),
        );
        let queuedNow = 0;
        const deadline = Date.now() + 10_000;
        while (queuedNow !== 1 && Date.now() < deadline) {
          const health = (await (await fetch(`${p.origin}/health`)).json()) as {
            processes: { queued: number };
          };
          queuedNow = health.processes.queued;
        }
        expect(queuedNow).toBe(1);
        const exited = exitOf(p.process, 30_000);
        p.process.kill("SIGTERM");
        await sse.rest();
        const answer = await queued;
        expect(answer.status, answer.body).toBe(503);
        expect(answer.body).toContain("shutting_down");
        expect(await exited, p.stderr()).toBe(0);
        // Only the first request reached the upstream: the queued one never started a CLI.
        expect(fake.requests).toHaveLength(1);
        const left = await waitNoClaude(tmp, 2_000);
        killAll(left);
        expect(left).toEqual([]);
        expect(proxyTempDirs(tmp)).toEqual([]);
      });
    }

    // Ctrl-C in a terminal sends SIGINT to the whole foreground process group; the CLI children
    // run in process groups of their own, so only the proxy hears it and lets them finish.
    it("Ctrl-C (SIGINT to the process group) during a stream: the stream finishes", async () => {
      const p = await start([]);
      fake.script(trickle(12, 250));
      const sse = await streamStarted(p);
      const exited = exitOf(p.process, 30_000);
      const group = p.process.pid;
      if (group === undefined) throw new Error("no pid");
      // startProxy makes the proxy lead its own process group, as a shell job is.
      process.kill(-group, "SIGINT");
      const text = await sse.rest();
      expect(await exited, p.stderr()).toBe(0);
      expect(claudePids(tmp)).toEqual([]);
      expect(sseContent(text)).toBe("abc".repeat(12));
      expect(sseData(text).at(-1)).toBe("[DONE]");
    });

    // The CLI alone would finish its turn although its stdin and stdout are gone (for ever when
    // the upstream hangs): the proxy's watchdog (src/claude/watchdog.ts) kills it.
    it("SIGKILL of the proxy mid-stream: no claude child outlives it by more than 10 s, temp dir removed", async () => {
      const p = await start([]);
      // ~25 s of answer.
      fake.script(trickle(100, 250));
      const sse = await streamStarted(p);
      const [child] = claudePids(tmp);
      const t0 = performance.now();
      process.kill(servingPid(p), "SIGKILL");
      await sse.rest();
      const left = await waitNoClaude(tmp, 10_000);
      killAll(left);
      expect(left, `claude ${child} still running 10 s after the proxy died`).toEqual([]);
      expect(await waitUntil(() => proxyTempDirs(tmp).length === 0, 5_000)).toBe(true);
      expect(performance.now() - t0).toBeLessThan(10_000);
    });
  });
}
