/**
 * End-to-end harness: starts the proxy as a real process on one runtime (Node via tsx, Bun,
 * Deno or the compiled binary), finds the `claude` processes it left behind and the temp files
 * it did not remove. Linux only for the process checks (they read /proc).
 */

import { type ChildProcess, spawn } from "node:child_process";
import {
  existsSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  statSync,
} from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { SETTINGS } from "../../src/config.ts";
import { claudeBin, cliEnv } from "../fixtures/claude-cli.ts";

/** The repository root (this file is test/e2e/harness.ts). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The ways the proxy can run. */
export type E2eRuntime = "node" | "bun" | "deno" | "binary";

export const ALL_RUNTIMES: readonly E2eRuntime[] = ["node", "bun", "deno", "binary"];

/** The compiled binary (`npm run build:binary`). */
export const BINARY_PATH = join(repoRoot, "dist", "bin", "claude-openai-proxy");

/**
 * The runtimes named by `E2E_RUNTIMES` (comma-separated, default all four).
 * @throws Error for an unknown name.
 */
export function selectedRuntimes(
  value: string | undefined = process.env.E2E_RUNTIMES,
): E2eRuntime[] {
  const names = (value ?? ALL_RUNTIMES.join(","))
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== "");
  for (const name of names) {
    if (!ALL_RUNTIMES.includes(name as E2eRuntime)) {
      throw new Error(`E2E_RUNTIMES: unknown runtime '${name}' (use ${ALL_RUNTIMES.join(",")})`);
    }
  }
  return [...new Set(names as E2eRuntime[])];
}

/**
 * The runtimes to run: the selected ones, the binary only when it exists (the e2e globalSetup
 * builds it when it is selected and missing or stale).
 */
export const RUNTIMES: readonly E2eRuntime[] = selectedRuntimes().filter(
  (r) => r !== "binary" || existsSync(BINARY_PATH),
);

/** The command line that runs the proxy on `runtime` (program first). */
export function proxyCommand(runtime: E2eRuntime): string[] {
  const bin = (name: string) => join(repoRoot, "node_modules", ".bin", name);
  const main = join(repoRoot, "src", "main.ts");
  switch (runtime) {
    case "node":
      return [bin("tsx"), main];
    case "bun":
      return [bin("bun"), main];
    case "deno":
      return [bin("deno"), "run", "-A", main];
    case "binary":
      return [BINARY_PATH];
  }
}

/** Options of {@link startProxy}. */
export interface StartProxyOptions {
  /** The proxy's complete environment (default: `process.env`). See {@link proxyEnv}. */
  env?: Record<string, string>;
  /** Extra flags after `--port 0`. */
  args?: readonly string[];
  /** ms to wait for the "listening" log line (default 60 s). */
  startTimeoutMs?: number;
}

/** A running proxy. */
export interface ProxyProcess {
  runtime: E2eRuntime;
  /** Base URL of the API, `http://127.0.0.1:PORT/v1`. */
  url: string;
  /** `http://127.0.0.1:PORT` (for /health). */
  origin: string;
  port: number;
  process: ChildProcess;
  /** Everything the proxy wrote to stderr so far (its JSON log lines). */
  stderr(): string;
  /** SIGTERM, wait, SIGKILL the process group if it did not exit. Idempotent. */
  stop(): Promise<void>;
}

const LISTENING = "claude-openai-proxy listening";

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

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone
  }
}

/**
 * Starts the proxy on `runtime` with `--port 0` and resolves once it logged the URL it
 * listens on. The process leads its own process group so that {@link ProxyProcess.stop} can
 * kill whatever is left of it.
 * @throws Error with the proxy's stderr when it exits or stays silent.
 */
