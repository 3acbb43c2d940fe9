/**
 * The {@link Serve} of Node, also used on Deno: `@hono/node-server` on `node:http`. Deno's own
 * `Deno.serve` has no idle or header timeout and ignores a response's `Connection: close`
 * (denoland/deno#9411); its `node:http` layer honours both, as Node does, so the two runtimes
 * serve through this one implementation (checked on Deno by test/e2e/hardening.e2e.test.ts).
 */

import { createAdaptorServer } from "@hono/node-server";
import type { Serve, ServeEnv, Server } from "./types.ts";

/** Nothing to hold open: `node:http` times out only headers and idle keep-alive, never a response. */
const NO_CONNECTION_CONTROL: ServeEnv = { connection: { holdOpen() {} } };

/** Serves through `node:http` (Node, and Deno's Node compatibility layer). */
export const nodeServe: Serve = (options) =>
  new Promise<Server>((resolve, reject) => {
    const server = createAdaptorServer({
      fetch: (request: Request) => options.fetch(request, NO_CONNECTION_CONTROL),
      hostname: options.hostname,
      // Leave the global Request/Response untouched (node-server replaces them by default).
      overrideGlobalObjects: false,
      serverOptions: {
        // requestTimeout (default 300 s) also cuts a response still being sent (seen on Node 20
        // with a body fully received): the body's bound is the app's --body-timeout (408).
        requestTimeout: 0,
        headersTimeout: 60_000,
        // Between requests: Node's own keepAliveTimeout (5 s) closes idle connections.
      },
    });
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : options.port;
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            // Connections that finish their response later go idle then: close those too
            // (keep-alive would otherwise hold close() open for keepAliveTimeout).
            const http = server as unknown as { closeIdleConnections(): void };
            const sweep = setInterval(() => http.closeIdleConnections(), 100);
            server.close(() => {
              clearInterval(sweep);
              done();
            });
            http.closeIdleConnections();
          }),
      });
    });
  });
