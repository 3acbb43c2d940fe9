/**
 * The recent-requests ring (src/recent.ts) and `GET /dashboard/requests`: bounded, newest
 * first, fed by every turn a surface serves, and holding no prompt text.
 */
import { describe, expect, it } from "vitest";
import { type RecentRequest, RecentRequests } from "../../src/recent.ts";
import { postChat, stubApp } from "./stub-app.ts";

function request(i: number): RecentRequest {
  return {
    time: new Date(Date.UTC(2026, 10, 30, 12, 0, i)).toISOString(),
    request_id: `req-${i}`,
    surface: "chat",
    model: "sonnet",
    status: 200,
    stream: false,
    duration_ms: i,
    prompt_tokens: i,
    completion_tokens: i,
    cached_tokens: 0,
    cost_usd: 0,
  };
}

describe("RecentRequests", () => {
  it("lists newest first, up to its capacity, dropping the oldest", () => {
    const ring = new RecentRequests(3);
    expect(ring.list()).toEqual([]);
    ring.add(request(1));
    ring.add(request(2));
    expect(ring.list().map((r) => r.request_id)).toEqual(["req-2", "req-1"]);
    for (const i of [3, 4, 5, 6, 7]) ring.add(request(i));
    expect(ring.size).toBe(3);
    expect(ring.list().map((r) => r.request_id)).toEqual(["req-7", "req-6", "req-5"]);
    expect(ring.list(2).map((r) => r.request_id)).toEqual(["req-7", "req-6"]);
    expect(ring.list(0)).toEqual([]);
  });

  it("hands out copies", () => {
    const ring = new RecentRequests(2);
    ring.add(request(1));
    const [first] = ring.list();
    if (first !== undefined) first.status = 500;
    expect(ring.list()[0]?.status).toBe(200);
  });
});

describe("GET /dashboard/requests", () => {
  it("shows each served turn without its prompt, and requires a key like the API", async () => {
    const stub = await stubApp(["--api-key", "k1"]);
    try {
      const chat = await postChat(
        stub.app,
        { model: "sonnet", messages: [{ role: "user", content: "secret prompt text" }] },
        { authorization: "Bearer k1" },
      );
      expect(chat.status).toBe(200);
      expect((await stub.app.request("/dashboard/requests")).status).toBe(401);
      const response = await stub.app.request("/dashboard/requests?limit=5", {
        headers: { authorization: "Bearer k1" },
      });
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(text).not.toContain("secret prompt text");
      const body = JSON.parse(text) as { object: string; data: RecentRequest[] };
      expect(body.object).toBe("list");
      expect(body.data).toHaveLength(1);
      expect(body.data[0]).toMatchObject({
        surface: "chat",
        model: "sonnet",
        status: 200,
        stream: false,
        request_id: chat.headers.get("x-request-id"),
      });
      expect(body.data[0]?.prompt_tokens).toBeGreaterThan(0);
      const bad = await stub.app.request("/dashboard/requests?limit=0", {
        headers: { authorization: "Bearer k1" },
      });
      expect(bad.status).toBe(400);
    } finally {
      await stub.close();
    }
  });
});
