import { afterEach, describe, expect, it } from "vitest";
import { fixtureLines, type StubApp, stubApp } from "./stub-app.ts";

let stub: StubApp | undefined;
afterEach(async () => {
  await stub?.close();
  stub = undefined;
});

function post(stub: StubApp, path: string, body: unknown): Promise<Response> {
  return Promise.resolve(
    stub.app.request(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
}

describe("every surface is counted by surface (recorded text run: 132 prompt, 5 completion tokens)", () => {
  it("turns_total and /v1/usage by_surface count chat, responses and messages apart", async () => {
    stub = await stubApp([], { script: () => ({ lines: fixtureLines("text") }) });
    const user = [{ role: "user", content: "Hi" }];
    expect(
      (await post(stub, "/v1/chat/completions", { model: "sonnet", messages: user })).status,
    ).toBe(200);
    expect((await post(stub, "/v1/responses", { model: "sonnet", input: "Hi" })).status).toBe(200);
    expect((await post(stub, "/v1/responses", { model: "sonnet", input: "Hi" })).status).toBe(200);
    const messages = await post(stub, "/v1/messages", {
      model: "sonnet",
      max_tokens: 50,
      messages: user,
    });
    expect(messages.status).toBe(200);
    // A request refused before any run (an unknown model) records no usage.
    expect(
      (await post(stub, "/v1/messages", { model: "no-such-model", max_tokens: 5, messages: user }))
        .status,
    ).toBe(404);

    const usage = (await (await stub.app.request("/v1/usage")).json()) as {
      requests: number;
      by_surface: Record<
        string,
        { requests: number; prompt_tokens: number; completion_tokens: number }
      >;
    };
    expect(usage.requests).toBe(4);
    expect(usage.by_surface).toMatchObject({
      chat: { requests: 1, prompt_tokens: 132, completion_tokens: 5 },
      responses: { requests: 2, prompt_tokens: 264, completion_tokens: 10 },
      messages: { requests: 1, prompt_tokens: 132, completion_tokens: 5 },
    });
    const metrics = await (await stub.app.request("/metrics")).text();
    const turns = (surface: string) =>
      Number(
        new RegExp(
          `turns_total\\{surface="${surface}",model="sonnet",stream="false",status="200"\\} (\\d+)`,
        ).exec(metrics)?.[1] ?? 0,
      );
    expect([turns("chat"), turns("responses"), turns("messages")]).toEqual([1, 2, 1]);
    // chat_completions_total stays what its name says.
    expect(metrics).toMatch(
      /chat_completions_total\{model="sonnet",stream="false",status="200"\} 1\n/,
    );
  });
});
