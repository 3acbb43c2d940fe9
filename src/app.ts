/**
 * The Hono app: middleware (request id, browser-origin guard, CORS, access control, bounded
 * body, connection hints), routes, and
 * one `onError` that renders every failure in OpenAI's error shape. No runtime globals:
 * everything comes in through {@link AppDeps}.
 */
import { type Context, Hono } from "hono";
import { cors } from "hono/cors";
import { requestId } from "hono/request-id";
import { apiKeyAuth, keyMatches, presentedKey } from "./auth.ts";
import { classifyCliVersion, TESTED_CLI_RANGE } from "./claude/supported.ts";
import type { AppDeps } from "./deps.ts";
import { anthropicErrorBody, anthropicStatus, ProxyError, toProxyError } from "./errors.ts";
import { boundedBody } from "./http/body.ts";
import { closeAfterRefusal, holdOpen } from "./http/connection.ts";
import { limitHeaders } from "./http/limits.ts";
import { allowedMethods } from "./http/methods.ts";
import { originGuard } from "./http/origin.ts";
import { LIMIT_HEADER_NAMES } from "./limits.ts";
import { dashboardRoutes, isDashboardPublicPath } from "./routes/dashboard.ts";
import { modelsRoutes } from "./routes/models.ts";
import { usageRoutes } from "./routes/usage.ts";
import { chatRoutes } from "./surfaces/chat/route.ts";
import { messagesRoutes } from "./surfaces/messages/route.ts";
import { responsesRoutes } from "./surfaces/responses/route.ts";

/**
 * Whether errors of a request are rendered in the Messages API's shape
 * (`{"type":"error","error":{"type","message"}}`, https://docs.anthropic.com/en/api/errors):
 * paths under `/v1/messages`, and `/v1/models` asked with an `anthropic-version` header (as the
 * Anthropic SDKs send). Everything else answers in OpenAI's shape.
 */
export function wantsAnthropicErrors(path: string, headers: Headers): boolean {
  if (path === "/v1/messages" || path.startsWith("/v1/messages/")) return true;
  return (
    (path === "/v1/models" || path.startsWith("/v1/models/")) && headers.has("anthropic-version")
  );
}

/** The paths whose answers are CLI turns. */
const TURN_PATHS = ["/v1/chat/completions", "/v1/responses", "/v1/messages"];

/** Paths reachable without an API key (the dashboard page asks for one itself). */
function isPublicPath(path: string): boolean {
  return path === "/health" || path.startsWith("/mcp/") || isDashboardPublicPath(path);
}

