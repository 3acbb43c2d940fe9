/** Picks the {@link Runtime} this process runs on. */

import type { Runtime } from "./types.ts";

/**
 * Detects the runtime once, Deno and Bun before Node since both also look like Node
 * (as std-env does), and loads only its implementation. The string-literal imports
 * keep `bun build --compile` and `deno compile` bundling them.
 */
export async function detectRuntime(): Promise<Runtime> {
  if ("Deno" in globalThis) return (await import("./deno.ts")).denoRuntime;
  if ("Bun" in globalThis) return (await import("./bun.ts")).bunRuntime;
  return (await import("./node.ts")).nodeRuntime;
}
