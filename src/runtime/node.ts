/** The {@link Runtime} for Node: `node:child_process` and `@hono/node-server`. */

import { type ChildProcessByStdio, spawn as spawnChild } from "node:child_process";
import process from "node:process";
import { Readable, type Writable } from "node:stream";
import { safeKill } from "./child.ts";
import { nodeFs } from "./fs.ts";
import { nodeHttp } from "./http.ts";
import { totalMemory } from "./memory.ts";
import { nodeServe } from "./node-serve.ts";
import type { ExitStatus, Runtime, Spawn, Subprocess } from "./types.ts";

/** Wraps a Node writable in a web WritableStream; a write resolves once Node has flushed it. */
function toWebWritable(stream: Writable): WritableStream<Uint8Array> {
  // EPIPE after the child exits reaches the pending write's callback; without a listener
  // Node would also throw it as an uncaught 'error' event.
  stream.on("error", () => {});
  return new WritableStream<Uint8Array>({
    write: (chunk) =>
      new Promise<void>((resolve, reject) => {
        stream.write(chunk, (error) => (error ? reject(error) : resolve()));
      }),
    close: () =>
      new Promise<void>((resolve) => {
        stream.end(() => resolve());
      }),
    abort: () => {
      stream.destroy();
    },
  });
}

function toWebReadable(stream: Readable): ReadableStream<Uint8Array> {
  // node:stream/web's ReadableStream and the DOM one are the same object with different typings.
  return Readable.toWeb(stream) as unknown as ReadableStream<Uint8Array>;
}

const spawn: Spawn = (command, args, options) => {
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawnChild(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ["pipe", "pipe", "pipe"],
    windowsHide: true,
    shell: false,
    // Own process group (POSIX): Ctrl-C and group-wide SIGTERM reach only the proxy, which
    // then stops its children itself, gracefully. (On Windows it would open a new console.)
    detached: process.platform !== "win32",
  });
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once("exit", (exitCode, signal) => resolve({ exitCode, signal }));
    // 'error' after a successful start (e.g. a failed kill) must not leave `exited` pending forever.
    child.on("error", () => resolve({ exitCode: child.exitCode, signal: child.signalCode }));
  });
  // Node reports a failed start (ENOENT, EACCES, missing cwd) asynchronously via 'error',
  // but leaves `pid` undefined synchronously: that is the cue to throw as the contract requires.
  if (child.pid === undefined) {
    throw Object.assign(new Error(`Cannot run ${command}: not found or not executable`), {
      code: "ENOENT",
    });
  }
  const pid = child.pid;
  let ended = false;
  void exited.then(() => {
    ended = true;
  });
  const subprocess: Subprocess = {
    pid,
    stdin: toWebWritable(child.stdin),
    stdout: toWebReadable(child.stdout),
    stderr: toWebReadable(child.stderr),
    exited,
    kill: safeKill(
      () => ended || child.exitCode !== null || child.signalCode !== null,
      (signal) => child.kill(signal),
    ),
  };
  return subprocess;
};

function snapshotEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined) env[key] = value;
  }
  return env;
}

/** The Node implementation of {@link Runtime}. */
export const nodeRuntime: Runtime = {
  name: "node",
  version: process.versions.node,
  platform: process.platform,
  spawn,
  serve: nodeServe,
  args: () => process.argv.slice(2),
  env: snapshotEnv,
  ...nodeFs,
  ...nodeHttp,
  onShutdownSignal(handler) {
    const signals: NodeJS.Signals[] =
      process.platform === "win32" ? ["SIGINT", "SIGBREAK"] : ["SIGINT", "SIGTERM"];
    for (const signal of signals) process.on(signal, () => handler(signal));
  },
  rss: () => process.memoryUsage.rss(),
  totalMemory,
  exit: (code) => process.exit(code),
};
