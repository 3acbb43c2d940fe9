/**
 * The process pool (issue 11): every claude CLI process the proxy runs is in one of four
 * states, and one cap bounds them all.
 * - busy: answering a request (bounded by `--max-concurrency` slots, as before);
 * - parked: waiting for the client's tool results ({@link ToolRuns}; it keeps its slot);
 * - warm: a finished conversation kept for its next user turn ({@link IdleRuns} "warm");
 * - spare: started ahead for a launch profile seen recently, no turn yet ({@link IdleRuns}
 *   "spare").
 * `--max-processes` bounds the four together (each CLI is ~290 MiB busy, ~155 MiB idle); before a
 * new process starts, the pool makes room by stopping spares first, then warm runs (least
 * recently used), then parked runs (oldest). No request waits for an idle process.
 */
import type { Lifecycle } from "../lifecycle.ts";
import type { ToolRuns } from "./registry.ts";
import { IdleRuns } from "./warm.ts";

/** Memory one CLI process is budgeted at when sizing the default `--max-processes`, bytes. */
export const PROCESS_BUDGET_BYTES = 300 * 1024 * 1024;

/** How long a launch profile's first turns count towards a spare, ms. */
export const PROFILE_WINDOW_MS = 10 * 60_000;

/** First turns of a profile within {@link PROFILE_WINDOW_MS} before a spare is kept for it. */
export const SPARE_AFTER_SEEN = 2;

/** Most launch profiles remembered (the oldest is forgotten first). */
const MAX_PROFILES = 256;

/**
 * The default `--max-processes`: the machine's memory over {@link PROCESS_BUDGET_BYTES}, at least
 * `maxConcurrency` (every busy process must fit).
 * @param totalMemoryBytes the machine's memory, bytes
 */
export function defaultMaxProcesses(totalMemoryBytes: number, maxConcurrency: number): number {
  return Math.max(maxConcurrency, Math.floor(totalMemoryBytes / PROCESS_BUDGET_BYTES));
}

/** Processes by state, as `/health` and `/metrics` show them. */
export interface PoolCounts {
  busy: number;
  parked: number;
  warm: number;
  spare: number;
  /** All CLI processes alive now (the four states; one being stopped counts until it exited). */
  total: number;
  /** `--max-processes`. */
  max: number;
}

/** Counts first turns per launch profile over a sliding window (which profiles deserve a spare). */
export class ProfileCounter {
  readonly #seen = new Map<string, number[]>();

  /**
   * @param windowMs how long a sighting counts, ms
   * @param maxProfiles most profiles remembered
   */
  constructor(
    readonly windowMs: number = PROFILE_WINDOW_MS,
    readonly maxProfiles: number = MAX_PROFILES,
  ) {}

  /** Records a sighting of `profile` at `now` (ms) and returns its sightings within the window. */
  note(profile: string, now: number = Date.now()): number {
    const times = (this.#seen.get(profile) ?? []).filter((t) => now - t < this.windowMs);
    times.push(now);
    // Most recent last: re-inserting keeps the map ordered by last sighting.
    this.#seen.delete(profile);
    this.#seen.set(profile, times.slice(-SPARE_AFTER_SEEN));
    while (this.#seen.size > this.maxProfiles) {
      const oldest = this.#seen.keys().next().value;
      if (oldest === undefined) break;
      this.#seen.delete(oldest);
    }
    return times.length;
  }

  /** Sightings of `profile` within the window before `now`. */
  count(profile: string, now: number = Date.now()): number {
    return (this.#seen.get(profile) ?? []).filter((t) => now - t < this.windowMs).length;
  }
}

/** Settings of the pool. */
export interface PoolOptions {
  /** `--max-processes`: CLI processes in all states together. */
  maxProcesses: number;
  /** `--spares`: most spare processes at once (0: none). */
  spares: number;
}

/** Owns the parked, warm and spare runs, and counts the busy ones through the lifecycle. */
export class ProcessPool {
  /** Finished conversations kept for their next turn. */
  readonly warm = new IdleRuns("warm");
  /** Processes started ahead, by launch profile. */
  readonly spares = new IdleRuns("spare");
  /** First turns per launch profile. */
  readonly profiles = new ProfileCounter();

  /**
   * @param parked runs waiting for client tool results (and the MCP bridges)
   * @param lifecycle every live run (busy, parked, warm and spare are all registered there)
   */
  constructor(
    readonly parked: ToolRuns,
    readonly lifecycle: Lifecycle,
    readonly options: PoolOptions,
  ) {}

  /** Processes by state now. */
  counts(): PoolCounts {
    const parked = this.parked.parkedCount;
    const warm = this.warm.count;
    const spare = this.spares.count;
    const total = this.lifecycle.runs.size;
    return {
      busy: Math.max(0, total - parked - warm - spare),
      parked,
      warm,
      spare,
      total,
      max: this.options.maxProcesses,
    };
  }

  /**
   * Makes room for one more process: while `--max-processes` are alive, stops a spare, else
   * the least recently used warm run, else the oldest parked run (its follow-up is then
   * replayed), and waits for it to exit. Gives up when only busy processes are left (they are
   * bounded by `--max-concurrency`, which `--max-processes` is at least).
   * @returns how many processes were stopped
   */
  async makeRoom(): Promise<number> {
    let stopped = 0;
    while (this.lifecycle.runs.size >= this.options.maxProcesses) {
      if (
        (await this.spares.evictOldest()) ||
        (await this.warm.evictOldest()) ||
        (await this.parked.evictOldest())
      ) {
        stopped++;
        continue;
      }
      break;
    }
    return stopped;
  }

  /**
   * Whether a spare should be started for `profile` now: spares are enabled, its first turns
   * were seen {@link SPARE_AFTER_SEEN} times within the window, none is kept for it, fewer than
   * `--spares` are kept, and a process fits under `--max-processes` without stopping any.
   */
  wantsSpare(profile: string): boolean {
    return (
      this.options.spares > 0 &&
      !this.lifecycle.draining &&
      this.profiles.count(profile) >= SPARE_AFTER_SEEN &&
      !this.spares.has(profile) &&
      this.spares.count < this.options.spares &&
      this.lifecycle.runs.size < this.options.maxProcesses
    );
  }

  /** Stops every parked, warm and spare run (shutdown). */
  async stopIdle(): Promise<void> {
    await Promise.all([this.parked.stopAll(), this.warm.stopAll(), this.spares.stopAll()]);
  }
}
