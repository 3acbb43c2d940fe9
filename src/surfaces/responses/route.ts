/**
 * The Responses API routes, mounted under `/v1`
 * (https://platform.openai.com/docs/api-reference/responses):
 * - `POST /responses`: validates, expands `previous_response_id` into the stored conversation,
 *   and serves the turn through the shared HTTP handling (src/http/turn.ts `serveTurn`: queue,
 *   abort, timeouts, pings, parking a run that ends at client tool calls); a successful turn is
 *   stored unless `store: false`.
 * - `GET /responses/{id}`, `DELETE /responses/{id}`, `GET /responses/{id}/input_items`: the
 *   stored responses of the caller's API key.
 * Errors are thrown as {@link ProxyError}s and rendered in OpenAI's shape by the app's onError.
 */
import { Hono } from "hono";
import { presentedKey } from "../../auth.ts";
import type { AppDeps } from "../../deps.ts";
import { ProxyError } from "../../errors.ts";
import { serveTurn } from "../../http/turn.ts";
import { resolveModel } from "../../models.ts";
import { modelNotFound } from "../../routes/models.ts";
import { toConversation } from "./conversation.ts";
import { newId, ResponsesRenderer, referencedResponseId } from "./render.ts";
import { type InputItem, parseResponseBody } from "./schema.ts";
import {
  itemPage,
  outputAsItems,
  ownerOf,
  ResponseStore,
  type StoredItem,
  type StoredResponse,
  toStoredItems,
} from "./store.ts";

/** The 404 for a stored response this key cannot see (OpenAI's wording). */
function responseNotFound(id: string, param: string | null = null): ProxyError {
  return new ProxyError(404, `Response with id '${id}' not found.`, {
    type: "invalid_request_error",
    param,
    code: param === null ? "not_found" : "previous_response_not_found",
  });
}

/**
 * `input` with each `item_reference` replaced by the stored item it names (an item of a
 * response this key stored: its input items or output). Unknown ones are left for
 * toConversation to refuse (404 `item_not_found`).
 */
async function resolveReferences(
  input: readonly InputItem[],
  load: (responseId: string) => Promise<StoredResponse | null>,
): Promise<InputItem[]> {
  const loaded = new Map<string, StoredResponse | null>();
  const out: InputItem[] = [];
  for (const item of input) {
    const responseId = item.type === "item_reference" ? referencedResponseId(item.id) : null;
    if (item.type !== "item_reference" || responseId === null) {
      out.push(item);
      continue;
    }
    if (!loaded.has(responseId)) loaded.set(responseId, await load(responseId));
    const stored = loaded.get(responseId);
    const found = [...(stored?.items ?? []), ...outputAsItems(stored?.response.output ?? [])].find(
      (candidate) => candidate.id === item.id,
    );
    out.push(found ?? item);
  }
  return out;
}

/** Parses `limit`, `order` and `after` of `GET /responses/{id}/input_items`. */
function pageOptions(query: Record<string, string>): Parameters<typeof itemPage>[1] {
  const order = query.order ?? "desc";
  if (order !== "asc" && order !== "desc") {
    throw new ProxyError(400, "Invalid value for 'order': expected 'asc' or 'desc'", {
      param: "order",
      code: "invalid_value",
    });
  }
  const limit = query.limit === undefined ? 20 : Number(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw new ProxyError(400, "Invalid value for 'limit': expected an integer from 1 to 100", {
      param: "limit",
      code: "invalid_value",
    });
  }
  return { order, limit, after: query.after };
}

/** The Responses routes, mounted under `/v1`. */
export function responsesRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const store =
    deps.responses ??
    ResponseStore.memory({
      maxStored: deps.config.responsesMaxStored,
      maxAgeSeconds: Math.round(deps.config.responsesMaxAgeDays * 86_400),
    });
  const owner = (headers: Headers) => ownerOf(presentedKey(headers));

  app.post("/responses", async (c) => {
    const request = parseResponseBody(await c.req.text());
    const model = resolveModel(request.model, deps.config);
    if (model === null) throw modelNotFound(request.model);
    const key = await owner(c.req.raw.headers);
    let previous: StoredItem[] = [];
    const previousId = request.previous_response_id ?? null;
    if (previousId !== null) {
      const stored = await store.get(previousId, key);
      if (stored === null) throw responseNotFound(previousId, "previous_response_id");
      previous = [...stored.items, ...outputAsItems(stored.response.output)];
    }
    if (request.input.some((item) => item.type === "item_reference")) {
      request.input = await resolveReferences(request.input, (id) => store.get(id, key));
    }
    const conversation = toConversation(request, previous);
    const id = newId("resp");
    const renderer = new ResponsesRenderer({ id, createdAt: now(), request, now });
    return serveTurn(c, deps, {
      surface: "responses",
      conversation,
      requestedModel: request.model,
      model,
      stream: request.stream === true,
      renderer,
      ...(request.store === false
        ? {}
        : {
            onComplete: async (result) => {
              try {
                await store.put({
                  response: renderer.response(result),
                  items: [...previous, ...toStoredItems(request.input, id)],
                  owner: key,
                });
              } catch (error) {
                // The answer stands; only a later previous_response_id will miss it.
                deps.log.warn({ err: String(error) }, "could not store a response");
              }
            },
          }),
    });
  });

  app.get("/responses/:id", async (c) => {
    const id = c.req.param("id");
    const stored = await store.get(id, await owner(c.req.raw.headers));
    if (stored === null) throw responseNotFound(id);
    return c.json(stored.response);
  });

  app.delete("/responses/:id", async (c) => {
    const id = c.req.param("id");
    if (!(await store.delete(id, await owner(c.req.raw.headers)))) throw responseNotFound(id);
    return c.json({ id, object: "response.deleted", deleted: true });
  });

  app.get("/responses/:id/input_items", async (c) => {
    const id = c.req.param("id");
    const options = pageOptions(c.req.query());
    const stored = await store.get(id, await owner(c.req.raw.headers));
    if (stored === null) throw responseNotFound(id);
    return c.json(itemPage(stored.items, options));
  });

  return app;
}
