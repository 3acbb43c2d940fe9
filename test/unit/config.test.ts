import { describe, expect, it } from "vitest";
import { type Config, ConfigError, helpText, parseCommand, SETTINGS } from "../../src/config.ts";

function serve(argv: string[], env: Record<string, string | undefined> = {}): Config {
  const command = parseCommand(argv, env);
  if (command.kind !== "serve") throw new Error(`expected serve, got ${command.kind}`);
  return command.config;
}

function configError(argv: string[], env: Record<string, string | undefined> = {}): ConfigError {
  try {
    parseCommand(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("no ConfigError");
}

describe("parseCommand", () => {
  it("uses the defaults without flags or environment", () => {
    const config = serve([]);
    expect(config.port).toBe(3456);
    expect(config.host).toBe("127.0.0.1");
    expect(config.apiKeys).toEqual([]);
    expect(config.imageFetch).toBe(true);
    expect(config.retryRateLimits).toBe(false);
    expect(config.systemPromptMode).toBe("replace");
    expect(config.maxConcurrency).toBe(4);
    expect(config.modelMap["gpt-4o"]).toBe("sonnet");
  });

  it("takes the environment over the defaults, and flags over the environment", () => {
    const env = { PORT: "8080", HOST: "0.0.0.0", MAX_CONCURRENCY: "2", LOG_LEVEL: "warn" };
    const fromEnv = serve([], env);
    expect([fromEnv.port, fromEnv.host, fromEnv.maxConcurrency, fromEnv.logLevel]).toEqual([
      8080,
      "0.0.0.0",
      2,
      "warn",
    ]);
    const fromFlags = serve(["--port", "9000", "--host=::1"], env);
    expect(fromFlags.port).toBe(9000);
    expect(fromFlags.host).toBe("::1");
    expect(fromFlags.maxConcurrency).toBe(2);
    expect(serve(["-p", "9001"], env).port).toBe(9001);
    // a repeated single-value flag: the last one wins
    expect(serve(["--port", "9000", "--port", "9002"], env).port).toBe(9002);
  });

  it("collects a repeatable --api-key, and comma-separated API_KEYS", () => {
    expect(serve(["--api-key", "k1", "--api-key", "k2"]).apiKeys).toEqual(["k1", "k2"]);
    expect(serve([], { API_KEYS: " a, b ,c " }).apiKeys).toEqual(["a", "b", "c"]);
    expect(serve(["--api-key", "flag"], { API_KEYS: "env" }).apiKeys).toEqual(["flag"]);
  });

  it("never splits a --api-key value: a key may hold commas (issue 9, finding 11)", () => {
    expect(serve(["--api-key", "Str0ngSecret,1"]).apiKeys).toEqual(["Str0ngSecret,1"]);
    expect(serve(["--api-key=a,b", "--api-key", " c d "]).apiKeys).toEqual(["a,b", "c d"]);
  });

  it("refuses an API_KEYS that holds an empty key or none, without echoing it (finding 11)", () => {
    for (const value of [" , ", ",", " ", "", "a,,b", "secret-1,"]) {
      const error = configError([], { API_KEYS: value });
      expect(error.message, JSON.stringify(value)).toContain("API_KEYS");
      expect(error.message).toContain("must not be empty");
      expect(error.message).not.toContain("secret-1");
    }
    expect(serve([], {}).apiKeys).toEqual([]);
  });

  it("turns image fetching off with --no-image-fetch or IMAGE_FETCH=0", () => {
    expect(serve(["--no-image-fetch"]).imageFetch).toBe(false);
    expect(serve([], { IMAGE_FETCH: "0" }).imageFetch).toBe(false);
    expect(serve(["--image-fetch"], { IMAGE_FETCH: "off" }).imageFetch).toBe(true);
    // an unset boolean flag does not override the environment
    expect(serve([], { RETRY_RATE_LIMITS: "yes" }).retryRateLimits).toBe(true);
    expect(serve(["--retry-rate-limits"]).retryRateLimits).toBe(true);
  });

  it("reads model maps and lists", () => {
    const config = serve([
      "--model-map",
      "GPT-X=opus",
      "--model-map",
      "mini=haiku",
      "--extra-models",
      "a,b",
    ]);
    expect(config.modelMap).toEqual({ "gpt-x": "opus", mini: "haiku" });
    expect(config.extraModels).toEqual(["a", "b"]);
  });

  it.each([
    [["--port", "http"], {}, "--port / PORT", '"http"'],
    [["--port", "70000"], {}, "--port / PORT", '"70000"'],
    [[], { MAX_CONCURRENCY: "0" }, "--max-concurrency / MAX_CONCURRENCY", '"0"'],
    [[], { IMAGE_FETCH: "maybe" }, "--image-fetch / IMAGE_FETCH", '"maybe"'],
    [["--system-prompt-mode", "merge"], {}, "--system-prompt-mode / SYSTEM_PROMPT_MODE", '"merge"'],
    [["--model-map", "gpt-4o"], {}, "--model-map / MODEL_MAP", "gpt-4o"],
    [[], { REQUEST_TIMEOUT_MS: "-5" }, "--request-timeout / REQUEST_TIMEOUT_MS", '"-5"'],
  ])("rejects %j %j naming %s", (argv, env, names, value) => {
    const error = configError(argv, env);
    expect(error.message).toContain(`Invalid value for ${names}`);
    expect(error.message).toContain(value);
  });

  it("rejects unknown flags and stray arguments", () => {
    expect(configError(["--prot", "80"]).message).toBe("Unknown option --prot (see --help)");
    expect(configError(["-x"]).message).toBe("Unknown option -x (see --help)");
    expect(configError(["serve"]).message).toBe("Unexpected argument 'serve' (see --help)");
  });

  it("recognises --help and --version", () => {
    expect(parseCommand(["--help"], {})).toEqual({ kind: "help" });
    expect(parseCommand(["-h"], {})).toEqual({ kind: "help" });
    expect(parseCommand(["--version"], {})).toEqual({ kind: "version" });
    expect(parseCommand(["-v"], {})).toEqual({ kind: "version" });
  });
});

describe("helpText", () => {
  it("lists every setting with its flag, environment variable and default", () => {
    const text = helpText("1.2.3");
    expect(text).toContain("claude-openai-proxy 1.2.3");
    for (const setting of Object.values(SETTINGS)) {
      expect(text).toContain(`--${setting.flag}`);
      expect(text).toContain(`env ${setting.env},`);
      expect(text).toContain(setting.description);
    }
    expect(text).toContain("env PORT, default 3456");
    expect(text).toContain("--help");
  });
});

describe("flags given without a value", () => {
  it("are refused instead of silently falling back (an empty --api-key would turn auth off)", () => {
    expect(() => parseCommand(["--port"], {})).toThrow("--port needs a value");
    expect(() => parseCommand(["--api-key"], {})).toThrow("--api-key needs a value");
    expect(() => parseCommand(["--api-key", "k1", "--api-key", ""], {})).toThrow(
      "--api-key needs a value",
    );
  });

  it("except --setting-sources, whose empty value means no settings", () => {
    const command = parseCommand(["--setting-sources", ""], {});
    expect(command.kind === "serve" && command.config.settingSources).toBe("");
  });
});
