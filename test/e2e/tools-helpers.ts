/**
 * Helpers of tools.e2e.test.ts (client tools, native history, images, structured output):
 * reading streamed tool calls, summarising what the fake Messages API received, small images
 * and a tiny http server for image URLs.
 */
import { existsSync, readdirSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type OpenAI from "openai";
import type { ChatCompletionChunk, ChatCompletionMessage } from "openai/resources/chat/completions";

/** A 1×1 PNG. */
export const PNG_BASE64 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/** A 1×1 GIF (served over http by {@link startImageServer}). */
export const GIF_BASE64 = "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";

/** Catches the error a client call rejects with (one definition, in harness.ts). */
export { apiError } from "./harness.ts";

/** Reads a whole stream. */
export async function readChunks(
  stream: AsyncIterable<ChatCompletionChunk>,
): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

/** The streamed text content. */
export function streamedContent(chunks: readonly ChatCompletionChunk[]): string {
  return chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
}

/** The last non-null finish_reason of a stream. */
export function streamedFinishReason(chunks: readonly ChatCompletionChunk[]): string | null {
  let reason: string | null = null;
  for (const chunk of chunks) reason = chunk.choices[0]?.finish_reason ?? reason;
  return reason;
}

/** One tool call as the client sees it. */
export interface PlainToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** The function tool calls of a non-streaming message. */
export function functionCalls(message: ChatCompletionMessage | undefined): PlainToolCall[] {
  return (message?.tool_calls ?? []).map((call) => {
    if (call.type !== "function") throw new Error(`unexpected tool call type ${call.type}`);
    return { id: call.id, name: call.function.name, arguments: call.function.arguments };
  });
}

/** One `delta.tool_calls` entry, in arrival order. */
export type ToolCallDelta = NonNullable<
  ChatCompletionChunk["choices"][0]["delta"]["tool_calls"]
>[number];

/** Every `delta.tool_calls` entry of a stream, in arrival order. */
export function toolCallDeltas(chunks: readonly ChatCompletionChunk[]): ToolCallDelta[] {
  return chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
}

/** The tool calls a stream assembles to (by index, as openai-node's helpers do). */
export function streamedToolCalls(chunks: readonly ChatCompletionChunk[]): PlainToolCall[] {
  const calls: PlainToolCall[] = [];
  for (const delta of toolCallDeltas(chunks)) {
    let call = calls[delta.index];
    if (call === undefined) {
      call = { id: "", name: "", arguments: "" };
      calls[delta.index] = call;
    }
    if (delta.id) call.id = delta.id;
    if (delta.function?.name) call.name += delta.function.name;
    if (delta.function?.arguments) call.arguments += delta.function.arguments;
  }
  return calls;
}

/** The assistant message a client sends back after a streamed tool-call response. */
export function assistantToolCallMessage(
  calls: readonly PlainToolCall[],
  content: string | null = null,
): OpenAI.Chat.Completions.ChatCompletionAssistantMessageParam {
  return {
    role: "assistant",
    content,
    tool_calls: calls.map((call) => ({
      id: call.id,
      type: "function" as const,
      function: { name: call.name, arguments: call.arguments },
    })),
  };
}

const SYSTEM_REMINDER = /<system-reminder>[\s\S]*?<\/system-reminder>/g;

/** Text without `<system-reminder>` blocks, trimmed. */
export function withoutReminders(text: string): string {
  return text.replace(SYSTEM_REMINDER, "").trim();
}

/** Text of a tool_result's content (a string or text blocks). */
export function toolResultText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((b: { type?: string; text?: string }) => (b?.type === "text" ? (b.text ?? "") : ""))
    .join("");
}

/**
 * One block of a Messages API message in short form: `text:TEXT` (system reminders removed;
 * blocks that only held reminders are left out), `tool_use:ID:NAME`, `tool_result:ID:TEXT`,
 * `image:MEDIA_TYPE`, or the block type.
 */
