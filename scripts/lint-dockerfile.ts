/**
 * `npm run lint:dockerfile` (part of `npm run check`): the Dockerfile checked without Docker
 * (no base image can be pulled here). Two layers:
 * - `dockerfile-utils`' validator (the VS Code Docker language server's): syntax, flags,
 *   instruction arguments, durations, signals, JSON form;
 * - this project's rules over `dockerfile-ast`'s parse: several stages; tagged base images
 *   (no `latest`); in the final stage a non-root `USER`, a `HEALTHCHECK`, `HOST` on every
 *   interface without `ALLOW_PUBLIC_WITHOUT_KEYS`, `CLAUDE_CONFIG_DIR` and `DATA_DIR` on volumes;
 *   `CMD`/`ENTRYPOINT` in exec form; `ARG CLAUDE_CODE_VERSION` equal to package.json's pin of
 *   `@anthropic-ai/claude-code`; no secret in an `ARG`/`ENV` and no login or `.env` file copied
 *   in; `apt-get install --no-install-recommends` with the package lists removed.
 * Exits 1 and prints `Dockerfile:line: message` for each problem.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DockerfileParser, type Instruction, type JSONInstruction } from "dockerfile-ast";
import { validate } from "dockerfile-utils";
import { isMainModule } from "./main-module.ts";

/** One problem in a Dockerfile; `line` counts from 1. */
export interface DockerfileProblem {
  line: number;
  message: string;
}

/** What the Dockerfile must agree with. */
export interface DockerfileExpectations {
  /** The claude CLI release `ARG CLAUDE_CODE_VERSION` must default to. */
  claudeCodeVersion: string;
}

/** Names of build arguments and variables that hold secrets (keys, tokens, passwords). */
const SECRET_NAME = /(TOKEN|SECRET|PASSWORD|PASSWD|API_KEYS?|CREDENTIAL)/i;
/** Files that hold a login or secrets, never to be copied into an image. */
const SECRET_FILE = /(^|\/)(\.credentials\.json|\.claude\.json|\.env(\.[\w.-]*)?|\.npmrc)$/;
const ROOT_USER = /^(root|0)(:.*)?$/;
const TRUE = /^(1|true|yes|on)$/i;

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function lineOf(instruction: Instruction): number {
  return instruction.getRange().start.line + 1;
}

function isExecForm(instruction: Instruction): boolean {
  const json = instruction as JSONInstruction;
  return json.getOpeningBracket() !== null && json.getJSONStrings().length > 0;
}

/** The values an instruction lists: its JSON strings in exec form, else its arguments. */
function listedValues(instruction: Instruction): string[] {
  const json = instruction as Partial<JSONInstruction>;
  const strings = json.getJSONStrings?.() ?? [];
  return strings.length > 0
    ? strings.map((s) => s.getJSONValue())
    : instruction.getArguments().map((a) => a.getValue());
}

/** `name=value` pairs of an `ENV`, `ARG` or `LABEL` (value "" when it has none). */
function properties(instruction: Instruction): { name: string; value: string }[] {
  const withProps = instruction as Instruction & {
    getProperties?: () => { getName(): string; getValue(): string | null }[];
  };
  return (withProps.getProperties?.() ?? []).map((p) => ({
    name: p.getName(),
    value: p.getValue() ?? "",
  }));
}

/**
 * Every problem in `text` (a Dockerfile), the validator's and this project's rules', in line
 * order; [] when there are none.
 */
