/** Stored Responses API responses: files in the data directory, owners, limits, restarts. */
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nodeRuntime } from "../../src/runtime/node.ts";
import { baseResponse, referencedResponseId } from "../../src/surfaces/responses/render.ts";
import { parseResponseRequest } from "../../src/surfaces/responses/schema.ts";
import {
  itemPage,
  ownerOf,
  RESPONSES_DIR,
  ResponseStore,
  type StoredResponse,
  toStoredItems,
} from "../../src/surfaces/responses/store.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "responses-store-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function entry(id: string, createdAt: number, owner: string): StoredResponse {
  const request = parseResponseRequest({ model: "gpt-5", input: "Hi" });
  return {
    response: { ...baseResponse({ id, createdAt, request }), status: "completed" },
    items: toStoredItems(request.input, id),
    owner,
  };
}

describe("ResponseStore", () => {
  it("keeps responses across a restart, one file each, for their owner only", async () => {
    const alice = await ownerOf("key-a");
    const bob = await ownerOf("key-b");
    expect(alice).toMatch(/^[0-9a-f]{64}$/);
    expect(alice).not.toBe(bob);
    const limits = { maxStored: 10, maxAgeSeconds: 0 };
    const store = await ResponseStore.open(nodeRuntime, dir, limits);
    await store.put(entry("resp_a1", 100, alice));
    await store.put(entry("resp_b1", 101, bob));
    expect((await readdir(join(dir, RESPONSES_DIR))).sort()).toEqual([
      "100-resp_a1.json",
      "101-resp_b1.json",
    ]);
    // A crash left a temp file behind: removed on open.
    await writeFile(join(dir, RESPONSES_DIR, ".tmp-w_123"), "{");
    const again = await ResponseStore.open(nodeRuntime, dir, limits);
    expect(again.size).toBe(2);
    expect((await again.get("resp_a1", alice))?.response.id).toBe("resp_a1");
    expect(await again.get("resp_a1", bob)).toBeNull();
    expect(await again.get("resp_nope", alice)).toBeNull();
    expect(await again.delete("resp_a1", bob)).toBe(false);
    expect(await again.delete("resp_a1", alice)).toBe(true);
    expect(await again.get("resp_a1", alice)).toBeNull();
    expect(await readdir(join(dir, RESPONSES_DIR))).toEqual(["101-resp_b1.json"]);
  });

  it("evicts the oldest beyond the count and those past the age limit", async () => {
    let now = 1000;
    const owner = await ownerOf(null);
    const store = await ResponseStore.open(nodeRuntime, dir, {
      maxStored: 2,
      maxAgeSeconds: 100,
      now: () => now,
    });
    await store.put(entry("resp_1", 990, owner));
    await store.put(entry("resp_2", 995, owner));
    await store.put(entry("resp_3", 999, owner));
    expect(store.size).toBe(2);
    expect(await store.get("resp_1", owner)).toBeNull();
    now = 1096;
    expect(await store.get("resp_2", owner)).toBeNull();
    expect(await store.get("resp_3", owner)).not.toBeNull();
    expect(await readdir(join(dir, RESPONSES_DIR))).toEqual(["999-resp_3.json"]);
    now = 2000;
    const reopened = await ResponseStore.open(nodeRuntime, dir, {
      maxStored: 2,
      maxAgeSeconds: 100,
      now: () => now,
    });
    expect(reopened.size).toBe(0);
  });

  it("stores nothing with maxStored 0, and works in memory", async () => {
    const owner = await ownerOf(null);
    const none = ResponseStore.memory({ maxStored: 0, maxAgeSeconds: 0 });
    await none.put(entry("resp_1", 1, owner));
    expect(none.size).toBe(0);
    const memory = ResponseStore.memory({ maxStored: 5, maxAgeSeconds: 0 });
    const value = entry("resp_1", 1, owner);
    await memory.put(value);
    const got = await memory.get("resp_1", owner);
    expect(got).toEqual(value);
    expect(got).not.toBe(value);
  });
});

describe("input items", () => {
  it("gives every item an id and lists pages in OpenAI's order", () => {
    const items = toStoredItems(
      parseResponseRequest({
        model: "m",
        input: [
          { role: "user", content: "one" },
          { role: "assistant", content: "two" },
          { type: "function_call", call_id: "c1", name: "f", arguments: "{}" },
          { type: "function_call_output", call_id: "c1", output: "ok" },
        ],
      }).input,
      `resp_${"a".repeat(48)}`,
    );
    expect(items[0]).toMatchObject({
      type: "message",
      role: "user",
      content: [{ type: "input_text", text: "one" }],
      status: "completed",
    });
    expect(items[1]).toMatchObject({ content: [{ type: "output_text", text: "two" }] });
    const hex = "a".repeat(48);
    expect(items.map((item) => item.id)).toEqual([
      `msg_${hex}_i0`,
      `msg_${hex}_i1`,
      `fc_${hex}_i2`,
      `fco_${hex}_i3`,
    ]);
    // An item_reference to any of them names the response that stored it.
    expect(items.map((item) => referencedResponseId(item.id))).toEqual(
      Array(4).fill(`resp_${hex}`),
    );
    expect(referencedResponseId("msg_abc")).toBeNull();
    const desc = itemPage(items, {});
    expect(desc.data.map((item) => item.id)).toEqual(items.map((item) => item.id).reverse());
    expect(desc).toMatchObject({ object: "list", has_more: false, first_id: items[3]?.id });
    const page = itemPage(items, { order: "asc", limit: 2 });
    expect(page.data).toEqual(items.slice(0, 2));
    expect(page.has_more).toBe(true);
    const next = itemPage(items, { order: "asc", limit: 2, after: page.last_id ?? "" });
    expect(next.data).toEqual(items.slice(2));
    expect(next.has_more).toBe(false);
  });
});
