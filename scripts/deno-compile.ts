/**
 * `deno task compile`: builds the proxy with `deno compile` for the targets Deno supports
 * (glibc Linux, macOS and Windows; no musl) into `dist/deno/<target>/claude-openai-proxy[.exe]`.
 * Run by Deno; the release workflow compiles each runner's own target and smoke-tests it.
 *
 *   deno task compile                      every Deno target
 *   deno task compile --target linux-x64   only these (repeatable; names of scripts/targets.ts)
 *
 * deno.json's settings (`unstable: no-legacy-abort`, the manual node_modules) are embedded.
 * Type checking is left to `tsc` (`npm run typecheck`), hence `--no-check`.
 *
 * The tasks of deno.json call `env deno`, not `deno`: deno task resolves a command name in
 * node_modules/.bin first and runs what it finds as a JavaScript file, and this repository's
 * node_modules/.bin/deno (the `deno` devDependency) is the native binary. `env` runs it from
 * PATH instead (on Windows: a shell with `env`, such as Git Bash).
 */
import { mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { binaryName, type ReleaseTarget, TARGETS, targetByName } from "./targets.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

// The slice of the `Deno` global used here (tsc does not know it). node:child_process is no
// use: Deno's version rewrites a spawn of its own executable into `deno run`.
declare const Deno: {
  execPath(): string;
  Command: new (
    command: string,
    options: { args: string[]; cwd: string; stdout: "inherit"; stderr: "inherit" },
  ) => { outputSync(): { code: number } };
};

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { target: { type: "string", multiple: true } },
  strict: true,
});

const targets: ReleaseTarget[] =
  values.target === undefined
    ? TARGETS.filter((t) => t.denoTarget !== undefined)
    : values.target.map(targetByName);

for (const target of targets) {
  if (target.denoTarget === undefined) {
    throw new Error(`deno compile does not support ${target.name}`);
  }
  const output = join(repoRoot, "dist", "deno", target.name, binaryName(target));
  rmSync(output, { force: true });
  mkdirSync(dirname(output), { recursive: true });
  const started = performance.now();
  const { code } = new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      "--allow-all",
      "--no-check",
      "--target",
      target.denoTarget,
      "--output",
      output,
      join(repoRoot, "src", "main.ts"),
    ],
    cwd: repoRoot,
    stdout: "inherit",
    stderr: "inherit",
  }).outputSync();
  if (code !== 0) throw new Error(`deno compile for ${target.name} failed (exit ${code})`);
  const mib = (statSync(output).size / 1024 / 1024).toFixed(1);
  console.log(
    `${target.name}: ${output} ${mib} MiB (${Math.round(performance.now() - started)} ms)`,
  );
}
