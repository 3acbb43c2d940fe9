import { describe, expect, it } from "vitest";
import { fetchFailureCause, probeCause, reachWatch } from "../../src/engine/reach.ts";
import type { ProxyError } from "../../src/errors.ts";

function retry(attempt: number) {
  return {
    type: "api_retry" as const,
    attempt,
    max_retries: 10,
    retry_delay_ms: 500,
    error_status: null,
    error: "unknown",
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("fetchFailureCause", () => {
  it("names refused connections and DNS failures as Node, Bun and Deno report them", () => {
    const node = new TypeError("fetch failed", {
      cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }),
    });
    expect(fetchFailureCause(node)).toBe("connection refused (ECONNREFUSED)");
    const dns = new TypeError("fetch failed", {
      cause: Object.assign(new Error("getaddrinfo ENOTFOUND x.invalid"), { code: "ENOTFOUND" }),
    });
    expect(fetchFailureCause(dns)).toBe("DNS lookup failed (ENOTFOUND)");
    expect(
      fetchFailureCause(
        Object.assign(new Error("Unable to connect"), { code: "ConnectionRefused" }),
      ),
    ).toBe("connection refused (ECONNREFUSED)");
    expect(
      fetchFailureCause(
        new TypeError("error sending request: dns error: failed to lookup address"),
      ),
    ).toBe("DNS lookup failed (ENOTFOUND)");
    expect(fetchFailureCause(new DOMException("The operation timed out.", "TimeoutError"))).toBe(
      "connection timed out",
    );
    expect(fetchFailureCause(new Error("something odd"))).toBe("something odd");
    expect(fetchFailureCause(new TypeError("fetch failed", { cause: new Error("bad port") }))).toBe(
      "bad port",
    );
  });

  it("probeCause: null when something answers, the cause when the fetch fails", async () => {
    expect(
      await probeCause("http://x", async () => new Response(null, { status: 404 })),
    ).toBeNull();
    const refused = async () => {
      throw new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } });
    };
    expect(await probeCause("http://x", refused)).toBe("connection refused (ECONNREFUSED)");
  });
});

describe("reachWatch", () => {
  it("stops the run once the budget from the first connection failure is spent", async () => {
    const stopped: ProxyError[] = [];
    const watch = reachWatch({
      timeoutMs: 60,
      baseUrl: "http://127.0.0.1:1",
      stop: (e) => stopped.push(e),
      probe: async () => "connection refused (ECONNREFUSED)",
    });
    watch.connectionFailed(retry(1));
    await sleep(30);
    watch.connectionFailed(retry(2));
    expect(stopped).toEqual([]);
    await sleep(60);
    expect(stopped).toHaveLength(1);
    expect(stopped[0]?.status).toBe(502);
    expect(stopped[0]?.code).toBe("upstream_unreachable");
    expect(stopped[0]?.message).toContain("ECONNREFUSED");
    expect(stopped[0]?.message).toContain("http://127.0.0.1:1");
    expect(stopped[0]?.message).toContain("tried 2 times");
  });

  it("progress or the end of the leg cancels the clock; 0 stops at the first failure", async () => {
    const stopped: ProxyError[] = [];
    const watch = reachWatch({
      timeoutMs: 30,
      baseUrl: undefined,
      stop: (e) => stopped.push(e),
      probe: async () => null,
    });
    watch.connectionFailed(retry(1));
    watch.reached();
    watch.connectionFailed(retry(1));
    watch.close();
    await sleep(60);
    expect(stopped).toEqual([]);
    const now = reachWatch({
      timeoutMs: 0,
      baseUrl: undefined,
      stop: (e) => stopped.push(e),
      probe: async () => null,
    });
    now.connectionFailed(retry(1));
    await sleep(10);
    expect(stopped).toHaveLength(1);
    expect(stopped[0]?.message).toContain("the Anthropic API");
    expect(stopped[0]?.message).toContain("HTTPS_PROXY");
  });
});
