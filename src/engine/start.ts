/**
 * Opening the CLI run behind a turn, whatever the surface: a new run (native history resumed
 * from a session file, client tools through the MCP bridge, structured output), or the live run
 * that waits for the tool results this conversation ends with (continuation).
 */

import { effectiveMaxTurns } from "../claude/agent.ts";
import { type DriverContext, type RunRequest, startRun } from "../claude/driver.ts";
import type { CliEvent } from "../claude/events.ts";
import { StdinChannel } from "../claude/run.ts";
import {
  NO_RESULT_TEXT,
  type ResolvedImage,
  type SessionPlan,
  splitTail,
  userTurnLine,
} from "../claude/session.ts";
import { contextWindowRefusal, isNotLoggedIn } from "../claude/status.ts";
import type { AppDeps } from "../deps.ts";
import { ProxyError } from "../errors.ts";
import type { Release } from "../limiter.ts";
import { CLIENT_TOOL_PREFIX, ToolBridge } from "./bridge.ts";
import type { Conversation } from "./conversation.ts";
import { type ImageOptions, resolveImages } from "./images.ts";
import { argumentsText, buildPrompt, toAnthropicMessages } from "./prompt.ts";
import { reachWatch } from "./reach.ts";
import { conversationFingerprint, type ParkedRun } from "./registry.ts";
import { type IdleKind, type IssuedToolCall, pushBack, Run } from "./run.ts";
import type { TurnOptions } from "./turn.ts";
import { missReason, splitFollowUp, turnsFingerprint, warmKey } from "./warm.ts";

/** Largest `--json-schema` accepted on the command line, bytes (Windows caps a command line at ~32 KB). */
export const MAX_JSON_SCHEMA_BYTES = 16 * 1024;

/** What a follow-up conversation says about the tool calls of the assistant turn it ends with. */
export interface ToolFollowUp {
  /** The calls of the last assistant turn, as the client echoes them back. */
  calls: IssuedToolCall[];
  /** The tool results after it, in order. */
  results: Array<{ id: string; content: string; isError: boolean }>;
  /** True when user content comes after it too (OpenClaw adds a user message). */
  userAfter: boolean;
  /** Index in `turns` of that assistant turn (the first, when it spans consecutive turns). */
  assistantIndex: number;
}

/**
 * The fingerprint ({@link conversationFingerprint}) of the conversation's first `count` turns
 * (all by default), its system prompt, its resolved model and its tool names.
 */
export function requestFingerprint(
  conversation: Conversation,
  model: string,
  count: number = conversation.turns.length,
): string {
  return conversationFingerprint(
    conversation.system,
    conversation.turns.slice(0, count),
    model,
    conversation.tools.map((tool) => tool.name),
  );
}

/**
 * The tool calls of the conversation's last assistant turn and what answers them, or null
 * when that turn made no calls or no tool result follows it. Consecutive assistant turns count
 * as one (a surface may send a message and its calls as separate items).
 */
export function toolFollowUp(conversation: Conversation): ToolFollowUp | null {
  const turns = conversation.turns;
  let index = turns.length - 1;
  while (index >= 0 && turns[index]?.role !== "assistant") index--;
  if (index < 0) return null;
  let first = index;
  while (first > 0 && turns[first - 1]?.role === "assistant") first--;
  const calls: IssuedToolCall[] = [];
  for (const turn of turns.slice(first, index + 1)) {
    for (const block of turn.content) {
      if (block.type === "tool_use") {
        calls.push({ id: block.id, name: block.name, arguments: argumentsText(block.input) });
      }
    }
  }
  if (calls.length === 0) return null;
  const results: ToolFollowUp["results"] = [];
  let userAfter = false;
  for (const turn of turns.slice(index + 1)) {
    for (const block of turn.content) {
      if (block.type === "tool_result") {
        results.push({
          id: block.tool_use_id,
          content: block.content,
          isError: block.is_error === true,
        });
      } else if (block.type === "image" || (block.type === "text" && block.text.trim() !== "")) {
        userAfter = true;
      }
    }
  }
  if (results.length === 0) return null;
  return { calls, results, userAfter, assistantIndex: first };
}

