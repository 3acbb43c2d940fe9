/**
 * Every setting of the proxy: its flag, its environment variable, its default and its meaning.
 * One table ({@link SETTINGS}) feeds argument parsing, `--help` and the README's configuration
 * table. Flags win over environment variables, which win over defaults; values are validated
 * with zod and a bad value is a {@link ConfigError}.
 */
import mri from "mri";
import { z } from "zod";

const bool = z.union([
  z.boolean(),
  z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(["1", "0", "true", "false", "yes", "no", "on", "off", ""]))
    .transform((v) => ["1", "true", "yes", "on"].includes(v)),
]);
const ms = z.coerce.number().int().min(0);
const list = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(",")))
  .transform((v) => v.map((s) => s.trim()).filter((s) => s !== ""));

/**
 * API keys: each flag value is one key, never split (a key may hold any character, commas
 * included); the environment variable is split at commas (see {@link SETTINGS}' `fromEnv`).
 * Whitespace around a key is dropped (clients' headers lose it too); an empty key is an error.
 */
const keys = z
  .union([z.string(), z.array(z.string())])
  // The default, "", is no key; a flag's "" never gets here (parseCommand: "needs a value").
  .transform((v) => (Array.isArray(v) ? v : v === "" ? [] : [v]).map((key) => key.trim()))
  .pipe(z.array(z.string().min(1, "an API key must not be empty (check for stray commas)")));

/** `name=target` pairs, comma-separated (flag repeatable), into a record keyed by lower-case name. */
const pairs = list.transform((items, ctx) => {
  // No prototype: a name like `constructor` or `__proto__` is a plain key, never Object's.
  const out: Record<string, string> = Object.create(null);
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0 || eq === item.length - 1) {
      ctx.addIssue({ code: "custom", message: `expected name=model, got '${item}'` });
      return z.NEVER;
    }
    out[item.slice(0, eq).trim().toLowerCase()] = item.slice(eq + 1).trim();
  }
  return out;
});

/** One setting: flag name (kebab-case), env var, zod schema, default (as the user would type it). */
interface Setting<S extends z.ZodType> {
  flag: string;
  env: string;
  schema: S;
  default: string | boolean | undefined;
  description: string;
  /** Shown in --help instead of the default. */
  placeholder?: string;
  /** Turns the environment variable's text into what `schema` takes (default: the text). */
  fromEnv?: (text: string) => unknown;
  /** Never echo the value in errors (keys). */
  secret?: boolean;
}

function setting<S extends z.ZodType>(s: Setting<S>): Setting<S> {
  return s;
}

/** Foreign model names mapped by default (OpenAI names that tools send unasked). */
export const DEFAULT_MODEL_MAP =
  "gpt-4o=sonnet,gpt-4o-mini=haiku,gpt-4.1=sonnet,gpt-4.1-mini=haiku,gpt-4.1-nano=haiku," +
  "gpt-4-turbo=sonnet,gpt-4=sonnet,gpt-3.5-turbo=haiku,gpt-5=opus,gpt-5-mini=sonnet," +
  "o1=opus,o3=opus,o3-mini=sonnet,o4-mini=sonnet";