export async function startProxy(
  runtime: E2eRuntime,
  opts: StartProxyOptions = {},
): Promise<ProxyProcess> {
  const [program, ...programArgs] = proxyCommand(runtime);
  if (program === undefined) throw new Error(`no command for ${runtime}`);
  const env = opts.env ?? process.env;
  const child = spawn(program, [...programArgs, "--port", "0", ...(opts.args ?? [])], {
    // The binary runs away from the repository: it must not need any file of it.
    cwd: runtime === "binary" ? (env.TMPDIR ?? tmpdir()) : repoRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let stderr = "";
  let stdout = "";
  child.stderr?.setEncoding("utf8");
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (d: string) => {
    stdout += d;
  });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        if (!(await waitForExit(child, 5_000))) {
          killGroup(child.pid, "SIGKILL");
          await waitForExit(child, 5_000);
        }
      }
      // Anything still in the group (a child the proxy did not reap) goes too.
      killGroup(child.pid, "SIGKILL");
    })();
    return stopping;
  };

  const url = await new Promise<string>((resolveUrl, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      void stop();
      reject(new Error(`${runtime} proxy ${why}\nstderr:\n${stderr}\nstdout:\n${stdout}`));
    };
    const timer = setTimeout(
      () => fail(`did not log '${LISTENING}' within ${opts.startTimeoutMs ?? 60_000} ms`),
      opts.startTimeoutMs ?? 60_000,
    );
    child.once("error", (error) => fail(`could not start: ${error.message}`));
    child.once("exit", (code, signal) => fail(`exited (${signal ?? code}) before listening`));
    let pending = "";
    child.stderr?.on("data", (d: string) => {
      stderr += d;
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
          // not a log line
        }
      }
    });
  });
  const parsed = new URL(url);
  return {
    runtime,
    url,
    origin: parsed.origin,
    port: Number(parsed.port),
    process: child,
    stderr: () => stderr,
    stop,
  };
}

/** Per-test-file directories: a HOME for the CLI and a TMPDIR for the proxy. */
export interface E2eDirs {
  root: string;
  home: string;
  tmp: string;
  cleanup(): Promise<void>;
}

/** Creates a fresh temp root with `home/` and `tmp/` under it. */
export async function makeE2eDirs(prefix = "claude-openai-proxy-e2e-"): Promise<E2eDirs> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const home = join(root, "home");
  const tmp = join(root, "tmp");
  await mkdir(home, { recursive: true });
  await mkdir(tmp, { recursive: true });
  return {
    root,
    home,
    tmp,
    cleanup: () => rm(root, { recursive: true, force: true, maxRetries: 3 }),
  };
}

/**
 * The proxy's environment for runs against the fake at `fakeUrl`: {@link cliEnv} (fake base URL,
 * `CLAUDE_CODE_OAUTH_TOKEN=test`, HOME/CLAUDE_CONFIG_DIR, `CLAUDE_CODE_MAX_RETRIES=2`) without
 * any of the proxy's own setting variables (PORT, API_KEYS, ...), plus `CLAUDE_PATH` = the real
 * CLI, `TMPDIR` = `dirs.tmp` (where the proxy makes its run dirs), `WARM_TTL_MS=0` and `extra`.
 */
export function proxyEnv(
  fakeUrl: string,
  dirs: Pick<E2eDirs, "home" | "tmp">,
  extra: Record<string, string> = {},
): Record<string, string> {
  const env = cliEnv(fakeUrl, dirs.home);
  // Settings of the developer's shell must not leak into the proxy under test.
  for (const setting of Object.values(SETTINGS)) delete env[setting.env];
  // Warm processes (--warm-ttl) outlive a request by design; suites that count processes after
  // each test run without them unless they ask (test/e2e/warm.e2e.test.ts), or unless
  // E2E_WARM_TTL_MS sets a TTL for every suite (a run of the whole suite with warm processes).
  const warmTtl = process.env.E2E_WARM_TTL_MS ?? "0";
  return { ...env, CLAUDE_PATH: claudeBin(), TMPDIR: dirs.tmp, WARM_TTL_MS: warmTtl, ...extra };
}

interface ProcInfo {
  pid: number;
  ppid: number;
  exe: string;
  argv: string[];
  cwd: string;
}

function procInfo(pid: number): ProcInfo | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") return null; // a zombie is dead, only not yet reaped
    const ppid = Number(fields[1]);
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    let exe = "";
    let cwd = "";
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      // another user's process, or gone
    }
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      // idem
    }
    return { pid, ppid, exe, argv, cwd };
  } catch {
    return null;
  }
}

function allProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const info = procInfo(Number(name));
    if (info !== null) out.push(info);
  }
  return out;
}

/** The CLI's path and real path, looked up once (claudeBin() takes ~40 ms: a process report). */
let claudePaths: { bin: string; real: string } | undefined;

function isClaude(info: ProcInfo): boolean {
  if (claudePaths === undefined) {
    const bin = claudeBin();
    claudePaths = { bin, real: realpathSync(bin) };
  }
  if (info.exe === claudePaths.real) return true;
  const argv0 = info.argv[0] ?? "";
  return (
    argv0 === claudePaths.bin || argv0 === claudePaths.real || /(^|\/)claude(\.exe)?$/.test(argv0)
  );
}

/** What {@link claudeProcesses} looks for. */
export interface ClaudeProcessQuery {
  /** Count `claude` processes descended from this pid (the proxy). */
  pid?: number | undefined;
  /** Count `claude` processes whose cwd or command line mentions this directory. */
  dir?: string | undefined;
  /**
   * Count only CLIs the proxy started, not the short-lived helper processes a CLI forks of its
   * own binary (2.1.221 does, at start-up).
   */
  topLevel?: boolean;
}

/**
 * Pids of live (not zombie) `claude` processes that descend from `query.pid` or whose cwd or
 * command line mentions `query.dir` (the proxy's TMPDIR: its runs have their cwd there, and
 * orphans of a dead proxy are found that way too).
 */
export function claudeProcesses(query: ClaudeProcessQuery): number[] {
  const procs = allProcesses();
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const descends = (info: ProcInfo): boolean => {
    if (query.pid === undefined) return false;
    let current: ProcInfo | undefined = info;
    for (let depth = 0; current !== undefined && depth < 64; depth++) {
      if (current.ppid === query.pid) return true;
      current = byPid.get(current.ppid);
    }
    return false;
  };
  const mentions = (info: ProcInfo): boolean => {
    const dir = query.dir;
    if (dir === undefined) return false;
    return info.cwd.startsWith(dir) || info.argv.some((a) => a.includes(dir));
  };
  const forkedByClaude = (info: ProcInfo): boolean => {
    const parent = byPid.get(info.ppid);
    return parent !== undefined && isClaude(parent);
  };
  return procs
    .filter(
      (p) =>
        p.pid !== process.pid &&
        isClaude(p) &&
        (descends(p) || mentions(p)) &&
        !(query.topLevel === true && forkedByClaude(p)),
    )
    .map((p) => p.pid);
}

/** Polls {@link claudeProcesses} until none is left or `timeoutMs` passed; returns the last list. */
export async function waitForNoClaude(
  query: ClaudeProcessQuery,
  timeoutMs = 5_000,
): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let pids = claudeProcesses(query);
  while (pids.length > 0 && Date.now() < deadline) {
    await sleep(100);
    pids = claudeProcesses(query);
  }
  return pids;
}

/** SIGKILLs the given pids (a safety net after a failed assertion). */
export function killPids(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** The proxy's base directories (`claude-openai-proxy-XXXX`) under `dir` (its TMPDIR). */
export function proxyTempDirs(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.startsWith("claude-openai-proxy-"))
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isDirectory());
}

/**
 * What the proxy's runs left under `dir` (its TMPDIR): every entry of
 * `claude-openai-proxy-XXXX/runs/`. Empty once every request has finished cleaning up.
 */
export function tempLeftovers(dir: string): string[] {
  const out: string[] = [];
  for (const base of proxyTempDirs(dir)) {
    const runs = join(base, "runs");
    if (!existsSync(runs)) continue;
    for (const name of readdirSync(runs)) out.push(join(runs, name));
  }
  return out;
}

/** Polls {@link tempLeftovers} until it is empty or `timeoutMs` passed; returns the last list. */
export async function waitForNoLeftovers(dir: string, timeoutMs = 5_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let left = tempLeftovers(dir);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(100);
    left = tempLeftovers(dir);
  }
  return left;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/** Catches the error a client call rejects with. */
export async function apiError(
  promise: Promise<unknown>,
): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof OpenAI.APIError) return error;
    throw error;
  }
  throw new Error("expected the request to fail");
}