/**
 * The live run waiting for the tool results at the end of `conversation`, with those results
 * handed to its MCP calls; null when no such run is alive, or when the follow-up also carries
 * user content (a parked run can only take tool results: that run is stopped and the request
 * replayed with every turn). Calls are paired by id, by id as sanitisers rewrite it, or by
 * name and arguments ({@link pairToolCalls}); calls left unanswered get an error result.
 */
export async function continueRun(
  deps: AppDeps,
  conversation: Conversation,
  identity: { owner: string; model: string },
): Promise<ParkedRun | null> {
  const followUp = toolFollowUp(conversation);
  if (followUp === null) return null;
  const taken = deps.toolRuns.take(followUp.calls, {
    owner: identity.owner,
    conversation: requestFingerprint(conversation, identity.model, followUp.assistantIndex),
  });
  if (taken === null) return null;
  const { run, ids } = taken;
  if (followUp.userAfter) {
    await deps.toolRuns.stop(run);
    return null;
  }
  const answered = new Set<string>();
  for (const result of followUp.results) {
    const id = ids.get(result.id);
    if (id === undefined || answered.has(id)) continue;
    run.bridge.resolve(id, { content: result.content, isError: result.isError });
    answered.add(id);
  }
  for (const call of run.toolCalls) {
    if (!answered.has(call.id)) {
      run.bridge.resolve(call.id, { content: NO_RESULT_TEXT, isError: true });
    }
  }
  run.waiting = false;
  return run;
}

/** Instructions for the tool choice, parallel calls and a json_object output, appended to the system prompt. */
export function toolInstructions(conversation: Conversation): string[] {
  const lines: string[] = [];
  const choice = conversation.toolChoice;
  if (conversation.tools.length > 0 && choice !== "none") {
    if (choice === "required")
      lines.push("You must call at least one of the available tools in this reply.");
    else if (typeof choice === "object") {
      lines.push(`You must call the tool "${CLIENT_TOOL_PREFIX}${choice.name}" in this reply.`);
    }
    if (!conversation.parallelToolCalls) lines.push("Call at most one tool per reply.");
  }
  if (conversation.output.type === "json_object") {
    lines.push("Reply with a single JSON object and nothing else.");
  }
  return lines;
}

/** The `--json-schema` text for the output format, or undefined. @throws ProxyError 400 when too large. */
export function jsonSchemaFor(conversation: Conversation): string | undefined {
  const output = conversation.output;
  if (output.type === "text") return undefined;
  const schema = output.type === "json_schema" ? output.schema : { type: "object" };
  const text = JSON.stringify(schema);
  if (new TextEncoder().encode(text).length > MAX_JSON_SCHEMA_BYTES) {
    throw new ProxyError(
      400,
      `The JSON schema is larger than ${MAX_JSON_SCHEMA_BYTES} bytes: the claude CLI takes it on its command line, which is limited`,
      {
        param: output.type === "json_schema" ? (output.param ?? null) : null,
        code: "schema_too_large",
      },
    );
  }
  return text;
}

/** How a request's images are resolved (the --image-* settings). */
function imageOptions(deps: AppDeps, signal: AbortSignal | undefined): ImageOptions {
  return {
    ...(signal === undefined ? {} : { signal }),
    fetchRemote: deps.config.imageFetch,
    allowPrivate: deps.config.imageFetchAllowPrivate,
    maxBytes: deps.config.imageMaxBytes,
    maxTotalBytes: deps.config.imageMaxTotalBytes,
    maxImages: deps.config.maxImages,
    concurrency: deps.config.imageFetchConcurrency,
    timeoutMs: deps.config.imageFetchTimeoutMs,
    lookup: deps.runtime.lookup,
    fetch: deps.runtime.fetchPinned,
    onFetchFailure: (failure) =>
      deps.log.info(failure, "image_url not fetched (the client is told no more)"),
  };
}

