/**
 * Browser-origin safety: which `Host`, `Origin` and `Content-Type` a request may carry. A web
 * page the user visits must not reach the proxy: DNS rebinding sends the page's own host name in
 * `Host`, a cross-site `fetch` or form sends its `Origin`, and a "simple" cross-site POST (no
 * preflight) can only be `text/plain`, form or multipart. Pure functions and one middleware.
 */
import type { MiddlewareHandler } from "hono";
import { ProxyError } from "../errors.ts";

/** Interface addresses that mean "every interface": no specific host name to allow. */
const WILDCARD_HOSTS = new Set(["0.0.0.0", "::", "[::]", "*", ""]);

/** Splits a `Host` value (`name`, `name:port`, `[v6]`, `[v6]:port`) into lower-case name and port. */
export function splitHost(value: string): { name: string; port: string | null } | null {
  const host = value.trim().toLowerCase();
  if (host === "") return null;
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    if (end < 0) return null;
    const rest = host.slice(end + 1);
    if (rest !== "" && !/^:\d{1,5}$/.test(rest)) return null;
    return { name: host.slice(1, end), port: rest === "" ? null : rest.slice(1) };
  }
  const colon = host.indexOf(":");
  if (colon < 0) return { name: host.replace(/\.$/, ""), port: null };
  // A bare IPv6 address (more than one colon) is no valid Host; a --host value may be one.
  if (host.indexOf(":", colon + 1) >= 0) return { name: host, port: null };
  const port = host.slice(colon + 1);
  if (!/^\d{1,5}$/.test(port)) return null;
  return { name: host.slice(0, colon).replace(/\.$/, ""), port };
}

/** Whether a host name (no port, no brackets) is `localhost`, in 127.0.0.0/8 or `::1`. */
export function isLoopbackName(name: string): boolean {
  const n = name.toLowerCase();
  if (n === "localhost" || n === "::1" || n === "0:0:0:0:0:0:0:1") return true;
  const octets = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(n);
  return octets?.slice(1).every((o) => Number(o) <= 255) === true;
}

/** The host policy: loopback always, plus configured names (with or without a port). */
export interface HostPolicy {
  /** `*`: any host (the check is off). */
  any: boolean;
  /** Names allowed on any port. */
  names: ReadonlySet<string>;
  /** `name:port` pairs allowed exactly. */
  hostPorts: ReadonlySet<string>;
}

/**
 * The policy from `--allowed-host` values and the `--host` the proxy binds (allowed too when it
 * is a specific address or name, not a wildcard).
 */
export function hostPolicy(allowedHosts: readonly string[], bindHost: string): HostPolicy {
  const names = new Set<string>();
  const hostPorts = new Set<string>();
  let any = false;
  for (const value of allowedHosts) {
    if (value.trim() === "*") {
      any = true;
      continue;
    }
    const host = splitHost(value);
    if (host === null) continue;
    if (host.port === null) names.add(host.name);
    else hostPorts.add(`${host.name}:${Number(host.port)}`);
  }
  if (!WILDCARD_HOSTS.has(bindHost.trim())) {
    const host = splitHost(bindHost);
    if (host !== null) names.add(host.name);
  }
  return { any, names, hostPorts };
}

/** Whether a `Host` header value is allowed by `policy`. */
export function isAllowedHost(value: string, policy: HostPolicy): boolean {
  if (policy.any) return true;
  const host = splitHost(value);
  if (host === null) return false;
  if (isLoopbackName(host.name) || policy.names.has(host.name)) return true;
  return host.port !== null && policy.hostPorts.has(`${host.name}:${Number(host.port)}`);
}

/**
 * Whether an `Origin` is the proxy's own: same host and port as the request's `Host` (scheme
 * http or https, which a TLS-terminating reverse proxy changes). `null` is never the proxy's own.
 */
