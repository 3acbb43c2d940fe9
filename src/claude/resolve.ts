/**
 * Finding the claude CLI without a shell: a path is used as given, a bare name is searched on
 * PATH (with PATHEXT on Windows). On Windows npm installs `claude.cmd` shims, which a child
 * process cannot start without cmd.exe (and killing cmd.exe would leave the CLI running):
 * such a shim is read and followed to the program it runs.
 */

/** What resolution needs to know about the system. */
export interface ResolveEnv {
  platform: string;
  env: Record<string, string | undefined>;
  isFile(path: string): boolean;
  /**
   * Reads a text file, null when it does not exist (like `Runtime.readTextFile`). Without
   * it Windows `.cmd`/`.bat` shims are skipped.
   */
  readTextFile?(path: string): Promise<string | null>;
}

/** A program to start directly and the arguments that go before the caller's own. */
export interface ResolvedProgram {
  /** The program file. */
  path: string;
  /** e.g. `["C:\\...\\cli.js"]` when a shim runs a JavaScript CLI with node; usually empty. */
  args: string[];
}

/** One way a shim may start its program, before checking that the program exists. */
export interface ShimCommand {
  /** An absolute path, or a bare name to look up on PATH (e.g. `node`). */
  program: string;
  args: string[];
}

const DEFAULT_PATHEXT = ".COM;.EXE;.BAT;.CMD";
const DIRECT = [".exe", ".com"];
const SHIMS = [".cmd", ".bat"];

function pathSeparator(platform: string): string {
  return platform === "win32" ? ";" : ":";
}

function join(dir: string, name: string, platform: string): string {
  const sep = platform === "win32" ? "\\" : "/";
  return dir.endsWith("/") || dir.endsWith("\\") ? `${dir}${name}` : `${dir}${sep}${name}`;
}

function envValue(env: Record<string, string | undefined>, name: string): string | undefined {
  if (env[name] !== undefined) return env[name];
  const key = Object.keys(env).find((k) => k.toUpperCase() === name);
  return key === undefined ? undefined : env[key];
}

function extensionOf(path: string): string {
  return /\.[a-z0-9]+$/i.exec(path)?.[0].toLowerCase() ?? "";
}

/** The directory of a Windows path, with its trailing backslash (what `%~dp0` expands to). */
function windowsDirname(path: string): string {
  const index = Math.max(path.lastIndexOf("\\"), path.lastIndexOf("/"));
  return index < 0 ? ".\\" : `${path.slice(0, index)}\\`;
}

/**
 * Normalizes a Windows path: `/` to `\`, repeated separators collapsed (a leading `\\` of a
 * UNC path kept), `.` and `..` segments resolved.
 */
export function normalizeWindowsPath(path: string): string {
  const unc = /^[\\/]{2}[^\\/]/.test(path);
  const parts = path.replace(/\//g, "\\").split("\\");
  const out: string[] = [];
  for (const [index, part] of parts.entries()) {
    if (part === "" && index > 0) continue;
    if (part === ".") continue;
    if (part === ".." && out.length > 1 && out[out.length - 1] !== "..") {
      out.pop();
      continue;
    }
    out.push(part);
  }
  const joined = out.join("\\");
  return unc ? `\\${joined}` : joined;
}

/** Splits a batch command into words: double-quoted strings (quotes removed) or bare runs. */
function batchWords(text: string): string[] {
  const words: string[] = [];
  for (const match of text.matchAll(/"([^"]*)"|(\S+)/g)) words.push(match[1] ?? match[2] ?? "");
  return words;
}

/** The part of a batch line after its last `&` outside quotes (the command that runs last). */
function lastCommand(line: string): string {
  let inQuotes = false;
  let start = 0;
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '"') inQuotes = !inQuotes;
    else if (line[i] === "&" && !inQuotes) start = i + 1;
  }
  return line.slice(start);
}

/**
 * Reads a Windows command shim (npm's cmd-shim, old and new, pnpm's, or a one-line wrapper) and
 * lists the commands it may run, in the order the shim would try them: each line that passes
 * `%*` on gives one, with `%~dp0`/`%dp0%` replaced by the shim's directory and `%_prog%` by each
 * value the shim assigns to it (`%dp0%\node.exe`, then `node`).
 */
