/**
 * Warm runs (issue 11, conversation affinity): a run whose turn ended with `result` keeps its
 * CLI process, stdin open, for `--warm-ttl`. A later request of the same owner, with the same
 * launch profile (everything fixed at spawn), whose conversation is the one the run answered
 * plus the answer the proxy gave plus one new user turn, takes it: the new turn is written to
 * its stdin and answered in ~50-100 ms instead of a whole CLI start.
 *
 * Slots: a warm run holds no concurrency slot (it answers no one); the request that takes it
 * acquires one. Processes stay bounded: at most `max` warm runs (the least recently used one is
 * stopped to make room), and a request that finds every slot busy stops the least recently used
 * warm run first (memory for the process it is about to start).
 */
import type { Block, Turn } from "./conversation.ts";
import { conversationFingerprint } from "./registry.ts";
import type { IdleKind, Run } from "./run.ts";

/** The turns of a conversation as a comparable string (see {@link conversationFingerprint}). */
export function turnsFingerprint(turns: readonly Turn[]): string {
  return conversationFingerprint(null, turns, "", []);
}

/** The assistant turn the proxy sent back: its text and tool_use blocks (thinking is not compared). */
export function answerTurn(content: readonly Block[]): Turn {
  return {
    role: "assistant",
    content: content.filter((block) => block.type === "text" || block.type === "tool_use"),
  };
}

/**
 * A request's conversation split into what a kept run must already hold (`earlier`: empty for
 * a first turn, which a spare takes, else ending with an assistant turn, which a warm run
 * takes) and the new user turns after it (`next`: text and images only, merged into one turn);
 * null when it does not end that way (tool results, an assistant prefill, no content).
 */
export function splitFollowUp(turns: readonly Turn[]): { earlier: Turn[]; next: Turn } | null {
  let first = turns.length;
  while (first > 0 && turns[first - 1]?.role === "user") first--;
  if (first === turns.length) return null;
  const content: Block[] = [];
  for (const turn of turns.slice(first)) {
    for (const block of turn.content) {
      if (block.type !== "text" && block.type !== "image") return null;
      content.push(block);
    }
  }
  if (!content.some((b) => b.type === "image" || (b.type === "text" && b.text.trim() !== ""))) {
    return null;
  }
  return { earlier: turns.slice(0, first), next: { role: "user", content } };
}

/**
 * What a kept run is kept for, to name why a request missed it: the key of the request
 * (API key hash or ""), the launch profile, and the conversation fingerprint ("" for spares).
 */
export interface IdleTag {
  owner: string;
  profile: string;
  conversation: string;
}

/** The key a warm run is kept and found under: its {@link IdleTag}'s owner, profile and conversation. */
export function warmKey(tag: IdleTag): string {
  return JSON.stringify([tag.owner, tag.profile, tag.conversation]);
}

/**
 * Why a follow-up found no warm run of its own, from the warm runs kept now: `profile` (one
 * holds its conversation but was started with another launch profile: model, system prompt,
 * tools...), `history` (one has its profile but another conversation: the history was edited,
 * truncated or reordered), `none` (no warm run of this owner matches either way).
 */
export function missReason(
  kept: Iterable<IdleTag>,
  wanted: IdleTag,
): "profile" | "history" | "none" {
  let reason: "profile" | "history" | "none" = "none";
  for (const tag of kept) {
    if (tag.owner !== wanted.owner) continue;
    if (tag.conversation === wanted.conversation) return "profile";
    if (tag.profile === wanted.profile) reason = "history";
  }
  return reason;
}

/**
 * Runs the pool keeps idle by key, least recently used first: warm runs (key: owner, profile,
 * conversation; {@link warmKey}) or spares (key: the launch profile). A kept run holds no slot
 * (given back by {@link keep}), is stopped after its TTL, and is forgotten when its process exits.
 */
export class IdleRuns {
  readonly #runs = new Map<
    string,
    { run: Run; tag: IdleTag | null; timer: ReturnType<typeof setTimeout> }
  >();

  /** @param kind what the runs kept here are ({@link Run.idle}). */
  constructor(readonly kind: IdleKind) {}

  /** Number of runs kept now. */
  get count(): number {
    return this.#runs.size;
  }

  /** Whether a run is kept under `key`. */
  has(key: string): boolean {
    return this.#runs.has(key);
  }

  /** The tags of the runs kept now (for {@link missReason}). */
  *tags(): Generator<IdleTag> {
    for (const { tag } of this.#runs.values()) if (tag !== null) yield tag;
  }

  /**
   * Keeps `run` under `key` for `ttlMs` (then it is stopped: stdin closed, the CLI exits).
   * Its slot is given back. When `max` runs are kept already, the least recently used one is
   * stopped. A run under the same key is replaced (stopped).
   */
  keep(run: Run, key: string, ttlMs: number, max: number, tag: IdleTag | null = null): void {
    const input = run.input;
    if (input === null || input.exited || run.stopped) {
      void this.#stop(run);
      return;
    }
    const previous = this.#runs.get(key);
    if (previous !== undefined) this.#drop(key, previous.run);
    while (this.#runs.size >= Math.max(1, max)) {
      const oldest = this.#runs.entries().next().value;
      if (oldest === undefined) break;
      this.#drop(oldest[0], oldest[1].run);
    }
    run.idle = this.kind;
    run.releaseSlot();
    const timer = setTimeout(() => this.#drop(key, run), ttlMs);
    this.#runs.set(key, { run, tag, timer });
    // A kept process that exits by itself is forgotten (and its run cleaned up).
    input.onExit = () => {
      if (this.#runs.get(key)?.run === run) this.#drop(key, run);
    };
  }

  /**
   * Takes the run kept under `key` (it is no longer idle): `dead` when its process is gone
   * (then stopped), null when none is kept.
   */
  take(key: string): Run | "dead" | null {
    const entry = this.#runs.get(key);
    if (entry === undefined) return null;
    this.#forget(key, entry.run);
    if (entry.run.stopped || entry.run.input?.exited !== false) {
      void this.#stop(entry.run);
      return "dead";
    }
    return entry.run;
  }

  /** Stops the least recently used run; resolves false when there is none. */
  async evictOldest(): Promise<boolean> {
    const oldest = this.#runs.entries().next().value;
    if (oldest === undefined) return false;
    this.#forget(oldest[0], oldest[1].run);
    await this.#stop(oldest[1].run);
    return true;
  }

  /** Stops every kept run (shutdown). */
  async stopAll(): Promise<void> {
    const runs = [...this.#runs.entries()];
    for (const [key, { run }] of runs) this.#forget(key, run);
    await Promise.all(runs.map(([, { run }]) => this.#stop(run)));
  }

  #drop(key: string, run: Run): void {
    this.#forget(key, run);
    void this.#stop(run);
  }

  /**
   * Stops a kept run: a warm one ends by itself once its stdin closes; a spare is killed (it
   * has no turn to finish, and its first read, which spawns the process, may still be under way:
   * only the abort reaches a process spawned after the stop).
   */
  #stop(run: Run): Promise<void> {
    return this.kind === "spare" ? run.stop(new Error("spare process stopped")) : run.stop();
  }

  #forget(key: string, run: Run): void {
    const entry = this.#runs.get(key);
    if (entry === undefined || entry.run !== run) return;
    clearTimeout(entry.timer);
    this.#runs.delete(key);
    run.idle = null;
    if (run.input !== null) run.input.onExit = null;
  }
}
