/**
 * The container's entry point (docker/entrypoint.sh) run by `sh` on this machine, with a stub
 * `claude-openai-proxy` on PATH that prints its pid, argv and environment (and, asked to, waits
 * for SIGTERM). The login check runs the real claude CLI (`claude auth status`); a stub CLI
 * stands in where only its exit code matters.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claudeBin } from "../fixtures/claude-cli.ts";

const ENTRYPOINT = resolve(dirname(fileURLToPath(import.meta.url)), "../../docker/entrypoint.sh");

const STUB_PROXY = `#!/bin/sh
printf 'pid=%s\\n' "$$"
for a in "$@"; do printf 'arg=%s\\n' "$a"; done
printf 'HOST=%s\\n' "\${HOST-}"
printf 'TOKEN=%s\\n' "\${CLAUDE_CODE_OAUTH_TOKEN-}"
if [ -n "\${STUB_WAIT-}" ]; then
  trap 'echo "got TERM"; exit 0' TERM
  echo ready
  while :; do sleep 0.05; done
fi
exit "\${STUB_EXIT:-0}"
`;

/** A stand-in CLI: `auth status` exits STUB_AUTH_EXIT; anything else prints its argv. */
const STUB_CLAUDE = `#!/bin/sh
if [ "$1 $2" = "auth status" ]; then exit "\${STUB_AUTH_EXIT:-0}"; fi
printf 'claude stub pid=%s args=%s\\n' "$$" "$*"
`;

let root: string;
let bin: string;
let stubClaude: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "entrypoint-test-"));
  bin = join(root, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "claude-openai-proxy"), STUB_PROXY);
  chmodSync(join(bin, "claude-openai-proxy"), 0o755);
  stubClaude = join(root, "claude-stub");
  writeFileSync(stubClaude, STUB_CLAUDE);
  chmodSync(stubClaude, 0o755);
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A fresh, empty CLI config directory (no login). */
function freshConfigDir(): string {
  return mkdtempSync(join(root, "config-"));
}

