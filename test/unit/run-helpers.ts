/** Engine {@link Run}s for unit tests of the pool: no CLI behind them. */
import type { CliEvent } from "../../src/claude/events.ts";
import { StdinChannel } from "../../src/claude/run.ts";
import type { ToolBridge } from "../../src/engine/bridge.ts";
import { Run } from "../../src/engine/run.ts";

/** A run that counts its slot releases and records what was written to its stdin. */
export type TestRun = Run & { released: number; written: string[] };

/**
 * A run that finished a turn: its events wait at a yield, stdin open; `onStopped` is told when
 * it stops (as the lifecycle would be); `bridge` for a run that may be parked.
 */
export async function finishedRun(
  onStopped: (run: Run) => void = () => {},
  bridge: ToolBridge | null = null,
): Promise<TestRun> {
  const run = new Run(
    bridge,
    {
      policy: { retryRateLimits: false, retryServerErrors: false },
      toolPrefix: null,
      structuredOutput: false,
    },
    () => {
      run.released++;
    },
    onStopped,
  ) as TestRun;
  run.released = 0;
  run.written = [];
  run.input = new StdinChannel();
  run.input.bind(
    (text) => run.written.push(text),
    () => {},
  );
  run.events = (async function* (): AsyncGenerator<CliEvent, void, undefined> {
    yield { type: "unknown", raw: {} } as CliEvent;
    await new Promise(() => {});
  })();
  await run.events.next();
  return run;
}
