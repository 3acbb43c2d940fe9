/**
 * The range of claude CLI releases the end-to-end suite is run against, and where a given
 * `claude --version` falls in it. Claude Code updates itself roughly every weekday (DESIGN.md
 * "What changed by 2.1.332"), so users run releases the proxy was never tested with: start-up
 * and `GET /health` say so instead of failing in odd ways later. Pure: no I/O.
 */

/**
 * The oldest supported release (2026-08-04): `npm run test:cli -- oldest` runs the end-to-end
 * suite on it.
 */
export const OLDEST_TESTED_CLI = "2.1.221";

/**
 * The newest tested release (2026-11-24): the pinned `@anthropic-ai/claude-code` devDependency,
 * which `npm test` runs.
 */
export const NEWEST_TESTED_CLI = "2.1.332";

/** A release number, major.minor.patch. */
export type CliVersion = readonly [major: number, minor: number, patch: number];

/** Where a CLI release falls against the tested range. */
export type CliSupport =
  /** Inside the tested range. */
  | "yes"
  /** Older than {@link OLDEST_TESTED_CLI}. */
  | "older"
  /** Newer than {@link NEWEST_TESTED_CLI}. */
  | "newer"
  /** No version known (CLI not found) or not one this module can read. */
  | "unknown";

/** The verdict on one CLI release. */
export interface CliSupportInfo {
  supported: CliSupport;
  /** The release number read from the output ("2.1.332"), or null. */
  version: string | null;
  /** What to tell the user (log line, `/health`), or null when there is nothing to say. */
  warning: string | null;
}

/** The tested range, oldest and newest release; the default of {@link classifyCliVersion}. */
export interface CliRange {
  oldest: string;
  newest: string;
}

/** The range this build of the proxy was tested with. */
export const TESTED_CLI_RANGE: Readonly<CliRange> = {
  oldest: OLDEST_TESTED_CLI,
  newest: NEWEST_TESTED_CLI,
};

/**
 * Reads the release number at the start of `claude --version` output ("2.1.332 (Claude Code)";
 * also a bare "2.1.332" or "v2.1.332"). A pre-release or build suffix ("2.1.332-beta.1") counts
 * as its release. Returns null for anything else.
 */
export function parseCliVersion(text: string): CliVersion | null {
  const match = /^\s*v?(\d+)\.(\d+)\.(\d+)(?![\d.])/.exec(text);
  if (match === null) return null;
  const [major, minor, patch] = [match[1], match[2], match[3]].map(Number);
  if (major === undefined || minor === undefined || patch === undefined) return null;
  if (![major, minor, patch].every(Number.isSafeInteger)) return null;
  return [major, minor, patch];
}

/** Negative when `a` is older than `b`, 0 when equal, positive when newer. */
export function compareCliVersions(a: CliVersion, b: CliVersion): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/**
 * Classifies `claude --version` output against `range` (default: {@link TESTED_CLI_RANGE}).
 * `null` (no CLI found, or `--version` failed) is "unknown" without a warning: the start-up
 * error already says what is wrong.
 * @throws Error when a bound of `range` is not a release number (a programming error).
 */
export function classifyCliVersion(
  output: string | null,
  range: Readonly<CliRange> = TESTED_CLI_RANGE,
): CliSupportInfo {
  const oldest = parseCliVersion(range.oldest);
  const newest = parseCliVersion(range.newest);
  if (oldest === null || newest === null) {
    throw new Error(`Invalid tested CLI range ${range.oldest} to ${range.newest}`);
  }
  const tested = `the tested releases are ${range.oldest} to ${range.newest}`;
  if (output === null) return { supported: "unknown", version: null, warning: null };
  const parsed = parseCliVersion(output);
  if (parsed === null) {
    return {
      supported: "unknown",
      version: null,
      warning: `Cannot read the claude CLI's version from '${output.trim()}' (${tested})`,
    };
  }
  const version = parsed.join(".");
  if (compareCliVersions(parsed, oldest) < 0) {
    return {
      supported: "older",
      version,
      warning:
        `The claude CLI ${version} is older than the oldest tested release, ${range.oldest}: ` +
        "tool calls and other features may fail. Upgrade it with `claude update` " +
        "(or npm install -g @anthropic-ai/claude-code@latest)",
    };
  }
  if (compareCliVersions(parsed, newest) > 0) {
    return {
      supported: "newer",
      version,
      warning:
        `The claude CLI ${version} is newer than the newest tested release, ${range.newest}: ` +
        "it is expected to work but untested; please report problems",
    };
  }
  return { supported: "yes", version, warning: null };
}
