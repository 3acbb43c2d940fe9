/**
 * The HTTP handling every surface shares, written once: open the turn (continue the parked run
 * that waits for this conversation's tool results, or wait for a slot and start a CLI), stop it
 * when the client goes away or the request timeout passes, answer whole or as a stream with
 * keep-alive pings, park a run that ended at client tool calls (else end it), and one
 * log line, metrics, usage record and recent-request entry (the dashboard's) per request.
 * What goes on the wire is the surface's {@link TurnRenderer}.
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { presentedKey } from "../auth.ts";
import type { AppDeps } from "../deps.ts";
import type { Conversation } from "../engine/conversation.ts";
import {
  TurnAccumulator,
  type TurnEnd,
  type TurnEvent,
  type TurnResult,
  type Usage,
} from "../engine/events.ts";
import type { ParkedRun } from "../engine/registry.ts";
import type { Run } from "../engine/run.ts";
import {
  continueRun,
  openRun,
  requestFingerprint,
  startSpare,
  takeLiveRun,
} from "../engine/start.ts";
import { stopAtSequences } from "../engine/stops.ts";
import { newTranslateState, type TranslateState } from "../engine/translate.ts";
import { turnEvents } from "../engine/turn.ts";
import { answerTurn, turnsFingerprint, warmKey } from "../engine/warm.ts";
import { ProxyError, toProxyError } from "../errors.ts";
import type { Release } from "../limiter.ts";
import { ModelLabels } from "../models.ts";
import type { SseFrame, TurnRenderer } from "./render.ts";

/** The API surfaces (a label on metrics, logs and usage records). */
export type Surface = "chat" | "responses" | "messages";

/** One request's turn, as a surface hands it over. */
export interface TurnRequest {
  surface: Surface;
  conversation: Conversation;
  /** The model as the client named it (logs). */
  requestedModel: string;
  /** The CLI model it resolved to. */
  model: string;
  stream: boolean;
  renderer: TurnRenderer;
  /** Called after a turn that succeeded, before the client sees its end (e.g. to store it). */
  onComplete?: (result: TurnResult) => Promise<void> | void;
}

/** `true`: the answer came after the CLI summarised the conversation; `allowed`: a stream that may. */
export const COMPACTED_HEADER = "x-claude-compacted";

/** The message of a request's log line, per surface. */
const LOG_MESSAGE: Record<Surface, string> = {
  chat: "chat completion",
  responses: "response",
  messages: "message",
};

/** Bounded model labels per app (unknown ids fold into "other"). */
const labelsByDeps = new WeakMap<AppDeps, ModelLabels>();

function shuttingDown(): ProxyError {
  return new ProxyError(503, "The proxy is shutting down", {
    type: "server_error",
    code: "shutting_down",
  });
}

function clientClosed(): ProxyError {
  return new ProxyError(499, "The client closed the request", { code: "client_closed" });
}

/** One leg of a run (this request's part of it), opened by {@link prepare}. */
interface Leg {
  run: Run;
  events: AsyncGenerator<TurnEvent, void, undefined>;
  /**
   * Parks the run (ended at tool calls), keeps it warm (ended with `result`; `answer` is what
   * the client received) or ends it; settles once the CLI exited.
   */
  finish: (end: TurnEnd | null, answer?: TurnResult["content"]) => Promise<void>;
  /** Whether the run was parked. */
  parked: () => boolean;
  state: TranslateState;
}

/**
 * Answers one turn: whole JSON (`stream: false`) or a server-sent event stream.
 * @throws ProxyError before anything was sent (validation, queue, CLI start, an error before the
 *   first event): the app's onError renders it in the surface's shape.
 */
