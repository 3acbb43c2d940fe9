/**
 * Smoke test of a built proxy: `--version`, start on a free port, `GET /health`, one chat
 * completion and one streamed one through the real `claude` CLI against the fake Anthropic API
 * of test/fixtures, then a shutdown. The release workflow runs it on each binary's own OS;
 * it works locally too (needs `npm install` for the CLI and the fixtures):
 *
 *   npx tsx scripts/smoke.ts dist/bin/claude-openai-proxy
 *   bun scripts/smoke.ts node dist/cli.js          (a program and its leading arguments)
 *
 * The tests import {@link smoke} for the packed npm package.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SETTINGS } from "../src/config.ts";
import { claudeBin, cliEnv } from "../test/fixtures/claude-cli.ts";
import { startFakeAnthropic } from "../test/fixtures/fake-anthropic.ts";
import { isMainModule } from "./main-module.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The version in package.json, which `--version` must print. */
export const PACKAGE_VERSION: string = JSON.parse(
  readFileSync(join(repoRoot, "package.json"), "utf8"),
).version;

/** Options of {@link smoke}. */
export interface SmokeOptions {
  /** The program and its leading arguments, e.g. `["dist/bin/claude-openai-proxy"]`. */
  command: readonly string[];
  /** Working directory of the proxy (default: a fresh temp directory). */
  cwd?: string;
  /** The claude CLI the proxy runs (default: the repository's pinned CLI). */
  claudePath?: string;
  /** What `--version` must print (default: package.json's version). */
  expectVersion?: string;
  /** ms to wait for the proxy to listen (default 60 s). */
  startTimeoutMs?: number;
  /** Progress lines (default: console.log). */
  log?: (line: string) => void;
}

/** What {@link smoke} saw. */
export interface SmokeReport {
  version: string;
  /** The proxy's `/health` body. */
  health: Record<string, unknown>;
  /** The chat completion's answer text. */
  answer: string;
  /** The streamed answer text. */
  streamed: string;
  /** ms from spawn to the "listening" log line. */
  startMs: number;
  /** How the proxy exited after the shutdown request. */
  exit: { code: number | null; signal: string | null };
}

const LISTENING = "claude-openai-proxy listening";

/** Runs `command --version` and returns its stdout, trimmed. */
function printVersion(command: readonly string[], env: NodeJS.ProcessEnv, cwd: string) {
  return new Promise<string>((resolveVersion, reject) => {
    const [program, ...args] = command;
    if (program === undefined) throw new Error("No command given");
    const child = spawn(program, [...args, "--version"], { cwd, env, windowsHide: true });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`Cannot run ${program}: ${error.message}`));
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolveVersion(stdout.trim());
      else reject(new Error(`${command.join(" ")} --version exited ${code}: ${stderr.trim()}`));
    });
  });
}

/** Resolves with the listening URL from the proxy's JSON log on stderr. */
function waitForListening(child: ChildProcess, output: { stderr: string }, timeoutMs: number) {
  return new Promise<string>((resolveUrl, reject) => {
    let pending = "";
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`The proxy ${why}\nstderr:\n${output.stderr}`));
    };
    const timer = setTimeout(
      () => fail(`did not log '${LISTENING}' in ${timeoutMs} ms`),
      timeoutMs,
    );
    child.once("error", (error) => fail(`could not start: ${error.message}`));
    child.once("exit", (code, signal) => fail(`exited (${signal ?? code}) before listening`));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      output.stderr += d;
      pending += d;
      let index = pending.indexOf("\n");
      while (index >= 0) {
        const line = pending.slice(0, index);
        pending = pending.slice(index + 1);
        index = pending.indexOf("\n");
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === LISTENING && typeof entry.url === "string") {
            clearTimeout(timer);
            child.removeAllListeners("exit");
            child.removeAllListeners("error");
            resolveUrl(entry.url);
          }
        } catch {
          // not a JSON log line
        }
      }
    });
  });
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((done) => {
    const timer = setTimeout(() => done(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      done(true);
    });
  });
}