export function parseCmdShim(text: string, shimPath: string): ShimCommand[] {
  const dir = windowsDirname(shimPath);
  const expandDir = (s: string) => s.replace(/%~dp0|%dp0%/gi, () => dir);
  const lines = text.split(/\r?\n/).map((l) => l.trim().replace(/^@/, ""));
  const progs: string[] = [];
  for (const line of lines) {
    const set = /^set\s+"?_prog=([^"]*)"?\s*$/i.exec(line);
    if (set?.[1] !== undefined) progs.push(expandDir(set[1]));
  }
  const commands: ShimCommand[] = [];
  for (const line of lines) {
    const at = line.indexOf("%*");
    if (at < 0) continue;
    const [first, ...rest] = batchWords(lastCommand(line.slice(0, at)));
    if (first === undefined) continue;
    const args = rest.map((a) => {
      const expanded = expandDir(a);
      return expanded.includes("\\") ? normalizeWindowsPath(expanded) : expanded;
    });
    const programs = /^%_prog%$/i.test(first) ? progs : [expandDir(first)];
    for (const program of programs) {
      if (program === "" || program.includes("%")) continue;
      const isPath = program.includes("\\") || program.includes("/");
      commands.push({ program: isPath ? normalizeWindowsPath(program) : program, args });
    }
  }
  return commands;
}

/** Extensions to try for `command` on Windows, in PATHEXT order (".exe" etc.), or [""]. */
function windowsExtensions(command: string, env: Record<string, string | undefined>): string[] {
  if (extensionOf(command) !== "") return [""];
  return (envValue(env, "PATHEXT") ?? DEFAULT_PATHEXT)
    .split(";")
    .map((e) => e.trim().toLowerCase())
    .filter((e) => DIRECT.includes(e) || SHIMS.includes(e));
}

function pathDirs(system: ResolveEnv): string[] {
  return (envValue(system.env, "PATH") ?? "")
    .split(pathSeparator(system.platform))
    .map((d) => d.replace(/^"(.*)"$/, "$1"))
    .filter((d) => d !== "");
}

/** A bare program name (like `node` in a shim) on PATH, `.exe`/`.com` only. */
function findDirect(name: string, system: ResolveEnv): string | null {
  const exts = extensionOf(name) === "" ? DIRECT : [""];
  for (const dir of pathDirs(system)) {
    for (const ext of exts) {
      const candidate = join(dir, name + ext, system.platform);
      if (DIRECT.includes(extensionOf(candidate)) && system.isFile(candidate)) return candidate;
    }
  }
  return null;
}

/** Follows a shim file to a program that exists, or null. */
async function followShim(shimPath: string, system: ResolveEnv): Promise<ResolvedProgram | null> {
  let text: string | null = null;
  try {
    text = (await system.readTextFile?.(shimPath)) ?? null;
  } catch {
    // unreadable: not a usable shim
  }
  if (text === null) return null;
  for (const command of parseCmdShim(text, shimPath)) {
    const isPath = command.program.includes("\\") || command.program.includes("/");
    const path = isPath
      ? DIRECT.includes(extensionOf(command.program)) && system.isFile(command.program)
        ? command.program
        : null
      : findDirect(command.program, system);
    if (path !== null) return { path, args: command.args };
  }
  return null;
}

/** Whether a file found on Windows is a `.cmd`/`.bat` shim (which needs a shell to run). */
function isShim(path: string, platform: string): boolean {
  return platform === "win32" && SHIMS.includes(extensionOf(path));
}

/**
 * The existing files `command` may name, in search order: the path itself (on Windows with each
 * PATHEXT extension), or for a bare name each PATH directory in turn.
 */
function* candidates(command: string, system: ResolveEnv): Generator<string> {
  const { platform } = system;
  const hasDir = command.includes("/") || (platform === "win32" && command.includes("\\"));
  const exts = platform === "win32" ? windowsExtensions(command, system.env) : [""];
  const dirs = hasDir ? [null] : pathDirs(system);
  for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = dir === null ? command + ext : join(dir, command + ext, platform);
      if (system.isFile(candidate)) yield candidate;
    }
  }
}

/**
 * Resolves `command` to a program that can be started without a shell, or null when there is
 * none. On Windows a bare name is tried with each PATHEXT extension in each PATH directory;
 * `.exe`/`.com` files are used as they are, `.cmd`/`.bat` shims are read with
 * {@link ResolveEnv.readTextFile} and followed to their program (an npm shim of a JavaScript
 * CLI gives node, with the script in `args`); a shim that leads nowhere is skipped.
 */
export async function resolveProgram(
  command: string,
  system: ResolveEnv,
): Promise<ResolvedProgram | null> {
  for (const candidate of candidates(command, system)) {
    if (!isShim(candidate, system.platform)) return { path: candidate, args: [] };
    const program = await followShim(candidate, system);
    if (program !== null) return program;
  }
  return null;
}

/**
 * Resolves `command` to an existing program file without reading any shim, or null when it
 * cannot be found (see {@link resolveProgram}, which also follows Windows shims).
 */
export function resolveCommand(command: string, system: ResolveEnv): string | null {
  for (const candidate of candidates(command, system)) {
    if (!isShim(candidate, system.platform)) return candidate;
  }
  return null;
}
