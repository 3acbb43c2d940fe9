/**
 * Agent mode, the pure parts: the tool flags (src/claude/agent.ts, argv.ts), the settings
 * check (config.ts), `max_turns` (conversation.ts), the translation of the CLI's own tool calls
 * and results into progress events (translate.ts, over a run recorded from the real CLI), the
 * turn limit (turn.ts) and how each surface renders progress.
 */
import { describe, expect, it } from "vitest";
import {
  agentSettingsJson,
  agentToolArgs,
  effectiveMaxTurns,
  isFileTool,
} from "../../src/claude/agent.ts";
import { buildArgs, type RunArgs } from "../../src/claude/argv.ts";
import { type CliEvent, parseLine } from "../../src/claude/events.ts";
import { agentConfigError, type Config, parseCommand } from "../../src/config.ts";
import { CLIENT_TOOL_PREFIX } from "../../src/engine/bridge.ts";
import { requestedMaxTurns } from "../../src/engine/conversation.ts";
import {
  agentToolSummary,
  eventToTurnEvents,
  newTranslateState,
} from "../../src/engine/translate.ts";
import { isTurnLimit, turnEvents } from "../../src/engine/turn.ts";
import { toChoiceDelta } from "../../src/surfaces/chat/render.ts";
import { MessagesRenderer } from "../../src/surfaces/messages/render.ts";
import { fixtureEvents } from "./cli-fixtures.ts";

const DIR = "/srv/agent";

function flagValue(args: readonly string[], flag: string): string | undefined {
  const index = args.indexOf(flag);
  return index < 0 ? undefined : args[index + 1];
}

describe("agentToolArgs", () => {
  it("offers the named built-in tools; reads get no rule, edits one Edit rule for the directory", () => {
    const args = agentToolArgs({
      tools: ["Read", "Glob", "Grep", "Write", "Edit", "Bash"],
      dir: DIR,
    });
    expect(args.tools).toBe("Read,Glob,Grep,Write,Edit,Bash");
    expect(args.allowedTools).toEqual(["Bash", "Edit(//srv/agent/**)"]);
    expect(args.permissionMode).toBe("dontAsk");
  });

  it("never allows a bare Read (it would read anywhere)", () => {
    expect(agentToolArgs({ tools: ["Read"], dir: DIR }).allowedTools).toEqual([]);
  });

  it("allows MCP tools by name without offering them as built-ins", () => {
    const args = agentToolArgs({ tools: ["Read", "mcp__docs__search"], dir: `${DIR}/` });
    expect(args.tools).toBe("Read");
    expect(args.allowedTools).toEqual(["mcp__docs__search"]);
  });

  it("knows the file tools", () => {
    expect(["Read", "Glob", "Grep", "Write", "Edit"].every(isFileTool)).toBe(true);
    expect(isFileTool("Bash")).toBe(false);
  });
});

describe("buildArgs in agent mode", () => {
  const base: RunArgs = { model: "sonnet", systemPromptMode: "replace", settingSources: "" };
  const agent = { ...agentToolArgs({ tools: ["Read", "Bash"], dir: DIR }), maxTurns: 7 };

  it('replaces --tools "" with the named tools, a permission mode that never asks, --max-turns', () => {
    const args = buildArgs({ ...base, agent });
    expect(args.filter((a) => a === "--tools")).toHaveLength(1);
    expect(flagValue(args, "--tools")).toBe("Read,Bash");
    expect(flagValue(args, "--allowedTools")).toBe("Bash");
    expect(flagValue(args, "--permission-mode")).toBe("dontAsk");
    expect(flagValue(args, "--max-turns")).toBe("7");
    expect(flagValue(args, "--setting-sources")).toBe("");
    expect(args).not.toContain("--mcp-config");
  });

  it("gives both MCP configs (client bridge and the operator's) and allows both kinds of tools", () => {
    const args = buildArgs({
      ...base,
      mcpConfig: "/run/mcp.json",
      allowedTools: ["mcp__client"],
      agent: { ...agent, mcpConfig: "/etc/agent-mcp.json" },
    });
    const at = args.indexOf("--mcp-config");
    expect(args.slice(at, at + 4)).toEqual([
      "--mcp-config",
      "/run/mcp.json",
      "/etc/agent-mcp.json",
      "--strict-mcp-config",
    ]);
    expect(flagValue(args, "--allowedTools")).toBe("Bash,mcp__client");
  });

  it("keeps every tool off without agent mode", () => {
    const args = buildArgs(base);
    expect(flagValue(args, "--tools")).toBe("");
    expect(args).not.toContain("--permission-mode");
    expect(args).not.toContain("--max-turns");
  });
});