/** The system prompt a run is started with: the client's, then {@link toolInstructions}. */
function launchSystemPrompt(conversation: Conversation): string | null {
  const extra = toolInstructions(conversation);
  const baseSystem = conversation.system;
  return extra.length === 0
    ? baseSystem
    : [baseSystem ?? "", ...extra].filter((s) => s !== "").join("\n\n");
}

/**
 * The launch profile of a conversation as a string: everything fixed when its CLI is spawned
 * (model, effort, system prompt with the tool instructions, the tools offered with their
 * schemas, max output tokens), so that a warm run answers only requests it would have been
 * started for. Null for conversations no warm run serves: structured output (the CLI's
 * conversation then holds a StructuredOutput call where the client holds text), stop sequences
 * (the client's answer is cut where the CLI's is not), agent mode (the CLI's own tool turns).
 */
export function launchProfile(
  conversation: Conversation,
  model: string,
  agent: boolean,
): string | null {
  if (agent || conversation.output.type !== "text") return null;
  if ((conversation.stopSequences ?? []).length > 0) return null;
  const useTools = conversation.tools.length > 0 && conversation.toolChoice !== "none";
  return JSON.stringify([
    model,
    conversation.effort ?? null,
    launchSystemPrompt(conversation),
    useTools
      ? conversation.tools.map((tool) => [
          tool.name,
          tool.description ?? null,
          tool.parameters ?? null,
        ])
      : null,
    conversation.maxOutputTokens ?? null,
  ]);
}

/** Which kind of kept process took a request (see {@link takeLiveRun}). */
export interface LiveRun {
  run: Run;
  kind: IdleKind;
}

/**
 * A kept process for this request, with its new user turn written to its stdin and holding a
 * slot from `acquire`: the warm run (engine/warm.ts) that holds this conversation minus that
 * turn, or, for the first turn of a conversation, a spare started for its launch profile
 * (engine/pool.ts). Null when none matches (the request then goes cold): misses are counted by
 * reason; a kept process that is gone or stays silent (`--warm-start-timeout`) is stopped,
 * counted and logged, and null returned before anything reached the client.
 * @throws ProxyError from `acquire` (429) or for images that cannot be used (400).
 */
export async function takeLiveRun(
  deps: AppDeps,
  conversation: Conversation,
  identity: { owner: string; model: string },
  acquire: () => Promise<Release>,
  signal?: AbortSignal,
): Promise<LiveRun | null> {
  if (deps.config.warmTtlMs <= 0) return null;
  const profile = launchProfile(conversation, identity.model, deps.agent != null);
  if (profile === null) return null;
  const split = splitFollowUp(conversation.turns);
  if (split === null) return null;
  const { pool, metrics } = deps;
  let kind: IdleKind;
  let taken: Run | "dead" | null;
  if (split.earlier.length === 0) {
    kind = "spare";
    pool.profiles.note(profile);
    taken = pool.spares.take(profile);
  } else {
    kind = "warm";
    const wanted = {
      owner: identity.owner,
      profile,
      conversation: turnsFingerprint(split.earlier),
    };
    taken = pool.warm.take(warmKey(wanted));
    if (taken === null) metrics.warmMisses.inc({ reason: missReason(pool.warm.tags(), wanted) });
  }
  const missed = (reason: "none" | "dead" | "silent") =>
    kind === "warm" ? metrics.warmMisses.inc({ reason }) : metrics.spareMisses.inc({ reason });
  if (taken === null) {
    if (kind === "spare") missed("none");
    return null;
  }
  if (taken === "dead") {
    missed("dead");
    deps.log.warn({ kind }, `A ${kind} claude CLI process had exited: starting a new one`);
    return null;
  }
  const run = taken;
  let line: string;
  try {
    const images = await resolveImages([split.next], imageOptions(deps, signal));
    const [message] = toAnthropicMessages([split.next], {
      toolPrefix: run.options.toolPrefix,
      images,
    });
    if (message === undefined) throw new Error("no content");
    line = userTurnLine(message.content);
    run.holdSlot(await acquire());
  } catch (error) {
    await run.stop();
    if (error instanceof ProxyError) throw error;
    return null;
  }
  const state = run.nextTurn(line)
    ? await answering(run, deps.config.warmStartTimeoutMs)
    : ("dead" as const);
  if (state !== "answering") {
    missed(state);
    deps.log.warn(
      { kind, turns: run.turns, reason: state },
      `A ${kind} claude CLI process did not take the next turn (${state === "dead" ? "it exited" : `silent for ${deps.config.warmStartTimeoutMs} ms`}): starting a new one`,
    );
    await run.stop(new Error(`${kind} process did not answer`));
    return null;
  }
  if (kind === "warm") metrics.warmHits.inc();
  else metrics.spareHits.inc();
  return { run, kind };
}

