/**
 * Global setup of the e2e project: when the `binary` runtime is selected (E2E_RUNTIMES,
 * default all), builds `dist/bin/claude-openai-proxy` with `npm run build:binary` if it is
 * missing or older than any file it is built from (src/, scripts/build.ts, package.json, the
 * lockfile).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { BINARY_PATH, repoRoot, selectedRuntimes } from "./harness.ts";

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

/** Whether the binary is missing or older than its sources. */
export function binaryIsStale(): boolean {
  if (!existsSync(BINARY_PATH)) return true;
  const sources = ["src", "scripts/build.ts", "package.json", "package-lock.json"]
    .map((p) => join(repoRoot, p))
    .filter((p) => existsSync(p));
  const newestSource = Math.max(...sources.map(newestMtime));
  return statSync(BINARY_PATH).mtimeMs < newestSource;
}

export default function setup(): void {
  if (!selectedRuntimes().includes("binary") || !binaryIsStale()) return;
  const started = Date.now();
  const result = spawnSync("npm", ["run", "build:binary"], {
    cwd: repoRoot,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (result.status !== 0) {
    throw new Error(
      `npm run build:binary failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stdout}\n${result.stderr}`,
    );
  }
  console.log(`[e2e] built ${BINARY_PATH} in ${Date.now() - started} ms`);
}
