/**
 * Issue 9 findings 1, 10, 11, 12 and 14 against the proxy as a real process, on every selected
 * runtime (E2E_RUNTIMES): a 30 MB body of 15 million elements and 2.5 million bad messages are
 * refused at once and the process lives on; array caps; model names that are Object.prototype's
 * keys; an `--api-key` holding a comma; an `API_KEYS` that holds no key; `/health` without a
 * key; and (Node) usage recorded for a run cut off by the request timeout.
 */
import { spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_MESSAGES } from "../../src/http/json.ts";
import { type FakeAnthropic, startFakeAnthropic } from "../fixtures/fake-anthropic.ts";
import { servingPid, vmRssKiB, waitForLeftovers } from "./fault-helpers.ts";
import {
  type E2eDirs,
  type E2eRuntime,
  makeE2eDirs,
  type ProxyProcess,
  proxyCommand,
  proxyEnv,
  RUNTIMES,
  repoRoot,
  startProxy,
} from "./harness.ts";

let fake: FakeAnthropic;
let dirs: E2eDirs;
const proxies: ProxyProcess[] = [];

beforeAll(async () => {
  fake = await startFakeAnthropic();
  dirs = await makeE2eDirs("claude-openai-proxy-bounds-");
});

afterAll(async () => {
  await Promise.all(proxies.map((proxy) => proxy.stop()));
  await fake?.close();
  await dirs?.cleanup();
});

