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
import type { Run } from "./run.ts";

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
 * A request's conversation split into what a warm run must already hold (`earlier`, ending with
 * an assistant turn) and the new user turns after it (`next`: text and images only, merged into
 * one turn); null when it does not end that way (tool results, an assistant prefill, no history).
 */
export function splitFollowUp(turns: readonly Turn[]): { earlier: Turn[]; next: Turn } | null {
  let first = turns.length;
  while (first > 0 && turns[first - 1]?.role === "user") first--;
  if (first === turns.length || first === 0) return null;
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

/** The key a warm run is found by: owner, launch profile and conversation fingerprint. */
export function warmKey(owner: string, profile: string, conversation: string): string {
  return JSON.stringify([owner, profile, conversation]);
}

/** Warm runs by key, least recently used first. */
export class WarmRuns {
  readonly #runs = new Map<string, { run: Run; timer: ReturnType<typeof setTimeout> }>();

  /** Number of warm runs now. */
  get count(): number {
    return this.#runs.size;
  }

  /**
   * Keeps `run` warm under `key` for `ttlMs` (then it is stopped: stdin closed, the CLI exits).
   * Its slot is given back. When `max` warm runs are kept already, the least recently used one
   * is stopped. A run under the same key is replaced (stopped).
   */
  keep(run: Run, key: string, ttlMs: number, max: number): void {
    const input = run.input;
    if (input === null || input.exited || run.stopped) {
      void run.stop();
      return;
    }
    const previous = this.#runs.get(key);
    if (previous !== undefined) this.#drop(key, previous.run);
    while (this.#runs.size >= Math.max(1, max)) {
      const oldest = this.#runs.entries().next().value;
      if (oldest === undefined) break;
      this.#drop(oldest[0], oldest[1].run);
    }
    run.warm = true;
    run.releaseSlot();
    const timer = setTimeout(() => this.#drop(key, run), ttlMs);
    this.#runs.set(key, { run, timer });
    // A warm process that exits by itself is forgotten (and its run cleaned up).
    input.onExit = () => {
      if (this.#runs.get(key)?.run === run) this.#drop(key, run);
    };
  }

  /** Takes the warm run kept under `key` (it is no longer warm), or null. */
  take(key: string): Run | null {
    const entry = this.#runs.get(key);
    if (entry === undefined) return null;
    this.#forget(key, entry.run);
    if (entry.run.stopped || entry.run.input?.exited !== false) {
      void entry.run.stop();
      return null;
    }
    return entry.run;
  }

  /** Stops the least recently used warm run; resolves false when there is none. */
  async evictOldest(): Promise<boolean> {
    const oldest = this.#runs.entries().next().value;
    if (oldest === undefined) return false;
    this.#forget(oldest[0], oldest[1].run);
    await oldest[1].run.stop();
    return true;
  }

  /** Stops every warm run (shutdown). */
  async stopAll(): Promise<void> {
    const runs = [...this.#runs.entries()];
    for (const [key, { run }] of runs) this.#forget(key, run);
    await Promise.all(runs.map(([, { run }]) => run.stop()));
  }

  #drop(key: string, run: Run): void {
    this.#forget(key, run);
    void run.stop();
  }

  #forget(key: string, run: Run): void {
    const entry = this.#runs.get(key);
    if (entry === undefined || entry.run !== run) return;
    clearTimeout(entry.timer);
    this.#runs.delete(key);
    run.warm = false;
    if (run.input !== null) run.input.onExit = null;
  }
}
