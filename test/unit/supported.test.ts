import { describe, expect, it } from "vitest";
import {
  classifyCliVersion,
  compareCliVersions,
  NEWEST_TESTED_CLI,
  OLDEST_TESTED_CLI,
  parseCliVersion,
} from "../../src/claude/supported.ts";

describe("parseCliVersion", () => {
  it("reads `claude --version` output and bare release numbers", () => {
    expect(parseCliVersion("2.1.332 (Claude Code)")).toEqual([2, 1, 332]);
    expect(parseCliVersion("2.1.332 (Claude Code)\n")).toEqual([2, 1, 332]);
    expect(parseCliVersion("2.1.221")).toEqual([2, 1, 221]);
    expect(parseCliVersion("  v10.0.1")).toEqual([10, 0, 1]);
    expect(parseCliVersion("2.1.400-beta.1 (Claude Code)")).toEqual([2, 1, 400]);
  });

  it("returns null for anything else", () => {
    for (const text of [
      "",
      "Claude Code 2.1.332",
      "2.1",
      "2.1.x",
      "2.1.332.4",
      "1e3.1.1",
      "99999999999999999999.1.1",
      "command not found",
    ]) {
      expect(parseCliVersion(text), text).toBeNull();
    }
  });
});

describe("compareCliVersions", () => {
  it("orders numerically, not as text", () => {
    expect(compareCliVersions([2, 1, 99], [2, 1, 221])).toBeLessThan(0);
    expect(compareCliVersions([2, 1, 1000], [2, 1, 332])).toBeGreaterThan(0);
    expect(compareCliVersions([2, 2, 0], [2, 1, 332])).toBeGreaterThan(0);
    expect(compareCliVersions([1, 9, 999], [2, 0, 0])).toBeLessThan(0);
    expect(compareCliVersions([2, 1, 332], [2, 1, 332])).toBe(0);
  });
});

describe("classifyCliVersion", () => {
  it("has a tested range whose oldest release is not newer than its newest", () => {
    const oldest = parseCliVersion(OLDEST_TESTED_CLI);
    const newest = parseCliVersion(NEWEST_TESTED_CLI);
    expect(oldest).not.toBeNull();
    expect(newest).not.toBeNull();
    if (oldest !== null && newest !== null)
      expect(compareCliVersions(oldest, newest)).toBeLessThanOrEqual(0);
  });

  it("accepts both ends of the range and what lies between, without a warning", () => {
    for (const output of [
      `${OLDEST_TESTED_CLI} (Claude Code)`,
      "2.1.300 (Claude Code)",
      `${NEWEST_TESTED_CLI} (Claude Code)`,
    ]) {
      expect(classifyCliVersion(output)).toEqual({
        supported: "yes",
        version: output.split(" ")[0],
        warning: null,
      });
    }
  });

  it("tells the user of an older release to upgrade with `claude update`", () => {
    const info = classifyCliVersion("2.1.197 (Claude Code)");
    expect(info.supported).toBe("older");
    expect(info.version).toBe("2.1.197");
    expect(info.warning).toContain("2.1.197");
    expect(info.warning).toContain(OLDEST_TESTED_CLI);
    expect(info.warning).toContain("claude update");
  });

  it("says softly that a newer release is untested", () => {
    const info = classifyCliVersion("2.2.0 (Claude Code)");
    expect(info.supported).toBe("newer");
    expect(info.version).toBe("2.2.0");
    expect(info.warning).toContain(NEWEST_TESTED_CLI);
    expect(info.warning).toContain("untested");
    expect(info.warning).toContain("report problems");
    expect(info.warning).not.toContain("claude update");
  });

  it("warns about output it cannot read, and stays quiet when there is no output", () => {
    const info = classifyCliVersion("Claude Code (dev build)");
    expect(info.supported).toBe("unknown");
    expect(info.version).toBeNull();
    expect(info.warning).toContain("Claude Code (dev build)");
    expect(info.warning).toContain(`${OLDEST_TESTED_CLI} to ${NEWEST_TESTED_CLI}`);
    expect(classifyCliVersion(null)).toEqual({
      supported: "unknown",
      version: null,
      warning: null,
    });
  });

  it("takes another range", () => {
    const range = { oldest: "1.0.0", newest: "1.0.5" };
    expect(classifyCliVersion("1.0.3", range).supported).toBe("yes");
    expect(classifyCliVersion("0.9.9", range).supported).toBe("older");
    expect(classifyCliVersion("1.0.6", range).supported).toBe("newer");
    expect(() => classifyCliVersion("1.0.3", { oldest: "one", newest: "1.0.5" })).toThrow(
      /Invalid tested CLI range/,
    );
  });
});
