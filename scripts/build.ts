/**
 * Builds the single-file binaries with `bun build --compile` (run by Bun).
 *
 *   bun scripts/build.ts                 every target of scripts/targets.ts -> dist/release/
 *   bun scripts/build.ts --target NAME   only these targets (repeatable)
 *   bun scripts/build.ts --local         this machine's target -> dist/bin/claude-openai-proxy
 *   bun scripts/build.ts --npm           the npm package's entry -> dist/cli.js (`prepack`)
 *
 * A release build writes, per target, `dist/release/<name>/claude-openai-proxy[.exe]` and the
 * archive `dist/release/claude-openai-proxy-<name>.tar.gz` (`.zip` for Windows), then
 * `SHA256SUMS` (sha256sum format) over the archives and `manifest.json` with every size.
 * Cross-compiling fetches each target's Bun runtime from npm once (cached in ~/.bun).
 * The version comes from package.json, which `src/version.ts` imports and Bun embeds; the
 * dashboard's files come from src/dashboard/assets.generated.ts, regenerated first
 * (scripts/dashboard-assets.ts).
 */
import { createHash } from "node:crypto";
import {
  appendFileSync,
  chmodSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { GENERATED_PATH, writeDashboardAssets } from "./dashboard-assets.ts";
import {
  archiveName,
  binaryName,
  PROGRAM,
  type ReleaseTarget,
  TARGETS,
  targetByName,
} from "./targets.ts";

const repoRoot = resolve(import.meta.dir, "..");
const entry = join(repoRoot, "src", "main.ts");
const version: string = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version;

/** One built target, as recorded in `manifest.json`. */
interface BuiltTarget {
  name: string;
  binary: string;
  binaryBytes: number;
  archive: string;
  archiveBytes: number;
  sha256: string;
}

/**
 * Compiles `src/main.ts` for `bunTarget` (the running Bun's own platform when undefined).
 * `.env` and `bunfig.toml` autoloading is off: the binary reads only flags and the environment,
 * as the proxy does under Node and Deno.
 */
async function compile(bunTarget: string | undefined, outfile: string): Promise<void> {
  mkdirSync(dirname(outfile), { recursive: true });
  const result = await Bun.build({
    entrypoints: [entry],
    minify: true,
    compile: {
      ...(bunTarget === undefined ? {} : { target: bunTarget as Bun.Build.CompileTarget }),
      outfile,
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
  });
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    throw new Error(`Cannot compile for ${bunTarget ?? "this machine"}`);
  }
}

/** Runs a program, throwing with its output when it fails. */
function run(cmd: string[], cwd: string): void {
  const result = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) {
    throw new Error(
      `${cmd.join(" ")} failed (exit ${result.exitCode}): ${result.stderr.toString()}${result.stdout.toString()}`,
    );
  }
}

/**
 * Archives the one binary in `dir` as `archive`: `tar -czf` (GNU tar on Linux, bsdtar on macOS
 * and Windows keep the executable bit), or a zip for Windows (`zip`, else bsdtar's `-a`).
 */
