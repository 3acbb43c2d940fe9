import { describe, expect, it } from "vitest";
import { parseCommand } from "../../src/config.ts";
import { listModels, type ModelSettings, resolveModel } from "../../src/models.ts";

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
