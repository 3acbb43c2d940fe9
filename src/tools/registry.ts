/**
 * Live runs that wait for tool results. A run whose model called client tools is parked here
 * after its response ended with `finish_reason: "tool_calls"`; a follow-up request whose `tool`
 * messages answer those calls takes it back (continuation) instead of starting a new CLI. A
 * parked run that waits longer than the configured time is stopped.
 */
import type { CliEvent } from "../claude/events.ts";
import type { CompletionOptions } from "../completions.ts";
import type { ToolBridge } from "./bridge.ts";

/** A CLI run serving chat completions; it may outlive one request when it calls client tools. */
export interface LiveRun {
  /** The MCP bridge of its client tools (null without tools). */
  bridge: ToolBridge | null;
  /** The run's events, read with `next()`. */
  events: AsyncGenerator<CliEvent, void, undefined>;
  /** Aborting it stops the CLI (the reason becomes the error). */
  controller: AbortController;
  /** How its events become completion parts. */
  options: CompletionOptions;
  /** True while it waits for client tool results. */
  waiting: boolean;
  /** Gives its concurrency slot back (idempotent); called when the run ends. */
  release: () => void;
}

/** A client tool call as the proxy sent it (`name` without the `mcp__client__` prefix). */
export interface IssuedToolCall {
  id: string;
  name: string;
  /** JSON text of the arguments. */
  arguments: string;
}

/** A run between two requests. */
export interface ParkedRun extends LiveRun {
  bridge: ToolBridge;
  /** The tool calls the client must answer, as sent to it. */
  toolCalls: IssuedToolCall[];
  /** Who may continue it: the API key of the request that made the calls ("" without keys). */
  owner: string;
  /** {@link conversationFingerprint} of the conversation the calls answered. */
  conversation: string;
}

/** What a follow-up must match, besides the calls, to take a parked run. */
export interface FollowUpIdentity {
  owner: string;
  /** {@link conversationFingerprint} of the follow-up's messages before its last assistant message. */
  conversation: string;
}

/** A chat message as far as the fingerprint reads it (OpenAI's wire shape). */
interface FingerprintMessage {
  role: string;
  content?: unknown;
  tool_calls?:
    | ReadonlyArray<{ id: string; function: { name: string; arguments: string } }>
    | undefined;
  tool_call_id?: string | undefined;
}

/** A content value as text: a string, or its parts (text, refusal, image URL) joined. */
function partsText(content: unknown): string {
  if (typeof content === "string") return content.trim();
  if (!Array.isArray(content)) return "";
  return content
    .map(
      (part: {
        type?: string;
        text?: unknown;
        refusal?: unknown;
        image_url?: { url?: unknown };
      }) =>
        part.type === "text"
          ? String(part.text ?? "")
          : part.type === "refusal"
            ? String(part.refusal ?? "")
            : part.type === "image_url"
              ? `[image ${String(part.image_url?.url ?? "")}]`
              : "",
    )
    .join("\n")
    .trim();
}

/**
 * A conversation as a comparable string, after normalising what clients legitimately change
 * when they send it back: string vs text-part content, whitespace at the ends, tool call ids as
 * sanitisers rewrite them ({@link normalizeToolCallId}), argument key order. The model and the
 * offered tool names are part of it.
 */
export function conversationFingerprint(
  messages: readonly FingerprintMessage[],
  model: string,
  toolNames: readonly string[],
): string {
  const turns = messages.map((m) => [
    m.role,
    partsText(m.content),
    (m.tool_calls ?? []).map((call) => [
      normalizeToolCallId(call.id),
      call.function.name,
      canonicalArguments(call.function.arguments),
    ]),
    m.tool_call_id === undefined ? null : normalizeToolCallId(m.tool_call_id),
  ]);
  return JSON.stringify([model, [...toolNames].sort(), turns]);
}

/**
 * An id as sanitisers leave it: letters and digits only, lower case. OpenClaw turns
 * `toolu_x_52_1` into `toolux521`; others change case or drop `-`/`_`.
 */
export function normalizeToolCallId(id: string): string {
  return id.replace(/[^A-Za-z0-9]/g, "").toLowerCase();
}

/** Arguments JSON in a canonical form (keys sorted, no spaces); the text itself if not JSON. */
export function canonicalArguments(text: string): string {
  const sort = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sort);
    if (typeof value === "object" && value !== null) {
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((key) => [key, sort((value as Record<string, unknown>)[key])]),
      );
    }
    return value;
  };
  try {
    return JSON.stringify(sort(JSON.parse(text.trim() === "" ? "{}" : text)));
  } catch {
    return text.trim();
  }
}

