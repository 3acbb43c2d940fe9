/**
 * Finding the claude CLI without a shell: a path is used as given, a bare name is searched on
 * PATH (with PATHEXT on Windows, where npm installs `claude.cmd` shims next to the real program).
 */

/** What resolution needs to know about the system. */
export interface ResolveEnv {
  platform: string;
  env: Record<string, string | undefined>;
  isFile(path: string): boolean;
}

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

/**
 * Resolves `command` to an existing file, or null when it cannot be found.
 * On Windows only `.exe`/`.com` programs are returned for bare names (a `.cmd` shim cannot be
 * started without a shell).
 */
export function resolveCommand(command: string, system: ResolveEnv): string | null {
  const { platform } = system;
  const hasDir = command.includes("/") || (platform === "win32" && command.includes("\\"));
  const exts =
    platform === "win32" ? (/\.[a-z0-9]+$/i.test(command) ? [""] : [".exe", ".com"]) : [""];
  if (hasDir) {
    for (const ext of exts) if (system.isFile(command + ext)) return command + ext;
    return null;
  }
  const dirs = (envValue(system.env, "PATH") ?? "")
    .split(pathSeparator(platform))
    .filter((d) => d !== "");
  for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = join(dir, command + ext, platform);
      if (system.isFile(candidate)) return candidate;
    }
  }
  return null;
}
