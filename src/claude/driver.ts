/**
 * Prepares and starts one CLI run for a chat completion: a private temp directory holding the
 * system prompt file and the session file (mode 0600), the argv, the child's environment, then
 * {@link runCli}. The directory is removed when the run ends.
 */
import type { Runtime } from "../runtime/types.ts";
import { type AgentSettings, agentSettingsJson, agentToolArgs } from "./agent.ts";
import { buildArgs, type Effort } from "./argv.ts";
import type { CliEvent } from "./events.ts";

import { runCli, type StdinChannel } from "./run.ts";
import { type SessionPlan, sessionFile, stdinLines, userTurnLine } from "./session.ts";

/** Settings and resources shared by every run. */
export interface DriverContext {
  runtime: Runtime;
  claudePath: string;
  /** Arguments before the CLI's own (node's script for a JavaScript CLI), see `ClaudeInfo.args`. */
  claudeArgs?: readonly string[];
  /** An empty directory used as the CLI's working directory (no CLAUDE.md, no project settings). */
  workDir: string;
  /** Parent of the per-run temp directories. */
  tempRoot: string;
  systemPromptMode: "replace" | "append";
  settingSources: string;
  killGraceMs: number;
  idleTimeoutMs: number;
  /** Extra environment for the child (tests point ANTHROPIC_BASE_URL here). */
  env: Record<string, string>;
  /** Environment variable names removed from the child's environment. */
  dropEnv: readonly string[];
  /** The CLI version written into session files. */
  cliVersion: string;
  /** Told about each CLI process (the watchdog that kills them if the proxy dies hard). */
  processes?: { track(pid: number): Promise<void>; untrack(pid: number): Promise<void> };
  /** Told about every event of every run as it is read (see `CliRunOptions.onEvent`). */
  onEvent?: (event: CliEvent) => void;
}

/** One run's request. */
export interface RunRequest {
  model: string;
  effort?: Effort | undefined;
  systemPrompt: string | null;
  /**
   * Native history (resumed from a session file) and the final user turn; null for a spare
   * (with `input`: started now, its first turn written later).
   */
  session: SessionPlan | null;
  /** `max_tokens` → `CLAUDE_CODE_MAX_OUTPUT_TOKENS` for the child. */
  maxOutputTokens?: number | undefined;
  /** `--mcp-config` JSON for client tools (written to a 0600 file in the run's directory). */
  mcpConfig?: string | undefined;
  /** ms the CLI waits on one MCP `tools/call` (`MCP_TOOL_TIMEOUT`, `CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT`). */
  toolCallTimeoutMs?: number | undefined;
  /** `--json-schema` text. */
  jsonSchema?: string | undefined;
  signal: AbortSignal;
  /** True while the run waits for client tool results (the idle timeout then does not apply). */
  isWaiting?: () => boolean;
  onProcess?: (pid: number | null) => void;
  /** Warm mode: stdin stays open after `result` for more turns ({@link StdinChannel}). */
  input?: StdinChannel | undefined;
  /**
   * Agent mode: the CLI's own tools as the operator configured them, run in `settings.dir`
   * (the CLI's working directory instead of the empty one), at most `maxTurns` model turns.
   */
  agent?: { settings: AgentSettings; maxTurns: number } | undefined;
}

/** Environment variables never passed to the child. */
const ALWAYS_DROPPED_ENV = ["CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT"];

/**
 * The child's environment: ours minus the nested-session guard (and `drop`), plus
 * `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1` (DESIGN.md "Auth and environment") and
 * `ENABLE_TOOL_SEARCH=false`.
 */
export function childEnv(
  base: Record<string, string>,
  extra: Record<string, string>,
  drop: readonly string[] = [],
): Record<string, string> {
  const env: Record<string, string> = { ...base, ...extra };
  for (const name of [...ALWAYS_DROPPED_ENV, ...drop]) delete env[name];
  env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = "1";
  // Client tools are offered to the model directly, not behind the CLI's tool search
  // (2.1.3xx adds a `DeferredToolPlaceholder` tool otherwise; documented settings variable).
  env.ENABLE_TOOL_SEARCH = "false";
  return env;
}

/**
 * The child's environment for compaction: `DISABLE_AUTO_COMPACT=1` unless `--auto-compact`.
 * Verified on CLI 2.1.221 and 2.1.332: it stops both the CLI's compaction of a conversation it
 * estimates too large and the one it starts after the API's 400 "prompt is too long" (which
 * otherwise answers from a summary, HTTP 200). `DISABLE_COMPACT` would also change how the CLI
 * sizes the context window, so it is not used.
 */
export function compactionEnv(autoCompact: boolean): Record<string, string> {
  return autoCompact ? {} : { DISABLE_AUTO_COMPACT: "1" };
}

