/**
 * Stored responses (`store: true`, OpenAI's default): what `previous_response_id`,
 * `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items`
 * read. One JSON file per response under `<dataDir>/responses/`, named
 * `<created_at>-<id>.json` and written atomically (a temp file renamed), so a restart loses
 * nothing and a crash leaves no half-written entry. Only the index (id, creation time, file)
 * lives in memory. Bounded in count (`--responses-max-stored`, oldest evicted first) and age
 * (`--responses-max-age`). Each entry belongs to the API key that created it (a SHA-256 hash
 * of the key is stored, never the key): another key sees a 404.
 */
import type { Runtime } from "../../runtime/types.ts";
import type { OutputItem, ResponseObject } from "./render.ts";
import { itemId, newId } from "./render.ts";
import type { InputItem } from "./schema.ts";

/** The folder under the data directory. */
export const RESPONSES_DIR = "responses";

/** An input item as stored and listed by `input_items`: every item has an `id`. */
export type StoredItem = InputItem & { id: string };

/** One stored response. */
export interface StoredResponse {
  response: ResponseObject;
  /** The whole conversation the response answered, oldest first (earlier responses' included). */
  items: StoredItem[];
  /** SHA-256 (hex) of the API key that created it ("" hashed when the proxy has no keys). */
  owner: string;
}

/** What the store needs from the runtime. */
export type StoreRuntime = Pick<
  Runtime,
  "mkdir" | "writeFile" | "readTextFile" | "remove" | "rename" | "listDir"
>;

/** Limits of the store. */
export interface StoreLimits {
  /** Most responses kept; 0 keeps none. */
  maxStored: number;
  /** Oldest kept, seconds; 0: no age limit. */
  maxAgeSeconds: number;
  /** Seconds since the epoch (injectable for tests). */
  now?: () => number;
}

interface IndexEntry {
  /** Unix seconds. */
  created: number;
  /** The file name, or null for the in-memory store. */
  file: string | null;
  /** The entry itself, in the in-memory store only. */
  value?: StoredResponse;
}

const FILE_NAME = /^(\d+)-(resp_[A-Za-z0-9]+)\.json$/;

/** SHA-256 (hex) of an API key: the owner of what a request stores. `null` (no key) hashes "". */
export async function ownerOf(key: string | null): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key ?? ""));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Prefixes of the ids given to input items that came without one. */
function itemPrefix(item: InputItem): string {
  switch (item.type) {
    case "function_call":
      return "fc";
    case "function_call_output":
      return "fco";
    case "reasoning":
      return "rs";
    default:
      return "msg";
  }
}

/**
 * Input items of response `responseId` as `input_items` lists them: each with an `id` (kept,
 * or new: `<prefix>_<hex>_i<n>`, see itemId), messages as `{type:"message", role, content:
 * parts, status}` (a string content becomes one text part).
 */
export function toStoredItems(items: readonly InputItem[], responseId: string): StoredItem[] {
  return items.map((item, n) => {
    const id =
      typeof item.id === "string" && item.id !== ""
        ? item.id
        : itemId(itemPrefix(item), responseId, `i${n}`);
    if (item.type === "function_call" || item.type === "function_call_output") {
      return { ...item, id, status: item.status ?? "completed" } as StoredItem;
    }
    if (item.type === "reasoning" || item.type === "item_reference") {
      return { ...item, id } as StoredItem;
    }
    const content =
      typeof item.content === "string"
        ? [
            item.role === "assistant"
              ? { type: "output_text" as const, text: item.content, annotations: [] }
              : { type: "input_text" as const, text: item.content },
          ]
        : item.content;
    return { ...item, type: "message", id, content, status: item.status ?? "completed" };
  });
}

/** A response's output items as input items of the conversation that continues it. */
export function outputAsItems(output: readonly OutputItem[]): StoredItem[] {
  return output.map((item) => ({ ...item }) as unknown as StoredItem);
}

