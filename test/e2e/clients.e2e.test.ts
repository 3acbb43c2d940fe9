/**
 * Real clients, unmodified, against the proxy (issue 8 item 9, issue 10), configured as README
 * "Client setup" says:
 * - Chat Completions: opencode's `run` and OpenClaw's `agent exec` (custom OpenAI-compatible
 *   providers);
 * - Responses: Codex's `codex exec` (a custom provider, `wire_api = "responses"`), a script of
 *   the Agents SDK (`@openai/agents`, its default model, on Node 22+), the AI SDK's
 *   `@ai-sdk/openai` default provider (in process);
 * - Messages: Claude Code itself (the pinned CLI, `ANTHROPIC_BASE_URL` at the proxy).
 * The CLIs and the Agents SDK are installed from npm into a cache on first use
 * (clients-install.ts). The fake Messages API makes the model call one of the client's own
 * tools (`read` of a file in a temp dir; Codex's `exec_command` copying it); the client runs it
 * itself and sends the result back; the fake's next answer quotes the file. Checked: what the
 * user sees (the client's output, its exit code, the copied file) and what the API received,
 * turn by turn (the second request holds the tool's real output).
 *
 * The proxy runs on Node only (when E2E_RUNTIMES holds node). No client may reach the internet:
 * update checks, telemetry and model-list fetches are off in their config and environment, and
 * HTTP(S)_PROXY points at a loopback listener that refuses every request (opencode insists on
 * installing `@opencode-ai/plugin` into its config dir from npm at start-up; the listener sees
 * that attempt and it fails without harm). Only the npm registry is reached, by npm, to install.
 *
 * A test skips only when its install failed for lack of network; any other failure fails it.
 * E2E_CLIENTS_LOG=/path/prefix writes each client's output, the API requests the fake received
 * and the proxy's log to files named after that prefix (debugging).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { createOpenAI } from "@ai-sdk/openai";
import { tool as aiTool, generateText, stepCountIs } from "ai";
import { afterAll, afterEach, beforeAll, describe, expect, it, type TestContext } from "vitest";
import { z } from "zod";
import { claudeBin } from "../fixtures/claude-cli.ts";
import {
  type FakeAnthropic,
  type RecordedRequest,
  startFakeAnthropic,
} from "../fixtures/fake-anthropic.ts";
import { atLeast, type Installed, installPackage } from "./clients-install.ts";
import {
  claudeProcesses,
  type E2eDirs,
  killPids,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  proxyTempDirs,
  RUNTIMES,
  sleep,
  startProxy,
  waitForNoClaude,
  waitForNoLeftovers,
} from "./harness.ts";
import { type TurnSummary, toolNames, toolResultText, turns } from "./tools-helpers.ts";

/** The client versions under test (bump deliberately: each is a new cache entry). */
const OPENCODE_VERSION = "1.18.33";
const OPENCLAW_VERSION = "2026.9.6";
const CODEX_VERSION = "0.171.0";
const AGENTS_VERSION = "0.20.0";
/**
 * OpenClaw needs Node ">=24.16.0 <25 || >=26.1.0", the Agents SDK ">=22" (its `openai` 7); an
 * older Node gets this one from npm.
 */
const NODE_FROM_NPM = "24.22.3";

/**
 * How long one client run may take before it is killed. A pass takes 15-30 s when the machine
 * is idle, OpenClaw up to ~60 s on a busy one (its own start-up is ~20 s of that).
 */
const CLIENT_TIMEOUT_MS = 150_000;
/** The test's own limit: the client is killed first, so a hang fails with the client's output. */
const TEST_TIMEOUT_MS = CLIENT_TIMEOUT_MS + 30_000;
/** `--tool-result-timeout` of the proxy: a parked run that is never answered ends after this. */
const TOOL_RESULT_TIMEOUT_MS = 10_000;
/** Time for one npm install of a client (openclaw is ~650 MB of node_modules). */
const INSTALL_TIMEOUT_MS = 600_000;

const useNode = RUNTIMES.includes("node");

let fake: FakeAnthropic;
let dirs: E2eDirs;
let proxy: ProxyProcess;
let proxyTmp: string;
let refuser: Refuser;
let fileStarted = 0;
/** HOMEs of clients still running: their processes are killed after each test, whatever happened. */
const clientHomes = new Set<string>();

/**
 * Live processes of a client: those whose environment has `HOME=home` (each run has its own).
 * A client's helpers may leave its process group and session (OpenClaw's `openclaw-agent` calls
 * setsid), so neither the group nor the parent pid finds them all. Linux only (/proc).
 */