/**
 * Starts a spare for this conversation's launch profile when the pool wants one
 * ({@link ProcessPool.wantsSpare}) and no request waits for a slot or is short of one: the CLI
 * is spawned with the profile's model, system prompt and tools and waits on stdin for a first
 * turn (nothing reaches the API before). It holds no slot and is the first to go when room is
 * needed. Does nothing when spares are off or the CLI is missing.
 */
export function startSpare(deps: AppDeps, conversation: Conversation, model: string): void {
  if (deps.config.warmTtlMs <= 0 || deps.claude.path === null) return;
  if (deps.limiter.queued > 0 || deps.limiter.running >= deps.limiter.max) return;
  const profile = launchProfile(conversation, model, deps.agent != null);
  if (profile === null || !deps.pool.wantsSpare(profile)) return;
  const run = launch(deps, conversation, model, {
    release: () => {},
    session: null,
    images: new Map(),
    // A launch profile is never one of structured output (launchProfile).
    jsonSchema: undefined,
    profile,
  });
  deps.pool.spares.keep(run, profile, deps.config.warmTtlMs, deps.config.spares);
  // The process starts now; its first read waits for the first turn.
  run.prime();
  deps.metrics.sparesStarted.inc();
}

/**
 * Whether a kept run, given its next turn, shows a first event within `timeoutMs` (0: no
 * bound): `answering` (the event is kept for the reader, {@link Run.pushed}), `dead` (its
 * process exited or failed instead), `silent` (nothing in time); decided before anything went
 * to the client.
 */
async function answering(run: Run, timeoutMs: number): Promise<"answering" | "dead" | "silent"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const silent = new Promise<"silent">((resolve) => {
    if (timeoutMs > 0) timer = setTimeout(() => resolve("silent"), timeoutMs);
  });
  const first = run.nextEvent().catch(() => "dead" as const);
  try {
    const next = await Promise.race([first, silent]);
    if (next === "silent" || next === "dead") return next;
    if (next.done === true) return "dead";
    run.pushed = next;
    return "answering";
  } finally {
    clearTimeout(timer);
  }
}

/** Reasons for a transcript fallback already logged (once each per process). */
const transcriptFallbackLogged = new Set<"slow" | "rejected">();

/**
 * Starts a new run for `conversation`.
 * Validates first, then waits for a concurrency slot with `acquire`. The run is registered
 * with the lifecycle until it stops.
 * @throws ProxyError 400 for images that cannot be used, a schema that is too large, or a
 *   conversation with nothing to answer; 503 when the CLI is missing; 429 from `acquire`.
 */
export async function openRun(
  deps: AppDeps,
  conversation: Conversation,
  model: string,
  acquire: () => Promise<Release>,
  /** The client's request: when it goes away, image fetches still under way are cancelled. */
  signal?: AbortSignal,
): Promise<Run> {
  const images = await resolveImages(conversation.turns, imageOptions(deps, signal));
  const useTools = conversation.tools.length > 0 && conversation.toolChoice !== "none";
  const toolPrefix = useTools ? CLIENT_TOOL_PREFIX : null;
  const session = splitTail(toAnthropicMessages(conversation.turns, { toolPrefix, images }));
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
  const jsonSchema = jsonSchemaFor(conversation);
  requireCli(deps);
  const release = await acquire();
  // A run that may be kept warm after its turn: stdin stays open after `result`.
  const profile =
    deps.config.warmTtlMs > 0 && conversation.turns.at(-1)?.role === "user"
      ? launchProfile(conversation, model, deps.agent != null)
      : null;
  return launch(deps, conversation, model, { release, session, images, jsonSchema, profile });
}

