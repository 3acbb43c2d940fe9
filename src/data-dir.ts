/**
 * Where the proxy keeps data that outlives a run (the usage log), per platform convention:
 * XDG on Linux and other Unixes, `~/Library/Application Support` on macOS, `%APPDATA%` on Windows.
 */

/** The directory name under the platform's data directory. */
export const APP_DIR_NAME = "claude-openai-proxy";

/** An absolute path for `platform` (a drive or UNC path on Windows). */
function isAbsolute(path: string, platform: string): boolean {
  if (platform === "win32") return /^[a-zA-Z]:[\\/]/.test(path) || /^[\\/]{2}/.test(path);
  return path.startsWith("/");
}

function trimSeparators(path: string, platform: string): string {
  const trimmed = path.replace(platform === "win32" ? /[\\/]+$/ : /\/+$/, "");
  // Keep a root ("/" or "C:\") whole.
  if (trimmed === "") return path.slice(0, 1);
  if (platform === "win32" && /^[a-zA-Z]:$/.test(trimmed)) return `${trimmed}\\`;
  return trimmed;
}

function join(base: string, name: string, platform: string): string {
  const sep = platform === "win32" ? "\\" : "/";
  const root = trimSeparators(base, platform);
  return root.endsWith(sep) ? `${root}${name}` : `${root}${sep}${name}`;
}

/**
 * The default data directory (pure: reads nothing but its arguments).
 * - Linux and other Unixes: `$XDG_DATA_HOME/claude-openai-proxy` when that is an absolute path
 *   (the XDG spec ignores relative ones), else `$HOME/.local/share/claude-openai-proxy`.
 * - macOS (`darwin`): `$HOME/Library/Application Support/claude-openai-proxy`.
 * - Windows (`win32`): `%APPDATA%\claude-openai-proxy`, else
 *   `%USERPROFILE%\AppData\Roaming\claude-openai-proxy`.
 *
 * The home directory is `HOME` (`USERPROFILE` on Windows) from `env`, then `homedir` (e.g. the
 * OS's idea of it). Empty variables count as unset.
 * @param env the environment
 * @param platform `process.platform` naming: "linux", "darwin", "win32", ...
 * @param homedir fallback home directory when the environment names none
 * @returns the directory, or null when no home directory is known (the caller then asks for
 *   an explicit data directory or keeps usage in memory)
 */
export function defaultDataDir(
  env: Record<string, string | undefined>,
  platform: string,
  homedir?: string,
): string | null {
  const get = (name: string) => {
    const value = env[name];
    return value === undefined || value === "" ? undefined : value;
  };
  if (platform === "win32") {
    const appData = get("APPDATA");
    if (appData !== undefined) return join(appData, APP_DIR_NAME, platform);
    const home = get("USERPROFILE") ?? (homedir === "" ? undefined : homedir);
    if (home === undefined) return null;
    return join(join(join(home, "AppData", platform), "Roaming", platform), APP_DIR_NAME, platform);
  }
  const home = get("HOME") ?? (homedir === "" ? undefined : homedir);
  if (platform === "darwin") {
    if (home === undefined) return null;
    return join(join(home, "Library/Application Support", platform), APP_DIR_NAME, platform);
  }
  const xdg = get("XDG_DATA_HOME");
  if (xdg !== undefined && isAbsolute(xdg, platform)) return join(xdg, APP_DIR_NAME, platform);
  if (home === undefined) return null;
  return join(join(home, ".local/share", platform), APP_DIR_NAME, platform);
}
