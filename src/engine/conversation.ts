/**
 * The API-independent conversation every surface translates its request into (OpenAI Chat
 * Completions, OpenAI Responses, Anthropic Messages), and what the engine runs. Turns and blocks
 * follow the Messages API (https://docs.anthropic.com/en/api/messages), which is what the CLI
 * finally sends; tool names are the client's own (the engine adds the MCP bridge's prefix).
 */
import type { Effort } from "../claude/argv.ts";

/** A content block of a turn. */
export type Block =
  | { type: "text"; text: string }
  /**
   * An image by URL: a `data:` URL (base64) or an http(s) URL the engine fetches (bounded, see
   * --image-fetch). Anthropic's base64 sources become data URLs.
   */
  | {
      type: "image";
      url: string;
      /** Where the image is in the request (`messages[1].content[0]`), named in errors. */
      param?: string;
      /** Where its URL is (`messages[1].content[0].image_url.url`), named in errors. */
      urlParam?: string;
    }
  /** A client tool call; `input` is the parsed arguments (invalid JSON kept as `{_raw}`). */
  | { type: "tool_use"; id: string; name: string; input: unknown }
  /** A client tool's result, as text. */
  | { type: "tool_result"; tool_use_id: string; content: string; is_error?: boolean }
  /** The model's thinking passed back; sent to the API only with its `signature`. */
  | { type: "thinking"; thinking: string; signature: string };

/** One turn: consecutive turns of one role are merged by the engine. */
export interface Turn {
  role: "user" | "assistant";
  content: Block[];
}

/** A client tool offered to the model: name, description and JSON Schema of its input. */
export interface ToolSpec {
  /** 1-64 letters, digits, `_` or `-` (what the MCP bridge and every surface accept). */
  name: string;
  description?: string | undefined;
  /** JSON Schema of the arguments (an object schema); `{type:"object"}` when absent. */
  parameters?: Record<string, unknown> | undefined;
}

/** Whether and which tool the model must call. */
export type ToolChoice = "auto" | "none" | "required" | { name: string };

/** The shape the answer must take. */
export type OutputFormat =
  | { type: "text" }
  | { type: "json_object" }
  | {
      type: "json_schema";
      schema: Record<string, unknown>;
      /** Where the schema is in the request (`response_format.json_schema.schema`), named in errors. */
      param?: string;
    };

/** Everything one turn of the engine needs from a request. */
export interface Conversation {
  /** System and developer instructions joined, or null when there are none. */
  system: string | null;
  /** The turns, oldest first; the last one is answered (a user turn, or an assistant prefill). */
  turns: Turn[];
  tools: ToolSpec[];
  toolChoice: ToolChoice;
  /** False: at most one tool call per reply (an instruction to the model). */
  parallelToolCalls: boolean;
  output: OutputFormat;
  /** The CLI's `--effort`. */
  effort?: Effort | undefined;
  /** Most output tokens per API message (`CLAUDE_CODE_MAX_OUTPUT_TOKENS`). */
  maxOutputTokens?: number | undefined;
  /**
   * Texts that end the answer where they first appear (not included): the CLI has no such
   * option, so the engine watches the streamed text and stops the run (engine/stops.ts).
   */
  stopSequences?: readonly string[] | undefined;
  /**
   * Agent mode: the request's most model turns (`max_turns`); it can only lower the operator's
   * `--agent-max-turns`. Ignored without agent mode.
   */
  maxTurns?: number | undefined;
}

/**
 * A request's `max_turns`: the body field (validated by the surface's schema), else
 * `metadata.max_turns` (a string of digits, as OpenAI's metadata values are strings, or a
 * number) for clients that cannot send extra fields. Anything else: undefined.
 */
export function requestedMaxTurns(
  field: number | null | undefined,
  metadata: unknown,
): number | undefined {
  if (typeof field === "number") return field;
  if (typeof metadata !== "object" || metadata === null) return undefined;
  const value = (metadata as Record<string, unknown>).max_turns;
  const n = typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  return typeof n === "number" && Number.isInteger(n) && n >= 1 ? n : undefined;
}

/** Text of a turn's text blocks joined by newlines. */
export function turnText(turn: Pick<Turn, "content">): string {
  return turn.content
    .filter((block) => block.type === "text")
    .map((block) => block.text)
    .join("\n");
}
