/**
 * Model names: what a client may send in `model`, and what `GET /v1/models` lists.
 * The CLI's `--model` takes the aliases `opus`, `sonnet`, `haiku` or full ids
 * (DESIGN.md "Flags that matter").
 */
import type { Model } from "./surfaces/chat/types.ts";

/** The aliases the CLI understands. */
export const MODEL_ALIASES = ["opus", "sonnet", "haiku"] as const;

/** Provider prefixes clients put before a model name (LiteLLM, OpenRouter, Continue). */
const PREFIXES = ["anthropic/", "claude/", "claude-code/", "claude-cli/"];

/** A full Claude model id, e.g. `claude-sonnet-4-5-20250929` or `claude-3-5-haiku-latest`. */
const FULL_ID = /^claude-[a-z0-9][a-z0-9.-]*$/;

/** What model resolution needs from the config. */
export interface ModelSettings {
  /**
   * Lower-case foreign name → Claude alias or id. A name with `*` is a pattern (`gpt-5*`: any
   * characters where the `*` stands); exact names win over patterns, patterns apply in order.
   */
  modelMap: Record<string, string>;
  extraModels: readonly string[];
  /** `--default-model`: the model of names that map to nothing; "" or absent: none (404). */
  defaultModel?: string;
}

/**
 * Resolves a requested model name to the CLI's `--model` value, or null when it names no
 * Claude model. Case-insensitive; provider prefixes are stripped; the map (exact names, then
 * patterns) is applied once; then `--default-model`, if set.
 */
export function resolveModel(requested: string, settings: ModelSettings): string | null {
  const direct = resolveClaudeName(requested);
  if (direct !== null) return direct;
  const name = stripPrefix(requested.trim().toLowerCase());
  const mapped = mapEntry(settings, name) ?? mapEntry(settings, requested.trim().toLowerCase());
  if (mapped !== undefined) return resolveClaudeName(mapped) ?? mapped;
  const fallback = settings.defaultModel ?? "";
  if (fallback !== "") return resolveClaudeName(fallback) ?? fallback;
  return null;
}

/**
 * The map's entry for `name`: its own exact entry (never one of Object.prototype's, such as
 * `constructor` or `__proto__`), else the first pattern entry that matches.
 */
function mapEntry(settings: ModelSettings, name: string): string | undefined {
  if (Object.hasOwn(settings.modelMap, name)) {
    const target = settings.modelMap[name];
    return typeof target === "string" ? target : undefined;
  }
  for (const [pattern, target] of Object.entries(settings.modelMap)) {
    if (pattern.includes("*") && matchesPattern(pattern, name)) return target;
  }
  return undefined;
}

/**
 * Whether `name` matches `pattern`, where `*` stands for any characters (none included). Linear
 * in the lengths: the literal pieces are found in order, the first anchored at the start and
 * the last at the end.
 */
export function matchesPattern(pattern: string, name: string): boolean {
  const pieces = pattern.split("*");
  const first = pieces[0] ?? "";
  const last = pieces.at(-1) ?? "";
  if (pieces.length === 1) return pattern === name;
  if (!name.startsWith(first) || name.length < first.length + last.length) return false;
  if (!name.endsWith(last)) return false;
  let at = first.length;
  const end = name.length - last.length;
  for (const piece of pieces.slice(1, -1)) {
    const found = name.indexOf(piece, at);
    if (found < 0 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}

function stripPrefix(name: string): string {
  for (const prefix of PREFIXES) if (name.startsWith(prefix)) return name.slice(prefix.length);
  return name;
}

function resolveClaudeName(requested: string): string | null {
  const name = stripPrefix(requested.trim().toLowerCase());
  if ((MODEL_ALIASES as readonly string[]).includes(name)) return name;
  if (name.startsWith("claude-") && (MODEL_ALIASES as readonly string[]).includes(name.slice(7))) {
    return name.slice(7);
  }
  if (FULL_ID.test(name)) return name;
  return null;
}

/** The `GET /v1/models` list: the aliases, then the extra ids. `created` is Unix seconds. */
export function listModels(settings: ModelSettings, created: number): Model[] {
  const ids = [
    ...MODEL_ALIASES,
    ...settings.extraModels.filter((id) => !MODEL_ALIASES.includes(id as never)),
  ];
  return ids.map((id) => ({ id, object: "model", created, owned_by: "anthropic" }));
}

/** The label of every model that is neither known nor learned ({@link ModelLabels}). */
export const OTHER_MODEL_LABEL = "other";

/** Most model ids {@link ModelLabels} learns from answered requests. */
export const MAX_LEARNED_MODELS = 32;

/**
 * Bounded model labels for `/metrics` and the usage store: any client can send any
 * `claude-<random>` id, and a series or usage entry per name would grow without end. A model
 * gets its own label when it is an alias, a configured id (`--extra-models`, a `--model-map`
 * target), or an id the API answered (learned on its first success, at most
 * {@link MAX_LEARNED_MODELS}); everything else is {@link OTHER_MODEL_LABEL}. The requested name
 * stays in the log line.
 */
export class ModelLabels {
  readonly #known = new Set<string>(MODEL_ALIASES);
  readonly #learned = new Set<string>();

  constructor(settings: ModelSettings) {
    const configured = [
      ...settings.extraModels,
      ...Object.values(settings.modelMap),
      ...(settings.defaultModel ? [settings.defaultModel] : []),
    ];
    for (const id of configured) this.#known.add(resolveClaudeName(id) ?? id);
  }

  /**
   * The label of the CLI model `model` (what {@link resolveModel} returned). `answered`: the API
   * answered a run of it (a 200), which makes an unknown id known while there is room.
   */
  label(model: string, answered: boolean): string {
    if (this.#known.has(model) || this.#learned.has(model)) return model;
    if (answered && this.#learned.size < MAX_LEARNED_MODELS) {
      this.#learned.add(model);
      return model;
    }
    return OTHER_MODEL_LABEL;
  }
}
