/**
 * Opening the CLI run behind a chat completion: a new run (native history resumed from a
 * session file, client tools through the MCP bridge, structured output), or the live run that
 * waits for the tool results this request carries (continuation).
 */
import { toEffort } from "../claude/argv.ts";
import { type DriverContext, type RunRequest, startRun } from "../claude/driver.ts";
import type { CliEvent } from "../claude/events.ts";
import { buildPrompt, contentText, systemPromptOf } from "../claude/prompt.ts";
import { type SessionPlan, splitTail, toAnthropicMessages } from "../claude/session.ts";
import { contextWindowRefusal } from "../claude/status.ts";
import type { CompletionOptions } from "../completions.ts";
import type { AppDeps } from "../deps.ts";
import type { Release } from "../limiter.ts";
import { ProxyError } from "../openai/errors.ts";
import { resolveImages } from "../openai/images.ts";
import type { ChatCompletionRequest } from "../openai/schema.ts";
import { CLIENT_TOOL_PREFIX, ToolBridge } from "../tools/bridge.ts";
import type { LiveRun, ParkedRun } from "../tools/registry.ts";
import { reachWatch } from "./reach.ts";

/** Largest `--json-schema` accepted on the command line, bytes (Windows caps a command line at ~32 KB). */
export const MAX_JSON_SCHEMA_BYTES = 16 * 1024;

/** The tool messages at the end of the conversation: `[tool_call_id, content]`. */
export function trailingToolResults(
  request: ChatCompletionRequest,
): Array<{ id: string; content: string }> {
  const results: Array<{ id: string; content: string }> = [];
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const message = request.messages[i];
    if (message?.role !== "tool") break;
    results.unshift({ id: message.tool_call_id, content: contentText(message.content) });
  }
  return results;
}

/**
 * The live run waiting for the tool results at the end of `request`, with those results
 * handed to its MCP calls; null when no such run is alive (the request is then replayed).
 */
export function continueRun(deps: AppDeps, request: ChatCompletionRequest): ParkedRun | null {
  const results = trailingToolResults(request);
  if (results.length === 0) return null;
  const run = deps.toolRuns.take(results.map((r) => r.id));
  if (run === null) return null;
  const answered = new Set<string>();
  for (const result of results) {
    run.bridge.resolve(result.id, { content: result.content, isError: false });
    answered.add(result.id);
  }
  for (const id of run.toolCallIds) {
    if (!answered.has(id)) {
      run.bridge.resolve(id, {
        content: "The client returned no result for this tool call",
        isError: true,
      });
    }
  }
  run.waiting = false;
  return run;
}

/** Instructions for tool_choice / parallel_tool_calls / json_object, appended to the system prompt. */
export function toolInstructions(request: ChatCompletionRequest): string[] {
  const lines: string[] = [];
  const choice = request.tool_choice;
  if (request.tools && request.tools.length > 0 && choice !== "none") {
    if (choice === "required")
      lines.push("You must call at least one of the available tools in this reply.");
    else if (typeof choice === "object" && choice !== null) {
      lines.push(
        `You must call the tool "${CLIENT_TOOL_PREFIX}${choice.function.name}" in this reply.`,
      );
    }
    if (request.parallel_tool_calls === false) lines.push("Call at most one tool per reply.");
  }
  if (request.response_format?.type === "json_object") {
    lines.push("Reply with a single JSON object and nothing else.");
  }
  return lines;
}

/** The `--json-schema` text for `response_format`, or undefined. @throws ProxyError 400 when too large. */
export function jsonSchemaFor(request: ChatCompletionRequest): string | undefined {
  const format = request.response_format;
  if (format == null || format.type === "text") return undefined;
  const schema =
    format.type === "json_schema"
      ? (format.json_schema.schema ?? { type: "object" })
      : { type: "object" };
  const text = JSON.stringify(schema);
  if (new TextEncoder().encode(text).length > MAX_JSON_SCHEMA_BYTES) {
    throw new ProxyError(
      400,
      `The JSON schema is larger than ${MAX_JSON_SCHEMA_BYTES} bytes: the claude CLI takes it on its command line, which is limited`,
      { param: "response_format.json_schema.schema", code: "schema_too_large" },
    );
  }
  return text;
}

let transcriptFallbackLogged = false;

/**
 * Starts a new run for `request`.
 * Validates first, then waits for a concurrency slot with `acquire`.
 * @throws ProxyError 400 for images that cannot be used, a schema that is too large, or a
 *   conversation with nothing to answer; 503 when the CLI is missing; 429 from `acquire`.
 */
