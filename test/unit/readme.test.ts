import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { NEWEST_TESTED_CLI, OLDEST_TESTED_CLI } from "../../src/claude/supported.ts";
import { configTable, SETTINGS } from "../../src/config.ts";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

/** Markdown tables compare equal whatever the cell padding (the formatter pads them). */
function normaliseTable(text: string): string {
  return text
    .split("\n")
    .map((line) => line.replace(/\s*\|\s*/g, "|").replace(/-{3,}/g, "---"))
    .join("\n");
}

describe("README", () => {
  it("has the configuration table generated from src/config.ts (npx tsx scripts/config-table.ts)", () => {
    expect(normaliseTable(readme)).toContain(normaliseTable(configTable()));
  });

  it("documents every flag and environment variable", () => {
    for (const setting of Object.values(SETTINGS)) {
      expect(readme).toContain(`--${setting.flag}`);
      expect(readme).toContain(setting.env);
    }
  });

  it("names the tested CLI range of src/claude/supported.ts and npm run test:cli", () => {
    const section = readme.split("## Supported Claude Code versions")[1]?.split("\n## ")[0] ?? "";
    expect(section).toContain(`${OLDEST_TESTED_CLI} (`);
    expect(section).toContain(`to ${NEWEST_TESTED_CLI} (`);
    expect(section).toContain("npm run test:cli -- ");
  });

  it("gives the install-and-start and install-and-test commands on its first screen", () => {
    const firstScreen = readme.split("\n").slice(0, 40).join("\n");
    expect(firstScreen).toContain("npm ci && npm start");
    expect(firstScreen).toContain("npm ci && npm test");
  });
});
