/**
 * Structured logs through pino: one JSON object per line on stderr with `level`, `time` (ISO)
 * and `msg`. Prompt text and keys are never logged; fields that could hold a key are redacted.
 */
import pino from "pino";

/** Log levels, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** The logger the app uses (pino's `(fields, message)` call shape). */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/**
 * A logger at `level`, writing to stderr (fd 2, synchronously so that nothing is lost at exit),
 * or to `destination` (tests).
 */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: [
          "authorization",
          "apiKey",
          "api_key",
          "headers.authorization",
          "headers['x-api-key']",
        ],
        censor: "[redacted]",
      },
    },
    destination ?? pino.destination({ dest: 2, sync: true }),
  );
}
