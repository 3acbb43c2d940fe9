/**
 * Model names: what a client may send in `model`, and what `GET /v1/models` lists.
 * The CLI's `--model` takes the aliases `opus`, `sonnet`, `haiku` or full ids
 * (DESIGN.md "Flags that matter").
 */
import type { Model } from "./openai/types.ts";

/** The aliases the CLI understands. */
export const MODEL_ALIASES = ["opus", "sonnet", "haiku"] as const;

/** Provider prefixes clients put before a model name (LiteLLM, OpenRouter, Continue). */
const PREFIXES = ["anthropic/", "claude/", "claude-code/", "claude-cli/"];

/** A full Claude model id, e.g. `claude-sonnet-4-5-20250929` or `claude-3-5-haiku-latest`. */
const FULL_ID = /^claude-[a-z0-9][a-z0-9.-]*$/;

/** What model resolution needs from the config. */
export interface ModelSettings {
  /** Lower-case foreign name → Claude alias or id. */
  modelMap: Record<string, string>;
  extraModels: readonly string[];
}

/**
 * Resolves a requested model name to the CLI's `--model` value, or null when it names no
 * Claude model. Case-insensitive; provider prefixes are stripped; the map is applied once.
 */
export function resolveModel(requested: string, settings: ModelSettings): string | null {
  const direct = resolveClaudeName(requested);
  if (direct !== null) return direct;
  const name = stripPrefix(requested.trim().toLowerCase());
  const mapped = settings.modelMap[name] ?? settings.modelMap[requested.trim().toLowerCase()];
  if (mapped !== undefined) return resolveClaudeName(mapped) ?? mapped;
  return null;
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
