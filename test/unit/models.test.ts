import { describe, expect, it } from "vitest";
import { parseCommand } from "../../src/config.ts";
import {
  listModels,
  MAX_LEARNED_MODELS,
  ModelLabels,
  type ModelSettings,
  matchesPattern,
  OTHER_MODEL_LABEL,
  resolveModel,
} from "../../src/models.ts";

const none: ModelSettings = { modelMap: {}, extraModels: [] };

/** The settings of a proxy started without options (the default model map). */
function defaults(): ModelSettings {
  const command = parseCommand([], {});
  if (command.kind !== "serve") throw new Error("no config");
  return command.config;
}

describe("resolveModel", () => {
  it.each([
    ["sonnet", "sonnet"],
    ["Opus", "opus"],
    [" haiku ", "haiku"],
    ["claude-sonnet", "sonnet"],
    ["claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"],
    ["claude-3-5-haiku-latest", "claude-3-5-haiku-latest"],
    ["claude-opus-4.1", "claude-opus-4.1"],
    ["anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"],
    ["claude/opus", "opus"],
    ["claude-code/sonnet", "sonnet"],
    ["ANTHROPIC/Claude-Haiku", "haiku"],
  ])("resolves %s to --model %s", (requested, model) => {
    expect(resolveModel(requested, none)).toBe(model);
  });

  it.each(["gpt-4o", "llama-3", "", "claude-", "claude-sonnet 4", "openai/gpt-4o"])(
    "gives null for %j without a mapping",
    (requested) => {
      expect(resolveModel(requested, none)).toBeNull();
    },
  );

  it("maps foreign names through the model map, resolving the target", () => {
    const settings: ModelSettings = {
      modelMap: {
        "gpt-4o": "sonnet",
        "my-model": "claude-opus-4-1-20250805",
        "gpt-5": "claude-haiku",
      },
      extraModels: [],
    };
    expect(resolveModel("gpt-4o", settings)).toBe("sonnet");
    expect(resolveModel("GPT-4o", settings)).toBe("sonnet");
    expect(resolveModel("openai/gpt-4o", settings)).toBeNull();
    expect(resolveModel("anthropic/my-model", settings)).toBe("claude-opus-4-1-20250805");
    expect(resolveModel("gpt-5", settings)).toBe("haiku");
    expect(resolveModel("gpt-3.5-turbo", settings)).toBeNull();
  });

  it("resolves the OpenAI names tools send unasked with the default map", () => {
    const settings = defaults();
    expect(resolveModel("gpt-4o", settings)).toBe("sonnet");
    expect(resolveModel("gpt-4o-mini", settings)).toBe("haiku");
    expect(resolveModel("o3", settings)).toBe("opus");
  });

  it("never maps a Claude name away", () => {
    expect(resolveModel("sonnet", { modelMap: { sonnet: "haiku" }, extraModels: [] })).toBe(
      "sonnet",
    );
  });
});

describe("listModels", () => {
  it("lists the aliases, then the extra ids without duplicates", () => {
    const list = listModels(
      { modelMap: {}, extraModels: ["claude-sonnet-4-5", "opus"] },
      1_700_000_000,
    );
    expect(list.map((m) => m.id)).toEqual(["opus", "sonnet", "haiku", "claude-sonnet-4-5"]);
    expect(list[0]).toEqual({
      id: "opus",
      object: "model",
      created: 1_700_000_000,
      owned_by: "anthropic",
    });
  });

  it("lists only ids that resolveModel accepts", () => {
    const settings = { modelMap: {}, extraModels: ["claude-opus-4-1-20250805"] };
    for (const model of listModels(settings, 0)) {
      expect(resolveModel(model.id, settings)).toBe(model.id);
    }
  });
});