describe("max_turns", () => {
  it("a request can lower the operator's limit, never raise it", () => {
    expect(effectiveMaxTurns(15, undefined)).toBe(15);
    expect(effectiveMaxTurns(15, 3)).toBe(3);
    expect(effectiveMaxTurns(15, 40)).toBe(15);
    expect(effectiveMaxTurns(15, 0)).toBe(15);
    expect(effectiveMaxTurns(15, 2.5)).toBe(15);
  });

  it("comes from the body field, else metadata.max_turns (string or number)", () => {
    expect(requestedMaxTurns(4, { max_turns: "9" })).toBe(4);
    expect(requestedMaxTurns(null, { max_turns: "9" })).toBe(9);
    expect(requestedMaxTurns(undefined, { max_turns: 2 })).toBe(2);
    expect(requestedMaxTurns(undefined, { max_turns: "two" })).toBeUndefined();
    expect(requestedMaxTurns(undefined, { max_turns: "0" })).toBeUndefined();
    expect(requestedMaxTurns(undefined, null)).toBeUndefined();
  });
});

describe("agent settings", () => {
  function config(argv: string[]): Config {
    const command = parseCommand(argv, {});
    if (command.kind !== "serve") throw new Error("not serve");
    return command.config;
  }

  it("parses the agent flags (defaults: off, 15 turns)", () => {
    const off = config([]);
    expect(off.agentTools).toEqual([]);
    expect(off.agentMaxTurns).toBe(15);
    const on = config([
      "--agent-tools",
      "Read, Grep",
      "--agent-dir",
      "/srv/a",
      "--agent-max-turns",
      "3",
    ]);
    expect(on.agentTools).toEqual(["Read", "Grep"]);
    expect(on.agentMaxTurns).toBe(3);
    expect(agentConfigError(on, true)).toBeNull();
  });

  it("refuses tool names that are not tool names (a rule in parentheses, say)", () => {
    expect(() => config(["--agent-tools", "Read(/etc/**)"])).toThrow(/agent-tools/);
  });

  it("needs --agent-dir, and API keys on a non-loopback host whatever --allow-public-without-keys says", () => {
    expect(agentConfigError(config(["--agent-tools", "Read"]), true)).toMatch(/--agent-dir/);
    const open = config([
      "--agent-tools",
      "Read",
      "--agent-dir",
      "/srv/a",
      "--host",
      "0.0.0.0",
      "--allow-public-without-keys",
    ]);
    expect(agentConfigError(open, false)).toMatch(/needs API keys/);
    const keyed = config(["--agent-tools", "Read", "--agent-dir", "/srv/a", "--api-key", "k"]);
    expect(agentConfigError(keyed, false)).toBeNull();
  });

  it("refuses agent settings without --agent-tools, and MCP tool names without a config", () => {
    expect(agentConfigError(config(["--agent-dir", "/srv/a"]), true)).toMatch(
      /needs --agent-tools/,
    );
    const mcp = config(["--agent-tools", "mcp__docs__search", "--agent-dir", "/srv/a"]);
    expect(agentConfigError(mcp, true)).toMatch(/--agent-mcp-config/);
  });
});

