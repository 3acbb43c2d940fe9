/**
 * Children must not outlive a proxy that is killed hard (SIGKILL, a crash, the OOM killer): the
 * CLI only exits on stdin EOF once its current answer is done, which can take minutes or, with a
 * hanging upstream, for ever. On POSIX a tiny `/bin/sh` watchdog, started once, blocks reading
 * a pipe from the proxy; when the proxy dies that pipe closes, and the watchdog kills every CLI
 * still listed in the pid directory (SIGTERM, then SIGKILL 2 s later) and removes the proxy's
 * temp directory. It needs no polling and is immune to pid reuse of the proxy itself.
 * On Windows it is not started (there, ending the proxy's console session ends its children).
 */
import type { Runtime, Subprocess } from "../runtime/types.ts";

/** The watchdog script: `$1` the pid directory, `$2` the directory to remove. */
export const WATCHDOG_SCRIPT = [
  // Returns only when the proxy closed its end of stdin: it exited or died.
  "while read -r _; do :; done",
  'cd "$1" || exit 0',
  'for f in *; do [ -f "$f" ] && kill -TERM "$f" 2>/dev/null; done',
  "sleep 2",
  'for f in *; do [ -f "$f" ] && kill -KILL "$f" 2>/dev/null; done',
  "cd /",
  'rm -rf "$2"',
].join("\n");

/** Tracks CLI pids for the watchdog. */
export class Watchdog {
  readonly #runtime: Runtime;
  readonly #pidDir: string;
  readonly #cleanupDir: string;
  #child: Subprocess | null = null;

  /**
   * @param pidDir an existing private directory: one empty file per live CLI, named by its pid
   * @param cleanupDir removed by the watchdog after the proxy died (the proxy's temp directory)
   */
  constructor(runtime: Runtime, pidDir: string, cleanupDir: string) {
    this.#runtime = runtime;
    this.#pidDir = pidDir;
    this.#cleanupDir = cleanupDir;
  }

  /** Starts the watchdog (POSIX only). Never throws: without `/bin/sh` there is no watchdog. */
  start(): boolean {
    if (this.#runtime.platform === "win32" || !this.#runtime.isFile("/bin/sh")) return false;
    try {
      this.#child = this.#runtime.spawn(
        "/bin/sh",
        ["-c", WATCHDOG_SCRIPT, "claude-openai-proxy-watchdog", this.#pidDir, this.#cleanupDir],
        { env: { PATH: "/usr/bin:/bin" }, cwd: "/" },
      );
      void this.#child.stdout.cancel().catch(() => {});
      void this.#child.stderr.cancel().catch(() => {});
      return true;
    } catch {
      return false;
    }
  }

  /** Pending pid-file writes, so that a removal never overtakes its write. */
  readonly #writes = new Map<number, Promise<void>>();

  /** Records a live CLI. */
  track(pid: number): Promise<void> {
    const write = this.#runtime.writeFile(`${this.#pidDir}/${pid}`, "").catch(() => {});
    this.#writes.set(pid, write);
    return write;
  }

  /** Forgets a CLI that exited (after its pid file was written, if that is still under way). */
  async untrack(pid: number): Promise<void> {
    await this.#writes.get(pid);
    this.#writes.delete(pid);
    await this.#runtime.remove(`${this.#pidDir}/${pid}`);
  }

  /** Stops the watchdog without letting it act (graceful shutdown does its own cleanup). */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    this.#child = null;
    child.kill("SIGKILL");
    await child.exited;
  }
}
