/**
 * Entry point: argv + env → Config → serve(createApp(deps)). The only place that exits.
 * Runs unchanged under Node (via tsx), Bun, Deno and as a compiled binary.
 */
import { createApp } from "./app.ts";
import { probeClaude } from "./claude/probe.ts";
import { ConfigError, helpText, parseCommand } from "./config.ts";
import { createLogger } from "./log.ts";
import { detectRuntime } from "./runtime/detect.ts";
import type { Runtime, Server } from "./runtime/types.ts";
import { ToolRuns } from "./tools/registry.ts";
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

const claude = await probeClaude(runtime, config.claudePath);
if (claude.error !== null) log.error({ claudePath: config.claudePath }, claude.error);
else log.info({ path: claude.path, version: claude.version }, "found the claude CLI");
if (env.ANTHROPIC_API_KEY) {
  log.warn(
    {},
    "ANTHROPIC_API_KEY is set: the claude CLI will bill that API key per token instead of using your subscription",
  );
}

const baseDir = await runtime.mkdtemp(runtime.tmpdir(), "claude-openai-proxy-");
const workDir = `${baseDir}/cwd`;
const tempRoot = `${baseDir}/runs`;
await runtime.mkdir(workDir);
await runtime.mkdir(tempRoot);

const toolRuns = new ToolRuns();
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
  tempRoot,
  childEnv: {},
  dropEnv: [],
  toolRuns,
  baseUrl: () => `http://${selfHost}:${listeningPort}`,
  version: VERSION,
  log,
});

let server: Server;
try {
  server = await runtime.serve({ hostname: config.host, port: config.port, fetch: app.fetch });
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
runtime.onShutdownSignal(async (signal) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "shutting down");
  await toolRuns.stopAll();
  await server.close();
  await runtime.remove(baseDir);
  runtime.exit(0);
});
