/**
 * One CLI run: spawn, write the user turn to stdin, parse stdout line by line, end on `result`.
 * Abort (client gone, timeout) kills the child: SIGTERM, then SIGKILL after a grace period.
 * The run's temp directory is removed once the child has exited, whatever happened.
 */
import { ProxyError } from "../errors.ts";
import type { Runtime, Subprocess } from "../runtime/types.ts";
import { type CliEvent, parseLine } from "./events.ts";

/** Everything {@link runCli} needs. */
export interface CliRunOptions {
  runtime: Pick<Runtime, "spawn" | "remove">;
  /** The CLI program (already resolved). */
  claudePath: string;
  args: readonly string[];
  /** Written to stdin; stdin stays open until `result` (DESIGN.md: closing early ends the run). */
  stdin: string;
  cwd: string;
  env: Record<string, string>;
  /** Aborting ends the run (the generator then throws the signal's reason). */
  signal: AbortSignal;
  /** ms between SIGTERM and SIGKILL. */
  killGraceMs: number;
  /** Kill the run when stdout stays silent this long (ms); 0 disables. */
  idleTimeoutMs?: number;
  /** While this returns true the idle timeout does not fire (the run waits for tool results). */
  isWaiting?: () => boolean;
  /** Removed (recursively) after the child exited. */
  tempPaths?: readonly string[];
  /** Called once with the child's pid after spawn, and with null after it exited. */
  onProcess?: (pid: number | null) => void;
  /**
   * Warm mode: stdin stays open after `result` and the generator goes on yielding the events of
   * the turns written later with {@link StdinChannel.write} (DESIGN.md "A second turn on a live
   * CLI"). Between a `result` and the next write the idle timeout does not apply. Closing the
   * channel (or returning the generator, or the signal) ends the process as without it.
   * With `stdin` "" the process is a spare: started, waiting for its first turn (DESIGN.md "A
   * second turn on a live CLI": nothing is sent to the API before a turn is written).
   */
  input?: StdinChannel;
  /**
   * Told about every event as it is read, before anyone consumes it (every turn of a warm or
   * parked run included): the rate-limit state (src/limits.ts) is kept this way.
   */
  onEvent?: (event: CliEvent) => void;
}

