/**
 * One CLI run of the engine: it owns the CLI process (through its event generator), its MCP
 * bridge and its concurrency slot, and may outlive one request when it waits for client tool
 * results. It has one way to end, {@link Run.stop}: the first stop reason wins (as execa's
 * `kill` does), later calls wait for the same end.
 */
import type { CliEvent } from "../claude/events.ts";
import type { StdinChannel } from "../claude/run.ts";
import type { ToolBridge } from "./bridge.ts";
import type { TurnOptions } from "./turn.ts";

/** Why the pool keeps a run that answers no one: see {@link Run.idle}. */
export type IdleKind = "warm" | "spare";

/** A client tool call as the proxy sent it (`name` without the `mcp__client__` prefix). */
export interface IssuedToolCall {
  id: string;
  name: string;
  /** JSON text of the arguments. */
  arguments: string;
}

/** A CLI run serving turns. */
export class Run {
  /** The run's CLI events, read with `next()` (set once the CLI is started). */
  events: AsyncGenerator<CliEvent, void, undefined> = emptyEvents();
  /** Aborted by {@link stop}; its reason is the error the run's reader sees. */
  readonly controller = new AbortController();
  /** True while it waits for client tool results (parked). */
  waiting = false;
  /** The tool calls a parked run waits for, as sent to the client. */
  toolCalls: IssuedToolCall[] = [];
  /** Who may continue a parked run: the API key of the request that made its calls ("" without keys). */
  owner = "";
  /** Fingerprint of the conversation a parked run's calls answered (engine/registry.ts). */
  conversation = "";
  /** Launch profile key (engine/warm.ts), set when the run may be kept warm; "" otherwise. */
  profile = "";
  /** Warm mode: the CLI's stdin, open for more turns after `result` (null: a one-turn run). */
  input: StdinChannel | null = null;
  /** An event read ahead (a warm run's first after its new turn), yielded first by {@link pushBack}'s events. */
  pushed: IteratorResult<CliEvent, void> | null = null;
  /**
   * Kept idle by the process pool (engine/warm.ts, engine/pool.ts): `warm` (a finished
   * conversation waiting for its next turn) or `spare` (started ahead, no turn yet); neither
   * answers anyone nor holds a slot. Null while it works for a request or is parked.
   */
  idle: IdleKind | null = null;
  /**
   * Whether the model thought (thinking blocks) in a turn of this process: the live CLI sends
   * that thinking with its later turns, a cold run resumed from the same conversation does not
   * (2.1.332), so such a run is not kept warm (same traffic as cold).
   */
  thought = false;
  /** Turns written to this process (a spare has none until taken; warm follow-ups add one each). */
  turns = 1;
  /** A read of the first event begun before anyone asked (a spare's process starts on its first read). */
  #primed: Promise<IteratorResult<CliEvent, void>> | undefined;
  #release: () => void;
  /** The CLI's `total_cost_usd` already reported for earlier turns of this process. */
  #costReported = 0;
  readonly #onStopped: (run: Run) => void;
  #stopping: Promise<void> | undefined;

  /**
   * @param bridge the MCP bridge of its client tools (null without tools)
   * @param options how its events become turn events
   * @param release gives its concurrency slot back
   * @param onStopped told once the run has ended (its CLI exited): unregisters the bridge, etc.
   */
  constructor(
    readonly bridge: ToolBridge | null,
    readonly options: TurnOptions,
    release: () => void,
    onStopped: (run: Run) => void,
  ) {
    this.#release = release;
    this.#onStopped = onStopped;
  }

  /**
   * Gives the concurrency slot back while the run is kept warm (a warm process waits for no
   * one); {@link holdSlot} takes one again when a request takes the run.
   */
  releaseSlot(): void {
    const release = this.#release;
    this.#release = () => {};
    release();
  }

  /** Holds a slot again (a warm run taken by a request). */
  holdSlot(release: () => void): void {
    this.#release = release;
  }

  /**
   * Writes the next user turn (a stream-json line) to a warm run's CLI; false when it cannot
   * take one (not warm-capable, stopped, or its process exited).
   */
  nextTurn(line: string): boolean {
    if (this.input === null || this.stopped) return false;
    if (!this.input.write(line)) return false;
    this.turns++;
    return true;
  }

  /**
   * This turn's cost from the CLI's `total_cost_usd`, which counts every turn of the process
   * (verified on 2.1.332: 0.003, 0.006, 0.009 for three equal turns on one warm process).
   */
  turnCost(totalUsd: number): number {
    const cost = Math.max(0, totalUsd - this.#costReported);
    this.#costReported = Math.max(this.#costReported, totalUsd);
    return cost;
  }

  /**
   * Starts reading the run's events now: the generator (and so the CLI process) starts on its
   * first read, which for a spare waits until its first turn is written.
   */
  prime(): void {
    if (this.#primed !== undefined) return;
    this.#primed = this.events.next();
    this.#primed.catch(() => {});
  }

  /** The next event: the one {@link prime} began reading, else a new read. */
  nextEvent(): Promise<IteratorResult<CliEvent, void>> {
    const primed = this.#primed;
    this.#primed = undefined;
    return primed ?? this.events.next();
  }

  /** Whether {@link stop} was called. */
  get stopped(): boolean {
    return this.#stopping !== undefined;
  }

  /**
   * Ends the run: with a reason, aborts it (the CLI is killed; the first reason of all wins);
   * without one (the turn finished), lets the CLI exit by itself. Then waits for the CLI to
   * exit, ends its held MCP calls (in that order, so that the CLI never sees a substitute result
   * it could send upstream), gives the slot back and tells the owner. Idempotent.
   */
  stop(reason?: unknown): Promise<void> {
    if (reason !== undefined) this.controller.abort(reason);
    // A process between turns (or a spare, whose first read is still pending) ends by itself
    // once its stdin closes; the pending read then settles and the generator can return.
    else this.input?.close();
    this.#stopping ??= (async () => {
      await this.events.return(undefined).catch(() => {});
      this.#release();
      this.#onStopped(this);
    })();
    return this.#stopping;
  }
}

/** `events` with the run's {@link Run.pushed} event (if any) yielded before the next one. */
export async function* pushBack(
  events: AsyncGenerator<CliEvent, void, undefined>,
  run: Run,
): AsyncGenerator<CliEvent, void, undefined> {
  try {
    while (true) {
      const next = run.pushed ?? (await events.next());
      run.pushed = null;
      if (next.done === true) return;
      yield next.value;
    }
  } finally {
    await events.return(undefined);
  }
}

async function* emptyEvents(): AsyncGenerator<CliEvent, void, undefined> {}
