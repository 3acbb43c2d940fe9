/**
 * Structured logs: one JSON object per line on stderr, with a level and a time.
 * Prompt text and keys are never logged.
 */

/** Log levels, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** The logger the app uses. */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** A logger writing JSON lines through `write` (default: console.error). */
export function createLogger(
  level: LogLevel,
  write: (line: string) => void = (l) => console.error(l),
): Logger {
  const at =
    (name: Exclude<LogLevel, "silent">) =>
    (fields: Record<string, unknown>, message: string): void => {
      if (ORDER[name] < ORDER[level]) return;
      write(
        JSON.stringify({ level: name, time: new Date().toISOString(), msg: message, ...fields }),
      );
    };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