/**
 * Starts a run and yields the CLI's events up to `result`.
 * @throws ProxyError as {@link runCli} does; errors writing the temp files propagate.
 */
export async function* startRun(
  context: DriverContext,
  request: RunRequest,
): AsyncGenerator<CliEvent, void, undefined> {
  const { runtime } = context;
  const cwd = request.agent?.settings.dir ?? context.workDir;
  const dir = await runtime.mkdtemp(context.tempRoot, "run-");
  let systemPromptFile: string | undefined;
  let sessionPath: string | undefined;
  let mcpConfigFile: string | undefined;
  try {
    if (request.systemPrompt !== null || context.systemPromptMode === "replace") {
      systemPromptFile = `${dir}/system-prompt.md`;
      await runtime.writeFile(systemPromptFile, request.systemPrompt ?? "");
    }
    if (request.mcpConfig !== undefined) {
      // A file, not argv: the config holds the bridge's secret (other users can read argv).
      mcpConfigFile = `${dir}/mcp.json`;
      await runtime.writeFile(mcpConfigFile, request.mcpConfig);
    }
    if (request.session !== null && request.session.history.length > 0) {
      const sessionId = crypto.randomUUID();
      sessionPath = `${dir}/${sessionId}.jsonl`;
      await runtime.writeFile(
        sessionPath,
        sessionFile(request.session, {
          sessionId,
          cwd,
          timestamp: new Date().toISOString(),
          version: context.cliVersion,
        }),
      );
    }
  } catch (error) {
    await runtime.remove(dir);
    throw error;
  }
  const env = childEnv(runtime.env(), context.env, context.dropEnv);
  // The CLI's config dir (its per-project folders live there): denied to agent runs' tools.
  const configDirs: string[] = [];
  if (request.agent !== undefined) {
    const home = env.HOME ?? env.USERPROFILE ?? "";
    const configDir = env.CLAUDE_CONFIG_DIR ?? (home === "" ? "" : `${home}/.claude`);
    if (configDir !== "") {
      configDirs.push(configDir);
      const real = await runtime.realDir(configDir).catch(() => null);
      if (real !== null) configDirs.push(real);
    }
  }
  const args = buildArgs({
    model: request.model,
    systemPromptMode: context.systemPromptMode,
    settingSources: context.settingSources,
    ...(request.effort === undefined ? {} : { effort: request.effort }),
    ...(systemPromptFile === undefined ? {} : { systemPromptFile }),
    ...(sessionPath === undefined ? {} : { resumeSessionId: sessionPath }),
    ...(mcpConfigFile === undefined
      ? {}
      : { mcpConfig: mcpConfigFile, allowedTools: ["mcp__client"] }),
    ...(request.jsonSchema === undefined ? {} : { jsonSchema: request.jsonSchema }),
    ...(request.agent === undefined
      ? {}
      : {
          agent: {
            ...agentToolArgs(request.agent.settings),
            maxTurns: request.agent.maxTurns,
            mcpConfig: request.agent.settings.mcpConfigFile,
            settings: agentSettingsJson(configDirs),
          },
        }),
  });
  if (request.agent !== undefined) env.CLAUDE_CODE_DISABLE_AUTO_MEMORY = "1";
  if (request.maxOutputTokens !== undefined)
    env.CLAUDE_CODE_MAX_OUTPUT_TOKENS = String(request.maxOutputTokens);
  if (request.toolCallTimeoutMs !== undefined) {
    // Both of the CLI's MCP clocks (the hard per-call limit and, from 2.1.3xx, the idle limit
    // that answers the model with "sent no response or progress for 300s") outlast the
    // proxy's own wait: the proxy stops a parked run before either can fire.
    env.MCP_TOOL_TIMEOUT = String(request.toolCallTimeoutMs);
    env.CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT = String(request.toolCallTimeoutMs);
  }
  let childPid: number | null = null;
  yield* runCli({
    runtime,
    claudePath: context.claudePath,
    args: [...(context.claudeArgs ?? []), ...args],
    stdin: request.session === null ? "" : stdinLines(request.session, userTurnLine),
    cwd,
    env,
    signal: request.signal,
    killGraceMs: context.killGraceMs,
    idleTimeoutMs: context.idleTimeoutMs,
    tempPaths: [dir],
    ...(request.isWaiting === undefined ? {} : { isWaiting: request.isWaiting }),
    ...(request.input === undefined ? {} : { input: request.input }),
    ...(context.onEvent === undefined ? {} : { onEvent: context.onEvent }),
    onProcess: (pid) => {
      if (pid !== null) {
        childPid = pid;
        void context.processes?.track(pid).catch(() => {});
      } else if (childPid !== null) {
        void context.processes?.untrack(childPid).catch(() => {});
      }
      request.onProcess?.(pid);
    },
  });
}
