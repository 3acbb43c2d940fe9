import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildArgs, type RunArgs, toEffort } from "../../src/claude/argv.ts";
import { type DriverContext, startRun } from "../../src/claude/driver.ts";
import type { CliEvent } from "../../src/claude/events.ts";
import { nodeRuntime } from "../../src/runtime/node.ts";
import type { Runtime } from "../../src/runtime/types.ts";

const base: RunArgs = { model: "sonnet", systemPromptMode: "replace", settingSources: "" };

/** The value following `flag`, or undefined when the flag is absent. */
function flagValue(args: readonly string[], flag: string): string | undefined {
  const at = args.indexOf(flag);
  return at < 0 ? undefined : args[at + 1];
}

describe("buildArgs", () => {
  it("runs print mode with stream-json in and out, partial messages and no built-in tools", () => {
    const args = buildArgs(base);
    expect(args[0]).toBe("-p");
    expect(flagValue(args, "--input-format")).toBe("stream-json");
    expect(flagValue(args, "--output-format")).toBe("stream-json");
    // stream-json output requires --verbose (DESIGN.md)
    expect(args).toContain("--verbose");
    expect(args).toContain("--include-partial-messages");
    expect(flagValue(args, "--tools")).toBe("");
    expect(args).toContain("--no-session-persistence");
    expect(args.filter((a) => a === "--tools")).toHaveLength(1);
  });

  it("passes the model and the setting sources", () => {
    const args = buildArgs({ ...base, model: "claude-opus-4-1-20250805", settingSources: "user" });
    expect(flagValue(args, "--model")).toBe("claude-opus-4-1-20250805");
    expect(flagValue(args, "--setting-sources")).toBe("user");
    expect(flagValue(buildArgs(base), "--setting-sources")).toBe("");
  });

  it("adds --effort only when given", () => {
    expect(buildArgs(base)).not.toContain("--effort");
    expect(flagValue(buildArgs({ ...base, effort: "xhigh" }), "--effort")).toBe("xhigh");
  });

  it("replaces the system prompt with --system-prompt-file in replace mode", () => {
    const args = buildArgs({ ...base, systemPromptFile: "/tmp/run-1/system-prompt.md" });
    expect(flagValue(args, "--system-prompt-file")).toBe("/tmp/run-1/system-prompt.md");
    expect(args).not.toContain("--append-system-prompt-file");
  });

  it("appends with --append-system-prompt-file in append mode", () => {
    const args = buildArgs({
      ...base,
      systemPromptMode: "append",
      systemPromptFile: "/tmp/run-1/system-prompt.md",
    });
    expect(flagValue(args, "--append-system-prompt-file")).toBe("/tmp/run-1/system-prompt.md");
    expect(args).not.toContain("--system-prompt-file");
  });

  it("has no system prompt flag without a file", () => {
    const args = buildArgs(base);
    expect(args).not.toContain("--system-prompt-file");
    expect(args).not.toContain("--append-system-prompt-file");
  });

  it("resumes the session file it is given", () => {
    const path = "/tmp/run-1/0b7c6a36-4f5e-4c31-9f0b-3f8a0a6c7d11.jsonl";
    const args = buildArgs({ ...base, resumeSessionId: path });
    expect(flagValue(args, "--resume")).toBe(path);
    // the resumed file is read, no new session file is written
    expect(args).toContain("--no-session-persistence");
    expect(buildArgs(base)).not.toContain("--resume");
  });

  it("points the CLI at the MCP bridge only, with its tools allowed and built-ins still off", () => {
    const mcpConfig = JSON.stringify({
      mcpServers: { client: { type: "http", url: "http://127.0.0.1:3456/mcp/abc" } },
    });
    const args = buildArgs({
      ...base,
      mcpConfig,
      allowedTools: ["mcp__client__get_weather", "mcp__client__get_time"],
    });
    expect(flagValue(args, "--mcp-config")).toBe(mcpConfig);
    expect(args).toContain("--strict-mcp-config");
    expect(flagValue(args, "--allowedTools")).toBe(
      "mcp__client__get_weather,mcp__client__get_time",
    );
    expect(flagValue(args, "--tools")).toBe("");
  });

  it("leaves out --allowedTools when no tool is allowed, and MCP flags without a config", () => {
    const withConfig = buildArgs({ ...base, mcpConfig: "{}", allowedTools: [] });
    expect(withConfig).not.toContain("--allowedTools");
    const plain = buildArgs(base);
    expect(plain).not.toContain("--mcp-config");
    expect(plain).not.toContain("--strict-mcp-config");
    expect(plain).not.toContain("--allowedTools");
  });

  it("passes a JSON schema with --json-schema", () => {
    const schema = JSON.stringify({ type: "object", properties: { n: { type: "number" } } });
    expect(flagValue(buildArgs({ ...base, jsonSchema: schema }), "--json-schema")).toBe(schema);
    expect(buildArgs(base)).not.toContain("--json-schema");
  });
});

