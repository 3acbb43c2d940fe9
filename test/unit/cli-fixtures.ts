/**
 * The recorded CLI outputs of test/fixtures/cli (real claude CLI 2.1.197, see record.ts), read
 * for unit tests: raw lines, parsed events, and events as the async iterator a run yields.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type CliEvent, parseLine } from "../../src/claude/events.ts";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "cli");

/** Names of every recorded fixture (without `.jsonl`). */
export function fixtureNames(): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".jsonl"))
    .map((f) => f.slice(0, -".jsonl".length))
    .sort();
}

/** The non-blank stdout lines of a fixture. */
export function fixtureLines(name: string): string[] {
  return readFileSync(join(dir, `${name}.jsonl`), "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "");
}

/** A fixture parsed with {@link parseLine}. */
export function fixtureEvents(name: string): CliEvent[] {
  return fixtureLines(name).flatMap((line, i) => {
    const event = parseLine(line, i + 1);
    return event === null ? [] : [event];
  });
}

/** Events as the async iterator a CLI run gives (read with `next()`). */
export function eventIterator(
  events: readonly CliEvent[],
): AsyncIterator<CliEvent, void, undefined> {
  return (async function* () {
    for (const event of events) yield event;
  })();
}