function archive(dir: string, file: string, archivePath: string): void {
  rmSync(archivePath, { force: true });
  if (archivePath.endsWith(".zip")) {
    if (Bun.which("zip") !== null) run(["zip", "-q", "-X", archivePath, file], dir);
    else run(["tar", "-a", "-c", "-f", archivePath, file], dir);
  } else {
    run(["tar", "-czf", archivePath, file], dir);
  }
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Builds `targets` into `outDir` with archives, SHA256SUMS and manifest.json. */
async function buildRelease(targets: readonly ReleaseTarget[], outDir: string): Promise<void> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const built: BuiltTarget[] = [];
  for (const target of targets) {
    const started = performance.now();
    const dir = join(outDir, target.name);
    const binary = join(dir, binaryName(target));
    await compile(target.bunTarget, binary);
    const archivePath = join(outDir, archiveName(target));
    archive(dir, binaryName(target), archivePath);
    const entry: BuiltTarget = {
      name: target.name,
      binary: `${target.name}/${binaryName(target)}`,
      binaryBytes: statSync(binary).size,
      archive: basename(archivePath),
      archiveBytes: statSync(archivePath).size,
      sha256: sha256(archivePath),
    };
    built.push(entry);
    console.log(
      `${target.name.padEnd(18)} binary ${mib(entry.binaryBytes).padStart(10)}  ` +
        `${entry.archive} ${mib(entry.archiveBytes).padStart(10)}  ` +
        `(${Math.round(performance.now() - started)} ms)`,
    );
  }
  const sums = built.map((b) => `${b.sha256}  ${b.archive}\n`).join("");
  writeFileSync(join(outDir, "SHA256SUMS"), sums);
  writeFileSync(
    join(outDir, "manifest.json"),
    `${JSON.stringify({ name: PROGRAM, version, bun: Bun.version, targets: built }, null, 2)}\n`,
  );
  console.log(`${PROGRAM} ${version}: ${built.length} targets in ${outDir}`);
  const summary = process.env.GITHUB_STEP_SUMMARY;
  if (summary !== undefined && summary !== "") appendFileSync(summary, sizeTable(built));
}

/** The sizes as a Markdown table (for the release workflow's job summary). */
function sizeTable(built: readonly BuiltTarget[]): string {
  const rows = built.map(
    (b) => `| ${b.name} | ${mib(b.binaryBytes)} | ${b.archive} | ${mib(b.archiveBytes)} |`,
  );
  return [
    `### ${PROGRAM} ${version} (Bun ${Bun.version})`,
    "",
    "| target | binary | archive | archive size |",
    "| --- | --- | --- | --- |",
    ...rows,
    "",
  ].join("\n");
}

/**
 * Builds this machine's binary to `dist/bin/claude-openai-proxy[.exe]` with the running Bun
 * (nothing is downloaded) and checks that it prints the version.
 */
async function buildLocal(): Promise<void> {
  const name = process.platform === "win32" ? `${PROGRAM}.exe` : PROGRAM;
  const outfile = join(repoRoot, "dist", "bin", name);
  await compile(undefined, outfile);
  const result = Bun.spawnSync([outfile, "--version"], { stdout: "pipe", stderr: "pipe" });
  const printed = result.stdout.toString().trim();
  if (printed !== version) {
    throw new Error(`${outfile} --version printed '${printed}', expected '${version}'`);
  }
  console.log(`${outfile} ${mib(statSync(outfile).size)} (${version})`);
}

/**
 * Bundles `src/main.ts` and every dependency into one ES module, `dist/cli.js`, the npm package's
 * bin: Node 20 cannot run TypeScript, and one file behaves the same under `npx` (Node), `bunx`
 * and `deno run npm:`. The runtime modules that detect.ts imports dynamically are bundled too.
 */
async function buildNpm(): Promise<void> {
  const outfile = join(repoRoot, "dist", "cli.js");
  rmSync(outfile, { force: true });
  const result = await Bun.build({
    entrypoints: [entry],
    target: "node",
    format: "esm",
    outdir: dirname(outfile),
    naming: basename(outfile),
    banner: "#!/usr/bin/env node",
  });
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    throw new Error("Cannot bundle dist/cli.js");
  }
  chmodSync(outfile, 0o755);
  console.log(`${outfile} ${mib(statSync(outfile).size)} (${version})`);
}

// The dashboard's files are compiled in from a generated module: make sure it matches them.
if (writeDashboardAssets(repoRoot)) console.log(`${GENERATED_PATH} regenerated`);

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    local: { type: "boolean", default: false },
    npm: { type: "boolean", default: false },
    target: { type: "string", multiple: true },
    out: { type: "string" },
  },
  strict: true,
});

if (values.local) {
  await buildLocal();
} else if (values.npm) {
  await buildNpm();
} else {
  const targets = values.target === undefined ? TARGETS : values.target.map(targetByName);
  await buildRelease(targets, resolve(values.out ?? join(repoRoot, "dist", "release")));
}