/** Builds the app. */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  const { config } = deps;

  app.use(requestId());
  app.use(async (c, next) => {
    const started = Date.now();
    await next();
    if (c.req.path.startsWith("/mcp/")) return;
    const labels = { method: c.req.method, route: c.req.routePath, status: String(c.res.status) };
    deps.metrics.httpRequests.inc(labels);
    deps.metrics.httpRequestDuration.observe(labels, (Date.now() - started) / 1000);
    deps.log.info(
      {
        requestId: c.get("requestId"),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        durationMs: Date.now() - started,
      },
      "request",
    );
  });
  app.use(closeAfterRefusal());
  app.use(
    originGuard({
      allowedHosts: config.allowedHosts,
      bindHost: config.host,
      corsOrigins: config.corsOrigins,
    }),
  );
  if (config.corsOrigins.length > 0) {
    app.use(
      cors({
        origin: config.corsOrigins.includes("*") ? "*" : config.corsOrigins,
        allowHeaders: [
          "Authorization",
          "Content-Type",
          "x-api-key",
          "x-request-id",
          "OpenAI-Organization",
          "OpenAI-Project",
          "anthropic-version",
          "anthropic-beta",
          "anthropic-dangerous-direct-browser-access",
        ],
        exposeHeaders: [
          "x-request-id",
          "request-id",
          "Retry-After",
          "x-claude-compacted",
          "x-should-retry",
          ...LIMIT_HEADER_NAMES,
        ],
        maxAge: 600,
      }),
    );
  }
  app.use(apiKeyAuth(config.apiKeys, isPublicPath));
  app.use(boundedBody({ maxBytes: config.maxBodyBytes, timeoutMs: config.bodyTimeoutMs }));
  app.use(holdOpen());

  const cliSupport = classifyCliVersion(deps.claude.version);
  // Open to all, so that a load balancer can probe it; with API keys configured, only a valid
  // key sees more than the status (CLI path and version, runtime, ANTHROPIC_API_KEY, load).
  app.get("/health", async (c) => {
    const status =
      deps.claude.path === null ? "degraded" : deps.lifecycle.draining ? "draining" : "ok";
    if (config.apiKeys.length > 0) {
      const key = presentedKey(c.req.raw.headers);
      if (key === null || !(await keyMatches(key, config.apiKeys))) return c.json({ status });
    }
    return c.json({
      status,
      version: deps.version,
      runtime: { name: deps.runtime.name, version: deps.runtime.version },
      claude: {
        found: deps.claude.path !== null,
        path: deps.claude.path,
        version: deps.claude.version,
        supported: cliSupport.supported,
        tested_range: TESTED_CLI_RANGE,
        ...(cliSupport.warning === null ? {} : { warning: cliSupport.warning }),
        ...(deps.claude.error === null ? {} : { error: deps.claude.error }),
        // From the last run that answered or failed for want of a login (null: none yet).
        ...(deps.login === undefined ? {} : deps.login.state),
      },
      anthropic_api_key: {
        set: deps.anthropicApiKeySet,
        passed_to_cli: deps.anthropicApiKeySet && !config.dropAnthropicApiKey,
      },
      // running / waiting_for_tools: slots in use and parked runs (kept from before the pool).
      processes: {
        ...deps.pool.counts(),
        queued: deps.limiter.queued,
        running: deps.limiter.running,
        waiting_for_tools: deps.toolRuns.parkedCount,
      },
      limits: deps.rateLimits.snapshot(),
    });
  });
  app.get("/metrics", async (c) => {
    deps.metrics.claudeProcesses.set(deps.limiter.running);
    deps.metrics.claudeProcessesWaitingForTools.set(deps.toolRuns.parkedCount);
    const pool = deps.pool.counts();
    deps.metrics.claudeProcessesWarm.set(pool.warm);
    for (const state of ["busy", "parked", "warm", "spare"] as const) {
      deps.metrics.poolProcesses.set({ state }, pool[state]);
    }
    deps.metrics.poolMaxProcesses.set(pool.max);
    deps.metrics.queueDepth.set(deps.limiter.queued);
    deps.metrics.showLimits(deps.rateLimits.snapshot());
    const { contentType, body } = await deps.metrics.render();
    return c.body(body, 200, { "Content-Type": contentType });
  });
  // The MCP endpoint of runs with client tools: only the run's own CLI holds the secret.
  app.all("/mcp/:token", async (c) => {
    const bridge = deps.toolRuns.bridge(c.req.param("token"));
    if (bridge === undefined || !(await bridge.authorized(c.req.raw))) {
      return c.json({ error: "unknown MCP endpoint" }, 404);
    }
    return bridge.handle(c.req.raw);
  });
  // The subscription's rate-limit state on every answer of the three API surfaces.
  app.on("POST", TURN_PATHS, limitHeaders(deps.rateLimits));
  app.route("/", dashboardRoutes(deps));
  app.route("/v1", usageRoutes(deps));
  app.route("/v1", modelsRoutes(deps));
  app.route("/v1", chatRoutes(deps));
  app.route("/v1", messagesRoutes(deps));
  app.route("/v1", responsesRoutes(deps));

  // OPTIONS that CORS did not answer (no Origin, the proxy's own, or CORS off): the methods.
  app.options("*", (c) => {
    const methods = allowedMethods(app, c.req.path);
    if (methods.length === 0) return c.notFound();
    return c.body(null, 204, { Allow: methods.join(", ") });
  });

  /** An error response in the shape the request's surface uses (see wantsAnthropicErrors). */
  const errorResponse = (c: Context, error: ProxyError): Response => {
    if (wantsAnthropicErrors(c.req.path, c.req.raw.headers)) {
      const requestId = c.get("requestId");
      const status = anthropicStatus(error);
      return c.json(anthropicErrorBody(error, requestId), status as 400, {
        ...error.headers(),
        "request-id": requestId,
        // What the proxy cannot do (501) does not get better by retrying; the SDKs retry 5xx.
        ...(status === 501 ? { "x-should-retry": "false" } : {}),
      });
    }
    return c.json(error.toJSON(), error.status as 400, error.headers());
  };
  app.notFound((c) => {
    const error = new ProxyError(404, `Unknown route: ${c.req.method} ${c.req.path}`, {
      type: "invalid_request_error",
      code: "unknown_url",
    });
    return errorResponse(c, error);
  });
  app.onError((err, c) => {
    const error = toProxyError(err);
    if (error.status >= 500 && !(err instanceof ProxyError)) {
      deps.log.error(
        { requestId: c.get("requestId"), err: String(err), stack: (err as Error).stack },
        "unhandled error",
      );
    }
    return errorResponse(c, error);
  });
  return app;
}