describe("agent tool events", () => {
  it("summarises a call in one line, paths relative to the directory", () => {
    expect(agentToolSummary("Read", { file_path: `${DIR}/notes.txt` }, DIR)).toBe("Read notes.txt");
    expect(agentToolSummary("Read", { file_path: "/etc/passwd" }, DIR)).toBe("Read /etc/passwd");
    expect(agentToolSummary("Bash", { command: "ls\n  -la", description: "List" }, DIR)).toBe(
      "Bash ls -la",
    );
    expect(agentToolSummary("TodoWrite", { todos: [] }, DIR)).toBe("TodoWrite");
    expect(agentToolSummary("Grep", { pattern: "x".repeat(200) }, DIR)).toHaveLength(125);
  });

  it("reports the CLI's own Bash call and its result once each (recorded run), never as tool calls", () => {
    const events = fixtureEvents("tool-use");
    const state = newTranslateState(CLIENT_TOOL_PREFIX, DIR);
    const out = events.flatMap((event) => eventToTurnEvents(event, state));
    const agent = out.filter((e) => e.kind === "agent_tool" || e.kind === "agent_tool_result");
    expect(agent).toEqual([
      {
        kind: "agent_tool",
        id: "toolu_fake_1",
        name: "Bash",
        input: { command: "echo hi", description: "Say hi" },
        summary: "Bash echo hi",
      },
      { kind: "agent_tool_result", id: "toolu_fake_1", name: "Bash", isError: false },
    ]);
    expect(out.filter((e) => e.kind === "tool_call")).toEqual([]);
  });

  it("reports nothing of them without agent mode", () => {
    const events = fixtureEvents("tool-use");
    const state = newTranslateState(null);
    const out = events.flatMap((event) => eventToTurnEvents(event, state));
    expect(out.some((e) => e.kind === "agent_tool" || e.kind === "agent_tool_result")).toBe(false);
  });

  it("parses a user event's tool results (and nothing else from user events)", () => {
    const line = JSON.stringify({
      type: "user",
      message: {
        role: "user",
        content: [{ type: "tool_result", tool_use_id: "t1", content: "denied", is_error: true }],
      },
      parent_tool_use_id: null,
    });
    expect(parseLine(line)).toEqual({
      type: "tool_results",
      results: [{ tool_use_id: "t1", is_error: true }],
      parent_tool_use_id: null,
    });
    expect(
      parseLine('{"type":"user","message":{"content":[{"type":"text","text":"x"}]}}')?.type,
    ).toBe("unknown");
  });

  it("renders progress as reasoning_content on chat, a thinking block on Messages (when shown)", () => {
    const call = {
      kind: "agent_tool",
      id: "t",
      name: "Read",
      input: {},
      summary: "Read a.txt",
    } as const;
    expect(toChoiceDelta(call)).toEqual({ reasoning_content: "Read a.txt\n" });
    expect(
      toChoiceDelta({ kind: "agent_tool_result", id: "t", name: "Read", isError: false }),
    ).toBeNull();
    const shown = new MessagesRenderer({ model: "sonnet", thinking: "show" });
    const frames = shown.event(call).map((f) => ("data" in f ? JSON.parse(f.data) : f));
    expect(frames.map((f) => f.type)).toEqual([
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
    ]);
    expect(frames[0].content_block.type).toBe("thinking");
    expect(new MessagesRenderer({ model: "sonnet", thinking: "hide" }).event(call)).toEqual([]);
  });
});

describe("the turn limit", () => {
  const result = (extra: Record<string, unknown>): Extract<CliEvent, { type: "result" }> =>
    parseLine(
      JSON.stringify({
        type: "result",
        subtype: "success",
        is_error: false,
        usage: { input_tokens: 10, output_tokens: 5 },
        ...extra,
      }),
    ) as Extract<CliEvent, { type: "result" }>;

  it("is the result error_max_turns", () => {
    expect(isTurnLimit(result({ subtype: "error_max_turns", is_error: true }))).toBe(true);
    expect(isTurnLimit(result({ terminal_reason: "max_turns" }))).toBe(true);
    expect(isTurnLimit(result({}))).toBe(false);
  });

  it("ends an agent turn as cut off (max_tokens), not as an error", async () => {
    async function* events(): AsyncGenerator<CliEvent, void, undefined> {
      yield result({ subtype: "error_max_turns", is_error: true, stop_reason: "tool_use" });
    }
    const out = [];
    for await (const event of turnEvents(events(), {
      policy: { retryRateLimits: false, retryServerErrors: false },
      toolPrefix: null,
      structuredOutput: false,
      agentDir: DIR,
    })) {
      out.push(event);
    }
    expect(out).toMatchObject([{ kind: "end", stopReason: "max_tokens", turnLimit: true }]);
  });
});

describe("agentSettingsJson", () => {
  it("turns auto memory off and denies every file tool under each config dir (absolute rules)", () => {
    expect(
      JSON.parse(agentSettingsJson(["/home/u/.claude/", "/data/claude", "/home/u/.claude"])),
    ).toEqual({
      autoMemoryEnabled: false,
      permissions: {
        deny: [
          "Read(//home/u/.claude/**)",
          "Edit(//home/u/.claude/**)",
          "Read(//data/claude/**)",
          "Edit(//data/claude/**)",
        ],
      },
    });
  });
});
