/**
 * Helpers shared by the three spawn implementations (`bun.ts`, `deno.ts`, `node.ts`): one way to
 * report a program that cannot be started, and a kill that is a no-op once the child is gone.
 */

/** The `code` property of an error (`"ENOENT"`, `"EACCES"`, ...), if any. */
export function errorCode(error: unknown): unknown {
  return typeof error === "object" && error !== null && "code" in error ? error.code : undefined;
}

/**
 * Normalises a failure to start `command`: a missing or non-executable program becomes an
 * Error with `code: "ENOENT"` (the {@link Spawn} contract); anything else is returned as it is.
 */
export function spawnFailure(command: string, error: unknown): unknown {
  const code = errorCode(error);
  if (code !== "ENOENT" && code !== "EACCES") return error;
  return Object.assign(
    new Error(`Cannot run ${command}: not found or not executable`, { cause: error }),
    { code: "ENOENT" },
  );
}

/** A `kill` that does nothing once `gone()` and never throws (kill is best effort by contract). */
export function safeKill<S>(gone: () => boolean, kill: (signal: S) => void): (signal: S) => void {
  return (signal) => {
    if (gone()) return;
    try {
      kill(signal);
    } catch {
      // Already gone.
    }
  };
}
