/**
 * The client-tool bridge: a request's `tools` served to the CLI as an MCP server over HTTP
 * (Streamable HTTP, stateless, JSON responses) on the proxy's own listener, under an
 * unguessable per-run path. The CLI lists them (`tools/list`) and offers them to the model as
 * native tools named `mcp__client__NAME`; when the model calls one, the CLI sends `tools/call`
 * with `params._meta["claudecode/toolUseId"]` = the model's tool_use id (DESIGN.md "Facts about
 * the CLI"). The call is held open until the client sends the result in a follow-up request.
 */
// Deno resolves the SDK's "./*" export to "<name>.js.d.ts" for types (it has no such files), so
// the declaration files are named for it; tsc and the runtimes ignore these comments.
// @ts-types="../../node_modules/@modelcontextprotocol/sdk/dist/esm/server/index.d.ts"
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
// @ts-types="../../node_modules/@modelcontextprotocol/sdk/dist/esm/server/webStandardStreamableHttp.d.ts"
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
// @ts-types="../../node_modules/@modelcontextprotocol/sdk/dist/esm/types.d.ts"
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { timingSafeEqual } from "hono/utils/buffer";
import type { ToolSpec } from "./conversation.ts";

/** The MCP server name the CLI sees; tools become `mcp__client__NAME`. */
export const MCP_SERVER_NAME = "client";

/** The prefix of client tool names as the model sees them. */
export const CLIENT_TOOL_PREFIX = `mcp__${MCP_SERVER_NAME}__`;

/** A tool result from the client (an OpenAI `tool` message). */
export interface ToolResult {
  content: string;
  isError: boolean;
}

/** The `_meta` key carrying the model's tool_use id in `tools/call`. */
const TOOL_USE_ID_META = "claudecode/toolUseId";

/** A JSON Schema for tools without `parameters`. */
const EMPTY_OBJECT_SCHEMA = { type: "object", properties: {} };

/** 256 random bits as hex. */
function secret(): string {
  return crypto.randomUUID().replaceAll("-", "") + crypto.randomUUID().replaceAll("-", "");
}

/** The MCP endpoint of one run. */
export class ToolBridge {
  /** Random path segment: `/mcp/{token}` (not a secret on its own). */
  readonly token: string = secret();
  /**
   * The credential: the CLI sends it as `Authorization: Bearer ...` (from the `--mcp-config`
   * file, mode 0600 in the run's private directory, so it is on no command line).
   */
  readonly secret: string = secret();
  readonly #tools: readonly ToolSpec[];
  readonly #results = new Map<string, ToolResult>();
  readonly #waiting = new Map<string, (result: ToolResult) => void>();
  /** tool_use ids the CLI has asked for, in order. */
  readonly calls: string[] = [];
  #closed = false;

  constructor(tools: readonly ToolSpec[]) {
    this.#tools = tools;
  }

  /**
   * The `--mcp-config` JSON pointing the CLI at this bridge, with its secret as a header; the
   * driver writes it to a private file. `timeoutMs` becomes the server's `timeout` (ms), the
   * CLI's per-server limit on one tool call, silent or not.
   */
  mcpConfig(baseUrl: string, timeoutMs?: number): string {
    return JSON.stringify({
      mcpServers: {
        [MCP_SERVER_NAME]: {
          type: "http",
          url: `${baseUrl}/mcp/${this.token}`,
          headers: { Authorization: `Bearer ${this.secret}` },
          ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }),
        },
      },
    });
  }

  /**
   * Whether a request carries this bridge's secret as `Authorization: Bearer ...` (Hono's
   * constant-time `timingSafeEqual`, as for API keys).
   */
  authorized(request: Request): Promise<boolean> {
    return timingSafeEqual(`Bearer ${this.secret}`, request.headers.get("authorization") ?? "");
  }

  /** Provides the result of a tool_use id; answers the CLI's `tools/call` now or when it arrives. */
  resolve(toolUseId: string, result: ToolResult): void {
    const waiter = this.#waiting.get(toolUseId);
    if (waiter !== undefined) {
      this.#waiting.delete(toolUseId);
      waiter(result);
    } else {
      this.#results.set(toolUseId, result);
    }
  }

  /** Ends every held call with an error result (the run is over). */
  close(): void {
    this.#closed = true;
    for (const [id, waiter] of this.#waiting) {
      waiter({ content: "The client did not return a result for this tool call", isError: true });
      this.#waiting.delete(id);
    }
  }

  /** Handles one HTTP request to `/mcp/{token}` (a fresh stateless MCP server per request). */
  async handle(request: Request): Promise<Response> {
    const server = new Server(
      { name: "claude-openai-proxy-client-tools", version: "1.0.0" },
      { capabilities: { tools: {} } },
    );
    server.setRequestHandler(ListToolsRequestSchema, () => ({
      tools: this.#tools.map((tool) => ({
        name: tool.name,
        description: tool.description ?? "",
        inputSchema: (tool.parameters ?? EMPTY_OBJECT_SCHEMA) as {
          type: "object";
          [key: string]: unknown;
        },
      })),
    }));
    server.setRequestHandler(CallToolRequestSchema, async (call): Promise<CallToolResult> => {
      const meta = call.params._meta as Record<string, unknown> | undefined;
      const id =
        typeof meta?.[TOOL_USE_ID_META] === "string" ? (meta[TOOL_USE_ID_META] as string) : "";
      // One call per tool_use: a second `tools/call` for the same id gets no result.
      if (id === "" || this.calls.includes(id)) {
        return {
          content: [{ type: "text", text: "This tool call was already made" }],
          isError: true,
        };
      }
      this.calls.push(id);
      const result = await this.#wait(id);
      return { content: [{ type: "text", text: result.content }], isError: result.isError };
    });
    const transport = new WebStandardStreamableHTTPServerTransport({ enableJsonResponse: true });
    await server.connect(transport);
    try {
      return await transport.handleRequest(request);
    } finally {
      void server.close().catch(() => {});
    }
  }

  #wait(id: string): Promise<ToolResult> {
    const ready = this.#results.get(id);
    if (ready !== undefined) {
      this.#results.delete(id);
      return Promise.resolve(ready);
    }
    if (this.#closed) {
      return Promise.resolve({ content: "The tool call was cancelled", isError: true });
    }
    return new Promise((resolve) => this.#waiting.set(id, resolve));
  }
}
