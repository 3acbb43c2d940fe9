/**
 * CLI events → turn events (pure, one state object per turn).
 * Text comes only from `stream_event` `text_delta`s (DESIGN.md: "Stream text from these only"),
 * thinking from `thinking_delta` and `signature_delta`, tool calls from `tool_use` blocks and
 * their `input_json_delta` fragments. Events of sub-agents (`parent_tool_use_id` set) are ignored.
 */
import type { CliEvent, CliUsage } from "../claude/events.ts";
import { ProxyError } from "../errors.ts";
import type { TurnEvent } from "./events.ts";

/** The events of a turn that carry content (what {@link eventToTurnEvents} yields). */
export type ContentEvent = Extract<
  TurnEvent,
  {
    kind:
      | "text"
      | "thinking"
      | "signature"
      | "tool_call"
      | "tool_arguments"
      | "agent_tool"
      | "agent_tool_result";
  }
>;

/** Translation state for one response. */
export interface TranslateState {
  /** Content block index → tool call index (from 0 in the turn), for the current message. */
  toolIndexByBlock: Map<number, number>;
  /** Tool calls seen so far in this response. */
  toolCalls: Array<{ id: string; name: string; arguments: string }>;
  /** Usage of the API messages seen so far (tokens). */
  usage: CliUsage;
  /** The last `stop_reason` from `message_delta` (or the result). */
  stopReason: string | null;
  /**
   * Prefix of client tools (the MCP bridge's `mcp__client__`), stripped from reported names;
   * null when the run has no client tools. Other tool_use blocks (the CLI's own
   * `StructuredOutput`) are not client tool calls and are not reported.
   */
  toolPrefix: string | null;
  /** Whether a `message_start` was seen (usage then comes from stream events). */
  sawMessage: boolean;
  /** Client tool calls in the current API message. */
  messageToolCalls: number;
  /** ids of the API messages that were streamed (from `message_start`). */
  streamedIds: Set<string>;
  /** ids of unstreamed messages whose usage was counted. */
  unstreamedUsageIds: Set<string>;
  /**
   * True from a `message_start` until its message ends: a `message_delta` with a
   * `stop_reason`, which the API sends before every `message_stop`. A bare `message_stop` does
   * not end it: after a dropped stream the CLI prints one of its own (2.1.221, 2.1.332).
   */
  messageOpen: boolean;
  /** Deltas were emitted for the open message. */
  messageEmitted: boolean;
  /**
   * Set when a complete message arrived without stream events (the CLI's non-streaming
   * fallback after a dropped stream) and it called client tools: the response ends there.
   */
  unstreamedToolStop: boolean;
  /**
   * Agent mode: the agent directory (summaries show paths relative to it); null when the run
   * has no agent tools (their tool_use blocks are then not reported at all).
   */
  agentDir: string | null;
  /** Agent tool calls seen (id → name), so each is reported once and its result matched. */
  agentCalls: Map<string, string>;
}

/** A fresh state for one response. */
export function newTranslateState(
  toolPrefix: string | null = null,
  agentDir: string | null = null,
): TranslateState {
  return {
    toolIndexByBlock: new Map(),
    toolCalls: [],
    usage: {
      input_tokens: 0,
      output_tokens: 0,
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
    },
    stopReason: null,
    toolPrefix,
    sawMessage: false,
    messageToolCalls: 0,
    streamedIds: new Set(),
    unstreamedUsageIds: new Set(),
    messageOpen: false,
    messageEmitted: false,
    unstreamedToolStop: false,
    agentDir,
    agentCalls: new Map(),
  };
}

/**
 * The turn events one CLI event adds (often none). Updates `state`.
 * @throws ProxyError 502 `upstream_stream_dropped` (see the message_start case).
 */
export function eventToTurnEvents(event: CliEvent, state: TranslateState): ContentEvent[] {
  if (event.type === "result") {
    if (!state.sawMessage) state.usage = { ...event.usage };
    state.stopReason ??= event.stop_reason;
    return [];
  }
  if (event.type === "assistant" && event.parent_tool_use_id === null)
    return [...unstreamedDeltas(event, state), ...agentToolCalls(event, state)];
  if (event.type === "tool_results") return agentToolResults(event, state);
  if (event.type !== "stream_event" || event.parent_tool_use_id !== null) return [];
  const deltas = streamDeltas(event.event, state);
  if (deltas.length > 0 && state.messageOpen) state.messageEmitted = true;
  return deltas;
}

/** Tool names that are the CLI's own machinery, not agent tools (`--json-schema`'s tool). */
const NOT_AGENT_TOOLS = new Set(["StructuredOutput"]);

/**
 * Agent mode: the tool_use blocks of a complete `assistant` message that the CLI runs itself
 * (not client tools), each reported once. Reported from the complete message, which arrives
 * once per block with the whole input, before the CLI runs the tool.
 */