/** The CLI's path. @throws ProxyError 503 `cli_not_found` when the CLI is missing. */
function requireCli(deps: AppDeps): string {
  if (deps.claude.path === null) {
    throw new ProxyError(503, deps.claude.error ?? "The claude CLI was not found", {
      type: "server_error",
      code: "cli_not_found",
    });
  }
  return deps.claude.path;
}

/** What {@link launch} starts a run with. */
interface LaunchPlan {
  /** Gives the run's slot back (a no-op for a spare, which holds none). */
  release: Release;
  /** History and first turn; null for a spare (it waits for its first turn on stdin). */
  session: SessionPlan | null;
  images: Map<string, ResolvedImage>;
  jsonSchema: string | undefined;
  /** The launch profile when the run may be kept (stdin stays open after `result`), else null. */
  profile: string | null;
}

/**
 * Starts the CLI behind a run (its events are read lazily: the process spawns on the first
 * read) and registers the run with the lifecycle (and its MCP bridge) until it stops.
 */
function launch(deps: AppDeps, conversation: Conversation, model: string, plan: LaunchPlan): Run {
  const { release, session, images, jsonSchema, profile } = plan;
  const useTools = conversation.tools.length > 0 && conversation.toolChoice !== "none";
  const toolPrefix = useTools ? CLIENT_TOOL_PREFIX : null;
  const claudePath = requireCli(deps);
  const systemPrompt = launchSystemPrompt(conversation);
  const bridge = useTools ? new ToolBridge(conversation.tools) : null;
  const options: TurnOptions = {
    policy: {
      retryRateLimits: deps.config.retryRateLimits,
      retryServerErrors: deps.config.retryRateLimits,
    },
    toolPrefix,
    structuredOutput: jsonSchema !== undefined,
    // Context window and reachability (issue 8, items 6 and 7).
    autoCompact: deps.config.autoCompact,
    agentDir: deps.agent?.dir ?? null,
    upstream: reachWatch({
      timeoutMs: deps.config.upstreamUnreachableTimeoutMs,
      baseUrl: deps.childEnv.ANTHROPIC_BASE_URL ?? deps.runtime.env().ANTHROPIC_BASE_URL,
      stop: (error) => run.controller.abort(error),
    }),
  };
  const run = new Run(bridge, options, release, (stopped) => {
    if (stopped.bridge !== null) deps.toolRuns.unregister(stopped.bridge);
    deps.lifecycle.end(stopped);
  });
  const { controller } = run;
  // A spare has had no turn yet.
  if (session === null) run.turns = 0;
  if (profile !== null) {
    run.profile = profile;
    run.input = new StdinChannel();
  }
  const input = run.input ?? undefined;
  const context: DriverContext = {
    runtime: deps.runtime,
    claudePath,
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
    // Every run's rate_limit_event, whoever reads the run later (warm, parked) or not at all.
    onEvent: (event) => deps.rateLimits.observe(event),
  };
  // The CLI's own MCP limits always outlast the proxy's wait for tool results.
  const toolCallTimeoutMs = deps.config.toolResultTimeoutMs + 60_000;
  const base: Omit<RunRequest, "session"> = {
    model,
    effort: conversation.effort,
    systemPrompt,
    maxOutputTokens: conversation.maxOutputTokens,
    mcpConfig: bridge === null ? undefined : bridge.mcpConfig(deps.baseUrl(), toolCallTimeoutMs),
    toolCallTimeoutMs,
    jsonSchema,
    signal: controller.signal,
    isWaiting: () => run.waiting,
    agent:
      deps.agent == null
        ? undefined
        : {
            settings: deps.agent,
            maxTurns: effectiveMaxTurns(deps.agent.maxTurns, conversation.maxTurns),
          },
  };
  if (bridge !== null) deps.toolRuns.register(bridge);
  deps.lifecycle.begin(run);
  if (session === null || session.history.length === 0) {
    run.events = startRun(context, { ...base, session, input });
  } else {
    // The resumed run has a stop of its own: a CLI that does not start answering is replaced.
    const resumeStop = new AbortController();
    // Only the native run may be kept warm: the transcript's conversation is not the client's.
    const native = startRun(context, {
      ...base,
      session,
      input,
      signal: AbortSignal.any([controller.signal, resumeStop.signal]),
    });
    run.events = withTranscriptFallback(
      native,
      () => {
        const plan = buildPrompt(conversation.turns, images);
        const fallback: SessionPlan = { history: [], turn: plan.turn, pending: null };
        return startRun(context, { ...base, session: fallback });
      },
      deps,
      resumeStop,
      deps.config.resumeStartTimeoutMs,
    );
  }
  // A warm run's next turn may have its first event read ahead (takeWarmRun).
  if (input !== undefined) run.events = pushBack(run.events, run);
  return run;
}