export function lintDockerfile(
  text: string,
  expected: DockerfileExpectations,
): DockerfileProblem[] {
  const problems: DockerfileProblem[] = validate(text).map((d) => ({
    line: d.range.start.line + 1,
    message: typeof d.message === "string" ? d.message : d.message.value,
  }));
  const add = (line: number, message: string) => problems.push({ line, message });
  const dockerfile = DockerfileParser.parse(text);
  const instructions = dockerfile.getInstructions();
  const froms = dockerfile.getFROMs();
  const last = froms.at(-1);
  if (last === undefined) {
    add(1, "No FROM instruction");
    return problems;
  }
  if (froms.length < 2) add(lineOf(last), "A multi-stage build is expected (one FROM only)");

  const stages = new Set<string>();
  for (const from of froms) {
    const image = from.getImageName();
    if (image !== null && !stages.has(image.toLowerCase())) {
      const tag = from.getImageTag();
      if (from.getImageDigest() === null && (tag === null || tag === "latest")) {
        add(lineOf(from), `Base image ${image} needs a version tag (not latest) or a digest`);
      }
    }
    const stage = from.getBuildStage();
    if (stage !== null) stages.add(stage.toLowerCase());
  }

  const versionArg = dockerfile
    .getInitialARGs()
    .map((arg) => arg.getProperty())
    .find((p) => p?.getName() === "CLAUDE_CODE_VERSION");
  if (versionArg === undefined || versionArg === null) {
    add(1, "No ARG CLAUDE_CODE_VERSION before the first FROM");
  } else if (versionArg.getValue() !== expected.claudeCodeVersion) {
    add(
      versionArg.getRange().start.line + 1,
      `ARG CLAUDE_CODE_VERSION is ${versionArg.getValue() ?? "(no default)"}, but package.json pins @anthropic-ai/claude-code ${expected.claudeCodeVersion}`,
    );
  }

  for (const instruction of instructions) {
    const keyword = instruction.getKeyword();
    if ((keyword === "CMD" || keyword === "ENTRYPOINT") && !isExecForm(instruction)) {
      add(lineOf(instruction), `${keyword} must use the exec form (["program", "arg"])`);
    }
    if (keyword === "ARG" || keyword === "ENV") {
      for (const { name, value } of properties(instruction)) {
        if (SECRET_NAME.test(name) && (keyword === "ARG" || value !== "")) {
          add(lineOf(instruction), `${keyword} ${name} would bake a secret into the image`);
        }
      }
    }
    if (keyword === "COPY" || keyword === "ADD") {
      const sources = listedValues(instruction)
        .filter((v) => !v.startsWith("--"))
        .slice(0, -1);
      for (const source of sources.filter((s) => SECRET_FILE.test(s))) {
        add(
          lineOf(instruction),
          `${keyword} ${source} would copy a login or secrets into the image`,
        );
      }
    }
    if (keyword === "RUN") {
      const script = instruction.getArgumentsContent() ?? "";
      if (/apt-get\s+(-\S+\s+)*install/.test(script)) {
        if (!script.includes("--no-install-recommends")) {
          add(lineOf(instruction), "apt-get install without --no-install-recommends");
        }
        if (!/rm -rf \/var\/lib\/apt\/lists/.test(script)) {
          add(lineOf(instruction), "apt-get install without rm -rf /var/lib/apt/lists/* after it");
        }
      }
    }
  }

  const final = instructions.filter((i) => lineOf(i) >= lineOf(last));
  const finalLine = lineOf(last);
  const users = final.filter((i) => i.getKeyword() === "USER");
  const user = users.at(-1)?.getArgumentsContent()?.trim();
  if (user === undefined) add(finalLine, "The final stage has no USER: it would run as root");
  else if (ROOT_USER.test(user)) add(lineOf(users.at(-1) as Instruction), `USER ${user} is root`);

  const health = final.filter((i) => i.getKeyword() === "HEALTHCHECK").at(-1);
  const healthArgs = health?.getArguments().map((a) => a.getValue().toUpperCase()) ?? [];
  if (health === undefined || !healthArgs.includes("CMD")) {
    add(
      health === undefined ? finalLine : lineOf(health),
      "The final stage has no HEALTHCHECK CMD",
    );
  }

  const env = new Map<string, string>();
  for (const i of final.filter((i) => i.getKeyword() === "ENV")) {
    for (const { name, value } of properties(i)) env.set(name, value);
  }
  const volumes = final.filter((i) => i.getKeyword() === "VOLUME").flatMap(listedValues);
  if (env.get("HOST") !== "0.0.0.0") {
    add(finalLine, "ENV HOST=0.0.0.0 is missing: the proxy would listen inside the container only");
  }
  if (TRUE.test(env.get("ALLOW_PUBLIC_WITHOUT_KEYS") ?? "")) {
    add(finalLine, "ALLOW_PUBLIC_WITHOUT_KEYS must not be set in the image: API keys are required");
  }
  for (const name of ["CLAUDE_CONFIG_DIR", "DATA_DIR"]) {
    const dir = env.get(name);
    if (dir === undefined || dir === "") add(finalLine, `ENV ${name} is missing`);
    else if (!volumes.includes(dir)) add(finalLine, `${name} (${dir}) is not a VOLUME`);
  }
  return problems.sort((a, b) => a.line - b.line);
}

/** The release of `@anthropic-ai/claude-code` pinned in `package.json` (devDependencies). */
export function pinnedClaudeCodeVersion(packageJson: string): string {
  const pkg = JSON.parse(packageJson) as { devDependencies?: Record<string, string> };
  const pin = pkg.devDependencies?.["@anthropic-ai/claude-code"];
  if (pin === undefined || !/^\d+\.\d+\.\d+$/.test(pin)) {
    throw new Error(`package.json must pin @anthropic-ai/claude-code exactly, found ${pin}`);
  }
  return pin;
}

if (isMainModule(import.meta.url)) {
  const expected = {
    claudeCodeVersion: pinnedClaudeCodeVersion(
      readFileSync(join(repoRoot, "package.json"), "utf8"),
    ),
  };
  const problems = lintDockerfile(readFileSync(join(repoRoot, "Dockerfile"), "utf8"), expected);
  for (const p of problems) console.error(`Dockerfile:${p.line}: ${p.message}`);
  if (problems.length > 0) {
    console.error(`lint:dockerfile: ${problems.length} problem(s)`);
    process.exit(1);
  }
  console.log("lint:dockerfile: Dockerfile OK");
}
