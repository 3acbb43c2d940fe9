/**
 * `POST /v1/chat/completions` (https://platform.openai.com/docs/api-reference/chat/create):
 * validates, builds the run, and answers with a `chat.completion` or a stream of
 * `chat.completion.chunk` SSE frames ending in `data: [DONE]`.
 */
import type { Context } from "hono";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { toEffort } from "../claude/argv.ts";
import { type DriverContext, startRun } from "../claude/driver.ts";
import { buildPrompt } from "../claude/prompt.ts";
import { type CompletionPart, completionParts } from "../completions.ts";
import type { AppDeps } from "../deps.ts";
import { resolveModel } from "../models.ts";
import { ProxyError, toProxyError } from "../openai/errors.ts";
import { type ChatCompletionRequest, parseChatCompletionRequest } from "../openai/schema.ts";
import type { ChatCompletion, ChatCompletionChunk, ChoiceDelta } from "../openai/types.ts";
import { modelNotFound } from "./models.ts";

/** Reads and validates the JSON body. @throws ProxyError 400 for malformed JSON or a bad shape. */
async function readRequest(c: Context): Promise<ChatCompletionRequest> {
  let body: unknown;
  try {
    body = JSON.parse(await c.req.text());
  } catch (error) {
    throw new ProxyError(
      400,
      `Could not parse the request body as JSON: ${(error as Error).message}`,
      {
        code: "invalid_json",
      },
    );
  }
  return parseChatCompletionRequest(body);
}

function completionId(): string {
  return `chatcmpl-${crypto.randomUUID().replaceAll("-", "")}`;
}

