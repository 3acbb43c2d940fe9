/**
 * Prepares and starts one CLI run for a chat completion: a private temp directory holding the
 * system prompt file (mode 0600), the argv, the child's environment, then {@link runCli}.
 */
import type { Runtime } from "../runtime/types.ts";
import { buildArgs, type Effort } from "./argv.ts";
import type { CliEvent } from "./events.ts";
import { type PromptPlan, userTurnLine } from "./prompt.ts";
import { runCli } from "./run.ts";

/** Settings and resources shared by every run. */
export interface DriverContext {
  runtime: Runtime;
  claudePath: string;
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
}

/** One run's request. */
export interface RunRequest {
  model: string;
  effort?: Effort | undefined;
  plan: PromptPlan;
  /** `max_tokens` → `CLAUDE_CODE_MAX_OUTPUT_TOKENS` for the child. */
  maxOutputTokens?: number | undefined;
  signal: AbortSignal;
  onProcess?: (pid: number | null) => void;
}

/** Environment variables never passed to the child. */
const DROPPED_ENV = ["CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT"];

/**
 * The child's environment: ours minus the nested-session guard, plus
 * `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1` (DESIGN.md "Auth and environment").
 */
export function childEnv(
  base: Record<string, string>,
  extra: Record<string, string>,
  maxOutputTokens?: number,
): Record<string, string> {
  const env: Record<string, string> = { ...base, ...extra };
  for (const name of DROPPED_ENV) delete env[name];
  env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = "1";
  if (maxOutputTokens !== undefined) env.CLAUDE_CODE_MAX_OUTPUT_TOKENS = String(maxOutputTokens);
  return env;
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
  const dir = await runtime.mkdtemp(context.tempRoot, "run-");
  let systemPromptFile: string | undefined;
  try {
    const { systemPrompt } = request.plan;
    if (systemPrompt !== null || context.systemPromptMode === "replace") {
      systemPromptFile = `${dir}/system-prompt.md`;
      await runtime.writeFile(systemPromptFile, systemPrompt ?? "");
    }
  } catch (error) {
    await runtime.remove(dir);
    throw error;
  }
  const args = buildArgs({
    model: request.model,
    systemPromptMode: context.systemPromptMode,
    settingSources: context.settingSources,
    ...(request.effort === undefined ? {} : { effort: request.effort }),
    ...(systemPromptFile === undefined ? {} : { systemPromptFile }),
  });
  yield* runCli({
    runtime,
    claudePath: context.claudePath,
    args,
    stdin: userTurnLine(request.plan.turn),
    cwd: context.workDir,
    env: childEnv(runtime.env(), context.env, request.maxOutputTokens),
    signal: request.signal,
    killGraceMs: context.killGraceMs,
    idleTimeoutMs: context.idleTimeoutMs,
    tempPaths: [dir],
    ...(request.onProcess === undefined ? {} : { onProcess: request.onProcess }),
  });
}
