/**
 * `POST /v1/chat/completions` (https://platform.openai.com/docs/api-reference/chat/create):
 * validates, opens the run (or continues the one waiting for these tool results), and answers
 * with a `chat.completion` or a stream of `chat.completion.chunk` SSE frames ending in
 * `data: [DONE]`. A response that ends in client tool calls parks its run for the follow-up.
 */
import type { Context } from "hono";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { presentedKey } from "../auth.ts";
import { continueRun, openRun, requestFingerprint } from "../chat/start.ts";
import { type CompletionPart, completionParts } from "../completions.ts";
import type { AppDeps } from "../deps.ts";
import { ProxyError, toProxyError } from "../errors.ts";
import type { Release } from "../limiter.ts";
import { ModelLabels, resolveModel } from "../models.ts";
import { type ChatCompletionRequest, parseChatCompletionBody } from "../openai/schema.ts";
import { newTranslateState, type TranslateState, toCompletionUsage } from "../openai/translate.ts";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChoiceDelta,
  CompletionUsage,
} from "../openai/types.ts";
import type { LiveRun, ParkedRun } from "../tools/registry.ts";
import { modelNotFound } from "./models.ts";

/**
 * Reads and validates the JSON body (counted before it is parsed: see parseChatCompletionBody).
 * @throws ProxyError 400 for malformed JSON, too many values or a bad shape.
 */
async function readRequest(c: Context): Promise<ChatCompletionRequest> {
  return parseChatCompletionBody(await c.req.text());
}

function completionId(): string {
  return `chatcmpl-${crypto.randomUUID().replaceAll("-", "")}`;
}

