/**
 * Entry point: argv + env → Config → serve(createApp(deps)). The only place that exits.
 * Runs unchanged under Node (via tsx), Bun, Deno and as a compiled binary.
 */
import { createApp } from "./app.ts";
import { isLoopbackHost } from "./auth.ts";
import type { AgentSettings } from "./claude/agent.ts";
import { compactionEnv } from "./claude/driver.ts";
import { CliLogin } from "./claude/login.ts";
import { probeClaude } from "./claude/probe.ts";
import { classifyCliVersion, TESTED_CLI_RANGE } from "./claude/supported.ts";
import { Watchdog } from "./claude/watchdog.ts";
import { agentConfigError, ConfigError, helpText, parseCommand } from "./config.ts";
import { defaultDataDir } from "./data-dir.ts";
import { defaultMaxProcesses, ProcessPool } from "./engine/pool.ts";
import { ToolRuns } from "./engine/registry.ts";
import { Lifecycle } from "./lifecycle.ts";
import { ConcurrencyLimiter } from "./limiter.ts";
import { RateLimits } from "./limits.ts";
import { createLogger } from "./log.ts";
import { createMetrics } from "./metrics.ts";
import { RecentRequests } from "./recent.ts";
import { detectRuntime } from "./runtime/detect.ts";
import type { Runtime, Server } from "./runtime/types.ts";
import { ResponseStore } from "./surfaces/responses/store.ts";
import { UsageStore } from "./usage.ts";
import { VERSION } from "./version.ts";

const runtime: Runtime = await detectRuntime();

let command: ReturnType<typeof parseCommand>;
try {
  command = parseCommand(runtime.args(), runtime.env());
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`claude-openai-proxy: ${error.message}`);
  runtime.exit(2);
}
if (command.kind === "help") {
  console.log(helpText(VERSION));
  runtime.exit(0);
}
if (command.kind === "version") {
  console.log(VERSION);
  runtime.exit(0);
}
const { config } = command;
const log = createLogger(config.logLevel);
const env = runtime.env();

if (!isLoopbackHost(config.host) && config.apiKeys.length === 0) {
  if (!config.allowPublicWithoutKeys) {
    console.error(
      `claude-openai-proxy: refusing to listen on ${config.host} without an API key: anyone who can reach it ` +
        "would use your Claude subscription. Set --api-key / API_KEYS, or pass --allow-public-without-keys " +
        "if you really mean it",
    );
    runtime.exit(2);
  }
  log.warn(
    { host: config.host },
    "WARNING: listening on a non-loopback address WITHOUT API keys: anyone who can reach this port uses your Claude subscription",
  );
}

const agentError = agentConfigError(config, isLoopbackHost(config.host));
if (agentError !== null) {
  console.error(`claude-openai-proxy: ${agentError}`);
  runtime.exit(2);
}
if (config.maxProcesses !== null && config.maxProcesses < config.maxConcurrency) {
  console.error(
    `claude-openai-proxy: --max-processes / MAX_PROCESSES (${config.maxProcesses}) must be at least --max-concurrency / MAX_CONCURRENCY (${config.maxConcurrency})`,
  );
  runtime.exit(2);
}
let agent: AgentSettings | null = null;
if (config.agentTools.length > 0) {
  const dir = await runtime.realDir(config.agentDir);
  if (dir === null) {
    console.error(`claude-openai-proxy: --agent-dir ${config.agentDir} is not a directory`);
    runtime.exit(2);
  }
  let mcpConfigFile: string | undefined;
  if (config.agentMcpConfig !== "") {
    const cwd = (await runtime.realDir(".")) ?? "";
    mcpConfigFile = /^([/\\]|[A-Za-z]:)/.test(config.agentMcpConfig)
      ? config.agentMcpConfig
      : `${cwd}/${config.agentMcpConfig}`;
    if (!runtime.isFile(mcpConfigFile)) {
      console.error(
        `claude-openai-proxy: --agent-mcp-config ${config.agentMcpConfig} is not a file`,
      );
      runtime.exit(2);
    }
  }
  agent = { tools: config.agentTools, dir, maxTurns: config.agentMaxTurns, mcpConfigFile };
  log.warn(
    { tools: agent.tools, dir: agent.dir, maxTurns: agent.maxTurns },
    "Agent mode: every request may run these Claude Code tools on this machine (file tools confined to the directory)",
  );
}

const claude = await probeClaude(runtime, config.claudePath);
if (claude.error !== null) log.error({ claudePath: config.claudePath }, claude.error);
else {
  const { supported, warning } = classifyCliVersion(claude.version);
  log.info({ path: claude.path, version: claude.version, supported }, "found the claude CLI");
  if (warning !== null)
    log.warn({ version: claude.version, testedRange: TESTED_CLI_RANGE }, warning);
}
const anthropicApiKeySet = (env.ANTHROPIC_API_KEY ?? "") !== "";
if (anthropicApiKeySet && !config.dropAnthropicApiKey) {
  log.warn(
    {},
    "ANTHROPIC_API_KEY is set: the claude CLI will bill that API key per token instead of using your subscription " +
      "(--drop-anthropic-api-key keeps it from the CLI)",
  );
}