/**
 * Whether an event shows that the CLI started answering: the upstream request is under way
 * (`system`/`status` "requesting", a retry) or its answer is arriving.
 */
function startedAnswering(event: CliEvent): boolean {
  if (event.type === "unknown") {
    const raw = event.raw as { type?: unknown; subtype?: unknown; status?: unknown };
    return raw?.type === "system" && raw.subtype === "status" && raw.status === "requesting";
  }
  return (
    event.type === "stream_event" ||
    event.type === "api_retry" ||
    event.type === "assistant" ||
    event.type === "rate_limit"
  );
}

/**
 * Runs `primary` (native history from a session file and stdin); when the CLI rejects it (exits
 * or fails before starting to answer) or does not start answering within `startTimeoutMs`
 * (0: no limit), stops it (`stop` aborts its process) and runs `fallback` (the delimited
 * transcript) instead, logging why once per reason.
 */
async function* withTranscriptFallback(
  primary: AsyncGenerator<CliEvent, void, undefined>,
  fallback: () => AsyncGenerator<CliEvent, void, undefined>,
  deps: AppDeps,
  stop: AbortController,
  startTimeoutMs: number,
): AsyncGenerator<CliEvent, void, undefined> {
  let started = false;
  const slow = new ProxyError(
    504,
    `The claude CLI did not start answering a resumed session within ${startTimeoutMs} ms`,
    { code: "resume_start_timeout" },
  );
  const timer = startTimeoutMs > 0 ? setTimeout(() => stop.abort(slow), startTimeoutMs) : undefined;
  try {
    while (true) {
      const next = await primary.next();
      if (next.done === true) return;
      const event = next.value;
      if (!started && startedAnswering(event)) {
        started = true;
        clearTimeout(timer);
      }
      // A result before any answer: the CLI rejected the session. A conversation over the
      // context window, or a CLI that is not logged in, is refused as a transcript too, so
      // those are passed on.
      if (
        !started &&
        event.type === "result" &&
        contextWindowRefusal(event) === null &&
        !isNotLoggedIn(event)
      ) {
        throw new ProxyError(502, event.result ?? "resume failed", { code: "cli_error" });
      }
      yield event;
    }
  } catch (thrown) {
    const error = stop.signal.aborted ? stop.signal.reason : thrown;
    const code = error instanceof ProxyError ? error.code : null;
    if (started || (code !== "cli_exited" && code !== "cli_error" && error !== slow)) throw error;
    const reason = error === slow ? "slow" : "rejected";
    if (!transcriptFallbackLogged.has(reason)) {
      transcriptFallbackLogged.add(reason);
      deps.log.warn(
        { error: (error as Error).message },
        reason === "slow"
          ? "The claude CLI did not start answering a resumed session: sending earlier turns as a transcript instead"
          : "The claude CLI rejected a resumed session: sending earlier turns as a transcript instead",
      );
    }
  } finally {
    clearTimeout(timer);
    await primary.return(undefined);
  }
  yield* fallback();
}
