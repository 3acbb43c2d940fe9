/** Whether a script runs as the program (`tsx scripts/x.ts`, `bun scripts/x.ts`) or is imported. */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * True when the module at `moduleUrl` (its `import.meta.url`) is the script that Node, tsx or
 * Bun was started with. Paths are compared after resolving symlinks, case-insensitively on
 * Windows (where `d:\` and `D:\` name the same file).
 */
export function isMainModule(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    const a = realpathSync(script);
    const b = realpathSync(fileURLToPath(moduleUrl));
    return process.platform === "win32" ? a.toLowerCase() === b.toLowerCase() : a === b;
  } catch {
    return false;
  }
}
