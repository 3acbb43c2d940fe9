/**
 * Connection and origin hardening (issue 9, findings 2, 8 and 9), on every runtime of
 * E2E_RUNTIMES, over raw sockets to 127.0.0.1 where the HTTP client would hide the framing:
 * foreign Host/Origin/Content-Type refused; chunked bodies and OPTIONS answered (they were 500s
 * on Node); slow bodies cut with 408; unauthenticated connections closed after their 401;
 * idle connections closed (Node, Deno: 5 s after an answer; Bun and its binary: silent ones,
 * while a quiet accepted answer is not cut).
 * Deno serves through its `node:http` layer like Node (`Deno.serve` would ignore
 * `Connection: close`: denoland/deno#9411), so the closing is checked there too.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeAnthropic, startFakeAnthropic } from "../fixtures/fake-anthropic.ts";
import { chatBody, waitForLeftovers } from "./fault-helpers.ts";
import {
  type E2eDirs,
  type E2eRuntime,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  RUNTIMES,
  startProxy,
} from "./harness.ts";

/** What a raw exchange saw. */
interface RawExchange {
  /** The status of the first response, or null. */
  status: number | null;
  /** Everything received. */
  text: string;
  /** Whether the server closed the connection before `waitMs` ran out. */
  closedByServer: boolean;
  /** ms from connecting to the close (or to giving up). */
  elapsedMs: number;
}

/** Options of {@link exchange}. */
interface ExchangeOptions {
  /** Written once connected (head and any body). */
  send?: string;
  /** Then one byte every this many ms until the connection ends. */
  trickleMs?: number;
  /** Give up (and close from this side) after this long. */
  waitMs: number;
}

/** One connection to 127.0.0.1:`port`: writes, optionally trickles, reads until closed. */
function exchange(port: number, options: ExchangeOptions): Promise<RawExchange> {
  return new Promise((resolve) => {
    const started = Date.now();
    let text = "";
    let trickle: ReturnType<typeof setInterval> | undefined;
    const socket = net.connect(port, "127.0.0.1", () => {
      if (options.send !== undefined) socket.write(options.send);
      if (options.trickleMs !== undefined) {
        trickle = setInterval(() => socket.write("x"), options.trickleMs);
      }
    });
    const done = (closedByServer: boolean) => {
      clearInterval(trickle);
      clearTimeout(timer);
      socket.destroy();
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({
        status: match?.[1] === undefined ? null : Number(match[1]),
        text,
        closedByServer,
        elapsedMs: Date.now() - started,
      });
    };
    const timer = setTimeout(() => done(false), options.waitMs);
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      text += d;
    });
    socket.on("error", () => {});
    socket.on("end", () => done(true));
    socket.on("close", () => done(true));
  });
}

/** The JSON body of the (single, Content-Length framed) response in `text`. */
function jsonBody(text: string): { error?: { code: string | null; message: string } } {
  return JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)) as {
    error?: { code: string | null; message: string };
  };
}

/** A request head (HTTP/1.1, CRLF). */
function head(lines: string[]): string {
  return `${lines.join("\r\n")}\r\n\r\n`;
}

const BODY_TIMEOUT_MS = 2_000;

let fake: FakeAnthropic;
let dirs: E2eDirs;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  dirs = await makeE2eDirs("claude-openai-proxy-hardening-");
});

afterAll(async () => {
  await fake?.close();
  await dirs?.cleanup();
});

