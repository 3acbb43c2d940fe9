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

/** A run between two requests. */
export interface ParkedRun extends LiveRun {
  bridge: ToolBridge;
  /** The tool call ids the client must answer. */
  toolCallIds: string[];
}

/** Bridges by token and parked runs by tool call id. */
export class ToolRuns {
  /** Called after a parked run was stopped (timeout or shutdown). */
  onStop: ((run: ParkedRun) => void) | undefined;
  readonly #bridges = new Map<string, ToolBridge>();
  readonly #parked = new Map<string, { run: ParkedRun; timer: ReturnType<typeof setTimeout> }>();

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
    return new Set([...this.#parked.values()].map((p) => p.run)).size;
  }

  /** Parks a run until its tool results arrive or `waitMs` passes (then it is stopped). */
  park(run: ParkedRun, waitMs: number): void {
    const timer = setTimeout(() => {
      if (this.#unpark(run)) void this.stop(run);
    }, waitMs);
    for (const id of run.toolCallIds) this.#parked.set(id, { run, timer });
  }

  /**
   * Takes the parked run that made the calls `toolCallIds` answer, or null when none is alive.
   * All ids must belong to the same run.
   */
  take(toolCallIds: readonly string[]): ParkedRun | null {
    const first = toolCallIds[0];
    if (first === undefined) return null;
    const entry = this.#parked.get(first);
    if (entry === undefined) return null;
    if (!toolCallIds.every((id) => this.#parked.get(id)?.run === entry.run)) return null;
    this.#unpark(entry.run);
    return entry.run;
  }

  /**
   * Stops the run parked longest ago, to free its concurrency slot for a new request (its
   * follow-up, if it ever comes, is then served by replay). Resolves false when none is parked.
   */
  async evictOldest(): Promise<boolean> {
    const oldest = this.#parked.values().next();
    if (oldest.done === true) return false;
    this.#unpark(oldest.value.run);
    await this.stop(oldest.value.run);
    return true;
  }

  /** Stops every parked run (shutdown). */
  async stopAll(): Promise<void> {
    const runs = new Set([...this.#parked.values()].map((p) => p.run));
    for (const run of runs) this.#unpark(run);
    await Promise.all([...runs].map((run) => this.stop(run)));
  }

  /** Stops a run: aborts the CLI, ends the held calls, closes its events. */
  async stop(run: ParkedRun): Promise<void> {
    run.controller.abort(new Error("tool result wait ended"));
    this.unregister(run.bridge);
    await run.events.return(undefined).catch(() => {});
    run.release();
    this.onStop?.(run);
  }

  #unpark(run: ParkedRun): boolean {
    let found = false;
    for (const id of run.toolCallIds) {
      const entry = this.#parked.get(id);
      if (entry?.run === run) {
        clearTimeout(entry.timer);
        this.#parked.delete(id);
        found = true;
      }
    }
    return found;
  }
}
