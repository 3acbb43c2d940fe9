/** The {@link Runtime} for Bun: `Bun.spawn` and `Bun.serve`. */

import process from "node:process";
import { safeKill, spawnFailure } from "./child.ts";
import { nodeFs } from "./fs.ts";
import { nodeHttp } from "./http.ts";
import { totalMemory } from "./memory.ts";
import type { ExitStatus, Runtime, Serve, Spawn, Subprocess } from "./types.ts";

/** Bun's pipe to a child's stdin (a FileSink, not a WritableStream). */
interface BunFileSink {
  write(chunk: Uint8Array): number | Promise<number>;
  flush(): number | Promise<number>;
  end(): number | Promise<number>;
}

interface BunSubprocess {
  readonly pid: number;
  readonly stdin: BunFileSink;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly exited: Promise<number>;
  readonly exitCode: number | null;
  readonly signalCode: string | null;
  kill(signal: string): void;
}

interface BunServer {
  readonly port: number | undefined;
  stop(closeActiveConnections?: boolean): Promise<void>;
  /** Sets the idle timeout of one request's connection, seconds; 0: none. */
  timeout(request: Request, seconds: number): void;
}

// The slice of the `Bun` global used here, declared locally (it shadows bun-types under tsc)
// so that `deno check`, which follows detect.ts's dynamic import, can check this file too.
declare const Bun: {
  readonly version: string;
  readonly argv: string[];
  spawn(
    cmd: string[],
    options: {
      cwd?: string;
      env: Record<string, string>;
      stdin: "pipe";
      stdout: "pipe";
      stderr: "pipe";
      windowsHide: boolean;
      detached: boolean;
    },
  ): BunSubprocess;
  serve(options: {
    hostname: string;
    port: number;
    idleTimeout: number;
    fetch(request: Request, server: BunServer): Response | Promise<Response>;
  }): BunServer;
};

/** Wraps a FileSink in a web WritableStream; each write is flushed to the pipe. */
function toWebWritable(sink: BunFileSink): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      await sink.write(chunk);
      await sink.flush();
    },
    async close() {
      await sink.end();
    },
    async abort() {
      await sink.end();
    },
  });
}

const spawn: Spawn = (command, args, options) => {
  let child: BunSubprocess;
  try {
    child = Bun.spawn([command, ...args], {
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      env: options.env,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      windowsHide: true,
      // Own process group (POSIX): Ctrl-C reaches only the proxy, which stops children itself.
      detached: process.platform !== "win32",
    });
  } catch (error) {
    // Bun throws "Executable not found in $PATH" (ENOENT) or EACCES synchronously.
    throw spawnFailure(command, error);
  }
  let ended = false;
  const exited = child.exited.then(
    (): ExitStatus => ({ exitCode: child.exitCode, signal: child.signalCode }),
    (): ExitStatus => ({ exitCode: child.exitCode, signal: child.signalCode }),
  );
  void exited.then(() => {
    ended = true;
  });
  const subprocess: Subprocess = {
    pid: child.pid,
    stdin: toWebWritable(child.stdin),
    stdout: child.stdout,
    stderr: child.stderr,
    exited,
    kill: safeKill(
      () => ended || child.exitCode !== null || child.signalCode !== null,
      (signal) => child.kill(signal),
    ),
  };
  return subprocess;
};

/** Bun's largest idle timeout, seconds. */
const MAX_IDLE_SECONDS = 255;

const serve: Serve = async (options) => {
  // Bun's idle timer also runs while a handler works and while the request body arrives: a
  // request held open (accepted, possibly slow and quiet) gets none until its response is sent.
  const idleSeconds =
    options.idleTimeoutMs > 0
      ? Math.min(MAX_IDLE_SECONDS, Math.ceil(options.idleTimeoutMs / 1000))
      : 0;
  const server = Bun.serve({
    hostname: options.hostname,
    port: options.port,
    idleTimeout: idleSeconds,
    fetch: async (request, bun) => {
      let held = false;
      const response = await options.fetch(request, {
        connection: {
          holdOpen() {
            if (held || idleSeconds === 0) return;
            held = true;
            bun.timeout(request, 0);
          },
        },
      });
      if (!held) return response;
      // The connection may stay for further requests: give it its idle bound back once this
      // response has been sent (a body-less one at once, a stream when it ends).
      const restore = () => bun.timeout(request, idleSeconds);
      if (response.body === null) {
        restore();
        return response;
      }
      const body = response.body.pipeThrough(new TransformStream({ flush: restore }));
      return new Response(body, {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      });
    },
  });
  return {
    port: server.port ?? options.port,
    close: () => server.stop(),
  };
};

/** The Bun implementation of {@link Runtime}. */
export const bunRuntime: Runtime = {
  name: "bun",
  version: Bun.version,
  platform: process.platform,
  spawn,
  serve,
  // Both `bun script.ts a b` and a `bun build --compile` binary give
  // [bun, script-or-/$bunfs/root/name, ...args].
  args: () => Bun.argv.slice(2),
  env: () => {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined) env[key] = value;
    }
    return env;
  },
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
