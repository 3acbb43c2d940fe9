/**
 * The dashboard (README "Dashboard"): `GET /` serves a page for a person, its scripts and
 * styles under `/dashboard/assets/` (embedded: src/dashboard/assets.generated.ts), and
 * `GET /dashboard/requests` the last requests the proxy answered. The page and its assets are
 * public (with API keys configured, the page asks for one); everything it shows comes from
 * endpoints that require a key like the API does (`/v1/usage`, `/dashboard/requests`, and
 * `/health` beyond its status). The app-wide Host/Origin guard applies as everywhere.
 */
import { type Context, Hono } from "hono";
import { DASHBOARD_ASSETS, type DashboardAsset } from "../dashboard/assets.generated.ts";
import type { AppDeps } from "../deps.ts";
import type { RecentRequestList } from "../recent.ts";
import { integerParam } from "./usage.ts";

/** Where the dashboard's scripts and styles are served. */
export const DASHBOARD_ASSETS_PREFIX = "/dashboard/assets/";

/**
 * The page's Content-Security-Policy: its own scripts, styles and endpoints only (no inline
 * script or style, no other origin), no framing (the key prompt must not be clickjacked).
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Whether `path` is the page or one of its assets (reachable without an API key). */
export function isDashboardPublicPath(path: string): boolean {
  return path === "/" || path.startsWith(DASHBOARD_ASSETS_PREFIX);
}

function serve(c: Context, asset: DashboardAsset): Response {
  return c.body(asset.body, 200, {
    "Content-Type": asset.type,
    "Content-Security-Policy": DASHBOARD_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
  });
}

/** The dashboard's routes, mounted at the root. */
export function dashboardRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get("/", (c) => {
    const page = DASHBOARD_ASSETS["index.html"];
    return page === undefined ? c.notFound() : serve(c, page);
  });
  app.get(`${DASHBOARD_ASSETS_PREFIX}:name`, (c) => {
    const name = c.req.param("name");
    const asset = name === "index.html" ? undefined : DASHBOARD_ASSETS[name];
    return asset === undefined || !Object.hasOwn(DASHBOARD_ASSETS, name)
      ? c.notFound()
      : serve(c, asset);
  });
  app.get("/dashboard/requests", (c) => {
    const capacity = deps.recent?.capacity ?? 1;
    const limit = integerParam(c.req.query("limit"), "limit", 1, Math.max(1, capacity));
    const body: RecentRequestList = { object: "list", data: deps.recent?.list(limit) ?? [] };
    return c.json(body, 200, { "Cache-Control": "no-store" });
  });
  return app;
}