describe("toEffort", () => {
  it.each([
    ["none", "low"],
    ["minimal", "low"],
    ["low", "low"],
    ["medium", "medium"],
    ["high", "high"],
    ["xhigh", "xhigh"],
  ] as const)("maps reasoning_effort %s to --effort %s", (openai, cli) => {
    expect(toEffort(openai)).toBe(cli);
  });

  it("gives no effort for an absent or unknown value", () => {
    expect(toEffort(undefined)).toBeUndefined();
    expect(toEffort(null)).toBeUndefined();
    expect(toEffort("turbo")).toBeUndefined();
  });
});

describe("a large request through the driver", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "argv-test-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps a 500 KB system prompt and a 500 KB message off argv", async () => {
    const systemPrompt = `You are terse. ${"S".repeat(500 * 1024)}`;
    const message = `Summarise: ${"M".repeat(500 * 1024)}`;
    const seen: { command?: string; args?: readonly string[]; promptFileText?: string } = {};
    // A stand-in CLI: answers the first stdin line back inside a `result` event, then exits
    // when stdin closes (as the real CLI does).
    const child =
      'let b="";process.stdin.setEncoding("utf8").on("data",d=>{b+=d;const i=b.indexOf("\\n");' +
      'if(i>=0){process.stdout.write(JSON.stringify({type:"result",subtype:"success",is_error:false,' +
      'result:b.slice(0,i),usage:{}})+"\\n");b=""}})';
    const runtime: Runtime = {
      ...nodeRuntime,
      spawn: (command, args, options) => {
        seen.command = command;
        seen.args = args;
        const file = flagValue(args, "--system-prompt-file");
        if (file !== undefined) seen.promptFileText = readFileSync(file, "utf8");
        return nodeRuntime.spawn(process.execPath, ["-e", child], options);
      },
    };
    const context: DriverContext = {
      runtime,
      claudePath: "claude",
      workDir: dir,
      tempRoot: dir,
      systemPromptMode: "replace",
      settingSources: "",
      killGraceMs: 1000,
      idleTimeoutMs: 0,
      env: {},
      dropEnv: [],
      cliVersion: "2.1.197",
    };
    const events: CliEvent[] = [];
    for await (const event of startRun(context, {
      model: "sonnet",
      systemPrompt,
      session: { history: [], turn: [{ type: "text", text: message }], pending: null },
      signal: new AbortController().signal,
    })) {
      events.push(event);
    }

    const args = seen.args ?? [];
    expect(seen.command).toBe("claude");
    // Nothing near the size of the request is on the command line.
    expect(args.join(" ").length).toBeLessThan(2000);
    expect(args.some((a) => a.includes("SSSS") || a.includes("MMMM"))).toBe(false);
    // The system prompt travelled as a file, and the message on stdin.
    expect(flagValue(args, "--system-prompt-file")).toMatch(/system-prompt\.md$/);
    expect(seen.promptFileText).toBe(systemPrompt);
    const result = events.at(-1);
    expect(result?.type).toBe("result");
    const stdinLine = JSON.parse(result?.type === "result" ? (result.result ?? "") : "");
    expect(stdinLine.message.content[0].text).toBe(message);
  });
});