function agentToolCalls(
  event: Extract<CliEvent, { type: "assistant" }>,
  state: TranslateState,
): ContentEvent[] {
  if (state.agentDir === null || event.message.model === "<synthetic>") return [];
  const out: ContentEvent[] = [];
  for (const block of event.message.content) {
    if (block.type !== "tool_use") continue;
    const id = String(block.id ?? "");
    const name = String(block.name ?? "");
    if (state.toolPrefix !== null && name.startsWith(state.toolPrefix)) continue;
    if (NOT_AGENT_TOOLS.has(name) || id === "" || state.agentCalls.has(id)) continue;
    state.agentCalls.set(id, name);
    const input = block.input ?? {};
    out.push({
      kind: "agent_tool",
      id,
      name,
      input,
      summary: agentToolSummary(name, input, state.agentDir),
    });
  }
  return out;
}

/** Agent mode: the results of agent tools the CLI ran (results of other calls are skipped). */
function agentToolResults(
  event: Extract<CliEvent, { type: "tool_results" }>,
  state: TranslateState,
): ContentEvent[] {
  if (event.parent_tool_use_id !== null) return [];
  const out: ContentEvent[] = [];
  for (const result of event.results) {
    const name = state.agentCalls.get(result.tool_use_id);
    if (name === undefined) continue;
    out.push({ kind: "agent_tool_result", id: result.tool_use_id, name, isError: result.is_error });
  }
  return out;
}

/** Input fields that say what a tool works on, most telling first. */
const SUMMARY_FIELDS = ["file_path", "notebook_path", "path", "pattern", "command", "url", "query"];

/** Longest argument shown in a summary, characters. */
const SUMMARY_MAX = 120;

/**
 * One line saying what an agent tool does, e.g. `Read notes.txt`, `Grep TODO`,
 * `Bash ls -la`: the name and the first telling input field, paths under `dir` made relative,
 * whitespace collapsed, cut at 120 characters.
 */
export function agentToolSummary(name: string, input: unknown, dir: string): string {
  const fields =
    typeof input === "object" && input !== null ? (input as Record<string, unknown>) : {};
  const key = SUMMARY_FIELDS.find((field) => typeof fields[field] === "string");
  if (key === undefined) return name;
  let value = String(fields[key]).replace(/\s+/g, " ").trim();
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  if (value.startsWith(prefix)) value = value.slice(prefix.length);
  if (value.length > SUMMARY_MAX) value = `${value.slice(0, SUMMARY_MAX - 1)}…`;
  return value === "" ? name : `${name} ${value}`;
}

/** The error for an answer the upstream dropped after part of it was sent. */
function streamDropped(): ProxyError {
  return new ProxyError(
    502,
    "The upstream API dropped the connection in the middle of the answer",
    {
      type: "api_error",
      code: "upstream_stream_dropped",
    },
  );
}

/**
 * An `assistant` event normally repeats content already streamed. One whose message was never
 * streamed is the CLI's non-streaming fallback after the upstream dropped a stream (verified
 * against 2.1.197): its content is sent now, unless part of the dropped answer was already
 * sent, which cannot be taken back: then the response fails instead of being silently wrong.
 * (2.1.221 and later retry with another stream instead: see `message_start` in streamDeltas.)
 * @throws ProxyError 502 `upstream_stream_dropped`.
 */
function unstreamedDeltas(
  event: Extract<CliEvent, { type: "assistant" }>,
  state: TranslateState,
): ContentEvent[] {
  const { message } = event;
  if (message.model === "<synthetic>" || state.streamedIds.has(message.id)) return [];
  if (state.messageOpen && state.messageEmitted) throw streamDropped();
  state.messageOpen = false;
  // The CLI's result reports zero usage for such a message: count the message's own.
  if (message.usage !== undefined && !state.unstreamedUsageIds.has(message.id)) {
    state.unstreamedUsageIds.add(message.id);
    if (!state.sawMessage) {
      state.usage = {
        input_tokens: 0,
        output_tokens: 0,
        cache_read_input_tokens: 0,
        cache_creation_input_tokens: 0,
      };
    }
    state.sawMessage = true;
    state.usage.input_tokens += message.usage.input_tokens;
    state.usage.output_tokens += message.usage.output_tokens;
    state.usage.cache_read_input_tokens += message.usage.cache_read_input_tokens;
    state.usage.cache_creation_input_tokens += message.usage.cache_creation_input_tokens;
  }
  const deltas: ContentEvent[] = [];
  for (const block of message.content) {
    if (block.type === "text" && typeof block.text === "string" && block.text !== "") {
      deltas.push({ kind: "text", text: block.text });
    } else if (
      block.type === "thinking" &&
      typeof block.thinking === "string" &&
      block.thinking !== ""
    ) {
      deltas.push({ kind: "thinking", text: block.thinking });
      if (typeof block.signature === "string" && block.signature !== "") {
        deltas.push({ kind: "signature", signature: block.signature });
      }
    } else if (block.type === "tool_use" && state.toolPrefix !== null) {
      const name = String(block.name ?? "");
      if (!name.startsWith(state.toolPrefix)) continue;
      const index = state.toolCalls.length;
      const call = {
        id: String(block.id ?? `call_${index}`),
        name: name.slice(state.toolPrefix.length),
        arguments: JSON.stringify(block.input ?? {}),
      };
      state.toolCalls.push(call);
      state.unstreamedToolStop = true;
      deltas.push({ kind: "tool_call", index, ...call });
    }
  }
  return deltas;
}

