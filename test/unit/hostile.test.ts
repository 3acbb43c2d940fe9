/**
 * Issue 9's low findings, in-process through `createApp` with a stub CLI replaying recorded
 * output (test/unit/stub-app.ts): model names that are Object.prototype's keys (10), bounded
 * metrics and usage labels (13), usage of runs cut off by a timeout or a disconnect (14).
 */
import { afterEach, describe, expect, it } from "vitest";
import { MAX_LEARNED_MODELS, OTHER_MODEL_LABEL } from "../../src/models.ts";
import { fixtureLines, postChat, type StubApp, stubApp } from "./stub-app.ts";

const opened: StubApp[] = [];
async function open(...args: Parameters<typeof stubApp>): Promise<StubApp> {
  const app = await stubApp(...args);
  opened.push(app);
  return app;
}
afterEach(async () => {
  for (const app of opened.splice(0)) await app.close();
});

const hi = [{ role: "user", content: "hi" }];

/** The `model` label values of a metric in the exposition text. */
function modelLabels(text: string, metric: string): Set<string> {
  const labels = new Set<string>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${metric}{`)) continue;
    const match = /model="([^"]*)"/.exec(line);
    if (match?.[1] !== undefined) labels.add(match[1]);
  }
  return labels;
}

describe("model names that are Object.prototype's keys (finding 10)", () => {
  const names = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"];

  it("chat completions answer 404 model_not_found, never 500", async () => {
    const { app } = await open();
    for (const model of names) {
      for (const stream of [false, true]) {
        const response = await postChat(app, { model, messages: hi, stream });
        expect(response.status, model).toBe(404);
        const body = (await response.json()) as { error: { code: string } };
        expect(body.error.code).toBe("model_not_found");
      }
    }
  });

  it("GET /v1/models/{id} answers 404, never 500", async () => {
    const { app } = await open();
    for (const model of names) {
      const response = await app.request(`/v1/models/${model}`);
      expect(response.status, model).toBe(404);
    }
  });

  it("a model that is not a string is a 400 on 'model'", async () => {
    const { app } = await open();
    for (const model of [{}, [], 5, null, { trim: 1 }]) {
      const response = await postChat(app, { model, messages: hi });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: { param: string } };
      expect(body.error.param).toBe("model");
    }
  });

  it("--model-map may map such names on purpose", async () => {
    const { app } = await open(["--model-map", "constructor=haiku,__proto__=opus"]);
    for (const model of ["constructor", "__proto__"]) {
      const response = await postChat(app, { model, messages: hi });
      expect(response.status, model).toBe(200);
    }
  });
});

describe("bounded model labels in /metrics and usage (finding 13)", () => {
  it("folds unknown claude-<random> ids the API refuses into one label", async () => {
    const { app, deps } = await open([], {
      script: () => ({ lines: fixtureLines("error-400") }),
    });
    for (let i = 0; i < 20; i++) {
      const response = await postChat(app, {
        model: `claude-${crypto.randomUUID()}`,
        messages: hi,
      });
      expect(response.status).toBe(400);
    }
    const metrics = await (await app.request("/metrics")).text();
    expect(modelLabels(metrics, "chat_completions_total")).toEqual(new Set([OTHER_MODEL_LABEL]));
    expect(Object.keys(deps.usage.totals().by_model).length).toBeLessThanOrEqual(1);
  });

  it("learns at most MAX_LEARNED_MODELS ids the API answered; aliases and configured ids keep their own", async () => {
    const { app, deps } = await open(["--extra-models", "claude-configured-1"]);
    const models = ["sonnet", "gpt-4o", "claude-configured-1"];
    for (let i = 0; i < MAX_LEARNED_MODELS + 10; i++) models.push(`claude-random-${i}`);
    for (const model of models) {
      const response = await postChat(app, { model, messages: hi });
      expect(response.status, model).toBe(200);
    }
    const metrics = await (await app.request("/metrics")).text();
    for (const metric of ["chat_completions_total", "tokens_total"]) {
      const labels = modelLabels(metrics, metric);
      expect(labels.size, metric).toBe(2 + MAX_LEARNED_MODELS + 1);
      expect(labels).toContain("sonnet");
      expect(labels).toContain("claude-configured-1");
      expect(labels).toContain(OTHER_MODEL_LABEL);
      expect(labels).not.toContain("gpt-4o");
    }
    const byModel = deps.usage.totals().by_model;
    expect(Object.keys(byModel)).toHaveLength(2 + MAX_LEARNED_MODELS + 1);
    expect(byModel.sonnet?.requests).toBe(2);
    expect(byModel[OTHER_MODEL_LABEL]?.requests).toBe(10);
  });
});

describe("usage of runs cut off after reaching the API (finding 14)", () => {
  /** The stub stops after message_start (input tokens reported) and hangs until killed. */
  const cutOff = () => ({ lines: fixtureLines("text"), hangAfter: 4 });

  it("a request timeout records the usage reported so far, streaming or not", async () => {
    const { app, deps } = await open(["--request-timeout", "300", "--kill-grace", "100"], {
      script: cutOff,
    });
    for (const stream of [false, true]) {
      const response = await postChat(app, { model: "sonnet", messages: hi, stream });
      const text = await response.text();
      if (stream) expect(text).toContain("request_timeout");
      else expect(response.status).toBe(504);
    }
    const totals = deps.usage.totals();
    expect(totals.requests).toBe(2);
    // message_start: 12 input + 100 cache read + 20 cache creation.
    expect(totals.prompt_tokens).toBe(2 * 132);
    expect(totals.cached_tokens).toBe(2 * 100);
    const metrics = await (await app.request("/metrics")).text();
    expect(metrics).toMatch(/tokens_total\{model="sonnet",type="prompt"\} 264/);
  });

  it("a client that disconnects leaves its usage recorded", async () => {
    const { app, deps } = await open(["--kill-grace", "100"], { script: cutOff });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const response = await app.request("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "sonnet", messages: hi }),
      signal: controller.signal,
    });
    expect(response.status).toBe(499);
    expect(deps.usage.totals().requests).toBe(1);
    expect(deps.usage.totals().prompt_tokens).toBe(132);
  });

  it("a run that never reached the API records none", async () => {
    const { app, deps } = await open(["--request-timeout", "300", "--kill-grace", "100"], {
      script: () => ({ lines: fixtureLines("text"), hangAfter: 2 }),
    });
    expect((await postChat(app, { model: "sonnet", messages: hi })).status).toBe(504);
    expect(deps.usage.totals().requests).toBe(0);
  });
});
