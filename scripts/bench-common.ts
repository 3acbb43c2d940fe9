/** Helpers shared by the benchmark scripts: their command-line options, medians, a direct CLI run. */
import { spawn } from "node:child_process";
import { buildArgs } from "../src/claude/argv.ts";
import { userTurnLine } from "../src/claude/session.ts";
import { claudeBin, cliEnv } from "../test/fixtures/claude-cli.ts";

/** The value after `--NAME` in `args`, or `fallback`. */
export function option(args: readonly string[], name: string, fallback: string): string {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? (args[index + 1] ?? fallback) : fallback;
}

/** The median of `values` (the mean of the middle two for an even count; 0 for none). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? 0)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/**
 * One cold direct `claude -p` run against the fake API at `fakeUrl`, with the argv the proxy
 * builds (no system prompt file) and one stream-json user turn on stdin: ms to the first
 * `text_delta` on stdout and to the `result` line.
 * @param dirs `home` (the CLI's HOME) and `tmp` (its cwd)
 */
export async function directRun(
  fakeUrl: string,
  dirs: { home: string; tmp: string },
  text = "Say something",
): Promise<{ ttft: number; total: number }> {
  const started = performance.now();
  const child = spawn(
    claudeBin(),
    buildArgs({ model: "sonnet", systemPromptMode: "append", settingSources: "" }),
    {
      env: { ...cliEnv(fakeUrl, dirs.home), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1" },
      cwd: dirs.tmp,
      stdio: ["pipe", "pipe", "ignore"],
    },
  );
  child.stdin.write(userTurnLine([{ type: "text", text }]));
  let ttft = 0;
  let buffer = "";
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      buffer += chunk;
      for (let i = buffer.indexOf("\n"); i >= 0; i = buffer.indexOf("\n")) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        if (ttft === 0 && line.includes('"text_delta"')) ttft = performance.now() - started;
        // Parse: from 2.1.3xx a result line need not start with "type".
        if (
          line.includes('"result"') &&
          (JSON.parse(line) as { type?: string }).type === "result"
        ) {
          const total = performance.now() - started;
          child.stdin.end();
          child.once("exit", () => resolve({ ttft, total }));
        }
      }
    });
    child.once("error", reject);
  });
}
