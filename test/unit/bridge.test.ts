import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { describe, expect, it } from "vitest";
import { CLIENT_TOOL_PREFIX, MCP_SERVER_NAME, ToolBridge } from "../../src/engine/bridge.ts";
import type { ToolSpec } from "../../src/engine/conversation.ts";

const weather: ToolSpec = {
  name: "get_weather",
  description: "Current weather for a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string" }, unit: { enum: ["C", "F"] } },
    required: ["city"],
  },
};
const ping: ToolSpec = { name: "ping" };

const PROTOCOL_VERSION = "2025-06-18";

/** POSTs one JSON-RPC message as the CLI does (MCP Streamable HTTP, JSON responses). */
function post(bridge: ToolBridge, message: unknown, initialized = true): Promise<Response> {
  return bridge.handle(
    new Request(`http://127.0.0.1:3456/mcp/${bridge.token}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...(initialized ? { "mcp-protocol-version": PROTOCOL_VERSION } : {}),
      },
      body: JSON.stringify(message),
    }),
  );
}

/** A JSON-RPC reply, the parts these tests read. */
interface RpcReply {
  id: number;
  result: {
    protocolVersion?: string;
    capabilities?: { tools?: unknown };
    serverInfo?: { name: string };
    tools?: unknown[];
    content?: Array<{ type: string; text: string }>;
    isError?: boolean;
  };
}

async function rpc(
  bridge: ToolBridge,
  id: number,
  method: string,
  params: unknown = {},
): Promise<RpcReply> {
  // the protocol version header is sent on every request after initialize
  const response = await post(
    bridge,
    { jsonrpc: "2.0", id, method, params },
    method !== "initialize",
  );
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("application/json");
  const body = (await response.json()) as RpcReply;
  expect(body.id).toBe(id);
  return body;
}

function callParams(toolUseId: string, args: unknown = { city: "Paris" }) {
  return { name: "get_weather", arguments: args, _meta: { "claudecode/toolUseId": toolUseId } };
}

/** Waits until the bridge has received the `tools/call` for `id`. */
async function untilCalled(bridge: ToolBridge, id: string): Promise<void> {
  for (let i = 0; i < 200 && !bridge.calls.includes(id); i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  expect(bridge.calls).toContain(id);
}

/** Whether `promise` is still pending after `ms`. */
async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const marker = Symbol("pending");
  const winner = await Promise.race([
    promise,
    new Promise((resolve) => setTimeout(() => resolve(marker), ms)),
  ]);
  return winner === marker;
}

describe("ToolBridge over hand-built MCP requests", () => {
  it("answers initialize, accepts notifications/initialized and lists the tools with their schemas", async () => {
    const bridge = new ToolBridge([weather, ping]);
    const init = await rpc(bridge, 0, "initialize", {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: "claude-code", version: "2.1.197" },
    });
    expect(init.result.protocolVersion).toBe(PROTOCOL_VERSION);
    expect(init.result.capabilities?.tools).toBeDefined();
    expect(init.result.serverInfo?.name).toBe("claude-openai-proxy-client-tools");

    const notified = await post(bridge, { jsonrpc: "2.0", method: "notifications/initialized" });
    expect(notified.status).toBe(202);

    const list = await rpc(bridge, 1, "tools/list");
    expect(list.result.tools).toEqual([
      {
        name: "get_weather",
        description: "Current weather for a city",
        inputSchema: weather.parameters,
      },
      { name: "ping", description: "", inputSchema: { type: "object", properties: {} } },
    ]);
  });

  it("holds a tools/call until its tool_use id is resolved", async () => {
    const bridge = new ToolBridge([weather]);
    const reply = rpc(bridge, 7, "tools/call", callParams("toolu_1"));
    await untilCalled(bridge, "toolu_1");
    expect(await pendingAfter(reply, 50)).toBe(true);
    bridge.resolve("toolu_1", { content: "18C and sunny", isError: false });
    const body = await reply;
    expect(body.result).toEqual({
      content: [{ type: "text", text: "18C and sunny" }],
      isError: false,
    });
  });

  it("refuses a second tools/call for the same tool_use id; the first still gets the result", async () => {
    const bridge = new ToolBridge([weather]);
    const first = rpc(bridge, 7, "tools/call", callParams("toolu_dup"));
    await untilCalled(bridge, "toolu_dup");
    const second = await rpc(bridge, 8, "tools/call", callParams("toolu_dup"));
    expect(second.result).toEqual({
      content: [{ type: "text", text: "This tool call was already made" }],
      isError: true,
    });
    bridge.resolve("toolu_dup", { content: "18C", isError: false });
    expect((await first).result).toEqual({
      content: [{ type: "text", text: "18C" }],
      isError: false,
    });
  });

  it("answers at once when the result came before the call", async () => {
    const bridge = new ToolBridge([weather]);
    bridge.resolve("toolu_2", { content: "city not found", isError: true });
    const body = await rpc(bridge, 8, "tools/call", callParams("toolu_2", { city: "Atlantis" }));
    expect(body.result).toEqual({
      content: [{ type: "text", text: "city not found" }],
      isError: true,
    });
    expect(bridge.calls).toEqual(["toolu_2"]);
  });

  it("answers each held call with its own result", async () => {
    const bridge = new ToolBridge([weather]);
    const a = rpc(bridge, 1, "tools/call", callParams("toolu_a"));
    const b = rpc(bridge, 2, "tools/call", callParams("toolu_b"));
    await untilCalled(bridge, "toolu_a");
    await untilCalled(bridge, "toolu_b");
    bridge.resolve("toolu_b", { content: "B", isError: false });
    bridge.resolve("toolu_a", { content: "A", isError: false });
    expect((await a).result.content?.[0]?.text).toBe("A");
    expect((await b).result.content?.[0]?.text).toBe("B");
  });

  it("ends held calls with an error result on close, and later calls too", async () => {
    const bridge = new ToolBridge([weather]);
    const held = rpc(bridge, 3, "tools/call", callParams("toolu_3"));
    await untilCalled(bridge, "toolu_3");
    bridge.close();
    const body = await held;
    expect(body.result.isError).toBe(true);
    expect(body.result.content?.[0]?.text).toContain("did not return a result");
    const late = await rpc(bridge, 4, "tools/call", callParams("toolu_4"));
    expect(late.result.isError).toBe(true);
  });
});

describe("ToolBridge with the MCP SDK client", () => {
  it("serves listTools and a callTool carrying the tool_use id", async () => {
    const bridge = new ToolBridge([weather]);
    const transport = new StreamableHTTPClientTransport(
      new URL(`http://127.0.0.1:3456/mcp/${bridge.token}`),
      { fetch: (input, init) => bridge.handle(new Request(input, init)) },
    );
    const client = new Client({ name: "unit", version: "1.0.0" });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => [t.name, t.inputSchema])).toEqual([
        ["get_weather", weather.parameters],
      ]);
      const call = client.callTool({
        name: "get_weather",
        arguments: { city: "Oslo" },
        _meta: { "claudecode/toolUseId": "toolu_sdk" },
      });
      await untilCalled(bridge, "toolu_sdk");
      bridge.resolve("toolu_sdk", { content: "-3C", isError: false });
      expect(await call).toEqual({ content: [{ type: "text", text: "-3C" }], isError: false });
    } finally {
      await client.close();
    }
  });
});