/** The settings table. Order is the order of `--help` and the README. */
export const SETTINGS = {
  port: setting({
    flag: "port",
    env: "PORT",
    schema: z.coerce.number().int().min(0).max(65535),
    default: "3456",
    description: "TCP port to listen on (0 picks a free one)",
  }),
  host: setting({
    flag: "host",
    env: "HOST",
    schema: z.string().min(1),
    default: "127.0.0.1",
    description: "Interface to bind",
  }),
  apiKeys: setting({
    flag: "api-key",
    env: "API_KEYS",
    schema: keys,
    default: "",
    // Set but holding no key (`API_KEYS=` or ' , '): an error, never "no auth".
    fromEnv: (text) => text.split(","),
    secret: true,
    description:
      "API keys clients must send (Bearer or x-api-key); repeat the flag for more (never split); env comma-separated, trimmed; an empty key is an error; none: no auth",
  }),
  allowPublicWithoutKeys: setting({
    flag: "allow-public-without-keys",
    env: "ALLOW_PUBLIC_WITHOUT_KEYS",
    schema: bool,
    default: false,
    description:
      "Allow binding a non-loopback --host without --api-key (anyone who reaches it uses your subscription)",
  }),
  allowedHosts: setting({
    flag: "allowed-host",
    env: "ALLOWED_HOSTS",
    schema: list,
    default: "",
    description:
      "Host header values answered besides localhost, loopback addresses and --host itself (name or name:port; '*' turns the check off); flag repeatable, env comma-separated",
  }),
  corsOrigins: setting({
    flag: "cors-origin",
    env: "CORS_ORIGINS",
    schema: list,
    default: "",
    description:
      "Origins allowed by CORS (browser clients); flag repeatable, env comma-separated; '*' for any; none: CORS off",
  }),
  claudePath: setting({
    flag: "claude-path",
    env: "CLAUDE_PATH",
    schema: z.string().min(1),
    default: "claude",
    description: "The claude CLI: a path, or a name looked up on PATH",
  }),
  systemPromptMode: setting({
    flag: "system-prompt-mode",
    env: "SYSTEM_PROMPT_MODE",
    schema: z.enum(["replace", "append"]),
    default: "replace",
    description:
      "replace: system messages replace Claude Code's prompt (--system-prompt-file); append: keep it and append (--append-system-prompt-file)",
  }),
  modelMap: setting({
    flag: "model-map",
    env: "MODEL_MAP",
    schema: pairs,
    default: DEFAULT_MODEL_MAP,
    description:
      "Foreign model names mapped to Claude models, name=model pairs, comma-separated; * in a name matches any characters (gpt-5*=opus); exact names win",
    placeholder: "gpt-4o=sonnet,...",
  }),
  defaultModel: setting({
    flag: "default-model",
    env: "DEFAULT_MODEL",
    schema: z.string().trim().max(256),
    default: "",
    description:
      "Claude model (alias or id) for requested names that map to nothing; none: such names get 404 model_not_found",
  }),
  extraModels: setting({
    flag: "extra-models",
    env: "EXTRA_MODELS",
    schema: list,
    default: "",
    description: "Extra model ids listed by GET /v1/models, comma-separated",
  }),
  requestTimeoutMs: setting({
    flag: "request-timeout",
    env: "REQUEST_TIMEOUT_MS",
    schema: ms,
    default: "600000",
    description: "Longest a request may run, ms (then 504 and the CLI is killed); 0 disables",
  }),
  idleTimeoutMs: setting({
    flag: "idle-timeout",
    env: "IDLE_TIMEOUT_MS",
    schema: ms,
    default: "300000",
    description: "Kill a CLI run that prints nothing for this long, ms; 0 disables",
  }),
  killGraceMs: setting({
    flag: "kill-grace",
    env: "KILL_GRACE_MS",
    schema: ms,
    default: "3000",
    description: "Time between SIGTERM and SIGKILL when a run is stopped, ms",
  }),
  maxConcurrency: setting({
    flag: "max-concurrency",
    env: "MAX_CONCURRENCY",
    schema: z.coerce.number().int().min(1),
    default: "4",
    description:
      "Most claude processes at once (each takes ~290 MiB), runs waiting for tool results included",
  }),
  maxQueue: setting({
    flag: "max-queue",
    env: "MAX_QUEUE",
    schema: z.coerce.number().int().min(0),
    default: "32",
    description: "Most requests waiting for a free slot; beyond that 429 with Retry-After",
  }),
  maxQueueWaitMs: setting({
    flag: "max-queue-wait",
    env: "MAX_QUEUE_WAIT_MS",
    schema: ms,
    default: "60000",
    description: "Longest a request waits for a free slot, ms (then 429 with Retry-After)",
  }),
  maxBodyBytes: setting({
    flag: "max-body-size",
    env: "MAX_BODY_BYTES",
    schema: z.coerce.number().int().min(1),
    default: "33554432",
    description: "Largest request body, bytes (then 413)",
  }),
  bodyTimeoutMs: setting({
    flag: "body-timeout",
    env: "BODY_TIMEOUT_MS",
    schema: ms,
    default: "30000",
    description:
      "Longest a request body may take to arrive, ms (then 408 and the connection is closed); also how long an idle connection stays open on Bun; 0 disables",
  }),
  ssePingMs: setting({
    flag: "sse-ping-interval",
    env: "SSE_PING_INTERVAL_MS",
    schema: ms,
    default: "15000",
    description: "Send an SSE comment ping after this much silence in a stream, ms; 0 disables",
  }),
  shutdownGraceMs: setting({
    flag: "shutdown-grace",
    env: "SHUTDOWN_GRACE_MS",
    schema: ms,
    default: "10000",
    description:
      "On SIGINT/SIGTERM, how long running requests may finish before their CLIs are killed, ms",
  }),
  retryRateLimits: setting({
    flag: "retry-rate-limits",
    env: "RETRY_RATE_LIMITS",
    schema: bool,
    default: false,
    description:
      "Let the CLI keep retrying upstream 429/529 (it backs off for minutes) instead of answering 429/503 at once",
  }),
  upstreamUnreachableTimeoutMs: setting({
    flag: "upstream-unreachable-timeout",
    env: "UPSTREAM_UNREACHABLE_TIMEOUT_MS",
    schema: ms,
    default: "20000",
    description:
      "How long the CLI may keep retrying an upstream API it cannot connect to (connection refused, DNS failure), ms from its first failed attempt; then 502 upstream_unreachable naming the cause; 0: at the first failure",
  }),
  autoCompact: setting({
    flag: "auto-compact",
    env: "AUTO_COMPACT",
    schema: bool,
    default: false,
    description:
      "Let the claude CLI summarise a conversation that outgrows the context window and answer from the summary (response header x-claude-compacted: true); off: 400 context_length_exceeded",
  }),
  toolResultTimeoutMs: setting({
    flag: "tool-result-timeout",
    env: "TOOL_RESULT_TIMEOUT_MS",
    schema: ms,
    default: "300000",
    description:
      "How long a run that called client tools waits for the follow-up request with their results, ms (then it is stopped and a later request replays the history)",
  }),
  warmTtlMs: setting({
    flag: "warm-ttl",
    env: "WARM_TTL_MS",
    schema: ms,
    default: "300000",
    description:
      "How long a CLI process whose turn ended stays alive for the conversation's next user turn (answered without a CLI start), ms; 0 disables",
  }),
  warmStartTimeoutMs: setting({
    flag: "warm-start-timeout",
    env: "WARM_START_TIMEOUT_MS",
    schema: ms,
    default: "5000",
    description:
      "How long a warm or spare process may stay silent after its new turn is written before a new process answers the request instead (nothing has reached the client by then), ms; 0: no bound",
  }),
  maxProcesses: setting({
    flag: "max-processes",
    env: "MAX_PROCESSES",
    schema: z
      .union([z.literal("auto"), z.coerce.number().int().min(1)])
      .transform((value) => (value === "auto" ? null : value)),
    default: "auto",
    placeholder: "auto (memory / 300 MiB)",
    description:
      "Most claude processes alive in all states together: answering, waiting for tool results, warm, spare (idle ones are stopped first to make room: spares, then warm, then waiting); auto: the machine's memory (or the container's memory limit) / 300 MiB, at least --max-concurrency",
  }),
  spares: setting({
    flag: "spares",
    env: "SPARES",
    schema: z.coerce.number().int().min(0),
    default: "1",
    description:
      "Most claude processes started ahead, waiting for the first turn of a conversation whose model, system prompt and tools were seen at least twice in the last 10 minutes (they live --warm-ttl); 0 disables",
  }),
  resumeStartTimeoutMs: setting({
    flag: "resume-start-timeout",
    env: "RESUME_START_TIMEOUT_MS",
    schema: ms,
    default: "15000",
    description:
      "A run given earlier turns as native history that has not started answering after this long is stopped and run again with the turns as a transcript, ms; 0 disables",
  }),
  imageFetch: setting({
    flag: "image-fetch",
    env: "IMAGE_FETCH",
    schema: bool,
    default: true,
    description: "Fetch http(s) image URLs (--no-image-fetch: only data: URLs are accepted)",
  }),
  imageMaxBytes: setting({
    flag: "image-max-bytes",
    env: "IMAGE_MAX_BYTES",
    schema: z.coerce.number().int().min(1),
    default: "5242880",
    description: "Largest image accepted or fetched, bytes",
  }),
  imageFetchTimeoutMs: setting({
    flag: "image-fetch-timeout",
    env: "IMAGE_FETCH_TIMEOUT_MS",
    schema: ms,
    default: "15000",
    description: "Timeout for fetching one image URL, ms",
  }),
  imageFetchAllowPrivate: setting({
    flag: "image-fetch-allow-private",
    env: "IMAGE_FETCH_ALLOW_PRIVATE",
    schema: bool,
    default: false,
    description:
      "Also fetch image URLs whose host is loopback, private, link-local or unique-local (images served on your own network); cloud metadata addresses stay refused",
  }),
  imageFetchConcurrency: setting({
    flag: "image-fetch-concurrency",
    env: "IMAGE_FETCH_CONCURRENCY",
    schema: z.coerce.number().int().min(1),
    default: "4",
    description: "Most image URLs of one request fetched at once",
  }),
  maxImages: setting({
    flag: "max-images",
    env: "MAX_IMAGES",
    schema: z.coerce.number().int().min(0),
    default: "20",
    description: "Most images (image_url parts, data URLs included) in one request",
  }),
  imageMaxTotalBytes: setting({
    flag: "image-max-total-bytes",
    env: "IMAGE_MAX_TOTAL_BYTES",
    schema: z.coerce.number().int().min(1),
    default: "20971520",
    description: "Largest sum of the images of one request, bytes (data URLs included)",
  }),
  settingSources: setting({
    flag: "setting-sources",
    env: "SETTING_SOURCES",
    schema: z.string(),
    default: "",
    description:
      "Claude Code setting sources the CLI loads (user,project,local); empty keeps CLAUDE.md files and settings out of requests",
  }),
  agentTools: setting({
    flag: "agent-tools",
    env: "AGENT_TOOLS",
    schema: list.pipe(
      z.array(
        z
          .string()
          .regex(
            /^(?:[A-Z][A-Za-z]*|mcp__[A-Za-z0-9_-]+__[A-Za-z0-9_-]+)$/,
            "a Claude Code tool name (Read, Bash) or mcp__server__tool",
          ),
      ),
    ),
    default: "",
    description:
      'Agent mode: Claude Code tools run on this machine for every request (e.g. Read,Glob,Grep,WebFetch; Bash, Write, Edit only when named; mcp__server__tool from --agent-mcp-config); off when empty; needs --agent-dir. See README "Agent mode"',
  }),
  agentDir: setting({
    flag: "agent-dir",
    env: "AGENT_DIR",
    schema: z.string(),
    default: "",
    description:
      "Agent mode: the directory the tools work in (the CLI's working directory; file tools are refused outside it)",
  }),
  agentMaxTurns: setting({
    flag: "agent-max-turns",
    env: "AGENT_MAX_TURNS",
    schema: z.coerce.number().int().min(1),
    default: "15",
    description:
      "Agent mode: most model turns of one request (the CLI's --max-turns); a request's max_turns can only lower it",
  }),
  agentMcpConfig: setting({
    flag: "agent-mcp-config",
    env: "AGENT_MCP_CONFIG",
    schema: z.string(),
    default: "",
    description:
      'Agent mode: a Claude Code MCP config file ({"mcpServers": ...}) whose tools the agent may use, those named in --agent-tools only',
  }),
  dropAnthropicApiKey: setting({
    flag: "drop-anthropic-api-key",
    env: "DROP_ANTHROPIC_API_KEY",
    schema: bool,
    default: false,
    description:
      "Keep ANTHROPIC_API_KEY out of the claude CLI's environment (otherwise it wins over your subscription login and bills per token)",
  }),
  dataDir: setting({
    flag: "data-dir",
    env: "DATA_DIR",
    schema: z.string(),
    default: "",
    description:
      "Where usage totals (usage.jsonl) and stored responses (responses/) are kept; empty: the platform's data directory",
    placeholder: "(platform data dir)",
  }),
  responsesMaxStored: setting({
    flag: "responses-max-stored",
    env: "RESPONSES_MAX_STORED",
    schema: z.coerce.number().int().min(0),
    default: "1000",
    description:
      "Most Responses API responses kept for previous_response_id and GET /v1/responses/{id} (in <data dir>/responses, oldest evicted first); 0 stores none",
  }),
  responsesMaxAgeDays: setting({
    flag: "responses-max-age",
    env: "RESPONSES_MAX_AGE_DAYS",
    schema: z.coerce.number().min(0),
    default: "30",
    description: "How long a stored Responses API response is kept, days; 0: no age limit",
  }),
  logLevel: setting({
    flag: "log-level",
    env: "LOG_LEVEL",
    schema: z.enum(["debug", "info", "warn", "error", "silent"]),
    default: "info",
    description: "Log level: debug, info, warn, error or silent",
  }),
} as const;

