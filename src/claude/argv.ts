/**
 * The CLI's argv for one run (pure). Flags verified in DESIGN.md "Facts about the CLI".
 * Nothing whose size grows with the request goes here: the conversation goes to stdin and a
 * session file, the system prompt to a temp file. The one exception, `--json-schema`, is
 * bounded by the caller (MAX_JSON_SCHEMA_BYTES in src/engine/start.ts).
 */

/** `--effort` levels of the CLI. */
export type Effort = "low" | "medium" | "high" | "xhigh" | "max";

/** Everything that shapes the argv of one run. */
export interface RunArgs {
  /** A CLI model alias (`sonnet`) or full id (`claude-sonnet-4-5-20250929`). */
  model: string;
  effort?: Effort;
  /** Path of the temp file holding the system prompt, if any. */
  systemPromptFile?: string;
  /** `replace` uses `--system-prompt-file`, `append` keeps Claude Code's prompt. */
  systemPromptMode: "replace" | "append";
  /** Session file to resume (a path the proxy wrote), see DESIGN.md sessions. */
  resumeSessionId?: string;
  /** `--mcp-config` value: the path of a JSON file (it holds the bridge's secret). */
  mcpConfig?: string;
  /** Tool names for `--allowedTools` (`mcp__NAME__TOOL`). */
  allowedTools?: readonly string[];
  /**
   * Agent mode (src/claude/agent.ts): the built-in tools offered, their `--allowedTools` rules,
   * the permission mode, `--max-turns`, and the operator's MCP config file. Absent: no tools of
   * the CLI's own (`--tools ""`).
   */
  agent?: {
    tools: string;
    allowedTools: readonly string[];
    permissionMode: string;
    maxTurns: number;
    mcpConfig?: string | undefined;
    /** `--settings` JSON (agentSettingsJson: auto memory off, the config dir denied). */
    settings?: string | undefined;
  };
  /** JSON Schema text for `--json-schema` (bounded by the caller). */
  jsonSchema?: string;
  /** `--setting-sources` value; "" loads no settings and no CLAUDE.md files. */
  settingSources: string;
}

/** Builds the argv (without the program itself). */
export function buildArgs(run: RunArgs): string[] {
  const args = [
    "-p",
    "--input-format",
    "stream-json",
    "--output-format",
    "stream-json",
    "--verbose",
    "--include-partial-messages",
    "--model",
    run.model,
    "--setting-sources",
    run.settingSources,
  ];
  args.push("--no-session-persistence");
  if (run.resumeSessionId !== undefined) args.push("--resume", run.resumeSessionId);
  const mcpConfigs = [run.mcpConfig, run.agent?.mcpConfig].filter((f) => f !== undefined);
  const allowed = [...(run.agent?.allowedTools ?? [])];
  if (run.mcpConfig !== undefined) allowed.push(...(run.allowedTools ?? []));
  args.push("--tools", run.agent?.tools ?? "");
  if (mcpConfigs.length > 0) args.push("--mcp-config", ...mcpConfigs, "--strict-mcp-config");
  if (allowed.length > 0) args.push("--allowedTools", allowed.join(","));
  if (run.agent !== undefined) {
    args.push("--permission-mode", run.agent.permissionMode);
    args.push("--max-turns", String(run.agent.maxTurns));
    if (run.agent.settings !== undefined) args.push("--settings", run.agent.settings);
  }
  if (run.effort !== undefined) args.push("--effort", run.effort);
  if (run.systemPromptFile !== undefined) {
    args.push(
      run.systemPromptMode === "append" ? "--append-system-prompt-file" : "--system-prompt-file",
      run.systemPromptFile,
    );
  }
  if (run.jsonSchema !== undefined) args.push("--json-schema", run.jsonSchema);
  return args;
}

/** Maps OpenAI's `reasoning_effort` to the CLI's `--effort` (`minimal`/`none` → `low`). */
export function toEffort(reasoningEffort: string | null | undefined): Effort | undefined {
  switch (reasoningEffort) {
    case "none":
    case "minimal":
    case "low":
      return "low";
    case "medium":
      return "medium";
    case "high":
      return "high";
    case "xhigh":
      return "xhigh";
    default:
      return undefined;
  }
}
