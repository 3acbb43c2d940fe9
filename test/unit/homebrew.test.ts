import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { formulaClassName, main, parseSums, renderFormula } from "../../scripts/homebrew.ts";
import { archiveName, TARGETS } from "../../scripts/targets.ts";

/** A fake SHA256SUMS over every release archive: the sha is the target's index repeated. */
function fakeSums(): string {
  return TARGETS.map((target, i) => `${String(i).repeat(64)}  ${archiveName(target)}\n`).join("");
}

function shaOf(name: string): string {
  const index = TARGETS.findIndex((t) => t.name === name);
  return String(index).repeat(64);
}

/** The lines between `start` (a line containing it) and its matching `end`, by indentation. */
function block(formula: string, start: string): string {
  const lines = formula.split("\n");
  const from = lines.findIndex((l) => l.includes(start));
  expect(from).toBeGreaterThanOrEqual(0);
  const indent = (lines[from] ?? "").search(/\S/);
  const to = lines.findIndex((l, i) => i > from && l.trimEnd() === `${" ".repeat(indent)}end`);
  return lines.slice(from, to + 1).join("\n");
}

describe("parseSums", () => {
  it("reads sha256sum's text and binary formats", () => {
    const sums = parseSums(`${"a".repeat(64)}  one.tar.gz\n${"B".repeat(64)} *two.zip\r\n\n`);
    expect([...sums]).toEqual([
      ["one.tar.gz", "a".repeat(64)],
      ["two.zip", "b".repeat(64)],
    ]);
  });

  it("names the line it cannot parse", () => {
    expect(() => parseSums(`${"a".repeat(64)}  ok.tar.gz\nnot a sum\n`)).toThrow(
      "Cannot parse SHA256SUMS line 2: 'not a sum'",
    );
  });
});

describe("renderFormula", () => {
  const formula = renderFormula({
    version: "1.2.3",
    repo: "acme/claude-openai-proxy",
    sums: parseSums(fakeSums()),
    license: "MIT",
    description: "OpenAI-compatible HTTP API in front of the Claude Code CLI",
  });

  it("names the class after the program", () => {
    expect(formulaClassName("claude-openai-proxy")).toBe("ClaudeOpenaiProxy");
    expect(formula).toContain("class ClaudeOpenaiProxy < Formula\n");
    expect(formula).toContain('  version "1.2.3"\n');
    expect(formula).toContain('  license "MIT"\n');
    expect(formula).toContain('  homepage "https://github.com/acme/claude-openai-proxy"\n');
  });

  it.each([
    ["on_macos", "on_arm", "darwin-arm64"],
    ["on_macos", "on_intel", "darwin-x64"],
    ["on_linux", "on_arm", "linux-arm64"],
    ["on_linux", "on_intel", "linux-x64"],
  ])("%s %s downloads the %s archive with its checksum", (os, arch, target) => {
    const inner = block(block(formula, `  ${os} do`), `    ${arch} do`);
    expect(inner).toContain(
      `url "https://github.com/acme/claude-openai-proxy/releases/download/v1.2.3/claude-openai-proxy-${target}.tar.gz"`,
    );
    expect(inner).toContain(`sha256 "${shaOf(target)}"`);
  });

  it("installs the binary, runs it as a service and tests --version", () => {
    expect(block(formula, "  def install")).toContain('bin.install "claude-openai-proxy"');
    const service = block(formula, "  service do");
    expect(service).toContain('run [opt_bin/"claude-openai-proxy"]');
    expect(service).toContain("keep_alive true");
    expect(service).toContain("std_service_path_env");
    expect(block(formula, "  test do")).toContain(
      'assert_match version.to_s, shell_output("#{bin}/claude-openai-proxy --version")',
    );
  });

  it("balances every do/def with an end", () => {
    const opened = formula.match(/^\s*(class .*|.* do|def .*)$/gm)?.length ?? 0;
    const closed = formula.match(/^\s*end$/gm)?.length ?? 0;
    expect(closed).toBe(opened);
  });

  it("uses a custom tag and lists missing archives", () => {
    const sums = parseSums(fakeSums());
    expect(
      renderFormula({
        version: "1.2.3",
        tag: "release-1.2.3",
        repo: "a/b",
        sums,
        license: "MIT",
        description: "d",
      }),
    ).toContain("/releases/download/release-1.2.3/");
    sums.delete("claude-openai-proxy-linux-arm64.tar.gz");
    sums.delete("claude-openai-proxy-darwin-x64.tar.gz");
    expect(() =>
      renderFormula({ version: "1", repo: "a/b", sums, license: "MIT", description: "d" }),
    ).toThrow(
      "SHA256SUMS lacks the formula's archives: claude-openai-proxy-darwin-x64.tar.gz, claude-openai-proxy-linux-arm64.tar.gz",
    );
  });
});

describe("scripts/homebrew.ts main", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "homebrew-test-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes Formula/claude-openai-proxy.rb from a SHA256SUMS file", async () => {
    const sumsPath = join(dir, "SHA256SUMS");
    await writeFile(sumsPath, fakeSums());
    const out = join(dir, "tap", "Formula", "claude-openai-proxy.rb");
    const written = await main(["--sums", sumsPath, "--version", "2.0.0", "--out", out], {
      GITHUB_REPOSITORY: "someone/claude-openai-proxy",
    });
    expect(written).toBe(out);
    const text = await readFile(out, "utf8");
    expect(text).toContain('version "2.0.0"');
    expect(text).toContain(
      `url "https://github.com/someone/claude-openai-proxy/releases/download/v2.0.0/claude-openai-proxy-linux-x64.tar.gz"\n      sha256 "${shaOf("linux-x64")}"`,
    );
  });

  it("requires --sums and a repository", async () => {
    await expect(main([], {})).rejects.toThrow("--sums <SHA256SUMS file> is required");
    await expect(main(["--sums", join(dir, "SHA256SUMS")], {})).rejects.toThrow(
      "--repo owner/name (or GITHUB_REPOSITORY) is required",
    );
  });
});