/** A page of `GET /v1/responses/{id}/input_items`. */
export interface ItemPage {
  object: "list";
  data: StoredItem[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

/**
 * One page of items (https://platform.openai.com/docs/api-reference/responses/input-items):
 * `order` `desc` (OpenAI's default: newest first) or `asc`, `after` an item id, `limit` 1-100
 * (default 20).
 */
export function itemPage(
  items: readonly StoredItem[],
  options: { order?: "asc" | "desc"; after?: string | undefined; limit?: number },
): ItemPage {
  const ordered = options.order === "asc" ? [...items] : [...items].reverse();
  let start = 0;
  if (options.after !== undefined) {
    const at = ordered.findIndex((item) => item.id === options.after);
    start = at < 0 ? ordered.length : at + 1;
  }
  const limit = options.limit ?? 20;
  const data = ordered.slice(start, start + limit);
  return {
    object: "list",
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: start + limit < ordered.length,
  };
}

/** The store. Create with {@link ResponseStore.open} (a directory) or {@link ResponseStore.memory}. */
export class ResponseStore {
  readonly #runtime: StoreRuntime | null;
  readonly #dir: string | null;
  readonly #limits: StoreLimits;
  /** Entries by id, oldest first. */
  readonly #index = new Map<string, IndexEntry>();

  private constructor(runtime: StoreRuntime | null, dir: string | null, limits: StoreLimits) {
    this.#runtime = runtime;
    this.#dir = dir;
    this.#limits = limits;
  }

  /** A store that keeps its entries in memory until exit (no data directory). */
  static memory(limits: StoreLimits): ResponseStore {
    return new ResponseStore(null, null, limits);
  }

  /**
   * Opens `<dataDir>/responses` (created when missing): indexes its files, removes temp files
   * left by a crash and entries past the limits.
   * @throws when the directory cannot be created or listed.
   */
  static async open(
    runtime: StoreRuntime,
    dataDir: string,
    limits: StoreLimits,
  ): Promise<ResponseStore> {
    const dir = `${dataDir.replace(/[\\/]+$/, "")}/${RESPONSES_DIR}`;
    await runtime.mkdir(dir);
    const store = new ResponseStore(runtime, dir, limits);
    const found: Array<{ id: string; created: number; file: string }> = [];
    for (const name of await runtime.listDir(dir)) {
      const match = FILE_NAME.exec(name);
      if (match === null) {
        if (name.startsWith(".tmp-")) await runtime.remove(`${dir}/${name}`);
        continue;
      }
      found.push({ id: match[2] as string, created: Number(match[1]), file: name });
    }
    found.sort((a, b) => a.created - b.created);
    for (const entry of found)
      store.#index.set(entry.id, { created: entry.created, file: entry.file });
    await store.#evict();
    return store;
  }

  /** How many responses are stored. */
  get size(): number {
    return this.#index.size;
  }

  #now(): number {
    return this.#limits.now?.() ?? Math.floor(Date.now() / 1000);
  }

  #expired(entry: IndexEntry): boolean {
    const { maxAgeSeconds } = this.#limits;
    return maxAgeSeconds > 0 && entry.created + maxAgeSeconds < this.#now();
  }

  /** Drops entries past the age limit and the oldest beyond the count limit. */
  async #evict(): Promise<void> {
    const doomed = new Set<string>();
    for (const [id, entry] of this.#index) if (this.#expired(entry)) doomed.add(id);
    let live = this.#index.size - doomed.size;
    for (const id of this.#index.keys()) {
      if (live <= this.#limits.maxStored) break;
      if (!doomed.has(id)) {
        doomed.add(id);
        live--;
      }
    }
    for (const id of doomed) await this.#drop(id);
  }

  async #drop(id: string): Promise<void> {
    const entry = this.#index.get(id);
    if (entry === undefined) return;
    this.#index.delete(id);
    if (entry.file !== null && this.#runtime !== null && this.#dir !== null) {
      await this.#runtime.remove(`${this.#dir}/${entry.file}`);
    }
  }

  /**
   * Stores `value` (its `response.created_at` dates it), then evicts past the limits.
   * @throws (rejects) when the file cannot be written; the entry is then not stored.
   */
  async put(value: StoredResponse): Promise<void> {
    if (this.#limits.maxStored <= 0) return;
    const id = value.response.id;
    const created = value.response.created_at;
    await this.#drop(id);
    if (this.#runtime === null || this.#dir === null) {
      this.#index.set(id, { created, file: null, value: structuredClone(value) });
    } else {
      const file = `${created}-${id}.json`;
      const temp = `${this.#dir}/.tmp-${newId("w")}`;
      await this.#runtime.writeFile(temp, JSON.stringify(value));
      try {
        await this.#runtime.rename(temp, `${this.#dir}/${file}`);
      } catch (error) {
        await this.#runtime.remove(temp);
        throw error;
      }
      this.#index.set(id, { created, file });
    }
    await this.#evict();
  }

  /**
   * The stored response `id` when `owner` created it, else null (unknown, expired, deleted,
   * another key's, or a file that can no longer be read).
   */
  async get(id: string, owner: string): Promise<StoredResponse | null> {
    const entry = this.#index.get(id);
    if (entry === undefined) return null;
    if (this.#expired(entry)) {
      await this.#drop(id);
      return null;
    }
    let value: StoredResponse | undefined = entry.value;
    if (entry.file !== null && this.#runtime !== null && this.#dir !== null) {
      try {
        const text = await this.#runtime.readTextFile(`${this.#dir}/${entry.file}`);
        value = text === null ? undefined : (JSON.parse(text) as StoredResponse);
      } catch {
        value = undefined;
      }
      if (value === undefined) {
        // Unreadable (cut by a crash, or grown past what can be parsed): remove it for good.
        await this.#drop(id).catch(() => this.#index.delete(id));
        return null;
      }
    }
    if (value === undefined || value.owner !== owner) return null;
    return structuredClone(value);
  }

  /** Deletes `id` when `owner` created it; resolves whether it did. */
  async delete(id: string, owner: string): Promise<boolean> {
    if ((await this.get(id, owner)) === null) return false;
    await this.#drop(id);
    return true;
  }
}
