/**
 * The Hono app: routes plus one `onError` that renders every failure in OpenAI's error shape.
 * No runtime globals: everything comes in through {@link AppDeps}.
 */
import { Hono } from "hono";
import type { AppDeps } from "./deps.ts";
import { ProxyError, toProxyError } from "./openai/errors.ts";
import { chatRoutes } from "./routes/chat.ts";
import { modelsRoutes } from "./routes/models.ts";

/** Builds the app. */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();

  app.get("/health", (c) =>
    c.json({
      status: deps.claude.path === null ? "degraded" : "ok",
      version: deps.version,
      runtime: { name: deps.runtime.name, version: deps.runtime.version },
      claude: {
        found: deps.claude.path !== null,
        path: deps.claude.path,
        version: deps.claude.version,
        ...(deps.claude.error === null ? {} : { error: deps.claude.error }),
      },
    }),
  );
  // The MCP endpoint of runs with client tools; the unguessable token is the credential.
  app.all("/mcp/:token", async (c) => {
    const bridge = deps.toolRuns.bridge(c.req.param("token"));
    if (bridge === undefined) return c.json({ error: "unknown MCP endpoint" }, 404);
    return bridge.handle(c.req.raw);
  });
  app.route("/v1", modelsRoutes(deps));
  app.route("/v1", chatRoutes(deps));

  app.notFound((c) => {
    const error = new ProxyError(404, `Unknown route: ${c.req.method} ${c.req.path}`, {
      type: "invalid_request_error",
      code: "unknown_url",
    });
    return c.json(error.toJSON(), 404);
  });
  app.onError((err, c) => {
    const error = toProxyError(err);
    if (error.status >= 500 && !(err instanceof ProxyError)) {
      deps.log.error({ err: String(err), stack: (err as Error).stack }, "unhandled error");
    }
    // 499 (client closed) has no reader; send it anyway for logs and tests.
    return c.json(error.toJSON(), error.status as 400, error.headers());
  });
  return app;
}
