/**
 * Runs probe.ts under each real runtime (as crossws/h3 do) and checks its JSON report.
 * The three probes run concurrently: each needs ~12 s for its quiet-stream check.
 */

import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const probe = join(root, "test", "runtime", "probe.ts");
const exe = process.platform === "win32" ? ".exe" : "";
const probeArgs = ["--probe", "x y"];

/** How to start probe.ts on each runtime (the real binaries, not the npm .cmd shims). */
const runtimes = [
  { name: "node", command: process.execPath, args: ["--import", "tsx", probe, ...probeArgs] },
  {
    name: "bun",
    command: join(root, "node_modules", "bun", "bin", "bun.exe"),
    args: [probe, ...probeArgs],
  },
  {
    name: "deno",
    command: join(root, "node_modules", "deno", `deno${exe}`),
    args: ["run", "-A", probe, ...probeArgs],
  },
] as const;

interface ProbeReport {
  runtime: string;
  ok: boolean;
  failures: string[];
  checks: Record<string, unknown>;
}

function runProbe(command: string, args: readonly string[]): Promise<ProbeReport> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd: root, timeout: 90_000, maxBuffer: 16 * 1024 * 1024, windowsHide: true },
      (error, stdout, stderr) => {
        const line = stdout.trim().split("\n").at(-1) ?? "";
        try {
          resolve(JSON.parse(line) as ProbeReport);
        } catch {
          reject(new Error(`Probe printed no report (${String(error)}): ${stdout}\n${stderr}`));
        }
      },
    );
  });
}

describe.concurrent("runtime contract", () => {
  for (const runtime of runtimes) {
    it(`holds on ${runtime.name}`, { timeout: 120_000 }, async () => {
      const report = await runProbe(runtime.command, runtime.args);
      const { checks } = report;
      expect(report.failures).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.runtime).toBe(runtime.name);
      expect(checks.runtime).toMatchObject({ name: runtime.name, platform: process.platform });
      expect(checks.args).toEqual(probeArgs);
      expect(checks.echo).toMatchObject({
        stdoutLength: 300_014,
        stdoutHead: "HELLO RUNTIME\n",
        status: { exitCode: 3, signal: null },
      });
      expect(checks.missing).toEqual({
        "definitely-not-a-program-xyz": "ENOENT",
        "/definitely/not/here/xyz": "ENOENT",
      });
      expect(checks.kill).toMatchObject({
        status: { exitCode: null, signal: "SIGTERM" },
        killAfterExit: "ok",
      });
      expect(checks.files).toMatchObject({
        text: "secret",
        log: "one\ntwo\n",
        missing: null,
        secondWrite: "EEXIST",
        removed: true,
        ...(process.platform === "win32" ? {} : { mode: "600", dirMode: "700" }),
      });
      expect(checks.bigBody).toMatchObject({
        status: 200,
        length: 2 * 1024 * 1024,
        sameBytes: true,
      });
      expect(checks.signals).toMatchObject({ abortedAfterSuccess: false });
      expect((checks.signals as { slowAbortMs: number }).slowAbortMs).toBeLessThan(2_000);
      const sse = checks.sse as { cancelMs: number; producingAfterWindow: boolean };
      expect(sse).toMatchObject({ clientChunks: 2, producingAfterWindow: false });
      expect(sse.cancelMs).toBeLessThan(2_000);
      expect(checks.quiet).toMatchObject({ text: "data: first\n\ndata: second\n\n" });
      expect(checks.refusedAfterClose).toBe(true);
      expect(checks.pinned).toMatchObject({
        localhostLoopback: true,
        status: 200,
        text: "pinned",
        header: "1",
        moved: [302, "/elsewhere"],
        aborted: "rejected",
        unresolvable: "threw",
      });
    });
  }
});