export async function serveTurn(c: Context, deps: AppDeps, turn: TurnRequest): Promise<Response> {
  let labels = labelsByDeps.get(deps);
  if (labels === undefined) {
    labels = new ModelLabels(deps.config);
    labelsByDeps.set(deps, labels);
  }
  const modelLabels = labels;
  const { conversation, model, renderer } = turn;
  const started = Date.now();
  const requestId = String(c.get("requestId") ?? "");

  /** Logs one finished (or failed) request and counts it: metrics, tokens, the usage store. */
  const record = (
    status: number,
    outcome: { usage?: Usage | undefined; error?: unknown; costUsd?: number; parked?: boolean },
  ) => {
    const { usage, error } = outcome;
    if (error !== undefined && !(error instanceof ProxyError)) {
      deps.log.error(
        { requestId, err: String(error), stack: (error as Error).stack },
        `unexpected error in a ${turn.surface} request`,
      );
    }
    // The label, not the requested name: a new name must not make a new series.
    const label = modelLabels.label(model, status === 200);
    const counted = { model: label, stream: String(turn.stream), status: String(status) };
    if (turn.surface === "chat") deps.metrics.chatCompletions.inc(counted);
    deps.metrics.turns.inc({ surface: turn.surface, ...counted });
    const prompt =
      usage === undefined
        ? 0
        : usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens;
    if (usage !== undefined) {
      deps.metrics.tokens.inc({ model: label, type: "prompt" }, prompt);
      deps.metrics.tokens.inc({ model: label, type: "completion" }, usage.output_tokens);
      deps.metrics.tokens.inc({ model: label, type: "cached" }, usage.cache_read_input_tokens);
      deps.usage
        .record({
          request_id: requestId,
          model: label,
          surface: turn.surface,
          prompt_tokens: prompt,
          completion_tokens: usage.output_tokens,
          cached_tokens: usage.cache_read_input_tokens,
          cost_usd: outcome.costUsd ?? 0,
        })
        .catch((writeError: unknown) =>
          deps.log.warn({ err: String(writeError) }, "could not record usage"),
        );
    }
    const durationMs = Date.now() - started;
    const code = error instanceof ProxyError ? error.code : null;
    if (status === 200) deps.login?.observe(true);
    else if (code === "cli_not_logged_in") deps.login?.observe(false);
    deps.recent?.add({
      time: new Date().toISOString(),
      request_id: requestId,
      surface: turn.surface,
      model: label,
      status,
      stream: turn.stream,
      duration_ms: durationMs,
      prompt_tokens: prompt,
      completion_tokens: usage?.output_tokens ?? 0,
      cached_tokens: usage?.cache_read_input_tokens ?? 0,
      cost_usd: outcome.costUsd ?? 0,
      ...(code === null ? {} : { code }),
      ...(kept === null ? {} : { process: kept }),
      ...(outcome.parked === true ? { waiting_for_tools: true } : {}),
    });
    deps.log.info(
      {
        requestId,
        surface: turn.surface,
        model: turn.requestedModel,
        cliModel: model,
        stream: turn.stream,
        status,
        durationMs,
        ...(code === null ? {} : { code }),
        ...(outcome.parked === true ? { waitingForTools: true } : {}),
        ...(kept === null ? {} : { process: kept }),
        ...(usage === undefined
          ? {}
          : { promptTokens: prompt, completionTokens: usage.output_tokens }),
      },
      LOG_MESSAGE[turn.surface],
    );
  };

  /** Logs and counts a request that failed before its run opened (queue, validation, CLI). */
  const prepareFailed = (error: unknown): never => {
    record(toProxyError(error).status, { error });
    throw error;
  };

  /**
   * Waits for a concurrency slot (a parked run gives its slot up rather than make us wait), and
   * for a new process (`newProcess`) makes room under `--max-processes` (engine/pool.ts: spares,
   * then warm, then parked processes are stopped).
   */
  const acquire = async (newProcess: boolean): Promise<Release> => {
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
      if (error instanceof ProxyError && error.status === 429) deps.metrics.queueRejections.inc();
      throw error;
    }
    // Shutdown began while this request waited for a slot (the slot of a run it stopped):
    // a CLI started now would outlive the proxy.
    if (deps.lifecycle.draining) {
      release();
      throw shuttingDown();
    }
    if (newProcess) await deps.pool.makeRoom();
    return release;
  };

  /** Which kept process answered this request, if one did (logs). */
  let kept: "warm" | "spare" | null = null;

  /** Opens (or continues) the run and its leg: client disconnect and the timeout stop it. */
  const prepare = async (): Promise<Leg> => {
    // A parked run belongs to the key that made its calls (never logged).
    const owner = presentedKey(c.req.raw.headers) ?? "";
    let run: Run | null = await continueRun(deps, conversation, { owner, model });
    // The warm process that answered this conversation so far takes its new user turn; a
    // spare takes a first turn of a launch profile seen before.
    if (run === null && !deps.lifecycle.draining) {
      const live = await takeLiveRun(
        deps,
        conversation,
        { owner, model },
        () => acquire(false),
        c.req.raw.signal,
      );
      if (live !== null) {
        run = live.run;
        kept = live.kind;
      }
    }
    if (run === null) {
      if (deps.lifecycle.draining) throw shuttingDown();
      run = await openRun(deps, conversation, model, () => acquire(true), c.req.raw.signal);
    }
    const live = run;
    const clientGone = () => live.controller.abort(clientClosed());
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
    const state = newTranslateState(live.options.toolPrefix, live.options.agentDir ?? null);
    // Stop sequences end the answer early: the run is then stopped like any finished one.
    const events = perTurnCost(
      stopAtSequences(
        turnEvents(live.events, live.options, state),
        conversation.stopSequences ?? [],
        () => state.usage,
      ),
      live,
    );
    let parked = false;
    /**
     * Ends this leg: parks the run when it waits for tool results (synchronously, before the
     * response goes out, so that the follow-up always finds it), else stops it. The returned
     * promise settles once the CLI has exited; responses need not wait for it.
     */
    const finish = async (end: TurnEnd | null, answer?: TurnResult["content"]) => {
      clearTimeout(timeout);
      clientSignal.removeEventListener("abort", clientGone);
      if (
        end !== null &&
        end.result === null &&
        end.stopReason === "tool_use" &&
        live.bridge !== null &&
        !live.controller.signal.aborted &&
        !deps.lifecycle.draining
      ) {
        parked = true;
        live.waiting = true;
        live.toolCalls = end.toolCalls.map((call) => ({ ...call }));
        live.owner = owner;
        live.conversation = requestFingerprint(conversation, model);
        deps.toolRuns.park(live as ParkedRun, deps.config.toolResultTimeoutMs);
        deps.lifecycle.checkIdle();
        // Requests already waiting for a slot come first: a parked run gives its slot up.
        if (deps.limiter.queued > 0) void deps.toolRuns.evictOldest();
        await events.return(undefined);
        keepSpare(end);
        return;
      }
      if (
        deps.config.warmTtlMs > 0 &&
        end !== null &&
        end.result !== null &&
        answer !== undefined &&
        end.stopSequence === undefined &&
        end.turnLimit !== true &&
        !end.compacted &&
        !live.thought &&
        live.profile !== "" &&
        live.input !== null &&
        !live.input.exited &&
        !live.controller.signal.aborted &&
        !deps.lifecycle.draining
      ) {
        // Synchronously, before the response goes out: the next turn always finds it.
        const tag = {
          owner,
          profile: live.profile,
          conversation: turnsFingerprint([...conversation.turns, answerTurn(answer)]),
        };
        deps.pool.warm.keep(
          live,
          warmKey(tag),
          deps.config.warmTtlMs,
          deps.pool.options.maxProcesses,
          tag,
        );
        deps.lifecycle.checkIdle();
        await events.return(undefined);
        keepSpare(end);
        return;
      }
      await events.return(undefined);
      await live.stop();
      keepSpare(end);
    };
    /** After a turn that ended well: a spare for this profile, if the pool wants one. */
    const keepSpare = (end: TurnEnd | null) => {
      if (end === null || live.controller.signal.aborted) return;
      try {
        startSpare(deps, conversation, model);
      } catch (error) {
        deps.log.warn({ err: String(error) }, "could not start a spare claude CLI process");
      }
    };
    return { run: live, events, finish, parked: () => parked, state };
  };

  /**
   * The usage a failed or stopped run reported before it ended (tokens spent all the same), or
   * undefined when it never reached the API.
   */
  const spent = (leg: Leg): Usage | undefined => {
    const usage = leg.state.usage;
    const total =
      usage.input_tokens +
      usage.output_tokens +
      usage.cache_read_input_tokens +
      usage.cache_creation_input_tokens;
    return total > 0 ? { ...usage } : undefined;
  };

  if (!turn.stream) {
    const leg = await prepare().catch(prepareFailed);
    let end: TurnEnd | null = null;
    let finishing = false;
    try {
      const accumulator = new TurnAccumulator();
      while (true) {
        const next = await leg.events.next();
        if (next.done === true) break;
        if (next.value.kind === "end") {
          end = next.value;
          break;
        }
        accumulator.add(next.value);
      }
      if (end === null) throw cliEndedWithoutResult();
      const result = accumulator.result(end);
      await turn.onComplete?.(result);
      const body = renderer.whole(result) as object;
      // The answer is complete: send it now; the CLI exits (and is reaped) in the background.
      finishing = true;
      void leg
        .finish(end, result.content)
        .catch((error: unknown) =>
          deps.log.warn({ err: String(error) }, "could not end a run cleanly"),
        );
      record(200, { usage: end.usage, costUsd: end.costUsd, parked: leg.parked() });
      // Answered from the CLI's summary of the conversation (only with --auto-compact).
      if (end.compacted) c.header(COMPACTED_HEADER, "true");
      return c.json(body);
    } catch (thrown) {
      const error = stopReason(leg.run, thrown);
      if (!finishing) await leg.finish(null);
      const proxyError = toProxyError(error);
      record(proxyError.status, { usage: spent(leg), error });
      throw proxyError;
    }
  }

  // Streaming: wait for the first event so that errors before any output get a real status;
  // but when that takes longer than the ping interval (a queue wait, a slow start), start the
  // stream and keep it alive with pings — a later error then arrives as a frame.
  const opening = (async () => {
    const leg = await prepare().catch(prepareFailed);
    try {
      return { leg, first: await leg.events.next() };
    } catch (thrown) {
      const error = stopReason(leg.run, thrown);
      await leg.finish(null);
      record(toProxyError(error).status, { usage: spent(leg), error });
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
  // A stream's headers go out before a compaction would be known: say only that it may happen.
  if (deps.config.autoCompact) c.header(COMPACTED_HEADER, "allowed");
  return streamSSE(c, async (stream) => {
    const send = async (frames: readonly SseFrame[]) => {
      for (const frame of frames) {
        if ("comment" in frame) await stream.write(`: ${frame.comment}\n\n`);
        else await stream.writeSSE(frame.event === undefined ? { data: frame.data } : frame);
      }
    };
    const ping = () => send([renderer.ping()]);
    await send(renderer.open());
    let opened = ready;
    if (opened === null) {
      // Still waiting for a slot or the CLI: the stream is open, keep it alive.
      try {
        opened = await withPings(opening, deps.config.ssePingMs, ping);
      } catch (error) {
        if (!stream.aborted) await send(renderer.error(toProxyError(error)));
        return;
      }
    }
    const { leg, first } = opened;
    const live = leg.run;
    const clientGone = () => live.controller.abort(clientClosed());
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
    let endSent = false;
    let logged = false;
    let failure: unknown;
    let end: TurnEnd | null = null;
    const accumulator = new TurnAccumulator();
    try {
      let next = first;
      while (next.done !== true) {
        const event = next.value;
        if (event.kind === "end") {
          end = event;
          const result = accumulator.result(event);
          await turn.onComplete?.(result);
          // Logs, metrics and usage are up to date before the client sees the end.
          record(200, { usage: event.usage, costUsd: event.costUsd, parked: false });
          logged = true;
          // The answer is complete: end it now, before the CLI has exited.
          await send(renderer.end(result));
          endSent = true;
          break;
        }
        accumulator.add(event);
        await send(renderer.event(event));
        next = await withPings(leg.events.next(), deps.config.ssePingMs, ping);
      }
      if (end === null) throw cliEndedWithoutResult();
    } catch (thrown) {
      const error = stopReason(live, thrown);
      const proxyError = toProxyError(error);
      status = proxyError.status;
      failure = error;
      if (!stream.aborted) await send(renderer.error(proxyError));
    } finally {
      clearTimeout(stalled);
      live.controller.signal.removeEventListener("abort", onRunStopped);
      // Only an end the client received may park the run for its tool results.
      const closing = leg.finish(
        stream.aborted || !endSent ? null : end,
        endSent ? accumulator.content : undefined,
      );
      // After the end the body may close at once; the CLI exits in the background.
      if (endSent) {
        void closing.catch((error: unknown) =>
          deps.log.warn({ err: String(error) }, "could not end a run cleanly"),
        );
      } else {
        await closing;
      }
      if (!logged) record(status, { usage: end?.usage ?? spent(leg), error: failure });
    }
  });
}

/**
 * The turn's end with this turn's cost, not the process's running total ({@link Run.turnCost});
 * notes on the run whether the model thought ({@link Run.thought}).
 */
async function* perTurnCost(
  events: AsyncGenerator<TurnEvent, void, undefined>,
  run: Run,
): AsyncGenerator<TurnEvent, void, undefined> {
  for await (const event of events) {
    if (event.kind === "thinking" || event.kind === "signature") run.thought = true;
    yield event.kind === "end" && event.result !== null
      ? { ...event, costUsd: run.turnCost(event.costUsd) }
      : event;
  }
}

function cliEndedWithoutResult(): ProxyError {
  return new ProxyError(502, "The claude CLI ended without a result", {
    type: "api_error",
    code: "cli_exited",
  });
}

/**
 * Waits for `promise`, calling `ping` every `intervalMs` until it settles (keep-alives keep
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
function stopReason(run: Run, error: unknown): unknown {
  return run.controller.signal.aborted ? run.controller.signal.reason : error;
}