export function isSameOrigin(origin: string, host: string): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return false;
  const a = splitHost(url.host);
  const b = splitHost(host);
  if (a === null || b === null || a.name !== b.name) return false;
  const defaultPort = url.protocol === "https:" ? "443" : "80";
  return Number(a.port ?? defaultPort) === Number(b.port ?? defaultPort);
}

/** Whether `origin` is allowed by the `--cors-origin` list (exact match, or `*`). */
export function isCorsOrigin(origin: string, corsOrigins: readonly string[]): boolean {
  return corsOrigins.some((o) => o === "*" || o === origin || o.replace(/\/$/, "") === origin);
}

/**
 * Whether a `Content-Type` is JSON: media type `application/json`, and when a charset is given,
 * UTF-8 (the only encoding JSON may use between systems, RFC 8259).
 */
export function isJsonContentType(value: string | null): boolean {
  if (value === null) return false;
  const [type = "", ...params] = value.split(";").map((s) => s.trim().toLowerCase());
  if (type !== "application/json") return false;
  for (const param of params) {
    const [key, raw = ""] = param.split("=").map((s) => s.trim());
    if (key === "charset" && !["utf-8", "utf8"].includes(raw.replace(/^"|"$/g, ""))) return false;
  }
  return true;
}

/** Methods whose request carries a body the proxy reads. */
const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

/** Options of {@link originGuard}. */
export interface OriginGuardOptions {
  /** `--allowed-host` values. */
  allowedHosts: readonly string[];
  /** `--host`. */
  bindHost: string;
  /** `--cors-origin` values. */
  corsOrigins: readonly string[];
}

/**
 * The middleware, applied app-wide before CORS and auth:
 * - `Host` (or the URL's host when the header is absent) loopback, `--host` or `--allowed-host`,
 *   else 403 `host_not_allowed`;
 * - an `Origin` other than the proxy's own refused with 403 `origin_not_allowed` unless
 *   `--cors-origin` allows it (preflights included);
 * - POST, PUT and PATCH only with `Content-Type: application/json`, else 415.
 * @throws ProxyError 403 or 415 in OpenAI's shape.
 */
export function originGuard(options: OriginGuardOptions): MiddlewareHandler {
  const policy = hostPolicy(options.allowedHosts, options.bindHost);
  return async (c, next) => {
    const host = c.req.header("host") ?? new URL(c.req.url).host;
    if (!isAllowedHost(host, policy)) {
      const name = splitHost(host)?.name ?? host;
      throw new ProxyError(
        403,
        `Host '${host}' is not allowed: the proxy answers requests addressed to localhost or a loopback address ` +
          `(a guard against DNS rebinding). To reach it by this name, start it with --allowed-host ${name} (env ALLOWED_HOSTS)`,
        { code: "host_not_allowed" },
      );
    }
    const origin = c.req.header("origin");
    if (
      origin !== undefined &&
      !isSameOrigin(origin, host) &&
      !isCorsOrigin(origin, options.corsOrigins)
    ) {
      throw new ProxyError(
        403,
        origin === "null"
          ? "Requests from pages without an origin (sandboxed frames, file:// pages) are not allowed: " +
              "any page can send 'Origin: null', so it cannot be allowed safely. Serve the page from an origin and allow that one with --cors-origin"
          : `Cross-origin requests from '${origin}' are not allowed. To let web pages of that origin use the proxy, ` +
              `start it with --cors-origin ${origin} (env CORS_ORIGINS)`,
        { code: "origin_not_allowed" },
      );
    }
    if (
      BODY_METHODS.has(c.req.method) &&
      !isJsonContentType(c.req.header("content-type") ?? null)
    ) {
      const type = c.req.header("content-type");
      throw new ProxyError(
        415,
        `Request bodies must be JSON: send Content-Type: application/json (got ${type === undefined ? "none" : `'${type}'`})`,
        { code: "unsupported_media_type" },
      );
    }
    return next();
  };
}