// biome-ignore lint/suspicious/noExplicitAny: raw API block
export function blockSummary(block: any): string | null {
  switch (block?.type) {
    case "text": {
      const text = withoutReminders(String(block.text ?? ""));
      return text === "" ? null : `text:${text}`;
    }
    case "tool_use":
      return `tool_use:${block.id}:${block.name}`;
    case "tool_result":
      return `tool_result:${block.tool_use_id}:${toolResultText(block.content)}`;
    case "image":
      return `image:${block.source?.media_type}`;
    default:
      return String(block?.type);
  }
}

/** A message in short form: its role and its blocks (see {@link blockSummary}). */
export interface TurnSummary {
  role: string;
  blocks: string[];
}

/**
 * Whether a `messages` entry is one the CLI adds on its own: from 2.1.3xx, role `system`
 * entries ("# Environment ...", and an empty one after the first user turn). Nothing a client
 * sends becomes a `system` entry (its system prompt goes to the request's `system`).
 */
// biome-ignore lint/suspicious/noExplicitAny: raw API message
export function isCliSystemEntry(message: any): boolean {
  return message?.role === "system";
}

/** The `messages` of a Messages API request without the CLI's own entries ({@link isCliSystemEntry}). */
// biome-ignore lint/suspicious/noExplicitAny: raw request body and messages
export function clientMessages(body: any): any[] {
  const messages: unknown[] = Array.isArray(body?.messages) ? body.messages : [];
  return messages.filter((m) => !isCliSystemEntry(m));
}

/**
 * The `messages` of a Messages API request in short form, turn by turn, without what the CLI
 * adds on its own ({@link isCliSystemEntry}; `<system-reminder>` text is dropped by
 * {@link blockSummary}).
 */
// biome-ignore lint/suspicious/noExplicitAny: raw request body
export function turns(body: any): TurnSummary[] {
  // biome-ignore lint/suspicious/noExplicitAny: raw API message
  return clientMessages(body).map((m: any) => {
    const content =
      typeof m.content === "string" ? [{ type: "text", text: m.content }] : (m.content ?? []);
    return {
      role: String(m.role),
      blocks: (content as unknown[]).map(blockSummary).filter((b): b is string => b !== null),
    };
  });
}

/** The image blocks of a Messages API message. */
// biome-ignore lint/suspicious/noExplicitAny: raw API message
export function imageBlocks(message: any): Array<{ media_type: string; data: string }> {
  type ImageBlock = { type?: string; source?: { media_type: string; data: string } };
  const content: ImageBlock[] = Array.isArray(message?.content) ? message.content : [];
  return content
    .filter((b) => b?.type === "image")
    .map((b) => ({ media_type: String(b.source?.media_type), data: String(b.source?.data) }));
}

/** Names of the tools a Messages API request offered. */
// biome-ignore lint/suspicious/noExplicitAny: raw request body
export function toolNames(body: any): string[] {
  const tools: unknown[] = Array.isArray(body?.tools) ? body.tools : [];
  return tools.map((t) => String((t as { name?: unknown }).name));
}

/** A tiny http server for image URLs: `GET /NAME` answers the registered bytes. */
export interface ImageServer {
  url: string;
  /** Paths requested so far. */
  hits: string[];
  close(): Promise<void>;
}

/** Serves `files` (path → [content type, base64]) on 127.0.0.1. */
export async function startImageServer(
  files: Record<string, [string, string]>,
): Promise<ImageServer> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    const path = req.url ?? "/";
    hits.push(path);
    const file = files[path];
    if (file === undefined) {
      res.writeHead(404).end();
      return;
    }
    const bytes = Buffer.from(file[1], "base64");
    res.writeHead(200, { "content-type": file[0], "content-length": String(bytes.length) });
    res.end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Every `*.jsonl` file under `dir` (recursively); [] when `dir` does not exist. */
export function jsonlFilesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...jsonlFilesUnder(path));
    else if (entry.name.endsWith(".jsonl")) out.push(path);
  }
  return out;
}

/**
 * How many CLI processes reached the fake: each sends its own session id in
 * `x-claude-code-session-id` with every API request (2.1.221 and 2.1.332 alike).
 */
export function heads(requests: ReadonlyArray<{ headers: Record<string, unknown> }>): number {
  return new Set(requests.map((r) => r.headers["x-claude-code-session-id"])).size;
}
