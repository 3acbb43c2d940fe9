/**
 * Name resolution and address-pinned GETs shared by the three runtimes. Bun and Deno both
 * implement `node:dns`, `node:http` and `node:https` including the `lookup` option of a
 * request (checked by test/runtime/probe.ts), so one implementation serves all of them. The
 * option hands the socket the vetted address while the URL's host name still drives `Host`,
 * TLS SNI and certificate checks: there is no second resolution a DNS-rebinding server could
 * answer differently. (Web `fetch` has no such hook on Node or Deno.)
 */

import { lookup as dnsLookup } from "node:dns/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { Readable } from "node:stream";
import type { Lookup, PinnedFetch, Runtime } from "./types.ts";

/** The network part of {@link Runtime}. */
export type RuntimeHttp = Pick<Runtime, "lookup" | "fetchPinned">;

const lookup: Lookup = async (hostname) => {
  const found = await dnsLookup(hostname, { all: true, verbatim: true });
  return found.map((entry) => entry.address);
};

/** Statuses whose responses carry no body. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

function toResponse(message: IncomingMessage): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(message.headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  const status = message.statusCode ?? 0;
  if (NULL_BODY.has(status)) {
    message.resume();
    return new Response(null, { status, headers });
  }
  // node:stream/web's ReadableStream and the DOM one are the same object with different typings.
  const body = Readable.toWeb(message) as unknown as ReadableStream<Uint8Array>;
  return new Response(body, { status, headers });
}

const fetchPinned: PinnedFetch = (url, options) =>
  new Promise<Response>((resolve, reject) => {
    const target = new URL(url);
    const family = isIP(options.address);
    if (family === 0 || (target.protocol !== "http:" && target.protocol !== "https:")) {
      reject(new Error(`Cannot fetch ${target.protocol} from ${options.address}`));
      return;
    }
    const pinned: LookupFunction = (_hostname, lookupOptions, callback) => {
      if (lookupOptions.all) callback(null, [{ address: options.address, family }]);
      else callback(null, options.address, family);
    };
    const send = target.protocol === "https:" ? httpsRequest : httpRequest;
    const request = send(
      target,
      {
        method: "GET",
        headers: options.headers ?? {},
        signal: options.signal,
        agent: false,
        lookup: pinned,
      },
      (message) => {
        try {
          resolve(toResponse(message));
        } catch (error) {
          // e.g. a status outside 200-599, which Response refuses.
          message.destroy();
          reject(error);
        }
      },
    );
    request.once("error", reject);
    request.end();
  });

/** `node:dns` and `node:http(s)` implementations of the {@link Runtime} network functions. */
export const nodeHttp: RuntimeHttp = { lookup, fetchPinned };
