/**
 * The dashboard (`GET /`), end to end. On every selected runtime (the compiled binary too): the
 * page and its embedded assets are served with their types and security headers, from the
 * program alone, and under the Host guard. On Node, in a real headless Chromium driven by
 * playwright-core: after a few requests through each surface (the real pinned CLI against the
 * fake Anthropic API) the page shows the figures of `/v1/usage` and `/health`, the recent
 * requests without any prompt text, updates by itself, breaks no Content-Security-Policy rule;
 * with `--api-key` it asks for a key, refuses a wrong one and keeps the right one in
 * sessionStorage, never in the URL.
 *
 * Chromium: `CHROMIUM_PATH`, a system Chromium/Chrome, or Debian's `chromium` installed by
 * test/e2e/chromium.ts when running as root with apt-get (a fresh CI machine); otherwise the
 * browser cases are skipped with the reason. The screenshot goes to the test's temp dir, or to
 * `DASHBOARD_SCREENSHOT` when set (`npx tsx scripts/screenshot.ts` writes docs/dashboard.png).
 */
import { copyFile, mkdir } from "node:fs/promises";
import http from "node:http";
import { join } from "node:path";
import OpenAI from "openai";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeAnthropic,
  type FakeReply,
  lastUserText,
  startFakeAnthropic,
  unifiedHeaders,
} from "../fixtures/fake-anthropic.ts";
import { CHROMIUM_ARGS, type ChromiumLookup, findOrInstallChromium } from "./chromium.ts";
import {
  type E2eDirs,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  RUNTIMES,
  startProxy,
  waitForNoClaude,
} from "./harness.ts";

/** A prompt text that must never reach the page. */
const SECRET_PROMPT = "dashboard-secret-prompt-7c1f";

let fake: FakeAnthropic;
let dirs: E2eDirs;
/** The `anthropic-ratelimit-unified-*` headers the fake sends with its answers (none: undefined). */
let limitHeaders: Record<string, string> | undefined;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  dirs = await makeE2eDirs("claude-openai-proxy-dashboard-");
  // Token counts that differ per model, so that a mix-up shows.
  fake.setHandler((req): FakeReply => {
    const model = String(req.body?.model ?? "");
    const input = model.includes("haiku") ? 40 : model.includes("opus") ? 300 : 120;
    return {
      content: [{ type: "text", text: `echo: ${lastUserText(req.body).slice(0, 20)}` }],
      usage: { input_tokens: input, output_tokens: 25, cache_read_input_tokens: 8 },
      ...(limitHeaders === undefined ? {} : { headers: limitHeaders }),
    };
  });
});

afterAll(async () => {
  await fake?.close();
  await dirs?.cleanup();
});

async function proxyOn(
  runtime: ProxyProcess["runtime"],
  name: string,
  args: readonly string[] = [],
): Promise<ProxyProcess> {
  const tmp = join(dirs.tmp, name);
  const home = join(dirs.home, name);
  await mkdir(tmp, { recursive: true });
  await mkdir(home, { recursive: true });
  return startProxy(runtime, { env: proxyEnv(fake.url, { home, tmp }), args });
}

/** The `src` and `href` values of the page's scripts and stylesheets. */
function assetUrls(html: string): string[] {
  return [...html.matchAll(/<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"/g)]
    .map((m) => m[1] ?? "")
    .filter((url) => url.startsWith("dashboard/"));
}

/** The status of `GET path` sent with this `Host` header (fetch does not let one set it). */
function statusWithHost(port: number, path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port, path, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    request.on("error", reject);
    request.end();
  });
}

