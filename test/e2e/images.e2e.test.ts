/**
 * Image URL safety on each runtime (issue 9, findings 3 and 4): loopback URLs refused by
 * default before any connection, with one message that says nothing about the target; with
 * `--image-fetch-allow-private`, 100 URLs never open more than `--image-fetch-concurrency`
 * connections and the rest are cancelled once one fails. Every server here is on 127.0.0.1.
 * (A redirect from a public server cannot be staged without one: test/unit/images.test.ts
 * checks redirects with a stubbed fetch.)
 */

import { mkdir } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeAnthropic, startFakeAnthropic } from "../fixtures/fake-anthropic.ts";
import { waitUntil } from "./fault-helpers.ts";
import {
  type E2eDirs,
  type E2eRuntime,
  makeE2eDirs,
  type ProxyProcess,
  proxyEnv,
  RUNTIMES,
  startProxy,
} from "./harness.ts";

/** A 1x1 PNG. */
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
);

/** An image server on 127.0.0.1 that records requests and open connections. */
interface ImageServer {
  url: string;
  port: number;
  hits: string[];
  open: Set<Socket>;
  maxOpen: number;
  close(): Promise<void>;
}

async function startImageServer(): Promise<ImageServer> {
  const state = { hits: [] as string[], open: new Set<Socket>(), maxOpen: 0 };
  const server: Server = createServer((request, response) => {
    state.hits.push(request.url ?? "");
    if (request.url?.startsWith("/fail")) {
      setTimeout(() => response.writeHead(404).end("no"), 200);
    } else if (request.url?.startsWith("/hang")) {
      // Never answers: only the proxy going away ends it.
    } else {
      response.writeHead(200, { "content-type": "image/png" }).end(PNG);
    }
  });
  server.on("connection", (socket) => {
    state.open.add(socket);
    state.maxOpen = Math.max(state.maxOpen, state.open.size);
    socket.on("close", () => state.open.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    port,
    close: async () => {
      for (const socket of state.open) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  });
}

function imageRequest(urls: readonly string[]): string {
  return JSON.stringify({
    model: "sonnet",
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: "Look" },
          ...urls.map((url) => ({ type: "image_url", image_url: { url } })),
        ],
      },
    ],
  });
}

async function post(
  proxy: ProxyProcess,
  body: string,
): Promise<{ status: number; error: Record<string, unknown> }> {
  const response = await fetch(`${proxy.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  const json = (await response.json()) as { error: Record<string, unknown> };
  return { status: response.status, error: json.error };
}

let fake: FakeAnthropic;
let dirs: E2eDirs;
let images: ImageServer;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  dirs = await makeE2eDirs("claude-openai-proxy-images-");
  images = await startImageServer();
});

afterAll(async () => {
  await images?.close();
  await fake?.close();
  await dirs?.cleanup();
});

function describeRuntime(runtime: E2eRuntime): void {
  describe(`images on ${runtime}`, () => {
    let strict: ProxyProcess;
    let lan: ProxyProcess;

    beforeAll(async () => {
      const tmp = join(dirs.tmp, runtime);
      await mkdir(tmp, { recursive: true });
      const env = proxyEnv(fake.url, { home: dirs.home, tmp });
      [strict, lan] = await Promise.all([
        startProxy(runtime, { env }),
        startProxy(runtime, {
          env,
          args: ["--image-fetch-allow-private", "--max-images", "100"],
        }),
      ]);
    }, 120_000);

    afterAll(async () => {
      await Promise.all([strict?.stop(), lan?.stop()]);
    });

    it("refuses localhost and 127.0.0.1 image URLs by default, without connecting", async () => {
      images.hits.length = 0;
      const urls = [
        `http://localhost:${images.port}/a.png`,
        `http://127.0.0.1:${images.port}/b.png`,
        `http://[::ffff:127.0.0.1]:${images.port}/c.png`,
        `http://2130706433:${images.port}/d.png`,
      ];
      for (const url of urls) {
        const { status, error } = await post(strict, imageRequest([url]));
        expect(status).toBe(400);
        expect(error).toEqual({
          message: "Could not fetch image_url #1: the URL is not reachable or not an image",
          type: "invalid_request_error",
          param: "messages[0].content[1].image_url.url",
          code: "image_fetch_failed",
        });
      }
      expect(images.hits).toEqual([]);
      // A closed port answers the same.
      const closed = await post(strict, imageRequest(["http://127.0.0.1:9/x.png"]));
      expect(closed.error.message).toBe(
        "Could not fetch image_url #1: the URL is not reachable or not an image",
      );
    });

    it("refuses more images than --max-images before fetching any", async () => {
      images.hits.length = 0;
      const urls = Array.from({ length: 21 }, (_, i) => `${images.url}/${i}.png`);
      const { status, error } = await post(strict, imageRequest(urls));
      expect(status).toBe(400);
      expect(error).toMatchObject({ code: "too_many_images", param: "messages[0].content[21]" });
      expect(images.hits).toEqual([]);
    });

    it("fetches 100 URLs at most 4 at a time and drops the rest when one fails", async () => {
      images.hits.length = 0;
      images.maxOpen = images.open.size;
      const urls = Array.from({ length: 100 }, (_, i) =>
        i === 1 ? `${images.url}/fail` : `${images.url}/hang${i}`,
      );
      const { status, error } = await post(lan, imageRequest(urls));
      expect(status).toBe(400);
      expect(error).toMatchObject({
        message: "Could not fetch image_url #2: the URL is not reachable or not an image",
        code: "image_fetch_failed",
      });
      expect(images.hits.length).toBeLessThanOrEqual(4);
      expect(images.maxOpen).toBeLessThanOrEqual(4);
      expect(await waitUntil(() => images.open.size === 0, 5_000)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(images.hits.length).toBeLessThanOrEqual(4);
    });
  });
}

for (const runtime of RUNTIMES) describeRuntime(runtime);