type Settings = typeof SETTINGS;

/** The validated configuration. */
export type Config = { [K in keyof Settings]: z.output<Settings[K]["schema"]> };

/** A bad flag or setting: the message says what is wrong; `main` prints it and exits 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** What the command line asked for. */
export type ParsedCommand =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "serve"; config: Config };

function isBooleanSetting(key: keyof Settings): boolean {
  return typeof SETTINGS[key].default === "boolean";
}

/**
 * Parses argv and the environment into a command.
 * @throws ConfigError for unknown flags or invalid values (naming the flag and env var).
 */
export function parseCommand(
  argv: readonly string[],
  env: Record<string, string | undefined>,
): ParsedCommand {
  const keys = Object.keys(SETTINGS) as (keyof Settings)[];
  const booleanFlags = keys.filter(isBooleanSetting).map((k) => SETTINGS[k].flag);
  const stringFlags = keys.filter((k) => !isBooleanSetting(k)).map((k) => SETTINGS[k].flag);
  const args = mri([...argv], {
    boolean: [...booleanFlags, "help", "version"],
    string: stringFlags,
    alias: { h: "help", v: "version", p: "port" },
  });
  const known = new Set(["_", "h", "v", "p", "help", "version", ...booleanFlags, ...stringFlags]);
  const unknown = Object.keys(args).find((flag) => !known.has(flag));
  if (unknown !== undefined) {
    throw new ConfigError(
      `Unknown option ${unknown.length === 1 ? "-" : "--"}${unknown} (see --help)`,
    );
  }
  if (args._.length > 0) throw new ConfigError(`Unexpected argument '${args._[0]}' (see --help)`);
  if (args.help === true) return { kind: "help" };
  if (args.version === true) return { kind: "version" };
  const config: Record<string, unknown> = {};
  for (const key of keys) {
    const s = SETTINGS[key];
    let fromFlag = args[s.flag] as unknown;
    // mri sets unset boolean flags to false: only count a boolean flag that was written.
    const flagGiven = isBooleanSetting(key)
      ? argv.some(
          (a) => a === `--${s.flag}` || a.startsWith(`--${s.flag}=`) || a === `--no-${s.flag}`,
        )
      : fromFlag !== undefined;
    if (Array.isArray(fromFlag) && !(s.schema instanceof z.ZodPipe)) fromFlag = fromFlag.at(-1);
    const values = Array.isArray(fromFlag) ? fromFlag : [fromFlag];
    if (flagGiven && !isBooleanSetting(key) && key !== "settingSources") {
      if (values.some((v) => typeof v !== "string" || v.trim() === "")) {
        throw new ConfigError(`--${s.flag} needs a value (see --help)`);
      }
    }
    const fromEnv = env[s.env];
    const raw = flagGiven
      ? fromFlag
      : fromEnv === undefined
        ? s.default
        : "fromEnv" in s && s.fromEnv !== undefined
          ? s.fromEnv(fromEnv)
          : fromEnv;
    const parsed = s.schema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const shown = "secret" in s && s.secret === true ? "" : `: ${JSON.stringify(raw)}`;
      throw new ConfigError(
        `Invalid value for --${s.flag} / ${s.env}${shown} (${issue?.message ?? "invalid"})`,
      );
    }
    config[key] = parsed.data;
  }
  return { kind: "serve", config: config as Config };
}

