/**
 * Finds a Chromium for the browser tests (dashboard.e2e.test.ts), installing Debian's
 * `chromium` package when none is there and the machine allows it (apt-get present, running as
 * root: a fresh CI machine). Playwright's own browser download is not used: playwright-core
 * drives the system's Chromium through `executablePath`.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

/** Where Chromium (or Chrome) is usually found; `CHROMIUM_PATH` comes first. */
const CANDIDATES = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
  "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
];

/** The result of {@link findOrInstallChromium}. */
export type ChromiumLookup =
  | { ok: true; path: string; installed: boolean }
  | { ok: false; reason: string };

function found(): string | null {
  const configured = process.env.CHROMIUM_PATH;
  if (configured !== undefined && configured !== "") {
    return existsSync(configured) ? configured : null;
  }
  return CANDIDATES.find((path) => existsSync(path)) ?? null;
}

function which(program: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" }).status === 0;
}

/** Runs apt-get with `args`; the error text, or null when it succeeded. */
function aptGet(args: readonly string[]): string | null {
  const result = spawnSync("apt-get", [...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    timeout: 540_000,
  });
  if (result.status === 0) return null;
  return `apt-get ${args.join(" ")} failed (${result.error?.message ?? `exit ${result.status}`}): ${(result.stderr ?? "").trim().slice(-800)}`;
}

/**
 * A Chromium to drive: `CHROMIUM_PATH`, else a known path, else Debian's `chromium` installed
 * with apt-get (only as root on Linux with apt-get; an `apt-get update` first). Never throws:
 * when none can be had, `reason` says why (the test skips with it).
 */
export function findOrInstallChromium(): ChromiumLookup {
  const path = found();
  if (path !== null) return { ok: true, path, installed: false };
  if (process.env.CHROMIUM_PATH) {
    return { ok: false, reason: `CHROMIUM_PATH=${process.env.CHROMIUM_PATH} does not exist` };
  }
  if (process.platform !== "linux" || !which("apt-get")) {
    return {
      ok: false,
      reason: "no Chromium found and no apt-get to install it (set CHROMIUM_PATH)",
    };
  }
  if (process.getuid?.() !== 0) {
    return {
      ok: false,
      reason:
        "no Chromium found and not root to install it (apt-get install chromium, or set CHROMIUM_PATH)",
    };
  }
  const failed =
    aptGet(["install", "-y", "--no-install-recommends", "chromium"]) === null
      ? null
      : (aptGet(["update"]) ?? aptGet(["install", "-y", "--no-install-recommends", "chromium"]));
  if (failed !== null) return { ok: false, reason: failed };
  const installed = found();
  return installed === null
    ? { ok: false, reason: "apt-get installed chromium but no chromium binary was found" }
    : { ok: true, path: installed, installed: true };
}

/**
 * Flags for headless Chromium on a CI machine: no sandbox (root), no GPU, and none of its own
 * network traffic (a closed network refuses it, slowly).
 */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--disable-extensions",
];