/** The chat completions route, mounted under `/v1`. */
export function chatRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  // Bounded model labels for metrics and usage (unknown ids fold into "other").
  const modelLabels = new ModelLabels(deps.config);

  app.post("/chat/completions", async (c) => {
    const request = await readRequest(c);
    const model = resolveModel(request.model, deps.config);
    if (model === null) throw modelNotFound(request.model);
    const started = Date.now();
    const id = completionId();
    const created = now();

    /**
     * Logs one finished (or failed) chat completion and counts it: metrics, tokens and the usage
     * store when there is usage; a stack trace for errors that are not ProxyErrors.
     */
    const logCompletion = (
      status: number,
      outcome: {
        usage?: CompletionUsage | undefined;
        error?: unknown;
        costUsd?: number | undefined;
        extra?: Record<string, unknown>;
      } = {},
    ) => {
      const { usage, error } = outcome;
      if (error !== undefined && !(error instanceof ProxyError)) {
        deps.log.error(
          { requestId: c.get("requestId"), err: String(error), stack: (error as Error).stack },
          "unexpected error in a chat completion",
        );
      }
      // The label, not the requested name: a new name must not make a new series.
      const label = modelLabels.label(model, status === 200);
      deps.metrics.chatCompletions.inc({
        model: label,
        stream: String(request.stream === true),
        status: String(status),
      });
      if (usage !== undefined) {
        deps.metrics.tokens.inc({ model: label, type: "prompt" }, usage.prompt_tokens);
        deps.metrics.tokens.inc({ model: label, type: "completion" }, usage.completion_tokens);
        deps.metrics.tokens.inc(
          { model: label, type: "cached" },
          usage.prompt_tokens_details.cached_tokens,
        );
        deps.usage
          .record({
            request_id: String(c.get("requestId") ?? id),
            model: label,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cached_tokens: usage.prompt_tokens_details.cached_tokens,
            cost_usd: outcome.costUsd ?? 0,
          })
          .catch((writeError: unknown) =>
            deps.log.warn({ err: String(writeError) }, "could not record usage"),
          );
      }
      deps.log.info(
        {
          requestId: c.get("requestId"),
          id,
          model: request.model,
          cliModel: model,
          stream: request.stream === true,
          status,
          durationMs: Date.now() - started,
          ...outcome.extra,
          ...(usage === undefined
            ? {}
            : { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens }),
        },
        "chat completion",
      );
    };

    /** Logs and counts a request that failed before its run opened (queue, validation, CLI). */
    const prepareFailed = (error: unknown): never => {
      const proxyError = toProxyError(error);
      logCompletion(proxyError.status, { error, extra: { code: proxyError.code } });
      throw error;
    };

    /** Opens (or continues) the run, waiting in the queue if needed. */
    const prepare = async () => {
      // A parked run belongs to the key that made its calls (never logged).
      const owner = presentedKey(c.req.raw.headers) ?? "";
      let run: LiveRun | null = await continueRun(deps, request, { owner, model });
      if (run === null) {
        if (deps.lifecycle.draining) {
          throw new ProxyError(503, "The proxy is shutting down", {
            type: "server_error",
            code: "shutting_down",
          });
        }
        run = await openRun(
          deps,
          request,
          model,
          async () => {
            // A run parked for tool results gives its slot up rather than make new requests wait.
            if (deps.limiter.running >= deps.limiter.max) await deps.toolRuns.evictOldest();
            let release: Release;
            try {
              release = await deps.limiter.acquire(c.req.raw.signal);
            } catch (error) {
              if (!(error instanceof ProxyError) && c.req.raw.signal.aborted) {
                throw new ProxyError(499, "The client closed the request while it was queued", {
                  code: "client_closed",
                });
              }
              if (error instanceof ProxyError && error.status === 429)
                deps.metrics.queueRejections.inc();
              throw error;
            }
            // Shutdown began while this request waited for a slot (the slot of a run it stopped):
            // a CLI started now would outlive the proxy.
            if (deps.lifecycle.draining) {
              release();
              throw new ProxyError(503, "The proxy is shutting down", {
                type: "server_error",
                code: "shutting_down",
              });
            }
            return release;
          },
          c.req.raw.signal,
        );
        deps.lifecycle.begin(run);
      }
      const live = run;

      // One leg of the run: client disconnect and the request timeout stop it.
      const clientGone = () =>
        live.controller.abort(
          new ProxyError(499, "The client closed the request", { code: "client_closed" }),
        );
      const clientSignal = c.req.raw.signal;
      clientSignal.addEventListener("abort", clientGone, { once: true });
      if (clientSignal.aborted) clientGone();
      const timeoutMs = deps.config.requestTimeoutMs;
      const timeout =
        timeoutMs > 0
          ? setTimeout(
              () =>
                live.controller.abort(
                  new ProxyError(504, `The request took longer than ${timeoutMs} ms`, {
                    type: "timeout_error",
                    code: "request_timeout",
                  }),
                ),
              timeoutMs,
            )
          : undefined;
      const state = newTranslateState(live.options.toolPrefix);
      const parts = completionParts(live.events, live.options, state);
      let parked = false;
      /**
       * Ends this leg: parks the run when it waits for tool results (synchronously, before the
       * response goes out, so that the follow-up always finds it), else stops it. The returned
       * promise settles once the CLI has exited; responses need not wait for it.
       */
      const finish = async (end: Extract<CompletionPart, { kind: "end" }> | null) => {
        clearTimeout(timeout);
        clientSignal.removeEventListener("abort", clientGone);
        if (
          end !== null &&
          end.result === null &&
          live.bridge !== null &&
          !live.controller.signal.aborted &&
          !deps.lifecycle.draining
        ) {
          parked = true;
          live.waiting = true;
          // Park this very object: the lifecycle and the run's idle check hold it.
          const parkedRun: ParkedRun = Object.assign(live, {
            bridge: live.bridge,
            toolCalls: end.state.toolCalls.map((call) => ({ ...call })),
            owner,
            conversation: requestFingerprint(request, model),
          });
          deps.toolRuns.park(parkedRun, deps.config.toolResultTimeoutMs);
          deps.lifecycle.checkIdle();
          // Requests already waiting for a slot come first: a parked run gives its slot up.
          if (deps.limiter.queued > 0) void deps.toolRuns.evictOldest();
          await parts.return(undefined);
          return;
        }
        await parts.return(undefined);
        await closeRun(deps, live);
      };
      const logDone = (status: number, usage?: CompletionUsage, error?: unknown, costUsd = 0) =>
        logCompletion(status, {
          usage,
          error,
          costUsd,
          extra: parked ? { waitingForTools: true } : {},
        });

      return { live, parts, finish, logDone, spent: () => spentUsage(state) };
    };

    if (request.stream !== true) {
      const { live, parts, finish, logDone, spent } = await prepare().catch(prepareFailed);
      let end: Extract<CompletionPart, { kind: "end" }> | null = null;
      try {
        const collected = await collect(parts, { id, created, model: request.model });
        end = collected.end;
        // The answer is complete: send it now; the CLI exits (and is reaped) in the background.
        void finish(end).catch((error: unknown) =>
          deps.log.warn({ err: String(error) }, "could not end a run cleanly"),
        );
        logDone(200, collected.completion.usage, undefined, end.result?.total_cost_usd);
        // Answered from the CLI's summary of the conversation (only with --auto-compact).
        if (end.compacted) c.header(COMPACTED_HEADER, "true");
        return c.json(collected.completion);
      } catch (thrown) {
        const error = stopReason(live, thrown);
        if (end === null) await finish(null);
        const proxyError = toProxyError(error);
        logDone(proxyError.status, spent(), error);
        throw proxyError;
      }
    }

    // Streaming: wait for the first part so that errors before any output get a real status;
    // but when that takes longer than the ping interval (a queue wait, a slow start), start the
    // stream and keep it alive with comment pings — a later error then arrives as a frame.
    const opening = (async () => {
      const prepared = await prepare().catch(prepareFailed);
      try {
        return { ...prepared, first: await prepared.parts.next() };
      } catch (thrown) {
        const error = stopReason(prepared.live, thrown);
        await prepared.finish(null);
        prepared.logDone(toProxyError(error).status, prepared.spent(), error);
        throw error;
      }
    })();
    let ready: Awaited<typeof opening> | null = null;
    if (deps.config.ssePingMs > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waited = new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), deps.config.ssePingMs);
      });
      try {
        ready = await Promise.race([opening, waited]);
      } catch (error) {
        throw toProxyError(error);
      } finally {
        clearTimeout(timer);
      }
    } else {
      ready = await opening.catch((error: unknown) => {
        throw toProxyError(error);
      });
    }
    if (ready === null) void opening.catch(() => {});
    const includeUsage = request.stream_options?.include_usage === true;
    // A stream's headers go out before a compaction would be known: say only that it may happen.
    if (deps.config.autoCompact) c.header(COMPACTED_HEADER, "allowed");
    return streamSSE(c, async (stream) => {
      const frame = (choices: ChatCompletionChunk["choices"], usage?: CompletionUsage) =>
        stream.writeSSE({
          data: JSON.stringify({
            id,
            object: "chat.completion.chunk",
            created,
            model: request.model,
            system_fingerprint: null,
            choices,
            ...(usage === undefined ? {} : { usage }),
          } satisfies ChatCompletionChunk),
        });
      const chunk = (
        delta: ChoiceDelta,
        finishReason: ChatCompletionChunk["choices"][0]["finish_reason"] = null,
      ) => frame([{ index: 0, delta, finish_reason: finishReason, logprobs: null }]);
      let opened = ready;
      if (opened === null) {
        // Still waiting for a slot or the CLI: the stream is open, keep it alive.
        await chunk({ role: "assistant", content: "" });
        try {
          opened = await withPings(opening, deps.config.ssePingMs, () =>
            stream.write(": ping\n\n"),
          );
        } catch (error) {
          if (!stream.aborted) {
            await stream.writeSSE({ data: JSON.stringify(toProxyError(error).toJSON()) });
            await stream.writeSSE({ data: "[DONE]" });
          }
          return;
        }
      } else {
        await chunk({ role: "assistant", content: "" });
      }
      const { live, parts, finish, logDone, spent, first } = opened;
      const clientGone = () =>
        live.controller.abort(
          new ProxyError(499, "The client closed the request", { code: "client_closed" }),
        );
      stream.onAbort(clientGone);
      if (stream.aborted) clientGone();
      // A run stopped (timeout, idle, shutdown) while this handler waits on a client that does
      // not read: give the error frame a moment, then drop the stream so the run is cleaned up.
      let stalled: ReturnType<typeof setTimeout> | undefined;
      const onRunStopped = () => {
        stalled = setTimeout(() => stream.abort(), 2000);
      };
      live.controller.signal.addEventListener("abort", onRunStopped, { once: true });
      let status = 200;
      let doneSent = false;
      let logged = false;
      let failure: unknown;
      let end: Extract<CompletionPart, { kind: "end" }> | null = null;
      try {
        let next = first;
        while (next.done !== true) {
          const part = next.value;
          if (part.kind === "delta") await chunk(part.delta);
          else if (part.kind === "retrying") await stream.write(": upstream retry\n\n");
          else {
            end = part;
            await chunk({}, part.finishReason);
            if (includeUsage) await frame([], part.usage);
            // Logs, metrics and usage are up to date before the client sees the end.
            logDone(200, part.usage, undefined, part.result?.total_cost_usd);
            logged = true;
            // The answer is complete: end it now, before the CLI has exited.
            await stream.writeSSE({ data: "[DONE]" });
            doneSent = true;
            break;
          }
          next = await withPings(parts.next(), deps.config.ssePingMs, () =>
            stream.write(": ping\n\n"),
          );
        }
      } catch (thrown) {
        const error = stopReason(live, thrown);
        const proxyError = toProxyError(error);
        status = proxyError.status;
        failure = error;
        if (!stream.aborted) await stream.writeSSE({ data: JSON.stringify(proxyError.toJSON()) });
      } finally {
        clearTimeout(stalled);
        live.controller.signal.removeEventListener("abort", onRunStopped);
        const closing = finish(stream.aborted ? null : end);
        // After [DONE] the body may end at once; the CLI exits in the background.
        if (doneSent) {
          void closing.catch((error: unknown) =>
            deps.log.warn({ err: String(error) }, "could not end a run cleanly"),
          );
        } else {
          await closing;
        }
        if (!logged) logDone(status, end?.usage ?? spent(), failure, end?.result?.total_cost_usd);
      }
      if (!stream.aborted && !doneSent) await stream.writeSSE({ data: "[DONE]" });
    });
  });
  return app;
}

