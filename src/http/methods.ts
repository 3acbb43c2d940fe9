/** The methods a path answers, for the `Allow` header of an `OPTIONS` answer. */
import type { Hono } from "hono";

/** Methods probed, in the order `Allow` lists them. */
const PROBED = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] as const;

/**
 * The methods `app` has a route for at `path` (middleware for every path does not count), plus
 * `HEAD` where `GET` is (Hono answers it) and `OPTIONS`; empty when no route matches.
 */
export function allowedMethods(app: Hono, path: string): string[] {
  const methods = PROBED.filter((method) => {
    const probe = method === "HEAD" ? "GET" : method;
    const [matches] = app.router.match(probe, path);
    return matches.some(([[, route]]) => !(route.method === "ALL" && /^\/?\*$/.test(route.path)));
  });
  return methods.length === 0 ? [] : [...methods, "OPTIONS"];
}