describe("names that are Object.prototype's keys (issue 9, finding 10)", () => {
  it("never resolve through the prototype of the model map", () => {
    for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      expect(resolveModel(name, none)).toBeNull();
      expect(resolveModel(name, defaults())).toBeNull();
    }
  });

  it("are plain keys of --model-map", () => {
    const command = parseCommand(["--model-map", "__proto__=opus,constructor=haiku"], {});
    if (command.kind !== "serve") throw new Error("no config");
    expect(Object.getPrototypeOf(command.config.modelMap)).toBeNull();
    expect(resolveModel("__proto__", command.config)).toBe("opus");
    expect(resolveModel("constructor", command.config)).toBe("haiku");
  });
});

describe("ModelLabels (issue 9, finding 13)", () => {
  it("keeps aliases and configured ids, learns answered ids up to the cap, folds the rest", () => {
    const labels = new ModelLabels({
      modelMap: { "my-model": "claude-mapped-1" },
      extraModels: ["claude-extra-1"],
    });
    expect(labels.label("sonnet", false)).toBe("sonnet");
    expect(labels.label("claude-mapped-1", false)).toBe("claude-mapped-1");
    expect(labels.label("claude-extra-1", false)).toBe("claude-extra-1");
    expect(labels.label("claude-unknown", false)).toBe(OTHER_MODEL_LABEL);
    expect(labels.label("claude-real-1", true)).toBe("claude-real-1");
    expect(labels.label("claude-real-1", false)).toBe("claude-real-1");
    for (let i = 0; i < MAX_LEARNED_MODELS + 5; i++) labels.label(`claude-x-${i}`, true);
    expect(labels.label("claude-late", true)).toBe(OTHER_MODEL_LABEL);
    expect(labels.label("opus", true)).toBe("opus");
  });
});

describe("--model-map patterns and --default-model (SDKs with their own default names)", () => {
  function settings(argv: string[]): ModelSettings {
    const command = parseCommand(argv, {});
    if (command.kind !== "serve") throw new Error("no config");
    return command.config;
  }

  it("maps names by pattern; exact names win, patterns apply in the order given", () => {
    const map = settings(["--model-map", "gpt-5*=opus,gpt-5-mini=haiku,gpt-*=sonnet,*-codex=opus"]);
    expect(resolveModel("gpt-5.1", map)).toBe("opus");
    expect(resolveModel("GPT-5-pro", map)).toBe("opus");
    expect(resolveModel("gpt-5-mini", map)).toBe("haiku");
    expect(resolveModel("gpt-4o", map)).toBe("sonnet");
    expect(resolveModel("openai/gpt-4o", map)).toBeNull();
    expect(resolveModel("gpt-5-codex", map)).toBe("opus");
    expect(resolveModel("o3", map)).toBeNull();
  });

  it("answers names that map to nothing with --default-model, and 404s them without it", () => {
    expect(resolveModel("gpt-9-turbo", defaults())).toBeNull();
    const withDefault = settings(["--default-model", "claude-sonnet"]);
    expect(resolveModel("gpt-9-turbo", withDefault)).toBe("sonnet");
    expect(resolveModel("constructor", withDefault)).toBe("sonnet");
    // Claude names and the map still come first.
    expect(resolveModel("opus", withDefault)).toBe("opus");
    expect(resolveModel("gpt-4o-mini", withDefault)).toBe("haiku");
    expect(new ModelLabels(withDefault).label("sonnet", false)).toBe("sonnet");
  });

  it("matches patterns literally but for *", () => {
    expect(matchesPattern("a*b*c", "axxbyyc")).toBe(true);
    expect(matchesPattern("a*b*c", "acb")).toBe(false);
    expect(matchesPattern("a*a", "a")).toBe(false);
    expect(matchesPattern("a*a", "aa")).toBe(true);
    expect(matchesPattern("gpt-4.1*", "gpt-401")).toBe(false);
    expect(matchesPattern("*", "")).toBe(true);
    expect(matchesPattern("x", "x")).toBe(true);
    expect(matchesPattern(`${"*a".repeat(50)}*b`, "a".repeat(10_000))).toBe(false);
    expect(matchesPattern(`${"*a".repeat(50)}*b`, `${"a".repeat(60)}b`)).toBe(true);
  });
});