/**
 * Pairs the calls a follow-up echoes back (its last assistant message's `tool_calls`) with the
 * calls a run issued: by id, by id as sanitisers rewrite it, else by name and arguments.
 * @returns client id → issued id, or null unless every echoed call pairs with a distinct
 *   issued call and their counts agree.
 */
export function pairToolCalls(
  echoed: readonly IssuedToolCall[],
  issued: readonly IssuedToolCall[],
): Map<string, string> | null {
  if (echoed.length === 0 || echoed.length !== issued.length) return null;
  const free = new Set(issued);
  const pairs = new Map<string, string>();
  const rules: Array<(a: IssuedToolCall, b: IssuedToolCall) => boolean> = [
    (a, b) => a.id === b.id,
    (a, b) => normalizeToolCallId(a.id) === normalizeToolCallId(b.id),
    (a, b) =>
      a.name === b.name && canonicalArguments(a.arguments) === canonicalArguments(b.arguments),
  ];
  for (const rule of rules) {
    for (const call of echoed) {
      if (pairs.has(call.id)) continue;
      for (const candidate of free) {
        if (rule(call, candidate)) {
          pairs.set(call.id, candidate.id);
          free.delete(candidate);
          break;
        }
      }
    }
  }
  return pairs.size === echoed.length ? pairs : null;
}

/** Bridges by token and parked runs by tool call id. */
export class ToolRuns {
  /** Called after a parked run was stopped (timeout or shutdown). */
  onStop: ((run: ParkedRun) => void) | undefined;
  readonly #bridges = new Map<string, ToolBridge>();
  /** Parked runs in the order they were parked. */
  readonly #parked = new Map<ParkedRun, ReturnType<typeof setTimeout>>();

  /** Makes a bridge reachable at `/mcp/{token}`. */
  register(bridge: ToolBridge): void {
    this.#bridges.set(bridge.token, bridge);
  }

  /** Removes a bridge (its run is over) and ends its held calls. */
  unregister(bridge: ToolBridge): void {
    this.#bridges.delete(bridge.token);
    bridge.close();
  }

  /** The bridge for a token, if its run is alive. */
  bridge(token: string): ToolBridge | undefined {
    return this.#bridges.get(token);
  }

  /** Number of runs parked now. */
  get parkedCount(): number {
    return this.#parked.size;
  }

  /** Parks a run until its tool results arrive or `waitMs` passes (then it is stopped). */
  park(run: ParkedRun, waitMs: number): void {
    const timer = setTimeout(() => {
      if (this.#unpark(run)) void this.stop(run);
    }, waitMs);
    this.#parked.set(run, timer);
  }

  /**
   * Takes the parked run whose calls the follow-up echoes back (see {@link pairToolCalls}),
   * made for the same owner and conversation, or null when none is alive.
   * @returns the run and the pairing of the follow-up's call ids with the run's.
   */
  take(
    echoed: readonly IssuedToolCall[],
    identity: FollowUpIdentity,
  ): { run: ParkedRun; ids: Map<string, string> } | null {
    for (const run of this.#parked.keys()) {
      // Another key's run, or another conversation's, is never handed out.
      if (run.owner !== identity.owner || run.conversation !== identity.conversation) continue;
      const ids = pairToolCalls(echoed, run.toolCalls);
      if (ids !== null) {
        this.#unpark(run);
        return { run, ids };
      }
    }
    return null;
  }

  /**
   * Stops the run parked longest ago, to free its concurrency slot for a new request (its
   * follow-up, if it ever comes, is then served by replay). Resolves false when none is parked.
   */
  async evictOldest(): Promise<boolean> {
    const oldest = this.#parked.keys().next();
    if (oldest.done === true) return false;
    this.#unpark(oldest.value);
    await this.stop(oldest.value);
    return true;
  }

  /** Stops every parked run (shutdown). */
  async stopAll(): Promise<void> {
    const runs = [...this.#parked.keys()];
    for (const run of runs) this.#unpark(run);
    await Promise.all([...runs].map((run) => this.stop(run)));
  }

  /**
   * Stops a run: aborts the CLI and waits for it to exit, then ends the held calls and closes
   * its events. In that order, so that the CLI never sees a substitute result it could send
   * upstream.
   */
  async stop(run: ParkedRun): Promise<void> {
    run.controller.abort(new Error("tool result wait ended"));
    await run.events.return(undefined).catch(() => {});
    this.unregister(run.bridge);
    run.release();
    this.onStop?.(run);
  }

  #unpark(run: ParkedRun): boolean {
    const timer = this.#parked.get(run);
    if (timer === undefined) return false;
    clearTimeout(timer);
    this.#parked.delete(run);
    return true;
  }
}
