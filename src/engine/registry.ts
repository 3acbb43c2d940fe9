/**
 * Live runs that wait for tool results, and the MCP bridges of live runs. A run whose model called client tools is parked here
 * after its response ended with `finish_reason: "tool_calls"`; a follow-up request whose `tool`
 * messages answer those calls takes it back (continuation) instead of starting a new CLI. A
 * parked run that waits longer than the configured time is stopped.
 */
import type { ToolBridge } from "./bridge.ts";
import type { Turn } from "./conversation.ts";
import type { IssuedToolCall, Run } from "./run.ts";

/** A run between two requests: it waits for the results of its client tool calls. */
export type ParkedRun = Run & { bridge: ToolBridge };

/** What a follow-up must match, besides the calls, to take a parked run. */
export interface FollowUpIdentity {
  owner: string;
  /** {@link conversationFingerprint} of the follow-up's messages before its last assistant message. */
  conversation: string;
}

/** A turn's text and image blocks as one text (images by URL), trimmed. */
function turnContentText(turn: Turn): string {
  return turn.content
    .map((block) =>
      block.type === "text" ? block.text : block.type === "image" ? `[image ${block.url}]` : "",
    )
    .filter((text) => text !== "")
    .join("\n")
    .trim();
}

/**
 * A conversation as a comparable string, after normalising what clients and surfaces
 * legitimately change when they send it back: how turns are split (consecutive turns of one
 * role are merged), string vs text-part content, whitespace at the ends, tool call ids as
 * sanitisers rewrite them ({@link normalizeToolCallId}), argument key order. The system prompt,
 * the model and the offered tool names are part of it; thinking blocks are not.
 */
export function conversationFingerprint(
  system: string | null,
  turns: readonly Turn[],
  model: string,
  toolNames: readonly string[],
): string {
  const rows = mergeTurns(turns).map((turn) => [
    turn.role,
    turnContentText(turn),
    turn.content
      .filter((b) => b.type === "tool_use")
      .map((call) => [
        normalizeToolCallId(call.id),
        call.name,
        canonicalArguments(JSON.stringify(call.input ?? {})),
      ]),
    turn.content
      .filter((b) => b.type === "tool_result")
      .map((result) => [normalizeToolCallId(result.tool_use_id), result.content.trim()]),
  ]);
  return JSON.stringify([model, (system ?? "").trim(), [...toolNames].sort(), rows]);
}

/** Consecutive turns of one role as one (how the API receives them). */
export function mergeTurns(turns: readonly Turn[]): Turn[] {
  const out: Turn[] = [];
  for (const turn of turns) {
    const last = out.at(-1);
    if (last !== undefined && last.role === turn.role) last.content.push(...turn.content);
    else out.push({ role: turn.role, content: [...turn.content] });
  }
  return out;
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

  /** Stops a parked run ({@link Run.stop}: the CLI exits before its held calls end). */
  async stop(run: ParkedRun): Promise<void> {
    await run.stop(new Error("tool result wait ended"));
    this.unregister(run.bridge);
  }

  #unpark(run: ParkedRun): boolean {
    const timer = this.#parked.get(run);
    if (timer === undefined) return false;
    clearTimeout(timer);
    this.#parked.delete(run);
    return true;
  }
}
