/**
 * Stop sequences, which the CLI cannot apply: the engine watches the answer's text and ends the
 * turn where one first appears (the sequence itself is not sent), with stop reason
 * `stop_sequence` as the Messages API reports it. Text is held back only as long as it could
 * still be the start of a sequence (the longest sequence's length minus one characters).
 */
import type { TurnEnd, TurnEvent, Usage } from "./events.ts";

/**
 * Passes `events` on, cutting the text at the first stop sequence: the text before it, then an
 * end with `stopReason: "stop_sequence"`, `stopSequence`, `result: null` and the usage reported
 * so far (`usage()`); the caller then stops the run, whose answer goes no further. A sequence is
 * found within the text of one run of text events (thinking or a tool call in between ends it).
 * Without sequences, `events` itself is returned.
 */
export function stopAtSequences(
  events: AsyncGenerator<TurnEvent, void, undefined>,
  sequences: readonly string[],
  usage: () => Usage,
): AsyncGenerator<TurnEvent, void, undefined> {
  const stops = sequences.filter((s) => s !== "");
  if (stops.length === 0) return events;
  const hold = Math.max(...stops.map((s) => s.length)) - 1;
  return (async function* () {
    let pending = "";
    try {
      while (true) {
        const next = await events.next();
        if (next.done === true) break;
        const event = next.value;
        if (event.kind !== "text") {
          if (pending !== "") yield { kind: "text", text: pending };
          pending = "";
          yield event;
          if (event.kind === "end") return;
          continue;
        }
        pending += event.text;
        const match = firstMatch(pending, stops);
        if (match !== null) {
          if (match.index > 0) yield { kind: "text", text: pending.slice(0, match.index) };
          const end: TurnEnd = {
            kind: "end",
            stopReason: "stop_sequence",
            stopSequence: match.sequence,
            usage: { ...usage() },
            toolCalls: [],
            result: null,
            costUsd: 0,
            compacted: false,
          };
          yield end;
          return;
        }
        let safe = pending.length - hold;
        // Never cut a surrogate pair (one emoji): clients that decode each delta apart would
        // get broken text.
        const last = pending.charCodeAt(safe - 1);
        if (safe > 0 && last >= 0xd800 && last <= 0xdbff) safe--;
        if (safe > 0) {
          yield { kind: "text", text: pending.slice(0, safe) };
          pending = pending.slice(safe);
        }
      }
      if (pending !== "") yield { kind: "text", text: pending };
    } finally {
      await events.return(undefined);
    }
  })();
}

/** The earliest stop sequence in `text` (the longest where two start at one place). */
function firstMatch(
  text: string,
  stops: readonly string[],
): { index: number; sequence: string } | null {
  let best: { index: number; sequence: string } | null = null;
  for (const sequence of stops) {
    const index = text.indexOf(sequence);
    if (index < 0) continue;
    if (
      best === null ||
      index < best.index ||
      (index === best.index && sequence.length > best.sequence.length)
    ) {
      best = { index, sequence };
    }
  }
  return best;
}