describe.each(RUNTIMES)("dashboard assets on %s", (runtime) => {
  let proxy: ProxyProcess;

  beforeAll(async () => {
    proxy = await proxyOn(runtime, `assets-${runtime}`, ["--api-key", "k-assets"]);
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  it("serves the page and every asset it names, with their types and security headers, without a key", async () => {
    const page = await fetch(`${proxy.origin}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await page.text();
    expect(html).toContain("<title>claude-openai-proxy</title>");
    const urls = assetUrls(html);
    expect(urls.sort()).toEqual([
      "dashboard/assets/dashboard.css",
      "dashboard/assets/dashboard.js",
      "dashboard/assets/uplot.css",
      "dashboard/assets/uplot.js",
    ]);
    for (const url of urls) {
      const response = await fetch(`${proxy.origin}/${url}`);
      expect(response.status, url).toBe(200);
      expect(response.headers.get("content-type"), url).toMatch(
        url.endsWith(".js") ? /^text\/javascript/ : /^text\/css/,
      );
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect((await response.text()).length).toBeGreaterThan(1000);
    }
    expect((await fetch(`${proxy.origin}/dashboard/assets/nope.js`)).status).toBe(404);
  });

  it("keeps its data behind the key and the page behind the Host guard", async () => {
    expect((await fetch(`${proxy.origin}/dashboard/requests`)).status).toBe(401);
    expect((await fetch(`${proxy.origin}/v1/usage?group_by=hour`)).status).toBe(401);
    const withKey = await fetch(`${proxy.origin}/dashboard/requests`, {
      headers: { authorization: "Bearer k-assets" },
    });
    expect(await withKey.json()).toEqual({ object: "list", data: [] });
    // DNS rebinding: a page of another site resolving to 127.0.0.1.
    expect(await statusWithHost(proxy.port, "/", `evil.example:${proxy.port}`)).toBe(403);
    expect(await statusWithHost(proxy.port, "/", `localhost:${proxy.port}`)).toBe(200);
    const crossSite = await fetch(`${proxy.origin}/dashboard/requests`, {
      headers: { origin: "https://evil.example", authorization: "Bearer k-assets" },
    });
    expect(crossSite.status).toBe(403);
  });
});

/** The digits of a figure as the page shows it ("1,234" -> 1234). */
function figure(text: string | null): number {
  return Number((text ?? "").replace(/[^\d]/g, ""));
}

interface UsageFigures {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
}
interface UsageTotals extends UsageFigures {
  by_model: Record<string, UsageFigures>;
  by_surface: Record<string, UsageFigures>;
}
interface UsageSeries {
  buckets: Array<UsageFigures & { start: string; by_model: Record<string, UsageFigures> }>;
}
interface Health {
  claude: { version: string };
  processes: Record<string, number>;
  limits?: {
    updated_at: string | null;
    windows: Array<{ type: string; utilization: number | null; resets_at: string | null }>;
  };
}

async function getJson<T>(proxy: ProxyProcess, path: string, key?: string): Promise<T> {
  const headers: Record<string, string> =
    key === undefined ? {} : { authorization: `Bearer ${key}` };
  const response = await fetch(`${proxy.origin}${path}`, { headers });
  expect(response.status, path).toBe(200);
  return (await response.json()) as T;
}

/** Sends one request through each surface (and a streamed one), `key` as the API key. */
async function sendRequests(proxy: ProxyProcess, key = "unused"): Promise<void> {
  const client = new OpenAI({ baseURL: proxy.url, apiKey: key, maxRetries: 0, timeout: 60_000 });
  await client.chat.completions.create({
    model: "sonnet",
    messages: [{ role: "user", content: `${SECRET_PROMPT} one` }],
  });
  const stream = await client.chat.completions.create({
    model: "haiku",
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: "user", content: `${SECRET_PROMPT} two` }],
  });
  for await (const _ of stream) {
    // drain
  }
  await client.responses.create({ model: "opus", input: `${SECRET_PROMPT} three` });
  const messages = await fetch(`${proxy.url}/messages`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-api-key": key,
      "anthropic-version": "2023-06-01",
    },
    body: JSON.stringify({
      model: "claude-haiku-4-5",
      max_tokens: 100,
      messages: [{ role: "user", content: `${SECRET_PROMPT} four` }],
    }),
  });
  expect(messages.status).toBe(200);
}

const chromiumLookup: { value: ChromiumLookup | null } = { value: null };
const browserEnabled = RUNTIMES.includes("node");

describe.runIf(browserEnabled)("dashboard in Chromium", () => {
  let browser: Browser | null = null;
  let skipReason = "";

  beforeAll(async () => {
    chromiumLookup.value = findOrInstallChromium();
    const lookup = chromiumLookup.value;
    if (!lookup.ok) {
      skipReason = lookup.reason;
      console.warn(`[e2e dashboard] browser cases skipped: ${skipReason}`);
      return;
    }
    browser = await chromium.launch({ executablePath: lookup.path, args: CHROMIUM_ARGS });
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
  });

  /** A fresh page that records console errors and CSP violations. */
  async function openPage(url: string): Promise<{ page: Page; problems: string[] }> {
    if (browser === null) throw new Error("no browser");
    const context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      colorScheme: "light",
      locale: "en-US",
    });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    page.on("pageerror", (error) => problems.push(error.message));
    await page.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (event) => {
        console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
      });
    });
    await page.goto(url);
    return { page, problems };
  }

  describe("without API keys", () => {
    let proxy: ProxyProcess;

    beforeAll(async () => {
      if (browser === null) return;
      proxy = await proxyOn("node", "browser-open");
      // The subscription state a real API reports: the page shows it with its reset times.
      const now = Math.floor(Date.now() / 1000);
      limitHeaders = unifiedHeaders({
        status: "allowed",
        claim: "five_hour",
        resetsAt: now + 2 * 3600 + 13 * 60,
        windows: {
          "5h": { utilization: 0.42, resetsAt: now + 2 * 3600 + 13 * 60, status: "allowed" },
          "7d": { utilization: 0.18, resetsAt: now + 3 * 86_400, status: "allowed" },
        },
      });
      await sendRequests(proxy);
    });

    afterAll(async () => {
      limitHeaders = undefined;
      await proxy?.stop();
      if (proxy !== undefined) await waitForNoClaude({ pid: proxy.process.pid });
    });

    it("shows the figures of /v1/usage and /health, the recent requests, and updates live", async (ctx) => {
      if (browser === null) ctx.skip(skipReason);
      const { page, problems } = await openPage(`${proxy.origin}/`);
      const totals = await getJson<UsageTotals>(proxy, "/v1/usage");
      expect(totals.requests).toBe(4);
      await expect
        .poll(() => page.textContent("#total-requests"), { timeout: 15_000 })
        .toBe(String(totals.requests));
      expect(figure(await page.textContent("#total-prompt"))).toBe(totals.prompt_tokens);
      expect(figure(await page.textContent("#total-completion"))).toBe(totals.completion_tokens);
      expect(figure(await page.textContent("#total-cached"))).toBe(totals.cached_tokens);

      // Totals by model and by surface: one row each, the same figures.
      for (const [table, map] of [
        ["#by-model", totals.by_model],
        ["#by-surface", totals.by_surface],
      ] as const) {
        const rows = await page.$$eval(`${table} tbody tr`, (trs) =>
          trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")),
        );
        expect(rows.map((r) => r[0]).sort()).toEqual(Object.keys(map).sort());
        for (const row of rows) {
          const f = map[row[0] ?? ""];
          expect([figure(row[1] ?? ""), figure(row[2] ?? ""), figure(row[3] ?? "")]).toEqual([
            f?.requests,
            f?.prompt_tokens,
            f?.completion_tokens,
          ]);
        }
      }
      expect(Object.keys(totals.by_surface).sort()).toEqual(["chat", "messages", "responses"]);

      // The charts' table: the hour series, per model.
      const series = await getJson<UsageSeries>(proxy, "/v1/usage?group_by=hour");
      const expected = series.buckets.flatMap((b) =>
        Object.entries(b.by_model).map(([model, f]) => [
          b.start,
          model,
          f.requests,
          f.prompt_tokens,
        ]),
      );
      await page.click("details > summary");
      const shown = await page.$$eval("#series-table tbody tr", (trs) =>
        trs.map((tr) => {
          const cells = [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "");
          return [tr.getAttribute("data-start"), cells[1], cells[2], cells[3]];
        }),
      );
      expect(
        shown.map(([start, model, requests, prompt]) => [
          start,
          model,
          figure(requests ?? ""),
          figure(prompt ?? ""),
        ]),
      ).toEqual(expected);
      expect(await page.locator("#tokens-chart canvas").count()).toBeGreaterThan(0);
      expect(await page.locator("#requests-chart canvas").count()).toBeGreaterThan(0);

      // Processes and the CLI, as /health reports them (0 for a state it does not report);
      // a spare may start meanwhile: compare until the page has caught up.
      const states = ["busy", "parked", "warm", "spare", "queued"];
      let health = await getJson<Health>(proxy, "/health");
      await expect
        .poll(
          async () => {
            health = await getJson<Health>(proxy, "/health");
            const shown: number[] = [];
            for (const state of states)
              shown.push(figure(await page.textContent(`#proc-${state}`)));
            return (
              shown.join(",") === states.map((state) => health.processes[state] ?? 0).join(",")
            );
          },
          { timeout: 20_000, interval: 500 },
        )
        .toBe(true);
      expect(await page.textContent("#cli-version")).toContain(health.claude.version);
      // The limits /health reports, each window with its utilization and reset time.
      const windows = health.limits?.windows ?? [];
      expect(windows.map((w) => w.type)).toEqual(["five_hour", "seven_day"]);
      const shownWindows = await page.$$eval("#limits .window", (divs) =>
        divs.map((div) => [
          div.getAttribute("data-window"),
          div.querySelector(".utilization")?.textContent ?? "",
          div.textContent ?? "",
        ]),
      );
      expect(shownWindows.map(([type, used]) => [type, used])).toEqual(
        windows.map((w) => [w.type, `${Math.round((w.utilization ?? 0) * 100)}% used`]),
      );
      expect(shownWindows[0]?.[2]).toMatch(/resets in 2 h 1[23] min/);
      expect(shownWindows[1]?.[2]).toMatch(/resets in (2 d 23 h|3 d 0 h)/);

      // Recent requests: one row per request, newest first, and no prompt text anywhere.
      const recent = await page.$$eval("#recent tbody tr", (trs) =>
        trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")),
      );
      expect(recent.map((r) => [r[1], r[3]])).toEqual([
        ["messages", "200"],
        ["responses", "200"],
        ["chat", "200"],
        ["chat", "200"],
      ]);
      expect(await page.content()).not.toContain(SECRET_PROMPT);

      // A new request shows up by itself (the page polls).
      await sendRequests(proxy);
      await expect.poll(() => page.textContent("#total-requests"), { timeout: 15_000 }).toBe("8");
      await expect
        .poll(() => page.locator("#recent tbody tr").count(), { timeout: 15_000 })
        .toBe(8);

      // Per day: the same totals in the current day's bucket.
      await page.selectOption("#group-by", "day");
      await expect.poll(() => page.textContent("#tokens-caption")).toContain("per day");

      await page.selectOption("#group-by", "hour");
      await page.click("details > summary"); // closed again for the picture
      await page.waitForTimeout(300);
      const file = join(dirs.root, "dashboard.png");
      console.log(`[e2e dashboard] screenshot: ${file}`);
      await page.screenshot({ path: file, fullPage: true });
      const target = process.env.DASHBOARD_SCREENSHOT;
      if (target !== undefined && target !== "") await copyFile(file, target);
      expect(problems).toEqual([]);
      await page.context().close();
    });
  });

  describe("with API keys", () => {
    const KEY = "sk-dashboard-e2e";
    let proxy: ProxyProcess;

    beforeAll(async () => {
      if (browser === null) return;
      proxy = await proxyOn("node", "browser-keys", ["--api-key", KEY]);
      await sendRequests(proxy, KEY);
    });

    afterAll(async () => {
      await proxy?.stop();
      if (proxy !== undefined) await waitForNoClaude({ pid: proxy.process.pid });
    });

    it("asks for a key, refuses a wrong one, keeps the right one for the tab and sends it as Bearer", async (ctx) => {
      if (browser === null) ctx.skip(skipReason);
      const { page, problems } = await openPage(`${proxy.origin}/`);
      await expect.poll(() => page.isVisible("#key-prompt"), { timeout: 15_000 }).toBe(true);
      expect(await page.isVisible("#dashboard")).toBe(false);

      await page.fill("#key-input", "wrong-key");
      await page.click("#key-form button[type=submit]");
      await expect
        .poll(() => page.textContent("#key-error"), { timeout: 15_000 })
        .toBe("That key was not accepted");
      expect(await page.isVisible("#dashboard")).toBe(false);

      const authorizations: string[] = [];
      page.on("request", (request) => {
        const auth = request.headers().authorization;
        if (auth !== undefined) authorizations.push(auth);
      });
      await page.fill("#key-input", KEY);
      await page.click("#key-form button[type=submit]");
      const totals = await getJson<UsageTotals>(proxy, "/v1/usage", KEY);
      await expect
        .poll(() => page.textContent("#total-requests"), { timeout: 15_000 })
        .toBe(String(totals.requests));
      expect(await page.isVisible("#key-prompt")).toBe(false);
      // This fake reported no subscription state.
      expect(await page.textContent("#limits")).toContain("No data yet");
      expect(new Set(authorizations)).toEqual(new Set([`Bearer ${KEY}`]));
      expect(page.url()).toBe(`${proxy.origin}/`);
      expect(await page.evaluate(() => sessionStorage.length)).toBe(1);
      expect(await page.evaluate(() => localStorage.length)).toBe(0);

      // A reload in the same tab keeps the key; a new session asks again.
      await page.reload();
      await expect
        .poll(() => page.textContent("#total-requests"), { timeout: 15_000 })
        .toBe(String(totals.requests));
      const other = await openPage(`${proxy.origin}/`);
      await expect.poll(() => other.page.isVisible("#key-prompt"), { timeout: 15_000 }).toBe(true);

      // Forgetting the key brings the prompt back.
      await page.click("#forget-key");
      expect(await page.isVisible("#key-prompt")).toBe(true);
      expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
      // 401s of the wrong key are console errors of the browser's own; nothing else may fail.
      expect(problems.filter((p) => !p.includes("401"))).toEqual([]);
      expect(other.problems.filter((p) => !p.includes("401"))).toEqual([]);
      await page.context().close();
      await other.page.context().close();
    });
  });
});
