import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheDir, installedCli, resolveRelease } from "../../scripts/test-cli.ts";
import { NEWEST_TESTED_CLI, OLDEST_TESTED_CLI } from "../../src/claude/supported.ts";
import { cliCandidates } from "../fixtures/claude-cli.ts";

describe("scripts/test-cli.ts", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "test-cli-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("caches under $CLAUDE_CLI_CACHE, else ~/.cache/claude-openai-proxy/cli", () => {
    expect(cacheDir({ CLAUDE_CLI_CACHE: "/var/cache/cli" }, "/home/u")).toBe(
      resolve("/var/cache/cli"),
    );
    expect(cacheDir({ CLAUDE_CLI_CACHE: "" }, "/home/u")).toBe(
      join("/home/u", ".cache", "claude-openai-proxy", "cli"),
    );
  });

  it("resolves oldest, newest, latest and versions; rejects anything else", () => {
    const never = () => {
      throw new Error("npm view must not run");
    };
    expect(resolveRelease("oldest", never)).toBe(OLDEST_TESTED_CLI);
    expect(resolveRelease("newest", never)).toBe(NEWEST_TESTED_CLI);
    expect(resolveRelease("2.1.250", never)).toBe("2.1.250");
    expect(resolveRelease("latest", () => "2.1.340\n")).toBe("2.1.340");
    expect(() => resolveRelease("latest", () => "")).toThrow(/not a version/);
    for (const bad of ["2.1", "../2.1.221", "2.1.221 --global", "next"]) {
      expect(() => resolveRelease(bad, never), bad).toThrow(/not a CLI release/);
    }
  });

  it("reuses an install only when it holds the version asked for", async () => {
    const prefix = join(dir, "2.1.221");
    expect(installedCli(prefix, "2.1.221")).toBeNull();
    const pkg = join(prefix, "node_modules", "@anthropic-ai", "claude-code");
    await mkdir(pkg, { recursive: true });
    await writeFile(join(pkg, "package.json"), JSON.stringify({ version: "2.1.221" }));
    expect(installedCli(prefix, "2.1.221")).toBeNull();
    const bin = cliCandidates(join(prefix, "node_modules")).at(-2) ?? "";
    await mkdir(join(bin, ".."), { recursive: true });
    await writeFile(bin, "");
    expect(installedCli(prefix, "2.1.221")).toBe(bin);
    expect(installedCli(prefix, "2.1.222")).toBeNull();
  });
});