describe.each(RUNTIMES.map((r) => [r]))("hardening on %s", (runtime: E2eRuntime) => {
  let proxy: ProxyProcess;
  const idleBound = runtime === "bun" || runtime === "binary";

  beforeAll(async () => {
    proxy = await startProxy(runtime, {
      env: proxyEnv(fake.url, dirs),
      args: [
        "--api-key",
        "k",
        "--body-timeout",
        String(BODY_TIMEOUT_MS),
        "--sse-ping-interval",
        "0",
      ],
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    const left = await waitForLeftovers(dirs.tmp, 5_000);
    expect(left.pids).toEqual([]);
  });

  it("finding 2: a foreign Host, a foreign Origin or a non-JSON body is refused; localhost works", async () => {
    const body = chatBody("from a web page");
    const upstreamBefore = fake.requests.length;
    const post = (host: string, extra: string[]) =>
      exchange(proxy.port, {
        send:
          head([
            "POST /v1/chat/completions HTTP/1.1",
            `Host: ${host}`,
            "Authorization: Bearer k",
            `Content-Length: ${Buffer.byteLength(body)}`,
            ...extra,
          ]) + body,
        waitMs: 10_000,
      });
    // The request of the finding: DNS rebinding plus a simple cross-site POST.
    const rebinding = await post(`attacker.example:${proxy.port}`, [
      "Origin: http://attacker.example",
      "Content-Type: text/plain",
    ]);
    expect(rebinding.status).toBe(403);
    expect(jsonBody(rebinding.text).error?.code).toBe("host_not_allowed");
    const crossSite = await post(`127.0.0.1:${proxy.port}`, [
      "Origin: http://attacker.example",
      "Content-Type: application/json",
    ]);
    expect(crossSite.status).toBe(403);
    expect(jsonBody(crossSite.text).error?.code).toBe("origin_not_allowed");
    const textPlain = await post(`127.0.0.1:${proxy.port}`, ["Content-Type: text/plain"]);
    expect(textPlain.status).toBe(415);
    expect(fake.requests).toHaveLength(upstreamBefore);
    for (const refused of [rebinding, crossSite, textPlain]) {
      expect(refused.closedByServer).toBe(true);
    }
    // A name that resolves to loopback is answered.
    const models = await fetch(`http://localhost:${proxy.port}/v1/models`, {
      headers: { authorization: "Bearer k" },
    });
    expect(models.status).toBe(200);
    await models.body?.cancel();
  });

  it("finding 8: a chunked body is served; OPTIONS gets 204 with Allow, a cross-origin preflight 403", async () => {
    const body = chatBody("chunked");
    const half = Math.floor(body.length / 2);
    const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
    const chunked = await exchange(proxy.port, {
      send:
        head([
          "POST /v1/chat/completions HTTP/1.1",
          `Host: 127.0.0.1:${proxy.port}`,
          "Authorization: Bearer k",
          "Content-Type: application/json",
          "Transfer-Encoding: chunked",
          "Connection: close",
        ]) +
        chunk(body.slice(0, half)) +
        chunk(body.slice(half)) +
        "0\r\n\r\n",
      waitMs: 60_000,
    });
    expect(chunked.status, chunked.text).toBe(200);
    expect(chunked.text).toContain("echo: chunked");

    const options = await fetch(`${proxy.url}/chat/completions`, { method: "OPTIONS" });
    expect(options.status).toBe(204);
    expect(options.headers.get("allow")).toBe("POST, OPTIONS");
    const preflight = await fetch(`${proxy.url}/chat/completions`, {
      method: "OPTIONS",
      headers: { origin: "http://a.example", "access-control-request-method": "POST" },
    });
    expect(preflight.status).toBe(403);
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    await preflight.body?.cancel();
  });

  it("finding 9: a body slower than --body-timeout gets 408 (and its connection is closed)", async () => {
    const slow = await exchange(proxy.port, {
      send: head([
        "POST /v1/chat/completions HTTP/1.1",
        `Host: 127.0.0.1:${proxy.port}`,
        "Authorization: Bearer k",
        "Content-Type: application/json",
        "Content-Length: 100000",
      ]),
      trickleMs: 200,
      waitMs: BODY_TIMEOUT_MS + 8_000,
    });
    expect(slow.status).toBe(408);
    expect(jsonBody(slow.text).error?.code).toBe("request_timeout");
    expect(slow.closedByServer).toBe(true);
    expect(slow.elapsedMs).toBeLessThan(BODY_TIMEOUT_MS + 3_000);
  });

  it("finding 9: unauthenticated connections are closed after their 401, trickling or idle", async () => {
    const post = head([
      "POST /v1/chat/completions HTTP/1.1",
      `Host: 127.0.0.1:${proxy.port}`,
      "Content-Type: application/json",
      "Content-Length: 100000",
    ]);
    const get = head(["GET /v1/models HTTP/1.1", `Host: 127.0.0.1:${proxy.port}`]);
    const exchanges = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        exchange(proxy.port, {
          send: i % 3 === 2 ? get : post,
          ...(i % 3 === 0 ? { trickleMs: 100 } : {}),
          waitMs: 4_000,
        }),
      ),
    );
    expect(exchanges.map((e) => e.status)).toEqual(exchanges.map(() => 401));
    expect(exchanges.filter((e) => !e.closedByServer)).toHaveLength(0);
    expect(Math.max(...exchanges.map((e) => e.elapsedMs))).toBeLessThan(3_000);
  });

  it.skipIf(idleBound)(
    "finding 9 (Node, Deno): a keep-alive connection idle after its answer is closed (5 s)",
    async () => {
      const idle = await exchange(proxy.port, {
        send: head([
          "GET /v1/models HTTP/1.1",
          `Host: 127.0.0.1:${proxy.port}`,
          "Authorization: Bearer k",
        ]),
        waitMs: 15_000,
      });
      expect(idle.status).toBe(200);
      expect(idle.closedByServer).toBe(true);
      expect(idle.elapsedMs).toBeGreaterThan(4_000);
      expect(idle.elapsedMs).toBeLessThan(10_000);
    },
    30_000,
  );

  it.skipIf(!idleBound)(
    "finding 9 (Bun): a silent connection is closed; a quiet accepted answer is not cut",
    async () => {
      // The answer: nothing for ~10 s (longer than Bun's idle bound, --body-timeout + 5 s).
      fake.script({ content: [{ type: "text", text: "ab" }], chunkSize: 2, delayMs: 2_000 });
      const [silent, quiet] = await Promise.all([
        exchange(proxy.port, { waitMs: 30_000 }),
        fetch(`${proxy.url}/chat/completions`, {
          method: "POST",
          headers: { authorization: "Bearer k", "content-type": "application/json" },
          body: chatBody("quiet"),
        }).then(async (r) => ({ status: r.status, text: await r.text() })),
      ]);
      expect(silent.closedByServer).toBe(true);
      expect(quiet.status, quiet.text).toBe(200);
      expect(quiet.text).toContain('"ab"');
    },
    60_000,
  );
});
