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
import { MAX_MESSAGES } from "../../http/json.ts";
import { serveTurn } from "../../http/turn.ts";
import { requireModel } from "../../routes/models.ts";
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

/**
 * A stored response this key cannot see (OpenAI's wording): 404 on its own routes; as
 * `previous_response_id` of a new response, 400 `previous_response_not_found` as OpenAI answers.
 */
function responseNotFound(id: string, param: string | null = null): ProxyError {
  if (param !== null) {
    return new ProxyError(400, `Previous response with id '${id}' not found.`, {
      type: "invalid_request_error",
      param,
      code: "previous_response_not_found",
    });
  }
  return new ProxyError(404, `Response with id '${id}' not found.`, {
    type: "invalid_request_error",
    param,
    code: "not_found",
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
  // Only the referenced items are kept, one response read at a time (never all of them).
  const wanted = new Map<string, Set<string>>();
  for (const item of input) {
    const responseId = item.type === "item_reference" ? referencedResponseId(item.id) : null;
    if (item.type !== "item_reference" || responseId === null) continue;
    wanted.set(responseId, (wanted.get(responseId) ?? new Set()).add(item.id));
  }
  const found = new Map<string, StoredItem>();
  for (const [responseId, ids] of wanted) {
    const stored = await load(responseId);
    if (stored === null) continue;
    for (const candidate of [...stored.items, ...outputAsItems(stored.response.output)]) {
      if (ids.has(candidate.id)) found.set(candidate.id, candidate);
    }
  }
  return input.map((item) =>
    item.type === "item_reference" ? (found.get(item.id) ?? item) : item,
  );
}

/**
 * Refuses a conversation too large to store (`store` is on): every follow-up with
 * `previous_response_id` stores its whole conversation again and reads it back, so each stored
 * entry is bounded like a request body (`--max-body-bytes`) and in items (MAX_MESSAGES).
 * @throws ProxyError 400 `conversation_too_large`.
 */
function checkStorable(items: readonly StoredItem[], maxBytes: number): void {
  const tooLarge = (what: string) =>
    new ProxyError(
      400,
      `The conversation is too large to store (${what}): send store: false with the whole input instead of previous_response_id`,
      { param: "previous_response_id", code: "conversation_too_large" },
    );
  if (items.length > MAX_MESSAGES) throw tooLarge(`more than ${MAX_MESSAGES} items`);
  if (maxBytes > 0 && new TextEncoder().encode(JSON.stringify(items)).length > maxBytes) {
    throw tooLarge(`more than ${maxBytes} bytes`);
  }
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
    const model = requireModel(request.model, deps.config);
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
    const toStore =
      request.store === false ? null : [...previous, ...toStoredItems(request.input, id)];
    if (toStore !== null) checkStorable(toStore, deps.config.maxBodyBytes);
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
                  items: toStore ?? [],
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
