/**
 * Start-up check of the claude CLI: where it is and which version it is.
 */
import type { Runtime } from "../runtime/types.ts";
import { resolveProgram } from "./resolve.ts";
import { terminate } from "./run.ts";

/** What start-up found out about the claude CLI. */
export interface ClaudeInfo {
  /** The resolved program, or null when it was not found. */
  path: string | null;
  /**
   * Arguments that go before the CLI's own: set when a Windows npm shim runs a JavaScript CLI,
   * `path` then being node and this the script (see claude/resolve.ts).
   */
  args?: readonly string[];
  /** `claude --version` output, e.g. "2.1.332 (Claude Code)", or null. */
  version: string | null;
  /** Why it is unusable, when it is. */
  error: string | null;
}

/** ms allowed for `claude --version`. */
const VERSION_TIMEOUT_MS = 15_000;

/**
 * Resolves the CLI and runs `claude --version`. Never throws: problems are reported in
 * {@link ClaudeInfo.error}.
 */
export async function probeClaude(runtime: Runtime, claudePath: string): Promise<ClaudeInfo> {
  const program = await resolveProgram(claudePath, {
    platform: runtime.platform,
    env: runtime.env(),
    isFile: (p) => runtime.isFile(p),
    readTextFile: (p) => runtime.readTextFile(p),
  });
  if (program === null) {
    return {
      path: null,
      version: null,
      error:
        `The claude CLI was not found ('${claudePath}'). Install Claude Code ` +
        "(npm install -g @anthropic-ai/claude-code), log in with `claude`, or set --claude-path / CLAUDE_PATH",
    };
  }
  const { path, args } = program;
  try {
    const env = { ...runtime.env() };
    delete env.CLAUDECODE;
    const child = runtime.spawn(path, [...args, "--version"], { env });
    const timer = setTimeout(() => void terminate(child, 1000), VERSION_TIMEOUT_MS);
    const text = await new Response(child.stdout).text();
    const status = await child.exited;
    clearTimeout(timer);
    if (status.exitCode !== 0) {
      return {
        path,
        version: null,
        error: `'${[path, ...args].join(" ")} --version' failed (exit ${status.exitCode ?? status.signal})`,
      };
    }
    return { path, ...(args.length === 0 ? {} : { args }), version: text.trim(), error: null };
  } catch (error) {
    return {
      path: null,
      version: null,
      error: `Cannot run the claude CLI at '${path}': ${(error as Error).message}`,
    };
  }
}
