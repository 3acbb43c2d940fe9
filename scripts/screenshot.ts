/**
 * Regenerates docs/dashboard.png, the README's picture of the dashboard: runs the browser case
 * of test/e2e/dashboard.e2e.test.ts (a real proxy on Node with the pinned CLI against the fake
 * Anthropic API, a few requests, headless Chromium) with `DASHBOARD_SCREENSHOT` set.
 *
 *   npx tsx scripts/screenshot.ts [output.png]
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const output = resolve(process.argv[2] ?? join(repoRoot, "docs", "dashboard.png"));
const result = spawnSync(
  join(repoRoot, "node_modules", ".bin", "vitest"),
  [
    "run",
    "--project",
    "e2e",
    "test/e2e/dashboard.e2e.test.ts",
    "-t",
    "shows the figures of /v1/usage and /health",
  ],
  {
    cwd: repoRoot,
    stdio: "inherit",
    env: { ...process.env, E2E_RUNTIMES: "node", DASHBOARD_SCREENSHOT: output },
  },
);
if (result.status !== 0 || !existsSync(output)) {
  console.error(`No screenshot written (vitest exit ${result.status ?? result.error?.message})`);
  process.exit(1);
}
console.log(`Wrote ${output}`);