/** The container's environment, built from nothing (no token of this machine leaks in). */
function containerEnv(extra: Record<string, string>): Record<string, string> {
  return {
    PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`,
    HOME: root,
    HOST: "0.0.0.0",
    CLAUDE_CONFIG_DIR: freshConfigDir(),
    CLAUDE_PATH: claudeBin(),
    ...extra,
  };
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], env: Record<string, string>): ChildProcess {
  return spawn("sh", [ENTRYPOINT, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
}

function finish(child: ChildProcess): Promise<Outcome> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  return new Promise((done) =>
    child.on("close", (code, signal) => done({ code, signal, stdout, stderr })),
  );
}

function run(args: string[], env: Record<string, string>): Promise<Outcome> {
  return finish(start(args, env));
}

function argsOf(stdout: string): string[] {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("arg="))
    .map((l) => l.slice(4));
}

describe("docker/entrypoint.sh: the login check (real claude CLI)", () => {
  it("refuses to start without a login: exit 2, says how to log in, the proxy never runs", async () => {
    const out = await run([], containerEnv({}));
    expect(out.code).toBe(2);
    expect(out.stdout).not.toContain("pid=");
    expect(out.stderr).toContain("the claude CLI is not logged in");
    expect(out.stderr).toContain("CLAUDE_CODE_OAUTH_TOKEN");
    expect(out.stderr).toContain("claude setup-token");
    expect(out.stderr).toContain("claude auth login");
  });

  it("starts the proxy with CLAUDE_CODE_OAUTH_TOKEN, passing the flags and the environment", async () => {
    const out = await run(
      ["--port", "8080", "--log-level", "debug"],
      containerEnv({ CLAUDE_CODE_OAUTH_TOKEN: "sk-ant-oat01-test" }),
    );
    expect(out.code).toBe(0);
    expect(argsOf(out.stdout)).toEqual(["--port", "8080", "--log-level", "debug"]);
    expect(out.stdout).toContain("HOST=0.0.0.0\n");
    expect(out.stdout).toContain("TOKEN=sk-ant-oat01-test\n");
    expect(out.stderr).toBe("");
  });

  it("starts the proxy with a login stored in the config volume", async () => {
    const env = containerEnv({});
    writeFileSync(
      join(env.CLAUDE_CONFIG_DIR as string, ".credentials.json"),
      JSON.stringify({
        claudeAiOauth: {
          accessToken: "test",
          refreshToken: "test",
          expiresAt: Date.now() + 3_600_000,
          scopes: ["user:inference"],
        },
      }),
      { mode: 0o600 },
    );
    const out = await run([], env);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain("pid=");
  });

  it("does not count an ANTHROPIC_API_KEY that DROP_ANTHROPIC_API_KEY keeps from the CLI", async () => {
    const withKey = await run([], containerEnv({ ANTHROPIC_API_KEY: "sk-ant-api-test" }));
    expect(withKey.code).toBe(0);
    const dropped = await run(
      [],
      containerEnv({ ANTHROPIC_API_KEY: "sk-ant-api-test", DROP_ANTHROPIC_API_KEY: "true" }),
    );
    expect(dropped.code).toBe(2);
    expect(dropped.stderr).toContain("not logged in");
  });
});

describe("docker/entrypoint.sh: commands, exit codes and signals", () => {
  it("runs another command as given, without the login check (claude setup-token)", async () => {
    const out = await run(
      ["claude-stub", "setup-token"],
      containerEnv({
        PATH: `${root}:${bin}:/usr/bin:/bin`,
        CLAUDE_CONFIG_DIR: join(root, "missing"),
      }),
    );
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^claude stub pid=\d+ args=setup-token\n$/);
  });

  it("answers --help and --version without a login", async () => {
    const out = await run(["--version"], containerEnv({}));
    expect(out.code).toBe(0);
    expect(argsOf(out.stdout)).toEqual(["--version"]);
  });

  it("takes `claude-openai-proxy FLAGS` like FLAGS alone", async () => {
    const out = await run(
      ["claude-openai-proxy", "--port", "1"],
      containerEnv({ CLAUDE_PATH: stubClaude }),
    );
    expect(out.code).toBe(0);
    expect(argsOf(out.stdout)).toEqual(["--port", "1"]);
  });

  it("stops with exit 2 when the config directory is missing", async () => {
    const missing = join(root, "no-such-dir");
    const out = await run([], containerEnv({ CLAUDE_CONFIG_DIR: missing }));
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(`config directory ${missing} is missing or not writable`);
    expect(out.stderr).toContain("-v claude-config:");
    expect(out.stdout).toBe("");
  });

  it("starts anyway, with a warning, when the login cannot be checked", async () => {
    const out = await run([], containerEnv({ CLAUDE_PATH: stubClaude, STUB_AUTH_EXIT: "127" }));
    expect(out.code).toBe(0);
    expect(out.stdout).toContain("pid=");
    expect(out.stderr).toContain("could not check the claude CLI's login");
  });

  it("skips the check with SKIP_LOGIN_CHECK=1", async () => {
    const out = await run(
      [],
      containerEnv({ CLAUDE_PATH: stubClaude, STUB_AUTH_EXIT: "1", SKIP_LOGIN_CHECK: "1" }),
    );
    expect(out.code).toBe(0);
    expect(out.stdout).toContain("pid=");
  });

  it("passes the proxy's exit code on", async () => {
    const out = await run([], containerEnv({ CLAUDE_PATH: stubClaude, STUB_EXIT: "3" }));
    expect(out.code).toBe(3);
  });

  it("execs the proxy: same process, so SIGTERM reaches it and its exit code is the container's", async () => {
    const child = start([], containerEnv({ CLAUDE_PATH: stubClaude, STUB_WAIT: "1" }));
    const outcome = finish(child);
    let seen = "";
    await new Promise<void>((ready) => {
      child.stdout?.on("data", (d) => {
        seen += d;
        if (seen.includes("ready\n")) ready();
      });
    });
    expect(seen).toContain(`pid=${child.pid}\n`);
    child.kill("SIGTERM");
    const out = await outcome;
    expect(out.stdout).toContain("got TERM");
    expect(out.code).toBe(0);
    expect(out.signal).toBeNull();
  });
});

describe("docker/entrypoint.sh healthcheck", () => {
  let server: Server;
  let body = "";

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(req.url === "/health" ? 200 : 404, { "content-type": "application/json" });
      res.end(body);
    });
    await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
  });

  afterAll(async () => {
    await new Promise((closed) => server.close(closed));
  });

  const port = () => String((server.address() as AddressInfo).port);

  it('is healthy when /health says "ok"', async () => {
    body = JSON.stringify({ status: "ok" });
    const out = await run(["healthcheck"], containerEnv({ PORT: port() }));
    expect(out.code).toBe(0);
  });

  it("is unhealthy when the proxy is degraded (no CLI) or draining, and says why", async () => {
    body = JSON.stringify({ status: "degraded" });
    const out = await run(["healthcheck"], containerEnv({ PORT: port() }));
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('GET /health: {"status":"degraded"}');
  });

  it("is unhealthy when nothing answers", async () => {
    const closed = createServer();
    await new Promise<void>((listening) => closed.listen(0, "127.0.0.1", listening));
    const unused = String((closed.address() as AddressInfo).port);
    await new Promise((done) => closed.close(done));
    const out = await run(["healthcheck"], containerEnv({ PORT: unused }));
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`GET /health on port ${unused} failed`);
  });
});
