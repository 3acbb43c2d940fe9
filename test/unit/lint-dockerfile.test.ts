/**
 * The Dockerfile against `npm run lint:dockerfile`'s checks, and each check against a Dockerfile
 * broken on purpose (so that a check that stopped working fails here).
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { lintDockerfile, pinnedClaudeCodeVersion } from "../../scripts/lint-dockerfile.ts";
import { classifyCliVersion, TESTED_CLI_RANGE } from "../../src/claude/supported.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const dockerfile = readFileSync(join(repoRoot, "Dockerfile"), "utf8");
const pin = pinnedClaudeCodeVersion(readFileSync(join(repoRoot, "package.json"), "utf8"));

/** The messages for the Dockerfile with `from` (which must be in it) replaced by `to`. */
function messagesAfter(from: string | RegExp, to: string): string[] {
  const changed = dockerfile.replace(from, to);
  expect(changed, `the Dockerfile no longer contains ${from}`).not.toBe(dockerfile);
  return lintDockerfile(changed, { claudeCodeVersion: pin }).map((p) => p.message);
}

describe("Dockerfile", () => {
  it("passes every check", () => {
    expect(lintDockerfile(dockerfile, { claudeCodeVersion: pin })).toEqual([]);
  });

  it("ships the pinned claude CLI, a release inside the tested range", () => {
    expect(dockerfile).toContain(`ARG CLAUDE_CODE_VERSION=${pin}\n`);
    expect(classifyCliVersion(pin).supported).toBe("yes");
    expect(pin).toBe(TESTED_CLI_RANGE.newest);
  });
});

describe("lintDockerfile", () => {
  it("reports a CLI version that drifted from package.json's pin", () => {
    expect(messagesAfter(/ARG CLAUDE_CODE_VERSION=.*/, "ARG CLAUDE_CODE_VERSION=2.1.300")).toEqual([
      `ARG CLAUDE_CODE_VERSION is 2.1.300, but package.json pins @anthropic-ai/claude-code ${pin}`,
    ]);
  });

  it("reports a final stage running as root, or with no USER", () => {
    expect(messagesAfter("USER claude", "USER root")).toEqual(["USER root is root"]);
    expect(messagesAfter("USER claude", "USER 0:0")).toEqual(["USER 0:0 is root"]);
    expect(messagesAfter("USER claude\n", "")).toEqual([
      "The final stage has no USER: it would run as root",
    ]);
  });

  it("reports a missing HEALTHCHECK", () => {
    expect(messagesAfter(/HEALTHCHECK [^\n]*\\\n[^\n]*\n/, "")).toEqual([
      "The final stage has no HEALTHCHECK CMD",
    ]);
  });

  it("reports shell-form ENTRYPOINT and CMD", () => {
    expect(
      messagesAfter(/ENTRYPOINT .*/, "ENTRYPOINT tini -- docker-entrypoint.sh\nCMD --port 1"),
    ).toEqual([
      'ENTRYPOINT must use the exec form (["program", "arg"])',
      'CMD must use the exec form (["program", "arg"])',
    ]);
  });

  it("reports secrets baked in by ENV, ARG or COPY", () => {
    expect(
      messagesAfter("USER claude", "ENV CLAUDE_CODE_OAUTH_TOKEN=sk-ant-oat01-x\nUSER claude"),
    ).toEqual(["ENV CLAUDE_CODE_OAUTH_TOKEN would bake a secret into the image"]);
    expect(messagesAfter("USER claude", "ARG API_KEYS\nUSER claude")).toEqual([
      "ARG API_KEYS would bake a secret into the image",
    ]);
    expect(
      messagesAfter("USER claude", "COPY .credentials.json /home/claude/.claude/\nUSER claude"),
    ).toEqual(["COPY .credentials.json would copy a login or secrets into the image"]);
  });

  it("reports a login or data directory that is not on a volume", () => {
    expect(messagesAfter(/VOLUME .*/, 'VOLUME ["/data"]')).toEqual([
      "CLAUDE_CONFIG_DIR (/home/claude/.claude) is not a VOLUME",
    ]);
    expect(messagesAfter(/ {4}DATA_DIR=\/data \\\n/, "")).toEqual(["ENV DATA_DIR is missing"]);
  });

  it("reports a proxy bound to loopback, or allowed to run without API keys", () => {
    expect(messagesAfter("ENV HOST=0.0.0.0", "ENV HOST=127.0.0.1")).toEqual([
      "ENV HOST=0.0.0.0 is missing: the proxy would listen inside the container only",
    ]);
    expect(
      messagesAfter("ENV HOST=0.0.0.0 \\", "ENV HOST=0.0.0.0 ALLOW_PUBLIC_WITHOUT_KEYS=1 \\"),
    ).toEqual(["ALLOW_PUBLIC_WITHOUT_KEYS must not be set in the image: API keys are required"]);
  });

  it("reports untagged or latest base images, and a single stage", () => {
    expect(messagesAfter("FROM debian:bookworm-slim", "FROM debian:latest")).toEqual([
      "Base image debian needs a version tag (not latest) or a digest",
    ]);
    const single = lintDockerfile(
      'ARG CLAUDE_CODE_VERSION=1.0.0\nFROM debian\nUSER app\nHEALTHCHECK CMD ["true"]\n',
      { claudeCodeVersion: "1.0.0" },
    ).map((p) => p.message);
    expect(single).toContain("A multi-stage build is expected (one FROM only)");
    expect(single).toContain("Base image debian needs a version tag (not latest) or a digest");
  });

  it("reports apt-get installs that pull recommends or keep the package lists", () => {
    expect(messagesAfter(" --no-install-recommends", "")).toEqual([
      "apt-get install without --no-install-recommends",
    ]);
    expect(messagesAfter(" && rm -rf /var/lib/apt/lists/* \\\n", "")).toEqual([
      "apt-get install without rm -rf /var/lib/apt/lists/* after it",
    ]);
  });

  it("passes on dockerfile-utils' findings: a bad duration, an unknown flag", () => {
    const messages = messagesAfter("--interval=30s", "--interval=30x");
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/unit/i);
    expect(messagesAfter("COPY --chmod=0755", "COPY --chmodd=0755")).toEqual([
      "Unknown flag: chmodd",
    ]);
  });
});
