/**
 * Helpers of the fault suite, the shutdown test and `scripts/load.ts`: a fast scan for `claude`
 * processes (by the directory they run in), the pid that really serves (tsx runs the proxy in
 * a child process), raw SSE reading, proxy log lines and VmRSS. Linux only (they read /proc).
 */
import { readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { claudeBin } from "../fixtures/claude-cli.ts";
import { type ProxyProcess, sleep, tempLeftovers } from "./harness.ts";

/** Catches the error a client call rejects with (one definition, in harness.ts). */
export { apiError } from "./harness.ts";

interface Proc {
  pid: number;
  ppid: number;
  comm: string;
  exe: string;
  cwd: string;
  argv: string[];
}

/** One process from /proc; null when it is gone or a zombie. */
function proc(pid: number): Proc | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") return null;
    const read = (f: () => string) => {
      try {
        return f();
      } catch {
        return "";
      }
    };
    return {
      pid,
      ppid: Number(fields[1]),
      comm,
      exe: read(() => readlinkSync(`/proc/${pid}/exe`)),
      cwd: read(() => readlinkSync(`/proc/${pid}/cwd`)),
      argv: read(() => readFileSync(`/proc/${pid}/cmdline`, "utf8"))
        .split("\0")
        .filter(Boolean),
    };
  } catch {
    return null;
  }
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const info = proc(Number(name));
    if (info !== null) out.push(info);
  }
  return out;
}

let claudeExe: string | undefined;

/**
 * Whether a process is the claude CLI. (harness.ts's `claudeProcesses` calls `claudeBin()`,
 * which builds a `process.report`, once per process: seconds per scan on a busy test
 * process; this resolves the binary once.)
 */
function isClaude(p: Proc): boolean {
  claudeExe ??= realpathSync(claudeBin());
  return p.exe === claudeExe || p.comm === "claude";
}

/**
 * Pids of live `claude` processes running in `dir` or below (the proxy's TMPDIR: every run
 * has its cwd in `claude-openai-proxy-XXXX/cwd`), including orphans of a dead proxy.
 */
export function claudePids(dir: string): number[] {
  return processes()
    .filter((p) => isClaude(p) && (p.cwd.startsWith(dir) || p.argv.some((a) => a.includes(dir))))
    .map((p) => p.pid);
}

/**
 * Pids of live `claude` processes whose parent is `parent` (the proxy's runs; the CLI itself
 * forks short-lived helpers, e.g. an `rg` file listing, which show up as `claude` until they exec).
 */
export function claudeChildren(parent: number): number[] {
  return processes()
    .filter((p) => p.ppid === parent && isClaude(p))
    .map((p) => p.pid);
}

/** Polls {@link claudePids} until none is left or `timeoutMs` passed; returns the last list. */
export async function waitNoClaude(dir: string, timeoutMs = 5_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let pids = claudePids(dir);
  while (pids.length > 0 && Date.now() < deadline) {
    await sleep(100);
    pids = claudePids(dir);
  }
  return pids;
}

/** Polls `condition` every 50 ms until it holds; false after `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** What a proxy left behind under its TMPDIR `dir`. */
export interface Leftovers {
  /** Live claude processes. */
  pids: number[];
  /** Entries of `claude-openai-proxy-XXXX/runs/`. */
  files: string[];
}

/**
 * Waits (up to `timeoutMs`) until no claude process runs under `dir` and no run dir is left
 * in the proxy TMPDIRs `tmpDirs` (default: `dir` itself).
 */
export async function waitForLeftovers(
  dir: string,
  timeoutMs = 5_000,
  tmpDirs: readonly string[] = [dir],
): Promise<Leftovers> {
  const deadline = Date.now() + timeoutMs;
  const files = () => tmpDirs.flatMap((d) => tempLeftovers(d));
  let left = { pids: claudePids(dir), files: files() };
  while ((left.pids.length > 0 || left.files.length > 0) && Date.now() < deadline) {
    await sleep(100);
    left = { pids: claudePids(dir), files: files() };
  }
  return left;
}

