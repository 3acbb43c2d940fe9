/**
 * The runtime contract: everything the rest of the proxy needs from Bun, Deno or Node.
 * One implementation per runtime lives beside this file (`bun.ts`, `deno.ts`, `node.ts`);
 * `detect.ts` picks one. Nothing outside `src/runtime/` touches `Bun`, `Deno`, `process`
 * or `node:*` (see DESIGN.md "Layers").
 */

/** Signals the proxy sends to a child. On Windows every signal ends the process at once. */
export type KillSignal = "SIGTERM" | "SIGKILL";

/** Options for {@link Spawn}. The command is started directly, never through a shell. */
export interface SpawnOptions {
  /** Working directory of the child. */
  cwd?: string;
  /** The child's complete environment (nothing is inherited implicitly). */
  env: Record<string, string>;
}

/**
 * How a child ended, as a value (after execa/tinyexec): `exitCode` is null when a signal
 * ended it, `signal` names that signal.
 */
export interface ExitStatus {
  exitCode: number | null;
  signal: string | null;
}

/** A running child process with piped stdin, stdout and stderr. */
export interface Subprocess {
  /** OS process id. */
  readonly pid: number;
  /** The child's stdin; close it to send EOF. */
  readonly stdin: WritableStream<Uint8Array>;
  /** The child's stdout bytes. */
  readonly stdout: ReadableStream<Uint8Array>;
  /** The child's stderr bytes. */
  readonly stderr: ReadableStream<Uint8Array>;
  /** Resolves once the child has exited; never rejects. */
  readonly exited: Promise<ExitStatus>;
  /** Sends a signal; a no-op when the child has already exited. Never throws. */
  kill(signal: KillSignal): void;
}

/**
 * Starts `command` with `args` (no shell).
 * @throws Error with `code: "ENOENT"` when the program does not exist or cannot be executed.
 */
export type Spawn = (command: string, args: readonly string[], options: SpawnOptions) => Subprocess;

/** A started HTTP server. */
export interface Server {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Stops accepting connections; resolves when the listener is closed. */
  close(): Promise<void>;
}

/** Control over the connection of one request, given by {@link Serve} to its fetch handler. */
export interface ConnectionControl {
  /**
   * The request is accepted (authorised, body read): its response may be slow and quiet, so
   * the connection's idle timeout is lifted until the response has been sent.
   */
  holdOpen(): void;
}

/** The second argument of the fetch handler (Hono: `c.env`). */
export interface ServeEnv {
  connection: ConnectionControl;
}

/** Options for {@link Serve}. */
export interface ServeOptions {
  hostname: string;
  /** 0 picks a free port. */
  port: number;
  /**
   * Close a connection that sends nothing for this long, ms, unless its request was held open
   * ({@link ConnectionControl.holdOpen}); 0: never. Where the runtime offers such a bound (Bun).
   */
  idleTimeoutMs: number;
  /**
   * A web-standard fetch handler (e.g. `app.fetch` of Hono). A response with `Connection: close`
   * ends its connection (which is why Deno serves through `node:http`, not `Deno.serve`: the
   * latter ignores it, denoland/deno#9411).
   */
  fetch: (request: Request, env: ServeEnv) => Response | Promise<Response>;
}

/**
 * Starts an HTTP server; resolves once it listens. Responses of held-open requests (SSE, long
 * runs) are never cut by an idle timer.
 */
export type Serve = (options: ServeOptions) => Promise<Server>;

/**
 * Resolves a host name as the system does (hosts file, then DNS; A and AAAA records).
 * @returns every address, as text (`"203.0.113.7"`, `"2001:db8::7"`).
 * @throws Error when the name does not resolve.
 */
export type Lookup = (hostname: string) => Promise<string[]>;

/** Options for {@link PinnedFetch}. */
export interface PinnedFetchOptions {
  /** The IP address to connect to, in place of resolving the URL's host name. */
  address: string;
  /** Aborts the request and its body. */
  signal: AbortSignal;
  /** Request headers (`Host` comes from the URL). */
  headers?: Record<string, string>;
}

/**
 * One GET of an http(s) URL over a connection to `options.address`: the URL's host name is
 * never resolved again, yet it is what `Host`, TLS SNI and the certificate check use (the
 * caller has vetted the address). Redirects are returned, not followed. Never reuses a
 * pooled connection.
 * @throws Error when the connection or the request fails.
 */
export type PinnedFetch = (url: string, options: PinnedFetchOptions) => Promise<Response>;

/** The name of a supported runtime. */
export type RuntimeName = "bun" | "deno" | "node";

/** Everything runtime-specific the proxy uses, as one object passed down from `main.ts`. */
export interface Runtime {
  readonly name: RuntimeName;
  /** Runtime version, e.g. "1.3.5" or "20.20.2". */
  readonly version: string;
  /** `process.platform` naming: "linux", "darwin", "win32". */
  readonly platform: string;
  readonly spawn: Spawn;
  readonly serve: Serve;
  /** Resolves a host name (image URLs are vetted before connecting). */
  readonly lookup: Lookup;
  /** Fetches a URL from an address already vetted (see {@link PinnedFetch}). */
  readonly fetchPinned: PinnedFetch;
  /** Command-line arguments after the script (or binary) name. */
  args(): string[];
  /** A snapshot of the environment. */
  env(): Record<string, string>;
  /** The system's temporary directory. */
  tmpdir(): string;
  /** Creates a directory (and parents), mode 0700. */
  mkdir(path: string): Promise<void>;
  /** Creates a new unique directory under `parent` named `prefix` + random suffix; returns its path. */
  mkdtemp(parent: string, prefix: string): Promise<string>;
  /** Writes a file with mode 0600, failing if it already exists. */
  writeFile(path: string, data: string | Uint8Array): Promise<void>;
  /** Appends text to a file (created with mode 0600 when missing). */
  appendFile(path: string, data: string): Promise<void>;
  /** Reads a text file; resolves null when it does not exist. */
  readTextFile(path: string): Promise<string | null>;
  /** Removes a file or directory tree; never throws for a missing path. */
  remove(path: string): Promise<void>;
  /** Renames a file, replacing `to` if it exists (atomic within one file system). */
  rename(from: string, to: string): Promise<void>;
  /** The names of the entries of a directory; resolves [] when it does not exist. */
  listDir(path: string): Promise<string[]>;
  /** Whether a regular file exists at `path` (synchronous: used while resolving the CLI path). */
  isFile(path: string): boolean;
  /**
   * The absolute real path (symlinks resolved) of an existing directory; null when `path` does
   * not exist or is not a directory. Relative paths resolve against the current directory.
   */
  realDir(path: string): Promise<string | null>;
  /** Registers a handler for SIGINT/SIGTERM (on Windows: SIGINT/SIGBREAK). */
  onShutdownSignal(handler: (signal: string) => void): void;
  /** Memory in use by this process, bytes (resident set size). */
  rss(): number;
  /** The memory this process may use, bytes: the machine's, or a cgroup's limit (runtime/memory.ts). */
  totalMemory(): number;
  /** Ends this process. */
  exit(code: number): never;
}
