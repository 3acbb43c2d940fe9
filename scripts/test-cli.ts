/**
 * `npm run test:cli -- <release> [vitest arguments...]`: the end-to-end suite against another
 * release of the claude CLI. `<release>` is a version ("2.1.221"), `latest` (the newest on npm),
 * `oldest` (OLDEST_TESTED_CLI) or `newest` (NEWEST_TESTED_CLI, the pinned devDependency).
 *
 * Installs `@anthropic-ai/claude-code@<version>` from npm into `<cache>/<version>` (cache:
 * `$CLAUDE_CLI_CACHE`, else `~/.cache/claude-openai-proxy/cli`; reused when already there), then
 * runs `npx vitest run --project e2e [vitest arguments...]` with `CLAUDE_CLI_BIN` pointing at
 * that CLI (test/fixtures/claude-cli.ts). E2E_RUNTIMES picks the runtimes as usual. Exits with
 * vitest's code.
 *
 *   npm run test:cli -- oldest
 *   E2E_RUNTIMES=node npm run test:cli -- latest test/e2e/chat.e2e.test.ts
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { NEWEST_TESTED_CLI, OLDEST_TESTED_CLI } from "../src/claude/supported.ts";
import { cliCandidates } from "../test/fixtures/claude-cli.ts";
import { isMainModule } from "./main-module.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The npm package of the CLI. */
export const CLI_PACKAGE = "@anthropic-ai/claude-code";

/** npm and npx are `.cmd` shims on Windows, which only a shell runs. */
const useShell = process.platform === "win32";

/** The cache directory: `$CLAUDE_CLI_CACHE`, else `~/.cache/claude-openai-proxy/cli`. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  const configured = env.CLAUDE_CLI_CACHE;
  if (configured !== undefined && configured !== "") return resolve(configured);
  return join(home, ".cache", "claude-openai-proxy", "cli");
}

/**
 * The version a release argument names: `oldest`/`newest` from src/claude/supported.ts, a
 * version as is, `latest` via `npmView()`.
 * @throws Error for anything that is not a version (it becomes a directory name and an npm spec).
 */
export function resolveRelease(release: string, npmView: () => string): string {
  if (release === "oldest") return OLDEST_TESTED_CLI;
  if (release === "newest") return NEWEST_TESTED_CLI;
  const version = release === "latest" ? npmView().trim() : release;
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) {
    throw new Error(
      release === "latest"
        ? `npm view ${CLI_PACKAGE} version printed '${version}', not a version`
        : `'${release}' is not a CLI release: use a version (2.1.221), latest, oldest or newest`,
    );
  }
  return version;
}

/** The CLI installed under `prefix` if it is `version`, else null. */
export function installedCli(prefix: string, version: string): string | null {
  const manifest = join(prefix, "node_modules", ...CLI_PACKAGE.split("/"), "package.json");
  try {
    if ((JSON.parse(readFileSync(manifest, "utf8")) as { version?: string }).version !== version)
      return null;
  } catch {
    return null;
  }
  return cliCandidates(join(prefix, "node_modules")).find((path) => existsSync(path)) ?? null;
}

/** Runs a command with inherited stdio; its exit code (1 when it died of a signal). */
function run(command: string, args: readonly string[], env = process.env): Promise<number> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd: repoRoot, env, stdio: "inherit", shell: useShell });
    child.once("error", fail);
    child.once("exit", (code) => done(code ?? 1));
  });
}

/** Installs `version` under `<cache>/<version>` unless it is there; the CLI's path. */
async function ensureCli(version: string): Promise<string> {
  const prefix = join(cacheDir(), version);
  const found = installedCli(prefix, version);
  if (found !== null) return found;
  mkdirSync(prefix, { recursive: true });
  console.log(`test:cli: installing ${CLI_PACKAGE}@${version} into ${prefix}`);
  const spec = `${CLI_PACKAGE}@${version}`;
  // No install scripts: the CLI's native binary comes in its platform package.
  const args = [
    "install",
    "--prefix",
    prefix,
    "--no-audit",
    "--no-fund",
    "--no-save",
    "--ignore-scripts",
    spec,
  ];
  const code = await run("npm", args);
  if (code !== 0) throw new Error(`npm ${args.join(" ")} failed (exit ${code})`);
  const installed = installedCli(prefix, version);
  if (installed === null) throw new Error(`No claude CLI under ${prefix} after npm install`);
  return installed;
}

/** `npm view @anthropic-ai/claude-code version`. */
function latestVersion(): string {
  const result = spawnSync("npm", ["view", CLI_PACKAGE, "version"], {
    encoding: "utf8",
    shell: useShell,
  });
  if (result.status !== 0) {
    throw new Error(`npm view ${CLI_PACKAGE} version failed: ${result.stderr || result.error}`);
  }
  return result.stdout;
}

if (isMainModule(import.meta.url)) {
  const [release, ...vitestArgs] = process.argv.slice(2);
  if (release === undefined || release === "--help" || release === "-h") {
    console.error(
      "usage: npm run test:cli -- <version|latest|oldest|newest> [vitest arguments...]\n" +
        `tested range: ${OLDEST_TESTED_CLI} to ${NEWEST_TESTED_CLI}\n` +
        "Runs the e2e suite (vitest --project e2e) with that claude CLI. Environment:\n" +
        "  E2E_RUNTIMES      node,bun,deno,binary (default: all four; binary builds the proxy with Bun first)\n" +
        "  CLAUDE_CLI_CACHE  where releases are installed (default ~/.cache/claude-openai-proxy/cli)",
    );
    process.exit(release === undefined ? 2 : 0);
  }
  try {
    const version = resolveRelease(release, latestVersion);
    const bin = await ensureCli(version);
    const reported = spawnSync(bin, ["--version"], { encoding: "utf8" }).stdout?.trim() ?? "";
    console.log(
      `test:cli: claude CLI ${version} (${release}) at ${bin}, --version '${reported}'; ` +
        `runtimes ${process.env.E2E_RUNTIMES || "all"}`,
    );
    const env = { ...process.env, CLAUDE_CLI_BIN: bin };
    process.exit(await run("npx", ["vitest", "run", "--project", "e2e", ...vitestArgs], env));
  } catch (error) {
    console.error(`test:cli: ${(error as Error).message}`);
    process.exit(1);
  }
}
