/**
 * Installs the real clients of clients.e2e.test.ts from npm into a cache, once per version:
 * `$CLIENTS_CACHE` (default `~/.cache/claude-openai-proxy/clients`) holds one directory per
 * package, `<name>@<version>/node_modules/...`. An install goes to a staging directory that is
 * renamed into place when npm succeeded, so an interrupted or concurrent install never leaves a
 * half-filled entry behind. Packages are installed with `--ignore-scripts`: the tests run the
 * installed files directly (opencode's platform binary, openclaw.mjs), and no lifecycle script
 * gets to fetch anything from elsewhere.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

/** Where installed clients are kept (`$CLIENTS_CACHE` or `~/.cache/claude-openai-proxy/clients`). */
export function clientsCache(): string {
  const configured = process.env.CLIENTS_CACHE;
  if (configured !== undefined && configured !== "") return configured;
  return join(homedir(), ".cache", "claude-openai-proxy", "clients");
}

/** Written into an entry once npm has installed it completely. */
const MARKER = ".installed";

/** The result of {@link installPackage}. */
export type Installed =
  | {
      ok: true;
      /** `<cache>/<name>@<version>` (its `node_modules/<name>` is the package). */
      dir: string;
      /** Whether this call ran npm (false: the cache already had it). */
      fresh: boolean;
      ms: number;
    }
  | {
      ok: false;
      /** npm could not reach the registry: the test skips rather than fails. */
      offline: boolean;
      message: string;
    };

/** npm's words for a registry it could not reach. */
const NETWORK_ERROR =
  /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ERR_SOCKET_TIMEOUT|ENETDOWN)\b|network (request|connectivity)|request to \S+ failed/i;

function runNpm(
  args: readonly string[],
  cwd: string,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn("npm", [...args], {
      cwd,
      shell: process.platform === "win32",
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, npm_config_update_notifier: "false" },
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.once("error", (error) => resolve({ code: null, out: `${out}\n${error.message}` }));
    child.once("close", (code) => resolve({ code, out }));
  });
}

/** In-process de-duplication: one npm per entry even when two describes ask at once. */
const pending = new Map<string, Promise<Installed>>();

/**
 * Installs `name@version` (exact version) into the cache unless it is already there.
 * Never throws: a failure is returned, marked `offline` when npm could not reach the registry.
 */
export function installPackage(name: string, version: string): Promise<Installed> {
  const dir = join(clientsCache(), `${name}@${version}`);
  let install = pending.get(dir);
  if (install === undefined) {
    install = doInstall(name, version, dir);
    pending.set(dir, install);
  }
  return install;
}

async function doInstall(name: string, version: string, dir: string): Promise<Installed> {
  const started = performance.now();
  const installedVersion = () => {
    try {
      const manifest = join(dir, "node_modules", name, "package.json");
      return (JSON.parse(readFileSync(manifest, "utf8")) as { version?: string }).version;
    } catch {
      return undefined;
    }
  };
  if (existsSync(join(dir, MARKER)) && installedVersion() === version) {
    return { ok: true, dir, fresh: false, ms: performance.now() - started };
  }
  const staging = `${dir}.staging-${process.pid}-${Date.now()}`;
  try {
    await mkdir(staging, { recursive: true });
    await writeFile(
      join(staging, "package.json"),
      `${JSON.stringify({ name: "client-cache-entry", private: true }, null, 2)}\n`,
    );
    const { code, out } = await runNpm(
      [
        "install",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--no-package-lock",
        "--loglevel=error",
        // Two retries as usual, but seconds apart (npm's default waits ~70 s in all when offline).
        "--fetch-retry-mintimeout=2000",
        "--fetch-retry-maxtimeout=10000",
        `${name}@${version}`,
      ],
      staging,
    );
    if (code !== 0) {
      return {
        ok: false,
        offline: NETWORK_ERROR.test(out),
        message: `npm install ${name}@${version} failed (exit ${code}):\n${out.trim()}`,
      };
    }
    await writeFile(join(staging, MARKER), `${new Date().toISOString()}\n`);
    // Another run may have finished the same install meanwhile: then its copy stays.
    if (!(existsSync(join(dir, MARKER)) && installedVersion() === version)) {
      await rm(dir, { recursive: true, force: true });
      try {
        await rename(staging, dir);
      } catch (error) {
        if (!existsSync(join(dir, MARKER))) throw error;
      }
    }
    return { ok: true, dir, fresh: true, ms: performance.now() - started };
  } catch (error) {
    return {
      ok: false,
      offline: false,
      message: `installing ${name}@${version} into ${dir}: ${(error as Error).message}`,
    };
  } finally {
    await rm(staging, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** Whether `version` (x.y.z) is at least `min` (x.y.z). */
export function atLeast(version: string, min: string): boolean {
  const a = version.split(".").map(Number);
  const b = min.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}