async function boundsProxy(
  runtime: E2eRuntime,
  name: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<ProxyProcess> {
  const tmp = join(dirs.tmp, `${runtime}-${name}`);
  await mkdir(tmp, { recursive: true });
  const proxy = await startProxy(runtime, {
    env: proxyEnv(fake.url, { home: dirs.home, tmp }, env),
    args,
  });
  proxies.push(proxy);
  return proxy;
}

function post(proxy: ProxyProcess, body: string, headers: Record<string, string> = {}) {
  return fetch(`${proxy.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

async function errorOf(response: Response): Promise<{ code: string; param: string | null }> {
  const body = (await response.json()) as { error: { code: string; param: string | null } };
  return body.error;
}

const hi = '{"role":"user","content":"hi"}';

if (RUNTIMES.length === 0) {
  describe("bounds e2e", () => {
    it.skip("no runtime selected (E2E_RUNTIMES)", () => {});
  });
}

for (const runtime of RUNTIMES) {
  describe(`issue 9 bounds and defaults on ${runtime}`, () => {
    let proxy: ProxyProcess;
    beforeAll(async () => {
      proxy = await boundsProxy(runtime, "open", []);
    });

    it("refuses 15 M elements (30 MB) and 2.5 M bad messages at once; the process lives on", {
      timeout: 60_000,
    }, async () => {
      const bodies = [
        `{"model":"sonnet","messages":[${"1,".repeat(15_000_000)}1]}`,
        `{"model":"sonnet","messages":[${'{"role":"x"},'.repeat(2_500_000)}{"role":"x"}]}`,
      ];
      for (const body of bodies) {
        const t0 = performance.now();
        const response = await post(proxy, body);
        expect(response.status).toBe(400);
        expect((await errorOf(response)).code).toBe("too_many_values");
        // Before: Node died of "heap out of memory" after 52 s; 16 s of blocked event loop.
        expect(performance.now() - t0).toBeLessThan(20_000);
      }
      const health = await fetch(`${proxy.url.replace(/\/v1$/, "")}/health`);
      expect(health.status).toBe(200);
      const rss = vmRssKiB(servingPid(proxy));
      if (rss !== null) expect(rss).toBeLessThan(1024 * 1024);
    });

    it("refuses 200 k messages, 10,001 messages and 3,000 tools with a clean 400", async () => {
      // 200 k messages hold 1.4 M values: refused before JSON.parse.
      const many = await post(
        proxy,
        `{"model":"sonnet","messages":[${Array(200_000).fill(hi).join(",")}]}`,
      );
      expect(many.status).toBe(400);
      expect((await errorOf(many)).code).toBe("too_many_values");
      const messages = await post(
        proxy,
        `{"model":"sonnet","messages":[${Array(MAX_MESSAGES + 1)
          .fill(hi)
          .join(",")}]}`,
      );
      expect(messages.status).toBe(400);
      expect(await errorOf(messages)).toMatchObject({
        code: "array_above_max_length",
        param: "messages",
      });
      const tool = '{"type":"function","function":{"name":"f"}}';
      const tools = await post(
        proxy,
        `{"model":"sonnet","messages":[${hi}],"tools":[${Array(3_000).fill(tool).join(",")}]}`,
      );
      expect(tools.status).toBe(400);
      expect(await errorOf(tools)).toMatchObject({
        code: "array_above_max_length",
        param: "tools",
      });
    });

    it("model constructor / __proto__ → 404 model_not_found, never 500", async () => {
      for (const model of ["constructor", "__proto__"]) {
        const chat = await post(proxy, `{"model":"${model}","messages":[${hi}]}`);
        expect(chat.status, model).toBe(404);
        expect((await errorOf(chat)).code).toBe("model_not_found");
        const lookup = await fetch(`${proxy.url}/models/${model}`);
        expect(lookup.status, model).toBe(404);
      }
    });

    it("--api-key 'Str0ngSecret,1' is one key: Bearer 1 → 401; /health says only its status without it", async () => {
      const keyed = await boundsProxy(runtime, "keyed", ["--api-key", "Str0ngSecret,1"]);
      const models = (key: string) =>
        fetch(`${keyed.url}/models`, { headers: { authorization: `Bearer ${key}` } });
      expect((await models("1")).status).toBe(401);
      expect((await models("Str0ngSecret")).status).toBe(401);
      expect((await models("Str0ngSecret,1")).status).toBe(200);
      const health = `${keyed.url.replace(/\/v1$/, "")}/health`;
      expect(await (await fetch(health)).json()).toEqual({ status: "ok" });
      const full = (await (
        await fetch(health, { headers: { authorization: "Bearer Str0ngSecret,1" } })
      ).json()) as Record<string, unknown>;
      expect(full).toHaveProperty("claude.found", true);
      expect(full).toHaveProperty("runtime.name");
    });

    it("API_KEYS=' , ' is a start-up error (exit 2), not 'no auth'", {
      timeout: 60_000,
    }, async () => {
      const tmp = join(dirs.tmp, `${runtime}-empty-keys`);
      await mkdir(tmp, { recursive: true });
      const [program, ...args] = proxyCommand(runtime);
      const child = spawn(program ?? "", [...args, "--port", "0"], {
        cwd: runtime === "binary" ? tmp : repoRoot,
        env: proxyEnv(fake.url, { home: dirs.home, tmp }, { API_KEYS: " , " }),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => {
        output += d;
      });
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        output += d;
      });
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          resolve(null);
        }, 45_000);
        child.once("exit", (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      expect(code, output).toBe(2);
      expect(output).toContain("API_KEYS");
      expect(output).not.toContain("listening");
    });
  });
}

describe.skipIf(!RUNTIMES.includes("node"))("usage of a run cut off (node, finding 14)", () => {
  it("a request timeout records the tokens the API reported", { timeout: 60_000 }, async () => {
    const proxy = await boundsProxy("node", "cut-off", [
      "--request-timeout",
      "3000",
      "--kill-grace",
      "1000",
    ]);
    // ~40 deltas 250 ms apart: the timeout stops it after message_start (input tokens known).
    fake.script({
      content: [{ type: "text", text: "abc".repeat(40) }],
      chunkSize: 3,
      delayMs: 250,
      usage: { input_tokens: 1234 },
    });
    const response = await post(proxy, `{"model":"sonnet","messages":[${hi}]}`);
    expect(response.status).toBe(504);
    const usage = (await (await fetch(`${proxy.url}/usage`)).json()) as {
      requests: number;
      prompt_tokens: number;
    };
    expect(usage.requests).toBe(1);
    expect(usage.prompt_tokens).toBeGreaterThanOrEqual(1234);
    const left = await waitForLeftovers(join(dirs.tmp, "node-cut-off"), 5_000);
    expect(left).toEqual({ pids: [], files: [] });
  });
});