/** `true`: the answer came after the CLI summarised the conversation; `allowed`: a stream that may. */
export const COMPACTED_HEADER = "x-claude-compacted";

/**
 * Waits for `promise`, calling `ping` every `intervalMs` until it settles (SSE comments keep
 * proxies and clients from timing out during long silences). 0 disables pings.
 */
async function withPings<T>(
  promise: Promise<T>,
  intervalMs: number,
  ping: () => Promise<unknown>,
): Promise<T> {
  if (intervalMs <= 0) return promise;
  while (true) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = new Promise<typeof PING>((resolve) => {
      timer = setTimeout(() => resolve(PING), intervalMs);
    });
    try {
      const winner = await Promise.race([promise, tick]);
      if (winner !== PING) return winner as T;
    } finally {
      clearTimeout(timer);
    }
    await ping();
  }
}

const PING = Symbol("ping");

/**
 * Why a run failed: when it was stopped on purpose (client gone, timeout, shutdown), that reason,
 * whatever symptom the stop caused first (a stopped run's events may simply end, which alone
 * would read as "the CLI ended without a result").
 */
function stopReason(run: LiveRun, error: unknown): unknown {
  return run.controller.signal.aborted ? run.controller.signal.reason : error;
}

/**
 * The usage a failed or stopped run reported before it ended (message_start, message_delta or
 * the result), or undefined when it never reached the API: the tokens were spent all the same.
 */