/** The stdin of a warm run: more user turns after `result`, or the end. */
export class StdinChannel {
  #write: ((text: string) => void) | null = null;
  #close: (() => void) | null = null;
  #exited = false;
  /** Turns written before the process was spawned. */
  readonly #pending: string[] = [];
  /** Told once when the process exits (a warm process that died while nobody read it). */
  onExit: (() => void) | null = null;

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /**
   * Writes a next turn (stream-json lines) and restarts the idle clock; false when the process
   * is gone. Before the process is spawned (a spare taken at once) the text waits and is
   * written at spawn.
   */
  write(text: string): boolean {
    if (this.#exited) return false;
    if (this.#write === null) this.#pending.push(text);
    else this.#write(text);
    return true;
  }

  /** Closes stdin: the CLI exits by itself. */
  close(): void {
    this.#close?.();
  }

  /** @internal runCli binds its writer here (and gets what was written before). */
  bind(write: (text: string) => void, close: () => void): void {
    this.#write = write;
    this.#close = close;
    for (const text of this.#pending.splice(0)) write(text);
  }

  /** @internal runCli reports the exit here. */
  markExited(): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#write = null;
    this.onExit?.();
  }
}

/** Bytes of stderr kept for error messages. */
const STDERR_TAIL_BYTES = 4096;

/** Splits a text stream into lines (without the newline). */
export function lineSplitter(): TransformStream<string, string> {
  let buffer = "";
  return new TransformStream<string, string>({
    transform(chunk, controller) {
      buffer += chunk;
      let index = buffer.indexOf("\n");
      while (index >= 0) {
        controller.enqueue(buffer.slice(0, index));
        buffer = buffer.slice(index + 1);
        index = buffer.indexOf("\n");
      }
    },
    flush(controller) {
      if (buffer !== "") controller.enqueue(buffer);
    },
  });
}

async function collectTail(stream: ReadableStream<Uint8Array>, sink: { text: string }) {
  const decoder = new TextDecoder();
  try {
    for await (const chunk of stream) {
      sink.text = (sink.text + decoder.decode(chunk, { stream: true })).slice(-STDERR_TAIL_BYTES);
    }
  } catch {
    // the child went away: keep what we have
  }
}

/**
 * Kills a child: SIGTERM, then SIGKILL when it has not exited after `graceMs`. Resolves on exit.
 * Windows has no signals: Node, Bun and Deno all end the child at once (TerminateProcess) on the
 * first kill, so there is no grace period there, and only that process ends, which is why a
 * `claude.cmd` shim is followed to its program (resolve.ts) rather than run through cmd.exe.
 */
export async function terminate(child: Subprocess, graceMs: number): Promise<void> {
  let exited = false;
  void child.exited.then(() => {
    exited = true;
  });
  child.kill("SIGTERM");
  const timer = setTimeout(() => {
    if (!exited) child.kill("SIGKILL");
  }, graceMs);
  await child.exited;
  clearTimeout(timer);
}

/**
 * Runs the CLI and yields its events up to and including `result`.
 * @throws ProxyError 503 `cli_not_found` when the program cannot be started; 502 `cli_exited`
 *   (with the tail of stderr) when it exits without a `result`; 504 on the idle timeout; the
 *   signal's reason when aborted.
 */
export async function* runCli(options: CliRunOptions): AsyncGenerator<CliEvent, void, undefined> {
  const { runtime, signal } = options;
  if (signal.aborted) {
    await removeAll(options);
    throw signal.reason;
  }
  let child: Subprocess;
  try {
    child = runtime.spawn(options.claudePath, options.args, { cwd: options.cwd, env: options.env });
  } catch (error) {
    await removeAll(options);
    throw new ProxyError(
      503,
      `Cannot start the claude CLI at '${options.claudePath}': ${(error as Error).message}. ` +
        "Install Claude Code (npm install -g @anthropic-ai/claude-code) or set --claude-path / CLAUDE_PATH",
      { type: "server_error", code: "cli_not_found", cause: error },
    );
  }
  options.onProcess?.(child.pid);
  let exitedStatus: Awaited<Subprocess["exited"]> | undefined;
  void child.exited.then((status) => {
    exitedStatus = status;
    options.input?.markExited();
  });
  const stderr = { text: "" };
  const stderrDone = collectTail(child.stderr, stderr);
  let killing: Promise<void> | undefined;
  let idleFired = false;
  const kill = () => {
    killing ??= terminate(child, options.killGraceMs);
    return killing;
  };
  const onAbort = () => void kill();
  signal.addEventListener("abort", onAbort, { once: true });
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * Warm mode: a `result` came and no next turn has been written yet; a spare (stdin "", see
   * {@link CliRunOptions.input}) starts this way: it waits for its first turn.
   */
  let betweenTurns = options.input !== undefined && options.stdin === "";
  const armIdle = () => {
    if (!options.idleTimeoutMs || betweenTurns) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      if (options.isWaiting?.() === true) {
        armIdle();
        return;
      }
      idleFired = true;
      void kill();
    }, options.idleTimeoutMs);
  };
  const writer = child.stdin.getWriter();
  const closeStdin = () => {
    writer.close().catch(() => {});
  };
  let sawResult = false;
  options.input?.bind((text) => {
    betweenTurns = false;
    writer.write(new TextEncoder().encode(text)).catch(() => {});
    armIdle();
  }, closeStdin);
  try {
    if (options.stdin !== "") writer.write(new TextEncoder().encode(options.stdin)).catch(() => {});
    armIdle();
    const lines = child.stdout
      .pipeThrough(new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>)
      .pipeThrough(lineSplitter());
    let lineNumber = 0;
    for await (const line of lines) {
      lineNumber++;
      armIdle();
      const event = parseLineSafe(line, lineNumber);
      if (event === null) continue;
      options.onEvent?.(event);
      if (event.type === "result") {
        sawResult = true;
        clearTimeout(idleTimer);
        if (options.input === undefined) {
          closeStdin();
          yield event;
          return;
        }
        // Warm: the process waits for the next turn on stdin.
        betweenTurns = true;
        yield event;
        continue;
      }
      // The idle clock measures the CLI, not a consumer that is slow to take the event.
      clearTimeout(idleTimer);
      yield event;
      armIdle();
    }
    const status = await child.exited;
    await stderrDone;
    if (signal.aborted) throw signal.reason;
    if (idleFired) {
      throw new ProxyError(
        504,
        `The claude CLI produced no output for ${options.idleTimeoutMs} ms`,
        {
          type: "timeout_error",
          code: "cli_idle_timeout",
        },
      );
    }
    const how = status.signal !== null ? `signal ${status.signal}` : `code ${status.exitCode}`;
    const tail = stderr.text.trim();
    throw new ProxyError(
      502,
      `The claude CLI exited (${how}) without a result${tail === "" ? "" : `: ${tail}`}`,
      { type: "api_error", code: "cli_exited" },
    );
  } finally {
    clearTimeout(idleTimer);
    signal.removeEventListener("abort", onAbort);
    closeStdin();
    if (exitedStatus === undefined) {
      // A warm run stopped in the middle of a later turn is killed, as a cold one would be.
      if (sawResult && (options.input === undefined || betweenTurns)) {
        // The CLI exits by itself once stdin is closed; give it the grace period.
        const timer = setTimeout(() => void kill(), options.killGraceMs);
        await child.exited;
        clearTimeout(timer);
      } else {
        await kill();
      }
    }
    await stderrDone.catch(() => {});
    options.onProcess?.(null);
    await removeAll(options);
  }
}

function parseLineSafe(line: string, lineNumber: number): CliEvent | null {
  try {
    return parseLine(line, lineNumber);
  } catch {
    // The CLI printed something that is not an event (a warning): ignore it.
    return null;
  }
}

async function removeAll(options: CliRunOptions): Promise<void> {
  for (const path of options.tempPaths ?? []) {
    await options.runtime.remove(path).catch(() => {
      // Best effort: the watchdog or the next start-up's temp dir cleanup gets the rest.
    });
  }
}