export async function openRun(
  deps: AppDeps,
  request: ChatCompletionRequest,
  model: string,
  acquire: () => Promise<Release>,
): Promise<LiveRun> {
  const images = await resolveImages(request.messages, {
    fetchRemote: deps.config.imageFetch,
    maxBytes: deps.config.imageMaxBytes,
    timeoutMs: deps.config.imageFetchTimeoutMs,
  });
  const useTools = (request.tools?.length ?? 0) > 0 && request.tool_choice !== "none";
  const toolPrefix = useTools ? CLIENT_TOOL_PREFIX : null;
  const conversation = toAnthropicMessages(request.messages, { toolPrefix, images });
  const session = splitTail(conversation);
  if (session === null) {
    throw new ProxyError(
      400,
      "messages must contain at least one user or assistant message with content",
      {
        param: "messages",
        code: "invalid_value",
      },
    );
  }
  const jsonSchema = jsonSchemaFor(request);
  if (deps.claude.path === null) {
    throw new ProxyError(503, deps.claude.error ?? "The claude CLI was not found", {
      type: "server_error",
      code: "cli_not_found",
    });
  }
  const release = await acquire();
  const extra = toolInstructions(request);
  const baseSystem = systemPromptOf(request.messages);
  const systemPrompt =
    extra.length === 0
      ? baseSystem
      : [baseSystem ?? "", ...extra].filter((s) => s !== "").join("\n\n");
  const bridge = useTools ? new ToolBridge(request.tools ?? []) : null;
  const controller = new AbortController();
  const options: CompletionOptions = {
    policy: {
      retryRateLimits: deps.config.retryRateLimits,
      retryServerErrors: deps.config.retryRateLimits,
    },
    toolPrefix,
    structuredOutput: jsonSchema !== undefined,
    // Context window and reachability (issue 8, items 6 and 7).
    autoCompact: deps.config.autoCompact,
    upstream: reachWatch({
      timeoutMs: deps.config.upstreamUnreachableTimeoutMs,
      baseUrl: deps.childEnv.ANTHROPIC_BASE_URL ?? deps.runtime.env().ANTHROPIC_BASE_URL,
      stop: (error) => controller.abort(error),
    }),
  };
  const run: LiveRun = {
    bridge,
    events: undefined as never,
    controller,
    options,
    waiting: false,
    release,
  };
  const context: DriverContext = {
    runtime: deps.runtime,
    claudePath: deps.claude.path,
    ...(deps.claude.args === undefined ? {} : { claudeArgs: deps.claude.args }),
    workDir: deps.workDir,
    tempRoot: deps.tempRoot,
    systemPromptMode: deps.config.systemPromptMode,
    settingSources: deps.config.settingSources,
    killGraceMs: deps.config.killGraceMs,
    idleTimeoutMs: deps.config.idleTimeoutMs,
    env: deps.childEnv,
    dropEnv: deps.dropEnv,
    cliVersion: (deps.claude.version ?? "").split(" ")[0] ?? "",
    ...(deps.watchdog === null ? {} : { processes: deps.watchdog }),
  };
  const base: Omit<RunRequest, "session"> = {
    model,
    effort: toEffort(request.reasoning_effort),
    systemPrompt,
    maxOutputTokens: request.max_completion_tokens ?? request.max_tokens ?? undefined,
    mcpConfig: bridge === null ? undefined : bridge.mcpConfig(deps.baseUrl()),
    toolCallTimeoutMs: deps.config.toolResultTimeoutMs + 60_000,
    jsonSchema,
    signal: controller.signal,
    isWaiting: () => run.waiting,
  };
  if (bridge !== null) deps.toolRuns.register(bridge);
  const native = startRun(context, { ...base, session });
  run.events =
    session.history.length === 0
      ? native
      : withTranscriptFallback(
          native,
          () => {
            const plan = buildPrompt(request.messages, images);
            const fallback: SessionPlan = { history: [], turn: plan.turn, deferredToolUseId: null };
            return startRun(context, { ...base, session: fallback });
          },
          deps,
        );
  return run;
}

/**
 * Runs `primary` (native history from a session file); when the CLI rejects it (exits or
 * fails before any API output), runs `fallback` (the delimited transcript) instead and logs
 * it once.
 */
async function* withTranscriptFallback(
  primary: AsyncGenerator<CliEvent, void, undefined>,
  fallback: () => AsyncGenerator<CliEvent, void, undefined>,
  deps: AppDeps,
): AsyncGenerator<CliEvent, void, undefined> {
  let sawOutput = false;
  try {
    while (true) {
      const next = await primary.next();
      if (next.done === true) return;
      const event = next.value;
      if (event.type === "stream_event" || event.type === "api_retry") sawOutput = true;
      if (
        !sawOutput &&
        event.type === "result" &&
        event.is_error &&
        event.api_error_status === null &&
        event.stop_reason !== "tool_deferred_unavailable" &&
        // A conversation over the context window is refused as a transcript too.
        contextWindowRefusal(event) === null
      ) {
        throw new ProxyError(502, event.result ?? "resume failed", { code: "cli_error" });
      }
      yield event;
    }
  } catch (error) {
    const code = error instanceof ProxyError ? error.code : null;
    if (sawOutput || (code !== "cli_exited" && code !== "cli_error")) throw error;
    if (!transcriptFallbackLogged) {
      transcriptFallbackLogged = true;
      deps.log.warn(
        { error: (error as Error).message },
        "The claude CLI rejected a resumed session: sending earlier turns as a transcript instead",
      );
    }
  } finally {
    await primary.return(undefined);
  }
  yield* fallback();
}