function spentUsage(state: TranslateState): CompletionUsage | undefined {
  const usage = toCompletionUsage(state.usage);
  return usage.total_tokens > 0 ? usage : undefined;
}

/** Ends a run for good: stops the CLI if it still runs, removes its MCP bridge. */
async function closeRun(deps: AppDeps, run: LiveRun): Promise<void> {
  if (run.bridge !== null) deps.toolRuns.unregister(run.bridge);
  await run.events.return(undefined).catch(() => {});
  run.release();
  deps.lifecycle.end(run);
}

/** Collects a whole completion for `stream: false`. */
async function collect(
  parts: AsyncGenerator<CompletionPart, void, undefined>,
  meta: { id: string; created: number; model: string },
): Promise<{ completion: ChatCompletion; end: Extract<CompletionPart, { kind: "end" }> }> {
  let content = "";
  let reasoning = "";
  while (true) {
    const next = await parts.next();
    if (next.done === true) break;
    const part = next.value;
    if (part.kind === "delta") {
      content += part.delta.content ?? "";
      reasoning += part.delta.reasoning_content ?? "";
    } else if (part.kind === "end") {
      const toolCalls = part.state.toolCalls.map((call) => ({
        id: call.id,
        type: "function" as const,
        function: { name: call.name, arguments: call.arguments === "" ? "{}" : call.arguments },
      }));
      const completion: ChatCompletion = {
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
      return { completion, end: part };
    }
  }
  throw new ProxyError(502, "The claude CLI ended without a result", {
    type: "api_error",
    code: "cli_exited",
  });
}