async function expectOk(response: Response, what: string): Promise<string> {
  const text = await response.text();
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status} ${text}`);
  return text;
}

/**
 * Runs the smoke test against `options.command`.
 * @throws Error describing the first step that failed (with the proxy's stderr when it died).
 */
export async function smoke(options: SmokeOptions): Promise<SmokeReport> {
  const log = options.log ?? ((line: string) => console.log(line));
  const root = await mkdtemp(join(tmpdir(), "claude-openai-proxy-smoke-"));
  const home = join(root, "home");
  const tmp = join(root, "tmp");
  const cwd = options.cwd ?? join(root, "cwd");
  await Promise.all([home, tmp, cwd].map((dir) => mkdir(dir, { recursive: true })));
  const fake = await startFakeAnthropic();
  let child: ChildProcess | undefined;
  try {
    const env: Record<string, string> = cliEnv(fake.url, home);
    // The developer's own proxy settings must not leak into the proxy under test.
    for (const setting of Object.values(SETTINGS)) delete env[setting.env];
    Object.assign(env, {
      CLAUDE_PATH: options.claudePath ?? claudeBin(),
      TMPDIR: tmp,
      TEMP: tmp,
      TMP: tmp,
      LOG_LEVEL: "info",
    });

    const version = await printVersion(options.command, env, cwd);
    const expected = options.expectVersion ?? PACKAGE_VERSION;
    if (version !== expected)
      throw new Error(`--version printed '${version}', expected '${expected}'`);
    log(`ok --version: ${version}`);

    const [program, ...args] = options.command;
    if (program === undefined) throw new Error("No command given");
    const started = performance.now();
    child = spawn(program, [...args, "--port", "0", "--host", "127.0.0.1"], {
      cwd,
      env,
      stdio: ["ignore", "ignore", "pipe"],
      windowsHide: true,
    });
    const output = { stderr: "" };
    const url = await waitForListening(child, output, options.startTimeoutMs ?? 60_000);
    const startMs = Math.round(performance.now() - started);
    const origin = new URL(url).origin;
    log(`ok listening: ${url} (${startMs} ms)`);

    const health = JSON.parse(
      await expectOk(await fetch(`${origin}/health`), "GET /health"),
    ) as Record<string, unknown>;
    if (health.status !== "ok") throw new Error(`GET /health: ${JSON.stringify(health)}`);
    log(`ok /health: ${JSON.stringify(health)}`);

    const chat = (stream: boolean) =>
      fetch(`${origin}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "sonnet",
          stream,
          messages: [{ role: "user", content: stream ? "smoke stream" : "smoke test" }],
        }),
      });
    const completion = JSON.parse(await expectOk(await chat(false), "POST /v1/chat/completions"));
    const answer: string = completion?.choices?.[0]?.message?.content ?? "";
    if (answer !== "echo: smoke test") {
      throw new Error(`Unexpected chat completion: ${JSON.stringify(completion)}`);
    }
    log(`ok chat completion: ${JSON.stringify(answer)}`);

    const sse = await expectOk(await chat(true), "POST /v1/chat/completions (stream)");
    const frames = sse
      .split("\n")
      .filter((line) => line.startsWith("data: ") && line !== "data: [DONE]")
      .map((line) => JSON.parse(line.slice(6)));
    const streamed = frames.map((f) => f?.choices?.[0]?.delta?.content ?? "").join("");
    if (streamed !== "echo: smoke stream" || !sse.includes("data: [DONE]")) {
      throw new Error(`Unexpected stream: ${sse}`);
    }
    log(`ok streamed completion: ${JSON.stringify(streamed)} in ${frames.length} chunks`);

    // Windows has no SIGTERM: Node's kill() ends the process at once (TerminateProcess).
    child.kill("SIGTERM");
    if (!(await waitForExit(child, 15_000))) {
      child.kill("SIGKILL");
      throw new Error(`The proxy did not exit within 15 s of SIGTERM\nstderr:\n${output.stderr}`);
    }
    const exit = { code: child.exitCode, signal: child.signalCode };
    if (process.platform !== "win32" && exit.code !== 0) {
      throw new Error(`The proxy exited with ${exit.signal ?? exit.code} on SIGTERM, not 0`);
    }
    log(`ok stopped: exit ${exit.code ?? exit.signal}`);
    return { version, health, answer, streamed, startMs, exit };
  } finally {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await waitForExit(child, 5_000);
    }
    await fake.close();
    await rm(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
}

if (isMainModule(import.meta.url)) {
  // A relative program path is taken from here (the proxy runs in a temp directory).
  const command = process.argv
    .slice(2)
    .map((arg, i) => (i === 0 && /[\\/]/.test(arg) ? resolve(arg) : arg));
  if (command.length === 0) {
    console.error("Usage: tsx scripts/smoke.ts <program> [leading args...]");
    process.exit(2);
  }
  try {
    await smoke({ command });
    console.log(`smoke test passed: ${command.join(" ")}`);
  } catch (error) {
    console.error(`smoke test failed: ${(error as Error).message}`);
    process.exit(1);
  }
}