/** The `--help` text. */
export function helpText(version: string): string {
  const rows = (Object.keys(SETTINGS) as (keyof Settings)[]).map((key) => {
    const s = SETTINGS[key];
    const flag = isBooleanSetting(key) ? `--${s.flag}` : `--${s.flag} <value>`;
    const def = s.placeholder ?? (s.default === "" ? "(none)" : String(s.default));
    return `  ${flag.padEnd(30)} ${s.description}\n  ${"".padEnd(30)} env ${s.env}, default ${def}`;
  });
  return [
    `claude-openai-proxy ${version}`,
    "An OpenAI-compatible HTTP API in front of the claude CLI (Claude Code).",
    "",
    "Usage: claude-openai-proxy [options]",
    "",
    "Options (each has an environment variable twin; flags win):",
    ...rows,
    `  ${"-h, --help".padEnd(30)} Show this help`,
    `  ${"-v, --version".padEnd(30)} Print the version`,
    "",
  ].join("\n");
}

/** The configuration table of the README (Markdown): flag, env, default, meaning. */
export function configTable(): string {
  const rows = (Object.keys(SETTINGS) as (keyof Settings)[]).map((key) => {
    const s = SETTINGS[key];
    const flag = isBooleanSetting(key) ? `--${s.flag}` : `--${s.flag} <value>`;
    const def = s.placeholder ?? (s.default === "" ? "(none)" : String(s.default));
    return `| \`${flag}\` | \`${s.env}\` | \`${def}\` | ${s.description.replaceAll("|", "\\|")} |`;
  });
  return ["| Flag | Environment | Default | Meaning |", "| --- | --- | --- | --- |", ...rows].join(
    "\n",
  );
}

