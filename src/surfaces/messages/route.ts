/**
 * The Anthropic Messages surface's routes, mounted under `/v1`:
 * - `POST /v1/messages` (https://docs.anthropic.com/en/api/messages): validate, translate to
 *   the engine's conversation, answer through the shared turn handling with
 *   {@link MessagesRenderer}.
 * - `POST /v1/messages/count_tokens`: 501. The claude CLI has no way to count tokens without
 *   running the model, and an estimate would not be the count the API gives; the answer carries
 *   `x-should-retry: false` so the SDKs do not retry it.
 * Errors on these paths are rendered in Anthropic's shape by the app's onError (app.ts).
 */
import { Hono, type MiddlewareHandler } from "hono";
import type { AppDeps } from "../../deps.ts";
import { ProxyError } from "../../errors.ts";
import { serveTurn } from "../../http/turn.ts";
import { requireModel } from "../../routes/models.ts";
import { thinkingDisplay, toConversation } from "./conversation.ts";
import { MessagesRenderer } from "./render.ts";
import { parseMessagesBody } from "./schema.ts";

/** The 501 of `count_tokens`. */
export function countTokensUnsupported(): ProxyError {
  return new ProxyError(
    501,
    "count_tokens is not supported: the claude CLI cannot count tokens without running the model, " +
      "and the proxy does not answer with an estimate. The usage of each answer reports the real counts",
    { type: "api_error", code: "not_implemented" },
  );
}

/** The Messages routes. */
export function messagesRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  // The API's own request id header, which the SDKs expose as `_request_id` / `requestID`.
  const requestIdHeader: MiddlewareHandler = async (c, next) => {
    c.header("request-id", c.get("requestId"));
    await next();
  };
  app.use("/messages", requestIdHeader);
  app.use("/messages/*", requestIdHeader);
  app.post("/messages", async (c) => {
    const request = parseMessagesBody(await c.req.text());
    const model = requireModel(request.model, deps.config);
    const conversation = toConversation(request);
    const renderer = new MessagesRenderer({
      model: request.model,
      thinking: thinkingDisplay(request),
      requestId: c.get("requestId"),
    });
    return serveTurn(c, deps, {
      surface: "messages",
      conversation,
      requestedModel: request.model,
      model,
      stream: request.stream === true,
      renderer,
    });
  });
  app.post("/messages/count_tokens", () => {
    throw countTokensUnsupported();
  });
  return app;
}