const baseDir = await runtime.mkdtemp(runtime.tmpdir(), "claude-openai-proxy-");
const workDir = `${baseDir}/cwd`;
const tempRoot = `${baseDir}/runs`;
await runtime.mkdir(workDir);
await runtime.mkdir(tempRoot);
await runtime.mkdir(`${baseDir}/pids`);
const watchdog = new Watchdog(runtime, `${baseDir}/pids`, baseDir);
if (!watchdog.start()) log.debug({}, "no watchdog: CLIs may outlive a hard-killed proxy");

let dataDir = config.dataDir !== "" ? config.dataDir : defaultDataDir(env, runtime.platform);
if (dataDir === null) {
  dataDir = `${baseDir}/data`;
  log.warn(
    { dataDir },
    "No home directory known: usage totals are kept until exit only (set --data-dir)",
  );
}
let usage: UsageStore;
try {
  usage = await UsageStore.open(runtime, dataDir);
} catch (error) {
  log.error(
    { dataDir },
    `Cannot open the data directory: ${(error as Error).message} (set --data-dir)`,
  );
  await runtime.remove(baseDir);
  runtime.exit(1);
}
if (usage.skippedLines > 0)
  log.warn({ path: usage.path, skipped: usage.skippedLines }, "skipped unreadable usage lines");
const storeLimits = {
  maxStored: config.responsesMaxStored,
  maxAgeSeconds: Math.round(config.responsesMaxAgeDays * 86_400),
};
let responses: ResponseStore;
try {
  responses = await ResponseStore.open(runtime, dataDir, storeLimits);
} catch (error) {
  log.warn(
    { dataDir },
    `Cannot open the stored responses: ${(error as Error).message}; they are kept until exit only`,
  );
  responses = ResponseStore.memory(storeLimits);
}
const metrics = createMetrics({ rss: () => runtime.rss() });

const toolRuns = new ToolRuns();
const lifecycle = new Lifecycle();
const pool = new ProcessPool(toolRuns, lifecycle, {
  maxProcesses:
    config.maxProcesses ?? defaultMaxProcesses(runtime.totalMemory(), config.maxConcurrency),
  spares: config.spares,
});
const limiter = new ConcurrencyLimiter(
  config.maxConcurrency,
  config.maxQueue,
  config.maxQueueWaitMs,
);
let listeningPort = config.port;
/** How CLI children reach this proxy (for the MCP tool bridge): loopback when bound to all interfaces. */
const selfHost = ["0.0.0.0", "::", "[::]"].includes(config.host)
  ? "127.0.0.1"
  : config.host.includes(":") && !config.host.startsWith("[")
    ? `[${config.host}]`
    : config.host;

const app = createApp({
  config,
  runtime,
  claude,
  workDir,
  agent,
  tempRoot,
  childEnv: compactionEnv(config.autoCompact),
  dropEnv: config.dropAnthropicApiKey ? ["ANTHROPIC_API_KEY"] : [],
  limiter,
  lifecycle,
  toolRuns,
  pool,
  baseUrl: () => `http://${selfHost}:${listeningPort}`,
  anthropicApiKeySet,
  watchdog,
  metrics,
  rateLimits: new RateLimits(),
  usage,
  recent: new RecentRequests(),
  login: new CliLogin(),
  responses,
  version: VERSION,
  log,
});

let server: Server;
try {
  server = await runtime.serve({
    hostname: config.host,
    port: config.port,
    // A little beyond the body's bound, so that a slow body gets its 408 before the cut.
    idleTimeoutMs: config.bodyTimeoutMs === 0 ? 0 : config.bodyTimeoutMs + 5_000,
    fetch: app.fetch,
  });
} catch (error) {
  log.error({ host: config.host, port: config.port }, `Cannot listen: ${(error as Error).message}`);
  await runtime.remove(baseDir);
  runtime.exit(1);
}
listeningPort = server.port;
log.info(
  { url: `http://${config.host}:${server.port}/v1`, runtime: runtime.name, version: VERSION },
  "claude-openai-proxy listening",
);

let stopping = false;
let firstSignalAt = 0;
/** Repeats within this window are one signal (Ctrl-C reaches `npm` and `tsx`, which relay it). */
const SIGNAL_ECHO_MS = 1000;
runtime.onShutdownSignal(async (signal) => {
  if (stopping) {
    if (Date.now() - firstSignalAt < SIGNAL_ECHO_MS) return;
    log.warn({ signal }, "second signal: exiting now");
    await lifecycle.stopAll(1000);
    await watchdog.stop();
    await runtime.remove(baseDir);
    runtime.exit(1);
  }
  stopping = true;
  firstSignalAt = Date.now();
  lifecycle.draining = true;
  log.info(
    { signal, running: lifecycle.activeCount(), graceMs: config.shutdownGraceMs },
    "shutting down",
  );
  const closed = server.close();
  await pool.stopIdle();
  const finished = await lifecycle.waitIdle(config.shutdownGraceMs);
  if (!finished)
    log.warn(
      { running: lifecycle.activeCount() },
      "grace period over: stopping the remaining runs",
    );
  await lifecycle.stopAll(config.killGraceMs + 2000);
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2000))]);
  let code = 0;
  for (const [what, step] of [
    ["flush usage", () => usage.flush()],
    ["stop the watchdog", () => watchdog.stop()],
    ["remove temp files", () => runtime.remove(baseDir)],
  ] as const) {
    try {
      await step();
    } catch (error) {
      code = 1;
      log.error({ err: String(error) }, `shutdown: could not ${what}`);
    }
  }
  log.info({}, "stopped");
  runtime.exit(code);
});