/** The chat completions route, mounted under `/v1`. */
export function chatRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const policy = {
    retryRateLimits: deps.config.retryRateLimits,
    retryServerErrors: deps.config.retryRateLimits,
  };

  app.post("/chat/completions", async (c) => {
    const request = await readRequest(c);
    const model = resolveModel(request.model, deps.config);
    if (model === null) throw modelNotFound(request.model);
    const plan = buildPrompt(request.messages);
    if (deps.claude.path === null) {
      throw new ProxyError(503, deps.claude.error ?? "The claude CLI was not found", {
        type: "server_error",
        code: "cli_not_found",
      });
    }
    const context: DriverContext = {
      runtime: deps.runtime,
      claudePath: deps.claude.path,
      workDir: deps.workDir,
      tempRoot: deps.tempRoot,
      systemPromptMode: deps.config.systemPromptMode,
      settingSources: deps.config.settingSources,
      killGraceMs: deps.config.killGraceMs,
      idleTimeoutMs: deps.config.idleTimeoutMs,
      env: deps.childEnv,
    };
    const controller = new AbortController();
    const clientGone = () =>
      controller.abort(
        new ProxyError(499, "The client closed the request", { code: "client_closed" }),
      );
    const clientSignal = c.req.raw.signal;
    clientSignal.addEventListener("abort", clientGone, { once: true });
    const timeout =
      deps.config.requestTimeoutMs > 0
        ? setTimeout(
            () =>
              controller.abort(
                new ProxyError(
                  504,
                  `The request took longer than ${deps.config.requestTimeoutMs} ms`,
                  {
                    type: "timeout_error",
                    code: "request_timeout",
                  },
                ),
              ),
            deps.config.requestTimeoutMs,
          )
        : undefined;
    const started = Date.now();
    const events = startRun(context, {
      model,
      effort: toEffort(request.reasoning_effort),
      plan,
      maxOutputTokens: request.max_completion_tokens ?? request.max_tokens ?? undefined,
      signal: controller.signal,
    });
    const parts = completionParts(events, policy);
    const cleanup = async () => {
      clearTimeout(timeout);
      clientSignal.removeEventListener("abort", clientGone);
      await parts.return(undefined);
    };
    const id = completionId();
    const created = now();
    const logDone = (
      status: number,
      usage?: { prompt_tokens: number; completion_tokens: number },
    ) =>
      deps.log.info(
        {
          id,
          model: request.model,
          cliModel: model,
          stream: request.stream === true,
          status,
          durationMs: Date.now() - started,
          ...(usage === undefined
            ? {}
            : { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens }),
        },
        "chat completion",
      );

    if (request.stream !== true) {
      try {
        const completion = await collect(parts, { id, created, model: request.model });
        logDone(200, completion.usage);
        return c.json(completion);
      } catch (error) {
        const proxyError = toProxyError(error);
        logDone(proxyError.status);
        throw proxyError;
      } finally {
        await cleanup();
      }
    }

    // Streaming: wait for the first part so that errors before any output get a real status.
    let first: IteratorResult<CompletionPart, void>;
    try {
      first = await parts.next();
    } catch (error) {
      await cleanup();
      const proxyError = toProxyError(error);
      logDone(proxyError.status);
      throw proxyError;
    }
    const includeUsage = request.stream_options?.include_usage === true;
    return streamSSE(c, async (stream) => {
      stream.onAbort(clientGone);
      const chunk = (
        delta: ChoiceDelta,
        finish: ChatCompletionChunk["choices"][0]["finish_reason"] = null,
      ) =>
        stream.writeSSE({
          data: JSON.stringify({
            id,
            object: "chat.completion.chunk",
            created,
            model: request.model,
            system_fingerprint: null,
            choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
          } satisfies ChatCompletionChunk),
        });
      let status = 200;
      let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
      try {
        await chunk({ role: "assistant", content: "" });
        const handle = async (part: CompletionPart) => {
          if (part.kind === "delta") await chunk(part.delta);
          else if (part.kind === "retrying") await stream.write(": upstream retry\n\n");
          else {
            usage = part.usage;
            await chunk({}, part.finishReason);
            if (includeUsage) {
              await stream.writeSSE({
                data: JSON.stringify({
                  id,
                  object: "chat.completion.chunk",
                  created,
                  model: request.model,
                  system_fingerprint: null,
                  choices: [],
                  usage: part.usage,
                } satisfies ChatCompletionChunk),
              });
            }
          }
        };
        if (first.done !== true) await handle(first.value);
        for await (const part of parts) await handle(part);
      } catch (error) {
        const proxyError = toProxyError(error);
        status = proxyError.status;
        if (!stream.aborted) await stream.writeSSE({ data: JSON.stringify(proxyError.toJSON()) });
      } finally {
        await cleanup();
        logDone(status, usage);
      }
      if (!stream.aborted) await stream.writeSSE({ data: "[DONE]" });
    });
  });
  return app;
}

/** Collects a whole completion for `stream: false`. */
async function collect(
  parts: AsyncIterable<CompletionPart>,
  meta: { id: string; created: number; model: string },
): Promise<ChatCompletion> {
  let content = "";
  let reasoning = "";
  for await (const part of parts) {
    if (part.kind === "delta") {
      content += part.delta.content ?? "";
      reasoning += part.delta.reasoning_content ?? "";
    } else if (part.kind === "end") {
      const toolCalls = part.state.toolCalls.map((call) => ({
        id: call.id,
        type: "function" as const,
        function: { name: call.name, arguments: call.arguments === "" ? "{}" : call.arguments },
      }));
      return {
        id: meta.id,
        object: "chat.completion",
        created: meta.created,
        model: meta.model,
        system_fingerprint: null,
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: content === "" && toolCalls.length > 0 ? null : content,
              refusal: null,
              ...(reasoning === "" ? {} : { reasoning_content: reasoning }),
              ...(toolCalls.length === 0 ? {} : { tool_calls: toolCalls }),
            },
            finish_reason: part.finishReason,
            logprobs: null,
          },
        ],
        usage: part.usage,
      };
    }
  }
  throw new ProxyError(502, "The claude CLI ended without a result", {
    type: "api_error",
    code: "cli_exited",
  });
}
