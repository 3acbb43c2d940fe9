/** `GET /v1/models` and `GET /v1/models/{id}` (https://platform.openai.com/docs/api-reference/models). */
import { Hono } from "hono";
import type { AppDeps } from "../deps.ts";
import { ProxyError } from "../errors.ts";
import { listModels, resolveModel } from "../models.ts";

/** The models routes, mounted under `/v1`. */
export function modelsRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const created = Math.floor(Date.now() / 1000);
  app.get("/models", (c) => c.json({ object: "list", data: listModels(deps.config, created) }));
  app.get("/models/:id{.+}", (c) => {
    const id = c.req.param("id");
    if (resolveModel(id, deps.config) === null) throw modelNotFound(id);
    return c.json({ id, object: "model", created, owned_by: "anthropic" });
  });
  return app;
}

/** The 404 for a model name that maps to no Claude model. */
export function modelNotFound(model: string): ProxyError {
  return new ProxyError(
    404,
    `The model '${model}' does not exist or maps to no Claude model. Use opus, sonnet, haiku, a full ` +
      "claude-* id, or add it to --model-map",
    { type: "invalid_request_error", param: "model", code: "model_not_found" },
  );
}
