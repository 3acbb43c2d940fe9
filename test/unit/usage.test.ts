import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nodeRuntime } from "../../src/runtime/node.ts";
import { USAGE_FILE, type UsageEntry, UsageStore } from "../../src/usage.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "usage-test-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function entry(i: number, model: string): UsageEntry {
  return {
    time: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
    request_id: `chatcmpl-${i}`,
    model,
    prompt_tokens: 100 + i,
    completion_tokens: 10 + i,
    cached_tokens: i,
    cost_usd: 0.1,
  };
}

describe("UsageStore", () => {
  it("starts empty, creating the data directory", async () => {
    const store = await UsageStore.open(nodeRuntime, join(dir, "a", "b"));
    expect(store.totals()).toEqual({
      object: "usage",
      since: null,
      requests: 0,
      prompt_tokens: 0,
      completion_tokens: 0,
      cached_tokens: 0,
      total_tokens: 0,
      cost_usd: 0,
      by_model: {},
      by_surface: {},
    });
    expect(store.path).toBe(`${join(dir, "a", "b")}/${USAGE_FILE}`);
  });

  it("keeps running totals per model and loses nothing on reopen", async () => {
    const store = await UsageStore.open(nodeRuntime, dir);
    // Concurrent records: the appends are serialised, every line stays whole.
    await Promise.all([
      store.record(entry(0, "sonnet")),
      store.record(entry(1, "opus")),
      store.record(entry(2, "sonnet")),
    ]);
    const totals = store.totals();
    expect(totals).toEqual({
      object: "usage",
      since: "2025-01-01T00:00:00.000Z",
      requests: 3,
      prompt_tokens: 303,
      completion_tokens: 33,
      cached_tokens: 3,
      total_tokens: 336,
      cost_usd: 0.3,
      by_model: {
        opus: {
          requests: 1,
          prompt_tokens: 101,
          completion_tokens: 11,
          cached_tokens: 1,
          total_tokens: 112,
          cost_usd: 0.1,
        },
        sonnet: {
          requests: 2,
          prompt_tokens: 202,
          completion_tokens: 22,
          cached_tokens: 2,
          total_tokens: 224,
          cost_usd: 0.2,
        },
      },
      by_surface: {
        chat: {
          requests: 3,
          prompt_tokens: 303,
          completion_tokens: 33,
          cached_tokens: 3,
          total_tokens: 336,
          cost_usd: 0.3,
        },
      },
    });
    const lines = (await readFile(store.path, "utf8")).trimEnd().split("\n");
    expect(lines.map((l) => JSON.parse(l).request_id)).toEqual([
      "chatcmpl-0",
      "chatcmpl-1",
      "chatcmpl-2",
    ]);
    // A record without a surface is one of chat completions (as written before surfaces).
    expect(JSON.parse(lines[0] ?? "")).toEqual({ ...entry(0, "sonnet"), surface: "chat" });

    const reopened = await UsageStore.open(nodeRuntime, dir);
    expect(reopened.totals()).toEqual(totals);
    expect(reopened.skippedLines).toBe(0);
  });

  it("serialises many concurrent appends without interleaving", async () => {
    const store = await UsageStore.open(nodeRuntime, dir);
    const big = "x".repeat(100_000);
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.record({ ...entry(i, `m${i % 3}`), request_id: `${big}${i}` }),
      ),
    );
    const reopened = await UsageStore.open(nodeRuntime, dir);
    expect(reopened.skippedLines).toBe(0);
    expect(reopened.totals()).toEqual(store.totals());
    expect(reopened.totals().requests).toBe(50);
  });

  it("stamps records without a time with the current time", async () => {
    const store = await UsageStore.open(nodeRuntime, dir);
    const before = new Date().toISOString();
    const { time: _, ...untimed } = entry(0, "haiku");
    await store.record(untimed);
    const line = JSON.parse(await readFile(store.path, "utf8"));
    expect(line.time >= before).toBe(true);
    expect(store.totals().since).toBe(line.time);
  });

  it("tolerates a truncated last line and starts the next record on a new line", async () => {
    const store = await UsageStore.open(nodeRuntime, dir);
    await store.record(entry(0, "sonnet"));
    await store.record(entry(1, "sonnet"));
    const expected = store.totals();
    // A crash in the middle of an append leaves half a line.
    const half = JSON.stringify(entry(2, "sonnet")).slice(0, 40);
    await appendFile(store.path, half);

    const reopened = await UsageStore.open(nodeRuntime, dir);
    expect(reopened.totals()).toEqual(expected);
    expect(reopened.skippedLines).toBe(1);

    await reopened.record(entry(3, "opus"));
    const again = await UsageStore.open(nodeRuntime, dir);
    expect(again.skippedLines).toBe(1);
    expect(again.totals()).toEqual(reopened.totals());
    expect(again.totals().requests).toBe(3);
    expect(again.totals().by_model.opus?.requests).toBe(1);
  });

  it("skips lines that are not records", async () => {
    await writeFile(
      join(dir, USAGE_FILE),
      [
        JSON.stringify(entry(0, "sonnet")),
        "not json",
        JSON.stringify({ ...entry(1, "sonnet"), prompt_tokens: "12" }),
        "",
        JSON.stringify(entry(2, "__proto__")),
        "",
      ].join("\n"),
    );
    const store = await UsageStore.open(nodeRuntime, dir);
    expect(store.skippedLines).toBe(2);
    const totals = store.totals();
    expect(totals.requests).toBe(2);
    expect(Object.keys(totals.by_model)).toEqual(["__proto__", "sonnet"]);
    expect(JSON.stringify(totals)).toContain('"__proto__":{"requests":1,');
  });

  it("rejects a failed append but keeps later appends going", async () => {
    let fail = true;
    const runtime = {
      ...nodeRuntime,
      appendFile: async (path: string, data: string) => {
        if (fail) {
          fail = false;
          throw new Error("disk full");
        }
        await nodeRuntime.appendFile(path, data);
      },
    };
    const store = await UsageStore.open(runtime, dir);
    const first = store.record(entry(0, "sonnet"));
    const second = store.record(entry(1, "sonnet"));
    await expect(first).rejects.toThrow("disk full");
    await second;
    await store.flush();
    const reopened = await UsageStore.open(nodeRuntime, dir);
    expect(reopened.totals().requests).toBe(1);
  });
});