/**
 * What is wrong with the agent settings (`--agent-*`), or null. Agent mode (a non-empty
 * `--agent-tools`) needs `--agent-dir`, and API keys on a non-loopback `--host` whatever
 * `--allow-public-without-keys` says (whoever reaches the port would run tools on this
 * machine); the other agent settings mean nothing without `--agent-tools`; an
 * `mcp__server__tool` name needs `--agent-mcp-config`.
 */
export function agentConfigError(config: Config, loopbackHost: boolean): string | null {
  if (config.agentTools.length === 0) {
    if (config.agentDir !== "") return "--agent-dir / AGENT_DIR needs --agent-tools / AGENT_TOOLS";
    if (config.agentMcpConfig !== "")
      return "--agent-mcp-config / AGENT_MCP_CONFIG needs --agent-tools / AGENT_TOOLS";
    return null;
  }
  if (config.agentDir === "")
    return "--agent-tools needs --agent-dir / AGENT_DIR: the directory the tools work in";
  if (!loopbackHost && config.apiKeys.length === 0) {
    return (
      `agent mode on a non-loopback --host (${config.host}) needs API keys (--api-key / API_KEYS): ` +
      "whoever reaches the port would run tools on this machine (--allow-public-without-keys does not apply)"
    );
  }
  if (config.agentMcpConfig === "" && config.agentTools.some((name) => name.startsWith("mcp__"))) {
    return "--agent-tools names an MCP tool (mcp__server__tool): give its server with --agent-mcp-config";
  }
  return null;
}