function clientProcesses(home: string): number[] {
  const marker = `\0HOME=${home}\0`;
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue; // dead, not reaped
      if (`\0${readFileSync(`/proc/${name}/environ`, "latin1")}`.includes(marker)) {
        pids.push(Number(name));
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** SIGKILLs every process of the client whose HOME is `home`. */
function killClient(home: string): void {
  killPids(clientProcesses(home));
}

/**
 * A loopback "HTTP proxy" that records what each connection asked for (the request line, e.g.
 * `CONNECT registry.npmjs.org:443 HTTP/1.1`) and closes it: given to the clients as
 * HTTP(S)_PROXY so that nothing they try to fetch from outside gets through.
 */
interface Refuser {
  url: string;
  attempts: string[];
  close(): Promise<void>;
}

async function startRefuser(): Promise<Refuser> {
  const attempts: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.once("data", (data) => {
      attempts.push(data.toString("latin1").split("\r\n")[0] ?? "");
      socket.destroy();
    });
    socket.on("error", () => {});
    socket.setTimeout(2_000, () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    attempts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

beforeAll(async () => {
  if (!useNode) return;
  fileStarted = performance.now();
  fake = await startFakeAnthropic();
  dirs = await makeE2eDirs("claude-openai-proxy-e2e-clients-");
  refuser = await startRefuser();
  proxyTmp = join(dirs.tmp, "node");
  await mkdir(proxyTmp);
  proxy = await startProxy("node", {
    env: proxyEnv(fake.url, { home: dirs.home, tmp: proxyTmp }),
    args: [
      "--kill-grace",
      "1000",
      "--tool-result-timeout",
      String(TOOL_RESULT_TIMEOUT_MS),
      // The Agents SDK's default model (gpt-5.6-luna in 0.20.0), as its README snippet says.
      "--model-map",
      "gpt-5*=sonnet",
    ],
  });
});
afterEach(async (ctx) => {
  if (!useNode) return;
  for (const home of clientHomes) killClient(home);
  clientHomes.clear();
  if (process.env.E2E_CLIENTS_LOG) {
    const name = ctx.task.name.replace(/[^A-Za-z0-9]+/g, "-").slice(0, 40);
    writeFileSync(
      `${process.env.E2E_CLIENTS_LOG}.${name}.requests.json`,
      JSON.stringify(fake.requests, null, 2),
    );
  }
  fake.reset();
  // A follow-up that missed its parked run leaves that run waiting until the tool-result wait.
  const pids = await waitForNoClaude(
    { pid: proxy.process.pid, dir: proxyTmp },
    TOOL_RESULT_TIMEOUT_MS + 5_000,
  );
  killPids(pids);
  expect(pids, "claude processes left behind").toEqual([]);
  expect(await waitForNoLeftovers(proxyTmp), "run dirs left behind").toEqual([]);
}, TOOL_RESULT_TIMEOUT_MS + 20_000);
afterAll(async () => {
  if (!useNode) return;
  await proxy?.stop();
  if (process.env.E2E_CLIENTS_LOG) {
    writeFileSync(`${process.env.E2E_CLIENTS_LOG}.proxy.log`, proxy?.stderr() ?? "");
  }
  if (proxyTmp !== undefined) {
    expect(proxyTempDirs(proxyTmp), "proxy temp dir after stop").toEqual([]);
    const pids = claudeProcesses({ dir: proxyTmp });
    killPids(pids);
    expect(pids, "claude processes after stop").toEqual([]);
  }
  await refuser?.close();
  await fake?.close();
  await dirs?.cleanup();
  if (refuser !== undefined) {
    console.log(
      `[e2e clients] requests the clients tried to send outside (refused): ${JSON.stringify(refuser.attempts)}`,
    );
  }
  console.log(`[e2e clients] ${((performance.now() - fileStarted) / 1000).toFixed(1)} s`);
}, 30_000);

// ---------------------------------------------------------------- helpers

/** Skips the test when the install failed for lack of network; throws on any other failure. */
function requireInstalled(ctx: TestContext, installed: Installed | undefined): string {
  if (installed === undefined) throw new Error("the install did not run (see beforeAll)");
  if (!installed.ok) {
    if (installed.offline)
      ctx.skip(`npm registry unreachable, client not installed: ${installed.message}`);
    throw new Error(installed.message);
  }
  return installed.dir;
}

function describeInstall(label: string, installed: Installed): string {
  if (!installed.ok) {
    const why = installed.offline ? "the npm registry is unreachable" : installed.message;
    return `${label}: not installed: ${why}`;
  }
  const how = installed.fresh ? `installed in ${(installed.ms / 1000).toFixed(1)} s` : "cached";
  return `${label}: ${how} (${installed.dir})`;
}

/** What one client run printed. */
interface ClientRun {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Processes of the client still running 5 s after it exited (then killed). */
  leftover: number[];
}

/**
 * Runs a client to completion; SIGKILLs all its processes (see {@link clientProcesses}) after
 * {@link CLIENT_TIMEOUT_MS}, and any it left running 5 s after it exited. `env.HOME` must be
 * the client's own.
 */
async function runClient(
  program: string,
  args: readonly string[],
  options: { cwd: string; env: Record<string, string> },
): Promise<ClientRun> {
  const home = options.env.HOME;
  if (home === undefined) throw new Error("runClient: env.HOME is required");
  const started = performance.now();
  clientHomes.add(home);
  const child: ChildProcess = spawn(program, [...args], {
    cwd: options.cwd,
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const timer = setTimeout(() => killClient(home), CLIENT_TIMEOUT_MS);
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (c, s) => resolve([c, s]));
  }).finally(() => clearTimeout(timer));
  const ms = performance.now() - started;
  let leftover = clientProcesses(home);
  for (const deadline = Date.now() + 5_000; leftover.length > 0 && Date.now() < deadline; ) {
    await sleep(100);
    leftover = clientProcesses(home);
  }
  killPids(leftover);
  // Output still in the pipes arrives before they close (every writer is dead now).
  await Promise.race([closed, sleep(5_000)]);
  clientHomes.delete(home);
  return { code, signal, stdout, stderr, ms, leftover };
}

/** Text without ANSI escape sequences. */
function plain(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes start with ESC
  return text.replace(/\u001b\[[0-9;?]*[ -/]*[@-~]/g, "");
}

function describeRun(name: string, run: ClientRun): string {
  const left = run.leftover.length > 0 ? ` (left running, killed: ${run.leftover.join(" ")})` : "";
  return `${name} exited ${run.signal ?? run.code} after ${(run.ms / 1000).toFixed(1)} s${left}\n--- stdout\n${plain(run.stdout)}\n--- stderr\n${plain(run.stderr).slice(-6_000)}`;
}

/** The environment of a client: nothing of the developer's shell but PATH and the locale. */
function clientEnv(home: string, extra: Record<string, string>): Record<string, string> {
  const noProxy = "127.0.0.1,localhost,::1";
  return {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    LANG: process.env.LANG ?? "C.UTF-8",
    HOME: home,
    USERPROFILE: home,
    TMPDIR: join(home, "tmp"),
    XDG_CONFIG_HOME: join(home, ".config"),
    XDG_DATA_HOME: join(home, ".local", "share"),
    XDG_CACHE_HOME: join(home, ".cache"),
    XDG_STATE_HOME: join(home, ".local", "state"),
    TERM: "dumb",
    NO_COLOR: "1",
    HTTP_PROXY: refuser.url,
    HTTPS_PROXY: refuser.url,
    http_proxy: refuser.url,
    https_proxy: refuser.url,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    ...extra,
  };
}

/** A fresh home and work dir for one client run, with a file holding a secret word. */
async function clientDirs(name: string): Promise<{
  home: string;
  work: string;
  file: string;
  secret: string;
  cleanup(): Promise<void>;
}> {
  const root = join(dirs.root, `${name}-${randomUUID().slice(0, 8)}`);
  const home = join(root, "home");
  const work = join(root, "work");
  await mkdir(join(home, "tmp"), { recursive: true });
  await mkdir(work, { recursive: true });
  const secret = `PAPAYA-${randomUUID().slice(0, 8)}`;
  const file = join(work, "notes.txt");
  await writeFile(file, `Meeting notes.\nThe secret word is ${secret}.\n`);
  return {
    home,
    work,
    file,
    secret,
    cleanup: () => rm(root, { recursive: true, force: true, maxRetries: 3 }),
  };
}

/** The answer the fake gives once it saw the tool's output (what the user must see). */
function finalAnswer(toolOutput: string): string {
  const match = /secret word is (PAPAYA-[0-9a-f]{8})/.exec(toolOutput);
  return match ? `The secret word is ${match[1]}, per notes.txt.` : "The file could not be read.";
}

/** The last tool_result block of a request, if any. */
// biome-ignore lint/suspicious/noExplicitAny: raw request body
function lastToolResult(body: any): { tool_use_id: string; content: unknown } | undefined {
  const messages: Array<{ content: unknown }> = Array.isArray(body?.messages) ? body.messages : [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const content = messages[i]?.content;
    if (!Array.isArray(content)) continue;
    const result = content.findLast((b: { type?: string }) => b?.type === "tool_result");
    if (result !== undefined) return result;
  }
  return undefined;
}

/**
 * Scripts the fake as a model that calls `tool` once with `input`, then answers with
 * {@link finalAnswer} of the result. Requests that do not offer `tool` (opencode's session-title
 * request) get a short title.
 */
function scriptToolLoop(tool: string, id: string, input: unknown): void {
  fake.setHandler((req) => {
    if (!toolNames(req.body).includes(tool)) {
      return { content: [{ type: "text", text: "Secret word in notes" }] };
    }
    const result = lastToolResult(req.body);
    if (result === undefined) return { content: [{ type: "tool_use", id, name: tool, input }] };
    return { content: [{ type: "text", text: finalAnswer(toolResultText(result.content)) }] };
  });
}

/** The API requests of the agent loop (those that offered `tool`). */
function agentRequests(tool: string): RecordedRequest[] {
  return fake.requests.filter((r) => toolNames(r.body).includes(tool));
}

/** The conversation of a request: its turns without the CLI's own `system` entries or empty turns. */
// biome-ignore lint/suspicious/noExplicitAny: raw request body
function conversation(body: any): TurnSummary[] {
  return turns(body).filter((t) => t.role !== "system" && t.blocks.length > 0);
}

/** `id` as clients that keep only alphanumerics rewrite it (OpenClaw: `toolu_x_1` → `toolux1`). */
function alphanumeric(id: string): string {
  return id.replace(/[^A-Za-z0-9]/g, "");
}

/**
 * Checks the two requests of a one-tool loop turn by turn: the first is the user's prompt
 * alone; the second is prompt, the assistant's call of `tool`, and a user turn that starts with
 * that call's result holding `secret` (the file as the client's tool read it), followed at
 * most by text the client added.
 * @returns the tool_use id the second request carried.
 */
function expectToolLoopTurns(
  requests: RecordedRequest[],
  opts: { prompt: string; tool: string; id: string; secret: string },
): string {
  expect(requests, "API requests of the agent loop").toHaveLength(2);
  const first = conversation(requests[0]?.body);
  expect(first.map((t) => t.role)).toEqual(["user"]);
  expect(first[0]?.blocks.join("\n")).toContain(opts.prompt);

  const second = conversation(requests[1]?.body);
  expect(
    second.map((t) => t.role),
    JSON.stringify(second, null, 2),
  ).toEqual(["user", "assistant", "user"]);
  expect(second[0]?.blocks.join("\n")).toContain(opts.prompt);
  expect(second[1]?.blocks).toHaveLength(1);
  const call = /^tool_use:([^:]+):(.+)$/.exec(second[1]?.blocks[0] ?? "");
  expect(call?.[2]).toBe(opts.tool);
  const id = call?.[1] ?? "";
  // The id the model issued, or the client's alphanumeric rewrite of it.
  expect([opts.id, alphanumeric(opts.id)]).toContain(id);
  const [result, ...rest] = second[2]?.blocks ?? [];
  expect(result?.startsWith(`tool_result:${id}:`), String(result)).toBe(true);
  expect(result).toContain(`The secret word is ${opts.secret}.`);
  for (const block of rest) expect(block.startsWith("text:"), block).toBe(true);
  return id;
}

/** Files left under `dir` (recursively, relative paths), for "the client cleaned up" checks. */
function filesUnder(dir: string, prefix = ""): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const rel = join(prefix, entry.name);
    return entry.isDirectory() ? [rel, ...filesUnder(join(dir, entry.name), rel)] : [rel];
  });
}

function saveLog(name: string, run: ClientRun): void {
  if (process.env.E2E_CLIENTS_LOG) {
    writeFileSync(`${process.env.E2E_CLIENTS_LOG}.${name}.log`, describeRun(name, run));
  }
}

// ---------------------------------------------------------------- the tests

if (!useNode) {
  describe("real clients", () => {
    it.skip("the proxy runs on node for these tests (E2E_RUNTIMES has no node)", () => {});
  });
} else {
  describe(`opencode ${OPENCODE_VERSION} (npm opencode-ai)`, () => {
    let installed: Installed | undefined;

    beforeAll(async () => {
      installed = await installPackage("opencode-ai", OPENCODE_VERSION);
      console.log(`[e2e clients] ${describeInstall(`opencode-ai@${OPENCODE_VERSION}`, installed)}`);
    }, INSTALL_TIMEOUT_MS);

    /** The platform package's binary (what opencode-ai's postinstall would link). */
    function opencodeBinary(dir: string): string {
      const base = `opencode-${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
      let avx2 = true;
      try {
        avx2 = /(^|\s)avx2(\s|$)/i.test(readFileSync("/proc/cpuinfo", "utf8"));
      } catch {
        // not Linux: the default build
      }
      const names = avx2 ? [base, `${base}-baseline`] : [`${base}-baseline`, base];
      names.push(...names.map((n) => `${n}-musl`));
      const exe = process.platform === "win32" ? "opencode.exe" : "opencode";
      const candidates = names.map((n) => join(dir, "node_modules", n, "bin", exe));
      const found = candidates.find((c) => existsSync(c));
      if (found === undefined) {
        throw new Error(`no opencode binary in ${dir}; tried:\n  ${candidates.join("\n  ")}`);
      }
      return found;
    }

    it(
      "`opencode run`: the model calls opencode's `read`, opencode reads the file, the answer quotes it",
      async (ctx) => {
        const bin = opencodeBinary(requireInstalled(ctx, installed));
        const run = await clientDirs("opencode");
        try {
          const config = join(run.home, "opencode.json");
          await writeFile(
            config,
            JSON.stringify(
              {
                autoupdate: false,
                share: "disabled",
                provider: {
                  proxy: {
                    npm: "@ai-sdk/openai-compatible",
                    name: "claude-openai-proxy",
                    options: { baseURL: proxy.url, apiKey: "x" },
                    models: { sonnet: { name: "sonnet", tool_call: true } },
                  },
                },
                model: "proxy/sonnet",
                small_model: "proxy/sonnet",
              },
              null,
              2,
            ),
          );
          const tool = "mcp__client__read";
          const id = "toolu_oc_read_1";
          scriptToolLoop(tool, id, { filePath: run.file });
          const prompt = "What is the secret word in notes.txt?";
          const result = await runClient(bin, ["run", prompt], {
            cwd: run.work,
            env: clientEnv(run.home, {
              OPENCODE_CONFIG: config,
              OPENCODE_DISABLE_AUTOUPDATE: "1",
              OPENCODE_DISABLE_MODELS_FETCH: "1",
              OPENCODE_DISABLE_LSP_DOWNLOAD: "1",
              OPENCODE_DISABLE_SHARE: "1",
            }),
          });
          saveLog("opencode", result);
          console.log(`[e2e clients] opencode run: ${(result.ms / 1000).toFixed(1)} s`);

          // What the user sees.
          expect(result.code, describeRun("opencode", result)).toBe(0);
          expect(result.leftover, "processes opencode left running").toEqual([]);
          expect(plain(result.stdout)).toContain(
            `The secret word is ${run.secret}, per notes.txt.`,
          );
          expect(plain(result.stderr)).toContain("Read notes.txt"); // opencode shows the tool it ran

          // What the API received: the prompt, then the call and the file as opencode read it.
          const requests = agentRequests(tool);
          expect(toolNames(requests[0]?.body)).toEqual(
            expect.arrayContaining(["mcp__client__read", "mcp__client__bash"]),
          );
          expectToolLoopTurns(requests, { prompt, tool, id, secret: run.secret });
        } finally {
          await run.cleanup();
        }
      },
      TEST_TIMEOUT_MS,
    );
  });

  describe(`OpenClaw ${OPENCLAW_VERSION} (npm openclaw)`, () => {
    let installed: Installed | undefined;
    let node: Installed | undefined;
    /** The Node that runs OpenClaw: this one when new enough, else {@link NODE_FROM_NPM}. */
    let nodeBin = process.execPath;

    beforeAll(async () => {
      const [major = 0] = process.versions.node.split(".").map(Number);
      const newEnough =
        (major === 24 && atLeast(process.versions.node, "24.16.0")) ||
        atLeast(process.versions.node, "26.1.0");
      const nodePackage = `node-${process.platform}-${process.arch}`;
      [installed, node] = await Promise.all([
        installPackage("openclaw", OPENCLAW_VERSION),
        newEnough ? undefined : installPackage(nodePackage, NODE_FROM_NPM),
      ]);
      console.log(`[e2e clients] ${describeInstall(`openclaw@${OPENCLAW_VERSION}`, installed)}`);
      if (node !== undefined) {
        console.log(`[e2e clients] ${describeInstall(`${nodePackage}@${NODE_FROM_NPM}`, node)}`);
        if (node.ok) nodeBin = join(node.dir, "node_modules", nodePackage, "bin", "node");
      }
    }, INSTALL_TIMEOUT_MS);

    it(
      "`openclaw agent exec`: the model calls OpenClaw's `read`, OpenClaw reads the file (ids rewritten, a user message added), the answer quotes it",
      async (ctx) => {
        const dir = requireInstalled(ctx, installed);
        if (node !== undefined) requireInstalled(ctx, node);
        const run = await clientDirs("openclaw");
        try {
          const config = join(run.home, "openclaw.json");
          await writeFile(
            config,
            JSON.stringify(
              {
                update: { checkOnStart: false },
                models: {
                  mode: "replace",
                  providers: {
                    proxy: {
                      baseUrl: proxy.url,
                      apiKey: "x",
                      api: "openai-completions",
                      models: [
                        {
                          id: "sonnet",
                          name: "sonnet",
                          reasoning: false,
                          input: ["text"],
                          contextWindow: 200_000,
                          maxTokens: 8_192,
                        },
                      ],
                    },
                  },
                },
              },
              null,
              2,
            ),
          );
          const tool = "mcp__client__read";
          const id = "toolu_ocl_read_1";
          scriptToolLoop(tool, id, { path: run.file });
          const prompt = "What is the secret word in notes.txt?";
          const openclaw = join(dir, "node_modules", "openclaw", "openclaw.mjs");
          const result = await runClient(
            nodeBin,
            [
              openclaw,
              "agent",
              "exec",
              "--config",
              config,
              "--model",
              "proxy/sonnet",
              "--cwd",
              run.work,
              "--timeout",
              String((CLIENT_TIMEOUT_MS - 15_000) / 1000),
              prompt,
            ],
            {
              cwd: run.work,
              env: clientEnv(run.home, { OPENCLAW_NO_AUTO_UPDATE: "1" }),
            },
          );
          saveLog("openclaw", result);
          console.log(`[e2e clients] openclaw agent exec: ${(result.ms / 1000).toFixed(1)} s`);

          // What the user sees: `agent exec` prints only the final answer on stdout.
          expect(result.code, describeRun("openclaw", result)).toBe(0);
          expect(result.leftover, "processes openclaw left running").toEqual([]);
          expect(plain(result.stdout).trim()).toBe(
            `The secret word is ${run.secret}, per notes.txt.`,
          );

          // What the API received.
          const requests = agentRequests(tool);
          expect(toolNames(requests[0]?.body)).toEqual(
            expect.arrayContaining(["mcp__client__read", "mcp__client__exec"]),
          );
          expectToolLoopTurns(requests, { prompt, tool, id, secret: run.secret });
          // `agent exec` removes the temporary state it made (Node's compile cache may stay).
          const leftovers = filesUnder(join(run.home, "tmp")).filter(
            (path) => !path.startsWith("node-compile-cache"),
          );
          expect(leftovers, "OpenClaw's temp files").toEqual([]);
        } finally {
          await run.cleanup();
        }
      },
      TEST_TIMEOUT_MS,
    );
  });

  describe(`Codex CLI ${CODEX_VERSION} (npm @openai/codex, Responses API)`, () => {
    let installed: Installed | undefined;

    beforeAll(async () => {
      installed = await installPackage("@openai/codex", CODEX_VERSION);
      console.log(`[e2e clients] ${describeInstall(`@openai/codex@${CODEX_VERSION}`, installed)}`);
    }, INSTALL_TIMEOUT_MS);

    it(
      "`codex exec`: the model calls Codex's `exec_command`, Codex runs it (the file it writes is there), the answer quotes its output",
      async (ctx) => {
        const dir = requireInstalled(ctx, installed);
        const run = await clientDirs("codex");
        try {
          const codexHome = join(run.home, ".codex");
          await mkdir(codexHome, { recursive: true });
          // What a user writes (README "Client setup"), with update checks, analytics and
          // plugins off.
          await writeFile(
            join(codexHome, "config.toml"),
            [
              'model = "sonnet"',
              'model_provider = "proxy"',
              'web_search = "disabled"',
              "check_for_update_on_startup = false",
              "",
              "[features]",
              "multi_agent = false",
              // Else it syncs plugins from github.com and chatgpt.com at start-up.
              "plugins = false",
              "",
              "[analytics]",
              "enabled = false",
              "",
              "[model_providers.proxy]",
              'name = "claude-openai-proxy"',
              `base_url = "${proxy.url}"`,
              'env_key = "PROXY_API_KEY"',
              'wire_api = "responses"',
              "",
            ].join("\n"),
          );
          const tool = "mcp__client__exec_command";
          const id = "toolu_codex_exec_1";
          scriptToolLoop(tool, id, { cmd: "cp notes.txt copy.txt && cat copy.txt" });
          const prompt = "Copy notes.txt to copy.txt and tell me the secret word.";
          // The npm launcher, as `codex` on PATH runs it: it starts the platform package's binary.
          const launcher = join(dir, "node_modules", "@openai", "codex", "bin", "codex.js");
          const result = await runClient(
            process.execPath,
            [
              launcher,
              "exec",
              "--skip-git-repo-check",
              // The command is the test's own and runs in a temp dir; Codex's sandbox
              // (bubblewrap) needs user namespaces, which CI machines may not allow.
              "--dangerously-bypass-approvals-and-sandbox",
              prompt,
            ],
            {
              cwd: run.work,
              env: clientEnv(run.home, { CODEX_HOME: codexHome, PROXY_API_KEY: "x" }),
            },
          );
          saveLog("codex", result);
          console.log(`[e2e clients] codex exec: ${(result.ms / 1000).toFixed(1)} s`);

          // What the user sees: the last message on stdout; the command it ran; the file.
          expect(result.code, describeRun("codex", result)).toBe(0);
          expect(result.leftover, "processes codex left running").toEqual([]);
          expect(plain(result.stdout).trim()).toBe(
            `The secret word is ${run.secret}, per notes.txt.`,
          );
          expect(plain(result.stderr)).toContain("cp notes.txt copy.txt && cat copy.txt");
          expect(readFileSync(join(run.work, "copy.txt"), "utf8")).toBe(
            readFileSync(run.file, "utf8"),
          );

          // What the API received: Codex's own function tools, then the call and its output.
          const requests = agentRequests(tool);
          expect(toolNames(requests[0]?.body)).toEqual(
            expect.arrayContaining(["mcp__client__exec_command", "mcp__client__write_stdin"]),
          );
          expect(requests).toHaveLength(2);
          const second = conversation(requests[1]?.body);
          const blocks = second.flatMap((t) => t.blocks);
          expect(blocks.join("\n")).toContain(prompt);
          expect(blocks).toContainEqual(
            expect.stringMatching(/^tool_use:[^:]+:mcp__client__exec_command$/),
          );
          const result2 = blocks.find((b) => b.startsWith("tool_result:"));
          expect(result2, JSON.stringify(second, null, 2)).toContain(
            `The secret word is ${run.secret}.`,
          );
          expect(second.at(-1)?.role).toBe("user");
        } finally {
          await run.cleanup();
        }
      },
      TEST_TIMEOUT_MS,
    );
  });

  describe(`Agents SDK ${AGENTS_VERSION} (npm @openai/agents, Responses API)`, () => {
    let installed: Installed | undefined;
    let node: Installed | undefined;
    /** The Node that runs the script: this one when >= 22, else {@link NODE_FROM_NPM}. */
    let nodeBin = process.execPath;

    beforeAll(async () => {
      const nodePackage = `node-${process.platform}-${process.arch}`;
      [installed, node] = await Promise.all([
        installPackage("@openai/agents", AGENTS_VERSION),
        atLeast(process.versions.node, "22.0.0")
          ? undefined
          : installPackage(nodePackage, NODE_FROM_NPM),
      ]);
      console.log(
        `[e2e clients] ${describeInstall(`@openai/agents@${AGENTS_VERSION}`, installed)}`,
      );
      if (node !== undefined) {
        console.log(`[e2e clients] ${describeInstall(`${nodePackage}@${NODE_FROM_NPM}`, node)}`);
        if (node.ok) nodeBin = join(node.dir, "node_modules", nodePackage, "bin", "node");
      }
    }, INSTALL_TIMEOUT_MS);

    it(
      "`run(agent, prompt)` with the default model and a function tool: the SDK runs the tool, the final output quotes it",
      async (ctx) => {
        const dir = requireInstalled(ctx, installed);
        if (node !== undefined) requireInstalled(ctx, node);
        const run = await clientDirs("agents");
        try {
          // A user's script, next to a node_modules that is the cache entry's.
          await symlink(join(dir, "node_modules"), join(run.work, "node_modules"), "dir");
          const script = join(run.work, "agent.mjs");
          await writeFile(
            script,
            [
              'import { readFile } from "node:fs/promises";',
              'import { Agent, run, tool } from "@openai/agents";',
              'import { z } from "zod";',
              "const readNotes = tool({",
              '  name: "read_notes",',
              '  description: "Reads a text file of the working directory",',
              "  parameters: z.object({ path: z.string() }),",
              '  execute: async ({ path }) => readFile(path, "utf8"),',
              "});",
              "const agent = new Agent({",
              '  name: "Assistant",',
              '  instructions: "Answer questions about the user\'s files.",',
              "  tools: [readNotes],",
              "});",
              "const result = await run(agent, process.argv[2]);",
              "console.log(result.finalOutput);",
              "",
            ].join("\n"),
          );
          const tool = "mcp__client__read_notes";
          const id = "toolu_agents_read_1";
          scriptToolLoop(tool, id, { path: run.file });
          const prompt = "What is the secret word in notes.txt?";
          const result = await runClient(nodeBin, [script, prompt], {
            cwd: run.work,
            env: clientEnv(run.home, {
              OPENAI_BASE_URL: proxy.url,
              OPENAI_API_KEY: "x",
              // Traces go to api.openai.com otherwise (refused here, retried for seconds).
              OPENAI_AGENTS_DISABLE_TRACING: "1",
            }),
          });
          saveLog("agents", result);
          console.log(`[e2e clients] agents run: ${(result.ms / 1000).toFixed(1)} s`);

          expect(result.code, describeRun("agents", result)).toBe(0);
          expect(result.leftover, "processes left running").toEqual([]);
          expect(plain(result.stdout).trim()).toBe(
            `The secret word is ${run.secret}, per notes.txt.`,
          );
          const requests = agentRequests(tool);
          expect(toolNames(requests[0]?.body)).toEqual([tool]);
          expectToolLoopTurns(requests, { prompt, tool, id, secret: run.secret });
          // The SDK's default model name reached the CLI as the model it maps to.
          expect(requests[0]?.body.model).toMatch(/sonnet/);
        } finally {
          await run.cleanup();
        }
      },
      TEST_TIMEOUT_MS,
    );
  });

  describe("AI SDK (`ai` + `@ai-sdk/openai` default provider, Responses API)", () => {
    it("`generateText` with a tool: the SDK runs it (its call passed back as an item_reference), the answer quotes it", async () => {
      const run = await clientDirs("ai-sdk");
      try {
        const tool = "mcp__client__read_notes";
        const id = "toolu_aisdk_read_1";
        scriptToolLoop(tool, id, { path: run.file });
        const prompt = "What is the secret word in notes.txt?";
        // The bodies the SDK sends, seen through its `fetch` option (nothing else changes).
        const sent: Array<{ input?: Array<{ type?: string }> }> = [];
        const openai = createOpenAI({
          baseURL: proxy.url,
          apiKey: "x",
          fetch: ((url, init) => {
            if (typeof init?.body === "string") sent.push(JSON.parse(init.body));
            return fetch(url, init);
          }) as typeof fetch,
        });
        const started = performance.now();
        const result = await generateText({
          model: openai("sonnet"),
          prompt,
          tools: {
            read_notes: aiTool({
              description: "Reads a text file",
              inputSchema: z.object({ path: z.string() }),
              execute: async ({ path }) => readFileSync(path, "utf8"),
            }),
          },
          stopWhen: stepCountIs(3),
        });
        console.log(
          `[e2e clients] ai-sdk generateText: ${((performance.now() - started) / 1000).toFixed(1)} s`,
        );
        expect(result.text).toBe(`The secret word is ${run.secret}, per notes.txt.`);
        expect(result.steps).toHaveLength(2);
        expect(result.steps[0]?.toolResults[0]?.output).toContain(run.secret);
        expectToolLoopTurns(agentRequests(tool), { prompt, tool, id, secret: run.secret });
        // With `store` on (the default), the SDK refers to the stored call instead of resending it.
        expect(sent).toHaveLength(2);
        expect(sent[1]?.input?.map((item) => item.type)).toEqual([
          undefined,
          "item_reference",
          "function_call_output",
        ]);
      } finally {
        await run.cleanup();
      }
    }, 60_000);
  });

  describe("Claude Code as a client (the pinned CLI, ANTHROPIC_BASE_URL at the proxy, Messages API)", () => {
    it(
      "`claude -p`: the model calls Claude Code's `Read`, Claude Code reads the file, the answer quotes it",
      async () => {
        const run = await clientDirs("claude-code");
        try {
          const tool = "mcp__client__Read";
          const id = "toolu_cc_read_1";
          scriptToolLoop(tool, id, { file_path: run.file });
          const prompt = "What is the secret word in notes.txt?";
          const result = await runClient(claudeBin(), ["-p", prompt], {
            cwd: run.work,
            env: clientEnv(run.home, {
              ANTHROPIC_BASE_URL: proxy.origin,
              ANTHROPIC_API_KEY: "x",
              CLAUDE_CONFIG_DIR: join(run.home, ".claude"),
              CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
            }),
          });
          saveLog("claude-code", result);
          console.log(`[e2e clients] claude -p (client): ${(result.ms / 1000).toFixed(1)} s`);

          expect(result.code, describeRun("claude", result)).toBe(0);
          expect(result.leftover, "processes the client left running").toEqual([]);
          expect(plain(result.stdout).trim()).toBe(
            `The secret word is ${run.secret}, per notes.txt.`,
          );
          const requests = agentRequests(tool);
          expect(toolNames(requests[0]?.body)).toEqual(
            expect.arrayContaining(["mcp__client__Read", "mcp__client__Bash"]),
          );
          expectToolLoopTurns(requests, { prompt, tool, id, secret: run.secret });
        } finally {
          await run.cleanup();
        }
      },
      TEST_TIMEOUT_MS,
    );
  });
}
