import { defineConfig } from "vitest/config";

/**
 * Two projects: `unit` (fast, in-process: test/unit, test/runtime) and `e2e` (the proxy as a
 * real process on each runtime of E2E_RUNTIMES, running the real claude CLI; one file at a
 * time because each CLI run costs ~290 MiB and a core for a second). The e2e group starts once
 * the unit group has finished, so timing-sensitive checks do not compete for the CPU.
 * `npx vitest run --project unit` runs only the fast ones; E2E_RUNTIMES=node,bun picks runtimes.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          sequence: { groupOrder: 0 },
          include: ["test/unit/**/*.test.ts", "test/runtime/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "e2e",
          sequence: { groupOrder: 1 },
          include: ["test/e2e/**/*.test.ts"],
          globalSetup: ["test/e2e/global-setup.ts"],
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
