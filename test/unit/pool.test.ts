import { describe, expect, it } from "vitest";
import { ToolBridge } from "../../src/engine/bridge.ts";
import {
  defaultMaxProcesses,
  PROCESS_BUDGET_BYTES,
  ProcessPool,
  ProfileCounter,
} from "../../src/engine/pool.ts";
import { type ParkedRun, ToolRuns } from "../../src/engine/registry.ts";
import { Lifecycle } from "../../src/lifecycle.ts";
import { finishedRun, type TestRun } from "./run-helpers.ts";

/** A pool whose runs are registered with its lifecycle as the engine does. */
function pool(maxProcesses: number, spares = 1) {
  const lifecycle = new Lifecycle();
  const parked = new ToolRuns();
  const made = new ProcessPool(parked, lifecycle, { maxProcesses, spares });
  const run = async (): Promise<TestRun> => {
    const r = await finishedRun((stopped) => lifecycle.end(stopped), new ToolBridge([]));
    lifecycle.begin(r);
    return r;
  };
  return { pool: made, lifecycle, parked, run };
}

describe("defaultMaxProcesses", () => {
  it("is the machine's memory over 300 MiB, at least --max-concurrency", () => {
    expect(defaultMaxProcesses(24 * 1024 ** 3, 4)).toBe(81);
    expect(defaultMaxProcesses(10 * PROCESS_BUDGET_BYTES + 1, 4)).toBe(10);
    expect(defaultMaxProcesses(PROCESS_BUDGET_BYTES, 4)).toBe(4);
  });
});

describe("ProfileCounter", () => {
  it("counts sightings within the window only", () => {
    const counter = new ProfileCounter(1000);
    expect(counter.note("p", 0)).toBe(1);
    expect(counter.note("p", 500)).toBe(2);
    expect(counter.count("p", 900)).toBe(2);
    expect(counter.count("p", 1200)).toBe(1);
    expect(counter.count("p", 1600)).toBe(0);
    expect(counter.note("p", 2000)).toBe(1);
    expect(counter.count("q", 2000)).toBe(0);
  });

  it("forgets the least recently seen profile beyond its bound", () => {
    const counter = new ProfileCounter(60_000, 2);
    counter.note("a", 0);
    counter.note("b", 1);
    counter.note("a", 2);
    counter.note("c", 3);
    expect(counter.count("b", 4)).toBe(0);
    expect(counter.count("a", 4)).toBe(2);
    expect(counter.count("c", 4)).toBe(1);
  });
});

describe("ProcessPool", () => {
  it("counts processes by state", async () => {
    const { pool: p, parked, run } = pool(8);
    await run(); // busy
    const warm = await run();
    p.warm.keep(warm, "w", 60_000, 8);
    const spare = await run();
    p.spares.keep(spare, "profile", 60_000, 1);
    const waiting = (await run()) as unknown as ParkedRun;
    parked.park(waiting, 60_000);
    expect(p.counts()).toEqual({ busy: 1, parked: 1, warm: 1, spare: 1, total: 4, max: 8 });
    await p.stopIdle();
    expect(p.counts()).toEqual({ busy: 1, parked: 0, warm: 0, spare: 0, total: 1, max: 8 });
  });

  it("makes room by stopping spares, then the least recently used warm run, then the oldest parked run", async () => {
    const { pool: p, lifecycle, parked, run } = pool(4);
    const busy = await run();
    const waiting = (await run()) as unknown as ParkedRun;
    parked.park(waiting, 60_000);
    const [older, newer, spare] = [await run(), await run(), await run()];
    p.warm.keep(older, "older", 60_000, 8);
    p.warm.keep(newer, "newer", 60_000, 8);
    p.spares.keep(spare, "profile", 60_000, 1);
    expect(lifecycle.runs.size).toBe(5);

    // 5 alive, cap 4: room for one more means two stopped: the spare, then the older warm run.
    expect(await p.makeRoom()).toBe(2);
    expect(spare.stopped && older.stopped).toBe(true);
    expect(newer.stopped || waiting.stopped).toBe(false);
    expect(lifecycle.runs.size).toBe(3);

    // Two more processes: the newer warm run goes, then the parked one.
    lifecycle.begin(await finishedRun());
    expect(await p.makeRoom()).toBe(1);
    expect(newer.stopped).toBe(true);
    lifecycle.begin(await finishedRun());
    expect(await p.makeRoom()).toBe(1);
    expect(waiting.stopped).toBe(true);
    // Only busy runs are left: nothing to stop.
    lifecycle.begin(await finishedRun());
    expect(await p.makeRoom()).toBe(0);
    expect(busy.stopped).toBe(false);
  });

  it("wants a spare for a profile seen twice, one per profile, at most --spares, within the cap", async () => {
    const { pool: p, lifecycle, run } = pool(3, 1);
    expect(p.wantsSpare("p")).toBe(false);
    p.profiles.note("p");
    expect(p.wantsSpare("p")).toBe(false);
    p.profiles.note("p");
    expect(p.wantsSpare("p")).toBe(true);
    const spare = await run();
    p.spares.keep(spare, "p", 60_000, 1);
    expect(p.wantsSpare("p")).toBe(false);
    p.profiles.note("q");
    p.profiles.note("q");
    // --spares 1 is used up.
    expect(p.wantsSpare("q")).toBe(false);
    await p.spares.stopAll();
    expect(p.wantsSpare("q")).toBe(true);
    // No room without stopping something: no spare.
    await run();
    await run();
    await run();
    expect(p.wantsSpare("q")).toBe(false);
    lifecycle.draining = true;
    expect(pool(3, 0).pool.wantsSpare("q")).toBe(false);
  });
});
