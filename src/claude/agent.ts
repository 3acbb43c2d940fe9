/**
 * Agent mode (README "Agent mode"): the CLI's own tools, run on this machine, confined. Pure:
 * the flags that offer the named tools, approve them without a prompt and keep file tools in
 * one directory. Verified on CLI 2.1.221 and 2.1.332 against the fake API
 * (test/e2e/agent.e2e.test.ts):
 * - `--tools <names>` offers exactly those built-in tools; another tool_use gets "No such tool
 *   available" and nothing runs.
 * - `--permission-mode dontAsk` denies every call no rule allows, without a prompt. Read, Glob
 *   and Grep inside the working directory are allowed by the CLI itself; a path outside it, or a
 *   symlink inside it that points outside, is denied ("Permission to use Read has been denied").
 * - File edits (Write, Edit, NotebookEdit) are allowed by the rule `Edit(//DIR/**)` only (the
 *   `//` prefix is an absolute path in Claude Code's permission rules); a write through a
 *   symlink out of DIR is denied. A bare `Read` rule would allow reads anywhere: never given.
 * - Other tools (Bash, WebFetch, WebSearch, mcp__server__tool) are allowed by name. Bash is not
 *   confined to DIR: it runs with this user's rights.
 * - The CLI also lets its tools into its own per-project folder,
 *   `<config dir>/projects/<DIR mangled>/`, outside DIR, and puts that folder's
 *   `memory/MEMORY.md` into every request ("auto memory"), even with `--setting-sources ""`
 *   (found by probing both releases). So agent runs get `--settings` with
 *   `autoMemoryEnabled: false` and deny rules for Read and Edit under the config dir: both are
 *   needed (without the rules, Read and Write there still work).
 */

/** Built-in tools whose access Claude Code checks as reads (allowed inside the working directory). */
const READ_TOOLS = new Set(["Read", "Glob", "Grep", "LS"]);

/** Built-in tools that change files: allowed inside the directory by an `Edit(...)` rule. */
const EDIT_TOOLS = new Set(["Write", "Edit", "MultiEdit", "NotebookEdit"]);

/** Prefix of MCP tool names (`mcp__server__tool`). */
const MCP_PREFIX = "mcp__";

/** The operator's agent settings (`--agent-*`), validated at start-up. */
export interface AgentSettings {
  /** Claude Code tool names (`Read`, `Bash`) and `mcp__server__tool` names, as configured. */
  tools: readonly string[];
  /** The directory the tools work in: an absolute real path (symlinks resolved), the CLI's cwd. */
  dir: string;
  /** Most model turns of one run (`--max-turns`), >= 1. */
  maxTurns: number;
  /** Absolute path of the operator's MCP config file (`--agent-mcp-config`), if any. */
  mcpConfigFile?: string | undefined;
}

/** The tool flags of an agent run. */
export interface AgentToolArgs {
  /** `--tools` value: the named built-in tools, comma-separated ("" when only MCP tools are named). */
  tools: string;
  /** `--allowedTools` entries (without the client bridge's `mcp__client`). */
  allowedTools: string[];
  /** `--permission-mode` value. */
  permissionMode: "dontAsk";
}

/**
 * The `--tools`, `--allowedTools` and `--permission-mode` of an agent run for `settings`.
 * Read tools get no rule (the CLI allows them inside its working directory and nowhere else),
 * edit tools one `Edit(//DIR/**)` rule, every other tool its name.
 */
export function agentToolArgs(settings: Pick<AgentSettings, "tools" | "dir">): AgentToolArgs {
  const builtIn = settings.tools.filter((name) => !name.startsWith(MCP_PREFIX));
  const allowedTools: string[] = [];
  let edits = false;
  for (const name of settings.tools) {
    if (READ_TOOLS.has(name)) continue;
    if (EDIT_TOOLS.has(name)) edits = true;
    else allowedTools.push(name);
  }
  if (edits) allowedTools.push(`Edit(/${settings.dir.replace(/\/+$/, "")}/**)`);
  return { tools: builtIn.join(","), allowedTools, permissionMode: "dontAsk" };
}

/**
 * The `--settings` JSON of an agent run: auto memory off, and every file tool denied under the
 * CLI's config dirs (`$CLAUDE_CONFIG_DIR` or `~/.claude`, and its real path when that differs),
 * absolute paths.
 */
export function agentSettingsJson(configDirs: readonly string[]): string {
  const dirs = [...new Set(configDirs.map((d) => d.replace(/\/+$/, "")).filter((d) => d !== ""))];
  const deny = dirs.flatMap((dir) => [`Read(/${dir}/**)`, `Edit(/${dir}/**)`]);
  return JSON.stringify({ autoMemoryEnabled: false, permissions: { deny } });
}

/** Whether `name` is one of the built-in tools the proxy treats as file tools (confined to the directory). */
export function isFileTool(name: string): boolean {
  return READ_TOOLS.has(name) || EDIT_TOOLS.has(name);
}

/**
 * The number of turns for one request: the operator's `--agent-max-turns`, lowered by the
 * request's `max_turns` (ignored when it is higher, or not a positive integer).
 */
export function effectiveMaxTurns(operator: number, requested: number | undefined): number {
  if (requested === undefined || !Number.isInteger(requested) || requested < 1) return operator;
  return Math.min(operator, requested);
}