/**
 * Deltas of one top-level stream event. A `message_start` while the previous message is still
 * open is the CLI's streaming retry after the upstream dropped that message (2.1.221, 2.1.332:
 * a bare `message_stop`, an `api_retry` with `error_status: null`, then the new message): the
 * retry's answer is sent when nothing of the dropped one was, else the response fails.
 * @throws ProxyError 502 `upstream_stream_dropped`.
 */
function streamDeltas(
  e: Extract<CliEvent, { type: "stream_event" }>["event"],
  state: TranslateState,
): ContentEvent[] {
  switch (e.type) {
    case "message_start": {
      if (state.messageOpen && state.messageEmitted) throw streamDropped();
      state.toolIndexByBlock.clear();
      state.sawMessage = true;
      state.messageOpen = true;
      state.messageEmitted = false;
      state.streamedIds.add(String((e as { message?: { id?: string } }).message?.id ?? ""));
      state.messageToolCalls = 0;
      state.stopReason = null;
      const usage = (e as { message?: { usage?: Partial<CliUsage> } }).message?.usage;
      // Its output_tokens is already counted in message_delta's (cumulative) output_tokens.
      if (usage !== undefined) addUsage(state.usage, { ...usage, output_tokens: 0 }, false);
      return [];
    }
    case "content_block_start": {
      const { index, content_block: block } = e as {
        index: number;
        content_block: Record<string, unknown>;
      };
      if (block.type !== "tool_use" || state.toolPrefix === null) return [];
      const fullName = String(block.name ?? "");
      if (!fullName.startsWith(state.toolPrefix)) return [];
      const toolIndex = state.toolCalls.length;
      const name = fullName.slice(state.toolPrefix.length);
      state.messageToolCalls++;
      const id = String(block.id ?? `call_${toolIndex}`);
      state.toolCalls.push({ id, name, arguments: "" });
      state.toolIndexByBlock.set(index, toolIndex);
      return [{ kind: "tool_call", index: toolIndex, id, name, arguments: "" }];
    }
    case "content_block_delta": {
      const { index, delta } = e as { index: number; delta: Record<string, unknown> };
      if (delta.type === "text_delta" && typeof delta.text === "string" && delta.text !== "") {
        return [{ kind: "text", text: delta.text }];
      }
      if (
        delta.type === "thinking_delta" &&
        typeof delta.thinking === "string" &&
        delta.thinking !== ""
      ) {
        return [{ kind: "thinking", text: delta.thinking }];
      }
      if (
        delta.type === "signature_delta" &&
        typeof delta.signature === "string" &&
        delta.signature !== ""
      ) {
        return [{ kind: "signature", signature: delta.signature }];
      }
      if (delta.type === "input_json_delta" && typeof delta.partial_json === "string") {
        const toolIndex = state.toolIndexByBlock.get(index);
        const call = toolIndex === undefined ? undefined : state.toolCalls[toolIndex];
        if (toolIndex === undefined || call === undefined || delta.partial_json === "") return [];
        call.arguments += delta.partial_json;
        return [{ kind: "tool_arguments", index: toolIndex, delta: delta.partial_json }];
      }
      return [];
    }
    case "message_delta": {
      const { delta, usage } = e as {
        delta?: { stop_reason?: string | null };
        usage?: Partial<CliUsage>;
      };
      if (typeof delta?.stop_reason === "string") {
        state.stopReason = delta.stop_reason;
        state.messageOpen = false;
      }
      if (usage !== undefined) addUsage(state.usage, usage, true);
      return [];
    }
    default:
      return [];
  }
}

/**
 * `message_delta` carries the message's final (cumulative) output count; the `output_tokens` of
 * `message_start` is an early placeholder already included in it, so it is not added
 * (https://docs.anthropic.com/en/docs/build-with-claude/streaming#event-types).
 */
function addUsage(total: CliUsage, usage: Partial<CliUsage>, outputOnly: boolean): void {
  if (outputOnly) {
    if (typeof usage.output_tokens === "number") total.output_tokens += usage.output_tokens;
    return;
  }
  total.input_tokens += usage.input_tokens ?? 0;
  total.cache_read_input_tokens += usage.cache_read_input_tokens ?? 0;
  total.cache_creation_input_tokens += usage.cache_creation_input_tokens ?? 0;
}
