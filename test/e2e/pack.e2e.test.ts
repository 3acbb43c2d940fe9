/**
 * The npm package as users get it: `npm pack` (whose prepack bundles dist/cli.js), the tarball
 * installed into an empty project (from the npm cache when it can), then the installed package
 * run the ways the README gives: `npx` and its bin under Node, `bunx --bun` under Bun and
 * `deno run -A npm:claude-openai-proxy` under Deno (which resolves `npm:` from that project's
 * node_modules, so the unpublished tarball is what runs). Each gets the smoke test of
 * scripts/smoke.ts: --version, start, /health, a chat completion and a streamed one, shutdown.
 * The runtimes are those of E2E_RUNTIMES (node, bun, deno).
 */
import { type SpawnSyncOptions, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_VERSION, smoke } from "../../scripts/smoke.ts";
import { repoRoot, selectedRuntimes } from "./harness.ts";

const exe = process.platform === "win32" ? ".exe" : "";
/** The real runtime binaries of the devDependencies (not npm's .cmd shims). */
const BUN = join(repoRoot, "node_modules", "bun", "bin", "bun.exe");
const DENO = join(repoRoot, "node_modules", "deno", `deno${exe}`);

const selected = selectedRuntimes();
const runtimes = (["node", "bun", "deno"] as const).filter((r) => selected.includes(r));

let root: string;
let app: string;

/** Runs npm (a .cmd on Windows, hence the shell there) and returns its stdout. */
function npm(args: readonly string[], options: SpawnSyncOptions): string {
  const result = spawnSync("npm", [...args], {
    encoding: "utf8",
    shell: process.platform === "win32",
    timeout: 110_000,
    ...options,
  });
  if (result.status !== 0) {
    throw new Error(
      `npm ${args.join(" ")} failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stdout}\n${result.stderr}`,
    );
  }
  return String(result.stdout);
}

function lines(text: string): string[] {
  return text.trim().split(/\r?\n/);
}

if (runtimes.length === 0) {
  describe("npm package", () => {
    it.skip("no Node, Bun or Deno in E2E_RUNTIMES", () => {});
  });
} else {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "claude-openai-proxy-pack-"));
    npm(["pack", "--pack-destination", root], { cwd: repoRoot });
    const tarball = readdirSync(root).find((name) => name.endsWith(".tgz"));
    if (tarball === undefined) throw new Error(`npm pack wrote no tarball to ${root}`);
    app = join(root, "app");
    await mkdir(app);
    await writeFile(join(app, "package.json"), '{ "name": "app", "private": true }\n');
    npm(["install", "--prefer-offline", "--no-audit", "--no-fund", join(root, tarball)], {
      cwd: app,
    });
  });
  afterAll(async () => {
    if (root !== undefined) await rm(root, { recursive: true, force: true, maxRetries: 5 });
  });

  describe("npm package", () => {
    it("holds the bundled bin and nothing else of the source", () => {
      const installed = join(app, "node_modules", "claude-openai-proxy");
      expect(existsSync(join(installed, "dist", "cli.js"))).toBe(true);
      expect(existsSync(join(installed, "src"))).toBe(false);
    });

    if (runtimes.includes("node")) {
      it("runs under Node: npx and the installed bin", async () => {
        expect(
          lines(npm(["exec", "--no", "--", "claude-openai-proxy", "--version"], { cwd: app })),
        ).toContain(PACKAGE_VERSION);
        // On Windows the bin is a .cmd shim: run its script with node, as the shim does.
        const command =
          process.platform === "win32"
            ? [process.execPath, join(app, "node_modules", "claude-openai-proxy", "dist", "cli.js")]
            : [join(app, "node_modules", ".bin", "claude-openai-proxy")];
        const report = await smoke({ command, cwd: app, log: () => {} });
        expect(report.health.runtime).toMatchObject({ name: "node" });
      });
    }

    if (runtimes.includes("bun")) {
      it.skipIf(!existsSync(BUN))("runs under Bun: bunx --bun", async () => {
        const report = await smoke({
          command: [BUN, "x", "--bun", "claude-openai-proxy"],
          cwd: app,
          log: () => {},
        });
        expect(report.health.runtime).toMatchObject({ name: "bun" });
      });
    }

    if (runtimes.includes("deno")) {
      it.skipIf(!existsSync(DENO))(
        "runs under Deno: deno run -A npm:claude-openai-proxy",
        async () => {
          const report = await smoke({
            command: [DENO, "run", "-A", "npm:claude-openai-proxy"],
            cwd: app,
            log: () => {},
          });
          expect(report.health.runtime).toMatchObject({ name: "deno" });
        },
      );
    }
  });
}
