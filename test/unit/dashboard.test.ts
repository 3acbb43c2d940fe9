/**
 * The dashboard page's serving (src/routes/dashboard.ts) and its embedded assets
 * (src/dashboard/assets.generated.ts, made by scripts/dashboard-assets.ts): the committed module
 * matches its sources, the page is public and carries its security headers, and the page names
 * only assets that exist.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dashboardAssetsModule, GENERATED_PATH } from "../../scripts/dashboard-assets.ts";
import { DASHBOARD_ASSETS } from "../../src/dashboard/assets.generated.ts";
import { stubApp } from "./stub-app.ts";

const repoRoot = join(import.meta.dirname, "..", "..");

describe("dashboard assets", () => {
  it("are up to date with src/dashboard/page/ and uplot (else: npx tsx scripts/dashboard-assets.ts)", () => {
    const committed = readFileSync(join(repoRoot, GENERATED_PATH), "utf8");
    expect(committed === dashboardAssetsModule(repoRoot)).toBe(true);
  });

  it("carry uPlot with its license notice", () => {
    expect(DASHBOARD_ASSETS["uplot.js"]?.body).toMatch(
      /^\/\*! uPlot \d+\.\d+\.\d+\nThe MIT License/,
    );
    expect(DASHBOARD_ASSETS["uplot.js"]?.body).toContain("var uPlot=");
  });

  it("the page uses no inline script, style or event handler (the CSP forbids them)", () => {
    const html = DASHBOARD_ASSETS["index.html"]?.body ?? "";
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style\b|\sstyle="|\son[a-z]+="/i);
    for (const [, name] of html.matchAll(/"dashboard\/assets\/([^"]+)"/g)) {
      expect(Object.keys(DASHBOARD_ASSETS)).toContain(name);
    }
  });
});

describe("GET /", () => {
  it("serves the page without a key, with CSP, nosniff and no framing; the data needs the key", async () => {
    const stub = await stubApp(["--api-key", "k1"]);
    try {
      const page = await stub.app.request("/");
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
      expect(page.headers.get("x-content-type-options")).toBe("nosniff");
      expect(page.headers.get("x-frame-options")).toBe("DENY");
      expect(await page.text()).toBe(DASHBOARD_ASSETS["index.html"]?.body);
      const script = await stub.app.request("/dashboard/assets/dashboard.js");
      expect(script.status).toBe(200);
      expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
      for (const path of [
        "/dashboard/assets/index.html",
        "/dashboard/assets/__proto__",
        "/dashboard/assets/",
      ]) {
        expect((await stub.app.request(path)).status, path).toBe(404);
      }
      expect((await stub.app.request("/v1/usage?group_by=day")).status).toBe(401);
      expect((await stub.app.request("/dashboard/requests")).status).toBe(401);
    } finally {
      await stub.close();
    }
  });
});
