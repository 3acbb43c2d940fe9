/**
 * `GET /health`, in-process through `createApp`: the claude CLI's version and where it falls
 * against the tested range (src/claude/supported.ts), with a warning outside it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { NEWEST_TESTED_CLI, OLDEST_TESTED_CLI } from "../../src/claude/supported.ts";
import { parseCommand } from "../../src/config.ts";
import type { ClaudeInfo } from "../../src/deps.ts";
import { nodeRuntime } from "../../src/runtime/node.ts";
import { UsageStore } from "../../src/usage.ts";
import { fixtureLines, postChat, stubApp, testDeps } from "./stub-app.ts";

/** The `claude` part of the /health body. */
interface ClaudeHealth {
  found: boolean;
  path: string | null;
  version: string | null;
  supported: string;
  tested_range: { oldest: string; newest: string };
  warning?: string;
  error?: string;
}

let baseDir: string;
let usage: UsageStore;

beforeAll(async () => {
  baseDir = await mkdtemp(join(tmpdir(), "health-"));
  usage = await UsageStore.open(nodeRuntime, join(baseDir, "data"));
});

afterAll(async () => {
  await rm(baseDir, { recursive: true, force: true });
});

/** GET /health of an app whose start-up found `claude`; the status and the body. */
async function health(claude: ClaudeInfo): Promise<{ status: string; claude: ClaudeHealth }> {
  const command = parseCommand([], {});
  if (command.kind !== "serve") throw new Error("expected a serve command");
  const { config } = command;
  const deps = testDeps(config, { workDir: baseDir, tempRoot: baseDir, usage, claude });
  const response = await createApp(deps).request("/health");
  expect(response.status).toBe(200);
  return (await response.json()) as { status: string; claude: ClaudeHealth };
}

const testedRange = { oldest: OLDEST_TESTED_CLI, newest: NEWEST_TESTED_CLI };

describe("GET /health", () => {
  it("reports a CLI inside the tested range as supported, without a warning", async () => {
    const body = await health({
      path: "/usr/bin/claude",
      version: `${NEWEST_TESTED_CLI} (Claude Code)`,
      error: null,
    });
    expect(body.status).toBe("ok");
    expect(body.claude).toEqual({
      found: true,
      path: "/usr/bin/claude",
      version: `${NEWEST_TESTED_CLI} (Claude Code)`,
      supported: "yes",
      tested_range: testedRange,
      logged_in: null,
      checked_at: null,
    });
  });

  it("warns about an older CLI and says how to upgrade", async () => {
    const body = await health({
      path: "/usr/bin/claude",
      version: "2.1.197 (Claude Code)",
      error: null,
    });
    expect(body.status).toBe("ok");
    expect(body.claude.supported).toBe("older");
    expect(body.claude.tested_range).toEqual(testedRange);
    expect(body.claude.warning).toContain("claude update");
  });

  it("warns softly about a newer CLI", async () => {
    const body = await health({ path: "/usr/bin/claude", version: "2.3.0", error: null });
    expect(body.status).toBe("ok");
    expect(body.claude.supported).toBe("newer");
    expect(body.claude.warning).toContain("untested");
  });

  it("says unknown, with a warning, for a version it cannot read", async () => {
    const body = await health({ path: "/usr/bin/claude", version: "dev build", error: null });
    expect(body.claude.supported).toBe("unknown");
    expect(body.claude.warning).toContain("dev build");
  });

  it("says unknown, with the error and no warning, when there is no CLI", async () => {
    const body = await health({ path: null, version: null, error: "The claude CLI was not found" });
    expect(body.status).toBe("degraded");
    expect(body.claude).toEqual({
      found: false,
      path: null,
      version: null,
      supported: "unknown",
      tested_range: testedRange,
      error: "The claude CLI was not found",
      logged_in: null,
      checked_at: null,
    });
  });
});

describe("GET /health with API keys (issue 9, finding 12)", () => {
  it("says only the status without a valid key, everything with one", async () => {
    const { app, close } = await stubApp(["--api-key", "k1", "--api-key", "k,2"], {
      deps: { anthropicApiKeySet: true },
    });
    try {
      for (const headers of [{}, { authorization: "Bearer wrong" }, { "x-api-key": "k" }]) {
        const response = await app.request("/health", { headers });
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual({ status: "ok" });
      }
      for (const headers of [{ authorization: "Bearer k1" }, { "x-api-key": "k,2" }]) {
        const body = (await (await app.request("/health", { headers })).json()) as Record<
          string,
          unknown
        >;
        expect(body.status).toBe("ok");
        expect(body).toHaveProperty("claude.path", "/fake/claude");
        expect(body).toHaveProperty("anthropic_api_key.set", true);
        expect(body).toHaveProperty("runtime");
        expect(body).toHaveProperty("processes");
      }
    } finally {
      await close();
    }
  });

  it("keeps the details open without keys (loopback only by default)", async () => {
    const { app, close } = await stubApp();
    try {
      const body = (await (await app.request("/health")).json()) as Record<string, unknown>;
      expect(body).toHaveProperty("claude.path", "/fake/claude");
    } finally {
      await close();
    }
  });

  it("says whether the CLI is logged in as the last run showed it", async () => {
    let lines = fixtureLines("not-logged-in");
    const { app, close } = await stubApp([], { script: () => ({ lines }) });
    const claude = async () =>
      ((await (await app.request("/health")).json()) as { claude: Record<string, unknown> }).claude;
    try {
      expect(await claude()).toMatchObject({ logged_in: null, checked_at: null });
      const refused = await postChat(app, {
        model: "sonnet",
        messages: [{ role: "user", content: "Hi" }],
      });
      expect(refused.status).toBe(401);
      expect(await claude()).toMatchObject({ logged_in: false });
      lines = fixtureLines("text");
      const answered = await postChat(app, {
        model: "sonnet",
        messages: [{ role: "user", content: "Hi" }],
      });
      expect(answered.status).toBe(200);
      expect(await claude()).toMatchObject({ logged_in: true });
    } finally {
      await close();
    }
  });

  it("still says degraded or draining without a key", async () => {
    const { app, deps, close } = await stubApp(["--api-key", "k1"], {
      deps: { claude: { path: null, version: null, error: "not found" } },
    });
    try {
      expect(await (await app.request("/health")).json()).toEqual({ status: "degraded" });
      expect(deps.lifecycle.draining).toBe(false);
    } finally {
      await close();
    }
  });
});