/** SIGKILLs `pids` (a safety net after a failed assertion). */
export function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/**
 * The pid that serves: the proxy process itself (Bun, Deno, the binary), or the node process
 * tsx starts as its child (`tsx src/main.ts` is a wrapper that relays signals to it; the
 * server has an esbuild child of its own, which this skips).
 */
export function servingPid(proxy: ProxyProcess): number {
  const root = proxy.process.pid;
  if (root === undefined) throw new Error("the proxy has no pid");
  if (proxy.runtime !== "node") return root;
  const all = processes();
  const runsMain = (p: Proc) => p.argv.some((a) => /[\\/]src[\\/]main\.ts$/.test(a));
  let pid = root;
  for (let depth = 0; depth < 4; depth++) {
    const child = all.find((p) => p.ppid === pid && !isClaude(p) && runsMain(p));
    if (child === undefined) break;
    pid = child.pid;
  }
  return pid;
}

/** VmRSS of a process in KiB, or null when it is gone. */
export function vmRssKiB(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match?.[1] === undefined ? null : Number(match[1]);
  } catch {
    return null;
  }
}

/** One JSON log line of the proxy. */
export interface LogLine {
  level?: string | number;
  msg?: string;
  status?: number;
  [key: string]: unknown;
}

/** The proxy's JSON log lines (non-JSON lines skipped). */
export function logLines(proxy: ProxyProcess): LogLine[] {
  return proxy
    .stderr()
    .split("\n")
    .flatMap((line) => {
      try {
        const value = JSON.parse(line) as unknown;
        return typeof value === "object" && value !== null ? [value as LogLine] : [];
      } catch {
        return [];
      }
    });
}

/** The `data:` payloads of an SSE body, in order (comments and other fields dropped). */
export function sseData(body: string): string[] {
  return body
    .split(/\r?\n\r?\n/)
    .map((frame) =>
      frame
        .split(/\r?\n/)
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
        .join("\n"),
    )
    .filter((data) => data !== "");
}

/** Reads an SSE response body incrementally. */
export class SseReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  /** Everything received so far. */
  text = "";
  /** True once the body ended. */
  done = false;

  constructor(response: Response) {
    if (response.body === null) throw new Error("no response body");
    this.#reader = response.body.getReader();
  }

  /** The `data:` payloads received so far. */
  data(): string[] {
    return sseData(this.text);
  }

  /** Reads until `predicate(text)` holds or the body ends; false when it ended first. */
  async until(predicate: (text: string) => boolean): Promise<boolean> {
    while (!predicate(this.text)) {
      if (this.done) return false;
      await this.#read();
    }
    return true;
  }

  /** Reads to the end (the body ending in an error counts as the end). */
  async rest(): Promise<string> {
    while (!this.done) await this.#read();
    return this.text;
  }

  async #read(): Promise<void> {
    try {
      const { done, value } = await this.#reader.read();
      if (done) this.done = true;
      else this.text += this.#decoder.decode(value, { stream: true });
    } catch {
      this.done = true;
    }
  }

  /** Drops the connection. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    this.done = true;
  }
}

/** Whether an SSE text holds a content delta (the first frame is the empty role delta). */
export function hasContent(text: string): boolean {
  return sseData(text).some((d) => {
    if (d === "[DONE]") return false;
    try {
      const chunk = JSON.parse(d) as { choices?: Array<{ delta?: { content?: string } }> };
      return (chunk.choices?.[0]?.delta?.content ?? "") !== "";
    } catch {
      return false;
    }
  });
}

/** The concatenated `delta.content` of the chunk frames of an SSE text. */
export function sseContent(text: string): string {
  let out = "";
  for (const d of sseData(text)) {
    if (d === "[DONE]") continue;
    try {
      const chunk = JSON.parse(d) as { choices?: Array<{ delta?: { content?: string } }> };
      out += chunk.choices?.[0]?.delta?.content ?? "";
    } catch {
      // not a chunk
    }
  }
  return out;
}

/** A chat completion request body with one user message. */
export function chatBody(content: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: "sonnet", messages: [{ role: "user", content }], ...extra });
}
