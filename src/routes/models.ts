/**
 * `GET /v1/models` and `GET /v1/models/{id}`, in OpenAI's shape
 * (https://platform.openai.com/docs/api-reference/models), or in Anthropic's
 * (https://docs.anthropic.com/en/api/models-list) when the request carries an
 * `anthropic-version` header, as the Anthropic SDKs send.
 */
import { Hono } from "hono";
import type { AppDeps } from "../deps.ts";
import { ProxyError } from "../errors.ts";
import { listModels, resolveModel } from "../models.ts";

/** A model in the Messages API's shape (`ModelInfo` in `@anthropic-ai/sdk`). */
export interface AnthropicModelInfo {
  type: "model";
  id: string;
  /** The id itself (the proxy knows no marketing names). */
  display_name: string;
  /** RFC 3339; the time the proxy started (as OpenAI's `created`). */
  created_at: string;
}

/** The models routes, mounted under `/v1`. */
export function modelsRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const created = Math.floor(Date.now() / 1000);
  const createdAt = new Date(created * 1000).toISOString();
  const info = (id: string): AnthropicModelInfo => ({
    type: "model",
    id,
    display_name: id,
    created_at: createdAt,
  });
  app.get("/models", (c) => {
    const models = listModels(deps.config, created);
    if (c.req.header("anthropic-version") !== undefined) {
      const data = models.map((model) => info(model.id));
      return c.json({
        data,
        has_more: false,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
      });
    }
    return c.json({ object: "list", data: models });
  });
  app.get("/models/:id{.+}", (c) => {
    const id = c.req.param("id");
    requireModel(id, deps.config);
    if (c.req.header("anthropic-version") !== undefined) return c.json(info(id));
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

/**
 * The CLI model a requested name resolves to (see resolveModel).
 * @throws ProxyError 404 `model_not_found` ({@link modelNotFound}) when it maps to none.
 */
export function requireModel(model: string, config: Parameters<typeof resolveModel>[1]): string {
  const resolved = resolveModel(model, config);
  if (resolved === null) throw modelNotFound(model);
  return resolved;
}