describe("ToolBridge.mcpConfig", () => {
  it("points the CLI at an unguessable per-run path under the client server name", () => {
    const bridge = new ToolBridge([weather]);
    const config = JSON.parse(bridge.mcpConfig("http://127.0.0.1:3456"));
    expect(config).toEqual({
      mcpServers: {
        client: {
          type: "http",
          url: `http://127.0.0.1:3456/mcp/${bridge.token}`,
          headers: { Authorization: `Bearer ${bridge.secret}` },
        },
      },
    });
    expect(JSON.parse(bridge.mcpConfig("http://x", 61_000)).mcpServers.client.timeout).toBe(61_000);
    expect(bridge.token).toMatch(/^[0-9a-f]{64}$/);
    expect(bridge.secret).toMatch(/^[0-9a-f]{64}$/);
    expect(bridge.secret).not.toBe(bridge.token);
    expect(new ToolBridge([]).token).not.toBe(bridge.token);
    // the model sees the tools as mcp__client__NAME
    expect(CLIENT_TOOL_PREFIX).toBe(`mcp__${MCP_SERVER_NAME}__`);
    expect(CLIENT_TOOL_PREFIX).toBe("mcp__client__");
  });
});

describe("ToolBridge.authorized", () => {
  it("accepts only its own secret as a Bearer token", async () => {
    const bridge = new ToolBridge([weather]);
    const request = (authorization?: string) =>
      new Request("http://127.0.0.1/mcp/x", {
        method: "POST",
        headers: authorization === undefined ? {} : { authorization },
      });
    expect(await bridge.authorized(request(`Bearer ${bridge.secret}`))).toBe(true);
    expect(await bridge.authorized(request())).toBe(false);
    expect(await bridge.authorized(request(`Bearer ${bridge.token}`))).toBe(false);
    expect(await bridge.authorized(request(`Bearer ${new ToolBridge([]).secret}`))).toBe(false);
    expect(await bridge.authorized(request(`Bearer ${bridge.secret}x`))).toBe(false);
  });
});
