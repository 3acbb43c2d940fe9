/**
 * `POST /v1/chat/completions` (https://platform.openai.com/docs/api-reference/chat/create):
 * validates, translates the request into a conversation, and hands it to the shared turn
 * handling (src/http/turn.ts), which answers with a `chat.completion` or a stream of
 * `chat.completion.chunk` frames ending in `data: [DONE]`.
 */
import { Hono } from "hono";
import type { AppDeps } from "../../deps.ts";
import { serveTurn } from "../../http/turn.ts";
import { requireModel } from "../../routes/models.ts";
import { chatConversation } from "./conversation.ts";
import { chatRenderer } from "./render.ts";
import { parseChatCompletionBody } from "./schema.ts";

function completionId(): string {
  return `chatcmpl-${crypto.randomUUID().replaceAll("-", "")}`;
}

/** The chat completions route, mounted under `/v1`. */
export function chatRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  app.post("/chat/completions", async (c) => {
    // Counted before it is parsed: see parseChatCompletionBody.
    const request = parseChatCompletionBody(await c.req.text());
    const model = requireModel(request.model, deps.config);
    const conversation = chatConversation(request);
    return serveTurn(c, deps, {
      surface: "chat",
      conversation,
      requestedModel: request.model,
      model,
      stream: request.stream === true,
      renderer: chatRenderer({
        id: completionId(),
        created: now(),
        model: request.model,
        includeUsage: request.stream_options?.include_usage === true,
      }),
    });
  });
  return app;
}
