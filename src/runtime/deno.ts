/**
 * The {@link Runtime} for Deno: `Deno.Command` for children; serving goes through Deno's
 * `node:http` layer with Node's code (`node-serve.ts`), because `Deno.serve` has no idle or
 * header timeout and ignores a response's `Connection: close` (denoland/deno#9411), while
 * `node:http` closes refused and idle connections as on Node.
 */

import { safeKill, spawnFailure } from "./child.ts";
import { nodeFs } from "./fs.ts";
import { nodeHttp } from "./http.ts";
import { totalMemory } from "./memory.ts";
import { nodeServe } from "./node-serve.ts";
import type { ExitStatus, Runtime, Spawn, Subprocess } from "./types.ts";

interface DenoChildProcess {
  readonly pid: number;
  readonly stdin: WritableStream<Uint8Array>;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly status: Promise<{ success: boolean; code: number; signal: string | null }>;
  kill(signal: string): void;
}

interface DenoCommandOptions {
  args: string[];
  cwd?: string;
  env: Record<string, string>;
  clearEnv: boolean;
  detached: boolean;
  stdin: "piped";
  stdout: "piped";
  stderr: "piped";
}

// The slice of the `Deno` global used here. tsc does not know `Deno`; under `deno check`
// this module-scoped declaration shadows the real namespace.
declare const Deno: {
  readonly args: string[];
  readonly version: { readonly deno: string };
  readonly build: { readonly os: string };
  readonly env: { toObject(): Record<string, string> };
  readonly Command: new (
    command: string,
    options: DenoCommandOptions,
  ) => { spawn(): DenoChildProcess };
  addSignalListener(signal: string, handler: () => void): void;
  memoryUsage(): { rss: number };
  exit(code: number): never;
};

const platform = Deno.build.os === "windows" ? "win32" : Deno.build.os;

const spawn: Spawn = (command, args, options) => {
  let child: DenoChildProcess;
  try {
    child = new Deno.Command(command, {
      args: [...args],
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      env: options.env,
      clearEnv: true,
      // Own process group (POSIX): Ctrl-C reaches only the proxy, which stops children itself.
      detached: Deno.build.os !== "windows",
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    // Deno throws Deno.errors.NotFound (code ENOENT) or PermissionDenied (code EACCES).
    throw spawnFailure(command, error);
  }
  let ended = false;
  const exited = child.status.then(
    // Deno reports a signal death as code 128 + signo; the contract wants null there.
    (status): ExitStatus => ({
      exitCode: status.signal === null ? status.code : null,
      signal: status.signal,
    }),
    (): ExitStatus => ({ exitCode: null, signal: null }),
  );
  void exited.then(() => {
    ended = true;
  });
  const subprocess: Subprocess = {
    pid: child.pid,
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    exited,
    // Deno throws "Child process has already terminated" once it has reaped the child.
    kill: safeKill(
      () => ended,
      (signal) => child.kill(signal),
    ),
  };
  return subprocess;
};

/** The Deno implementation of {@link Runtime}. */
export const denoRuntime: Runtime = {
  name: "deno",
  version: Deno.version.deno,
  platform,
  spawn,
  serve: nodeServe,
  args: () => [...Deno.args],
  env: () => Deno.env.toObject(),
  ...nodeFs,
  ...nodeHttp,
  onShutdownSignal(handler) {
    const signals = platform === "win32" ? ["SIGINT", "SIGBREAK"] : ["SIGINT", "SIGTERM"];
    for (const signal of signals) Deno.addSignalListener(signal, () => handler(signal));
  },
  rss: () => Deno.memoryUsage().rss,
  totalMemory,
  exit: (code) => Deno.exit(code),
};
