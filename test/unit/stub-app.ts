/**
 * An in-process app (`createApp`) whose claude CLI is a stub: it writes the lines of a recorded
 * fixture (test/fixtures/cli/*.jsonl, recorded from the real CLI) to stdout, then exits once
 * stdin is closed, or, with `hangAfter`, writes that many lines and waits until it is killed
 * (a run cut off by a timeout or a disconnect).
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Hono } from "hono";
import { createApp } from "../../src/app.ts";
import { CliLogin } from "../../src/claude/login.ts";
import { type Config, parseCommand } from "../../src/config.ts";
import type { AppDeps } from "../../src/deps.ts";
import { ProcessPool } from "../../src/engine/pool.ts";
import { ToolRuns } from "../../src/engine/registry.ts";
import { Lifecycle } from "../../src/lifecycle.ts";
import { ConcurrencyLimiter } from "../../src/limiter.ts";
import { RateLimits } from "../../src/limits.ts";
import { createLogger } from "../../src/log.ts";
import { createMetrics } from "../../src/metrics.ts";
import { RecentRequests } from "../../src/recent.ts";
import { nodeRuntime } from "../../src/runtime/node.ts";
import type { ExitStatus, Spawn } from "../../src/runtime/types.ts";
import { UsageStore } from "../../src/usage.ts";

/** The lines of a recorded fixture, e.g. `text` for test/fixtures/cli/text.jsonl. */
export function fixtureLines(name: string): string[] {
  const url = new URL(`../fixtures/cli/${name}.jsonl`, import.meta.url);
  return readFileSync(fileURLToPath(url), "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "");
}

/** What the stub CLI does, per spawn. */
export interface StubScript {
  lines: string[];
  /** Write only this many lines, then wait until killed. */
  hangAfter?: number;
}

/** A spawn whose children follow `script()` (asked anew for each spawn). */
export function stubSpawn(script: () => StubScript): Spawn {
  let pid = 200_000;
  return () => {
    const { lines, hangAfter } = script();
    let resolveExit!: (status: ExitStatus) => void;
    const exited = new Promise<ExitStatus>((resolve) => {
      resolveExit = resolve;
    });
    let out!: ReadableStreamDefaultController<Uint8Array>;
    let err!: ReadableStreamDefaultController<Uint8Array>;
    let ended = false;
    const end = (status: ExitStatus) => {
      if (ended) return;
      ended = true;
      for (const controller of [out, err]) {
        try {
          controller.close();
        } catch {
          // cancelled by the reader
        }
      }
      resolveExit(status);
    };
    const shown = hangAfter === undefined ? lines : lines.slice(0, hangAfter);
    const stdout = new ReadableStream<Uint8Array>({
      start(controller) {
        out = controller;
        controller.enqueue(new TextEncoder().encode(shown.map((l) => `${l}\n`).join("")));
      },
    });
    const stderr = new ReadableStream<Uint8Array>({
      start(controller) {
        err = controller;
      },
    });
    const stdin = new WritableStream<Uint8Array>({
      close() {
        if (hangAfter === undefined) queueMicrotask(() => end({ exitCode: 0, signal: null }));
      },
      abort() {
        if (hangAfter === undefined) end({ exitCode: 0, signal: null });
      },
    });
    return {
      pid: pid++,
      stdin,
      stdout,
      stderr,
      exited,
      kill: (signal) => end({ exitCode: null, signal }),
    };
  };
}

/**
 * The deps of an in-process app for `config`: Node's runtime, fresh limiter, lifecycle, tool
 * runs and metrics, silent logs; `parts` supplies what each test chooses (at least the
 * directories and the usage store).
 */
export function testDeps(
  config: Config,
  parts: Pick<AppDeps, "workDir" | "tempRoot" | "usage"> & Partial<AppDeps>,
): AppDeps {
  const toolRuns = new ToolRuns();
  const lifecycle = new Lifecycle();
  return {
    config,
    runtime: nodeRuntime,
    claude: { path: null, version: null, error: "not found" },
    childEnv: {},
    dropEnv: [],
    limiter: new ConcurrencyLimiter(config.maxConcurrency, config.maxQueue, config.maxQueueWaitMs),
    lifecycle,
    toolRuns,
    pool: new ProcessPool(toolRuns, lifecycle, {
      maxProcesses: config.maxProcesses ?? Math.max(config.maxConcurrency, 8),
      spares: config.spares,
    }),
    baseUrl: () => "http://127.0.0.1:1",
    anthropicApiKeySet: false,
    watchdog: null,
    metrics: createMetrics(),
    rateLimits: new RateLimits(),
    recent: new RecentRequests(),
    login: new CliLogin(),
    version: "0.0.0-test",
    log: createLogger("silent"),
    ...parts,
  };
}

/** An app, its deps, and a cleanup. */
export interface StubApp {
  app: Hono;
  deps: AppDeps;
  close(): Promise<void>;
}

/**
 * Builds an app from command-line `args` (and `env`) with a stub CLI.
 * `overrides` replace parts of the deps (e.g. `anthropicApiKeySet`).
 */
export async function stubApp(
  args: readonly string[] = [],
  options: {
    env?: Record<string, string>;
    script?: () => StubScript;
    config?: Partial<Config>;
    deps?: Partial<AppDeps>;
  } = {},
): Promise<StubApp> {
  const baseDir = await mkdtemp(join(tmpdir(), "stub-app-"));
  const command = parseCommand(args, options.env ?? {});
  if (command.kind !== "serve") throw new Error("expected a serve command");
  const config = { ...command.config, imageFetch: false, ...options.config };
  const workDir = join(baseDir, "cwd");
  const tempRoot = join(baseDir, "runs");
  await nodeRuntime.mkdir(workDir);
  await nodeRuntime.mkdir(tempRoot);
  const script = options.script ?? (() => ({ lines: fixtureLines("text") }));
  const deps = testDeps(config, {
    runtime: { ...nodeRuntime, spawn: stubSpawn(script) },
    claude: { path: "/fake/claude", version: "2.1.332 (Claude Code)", error: null },
    workDir,
    tempRoot,
    usage: await UsageStore.open(nodeRuntime, join(baseDir, "data")),
    ...options.deps,
  });
  return {
    app: createApp(deps),
    deps,
    close: async () => {
      await deps.pool.stopIdle();
      await rm(baseDir, { recursive: true, force: true });
    },
  };
}

/** `POST /v1/chat/completions` with a JSON body (and headers). */
export function postChat(
  app: Hono,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return Promise.resolve(
    app.request("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    }),
  );
}
