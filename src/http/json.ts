/**
 * Bounded JSON request bodies, shared by every surface (issue 9): the body text is counted
 * before it is parsed, arrays are measured before zod walks them, and validation stops at the
 * first element that fails, so that a hostile body costs at most one element's issues. Errors
 * name the field the way OpenAI names params (`messages[0].content`).
 */
import { z } from "zod";
import { ProxyError } from "../errors.ts";

/**
 * Deepest nesting of arrays and objects accepted in client JSON that the proxy serialises
 * again (tool parameters, response schemas, tool call arguments): `JSON.stringify` recurses and
 * overflows the stack at roughly 10,000 levels, while `JSON.parse` accepts any depth.
 */
export const MAX_JSON_DEPTH = 100;

/** Whether `value` nests arrays or objects more than `max` levels deep (iterative, so any depth is safe). */
export function exceedsJsonDepth(value: unknown, max: number = MAX_JSON_DEPTH): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  while (true) {
    const item = stack.pop();
    if (item === undefined) return false;
    if (typeof item.value !== "object" || item.value === null) continue;
    if (item.depth > max) return true;
    const children = Array.isArray(item.value) ? item.value : Object.values(item.value);
    for (const child of children) stack.push({ value: child, depth: item.depth + 1 });
  }
}

/** A JSON object (JSON Schema) that can be serialised again: at most {@link MAX_JSON_DEPTH} levels. */
export const JsonSchemaObject = z
  .record(z.string(), z.unknown())
  .refine((value) => !exceedsJsonDepth(value), {
    message: `must not nest deeper than ${MAX_JSON_DEPTH} levels`,
  });

/** Longest accepted `model` name, characters (real ids are under 64). */
export const MAX_MODEL_LENGTH = 256;

// Bounds that hold before work is done (issue 9): a 32 MiB body of millions of tiny values
// once took JSON.parse 20 s and zod, recording an issue per element, the whole heap. The body
// text is counted before it is parsed, the arrays before they are validated, and validation
// stops at the first message or tool that fails.

/**
 * Most JSON values (objects, arrays and array elements, counted as the `{`, `[` and `,` outside
 * strings) in a request body, tool call arguments included: parsing this many takes well under
 * a second and a few tens of MB.
 */
export const MAX_JSON_VALUES = 250_000;
/** Most entries in `messages`. */
export const MAX_MESSAGES = 10_000;
/** Most content parts in one message (images are capped separately, per request). */
export const MAX_CONTENT_PARTS = 1_000;
/** Most stop sequences (`stop`, `stop_sequences`). */
export const MAX_STOP = 64;

/** Formats a zod issue path the way OpenAI names params: `messages[0].content`. */
export function formatParam(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** Turns a zod failure into a 400 {@link ProxyError} naming the first offending field (under `prefix`). */
export function requestError(error: z.ZodError, prefix: readonly PropertyKey[] = []): ProxyError {
  const issue = error.issues[0];
  if (issue === undefined) return new ProxyError(400, "Invalid request body");
  const param = formatParam([...prefix, ...issue.path]);
  const where = param === "" ? "request body" : `'${param}'`;
  return new ProxyError(400, `Invalid value for ${where}: ${issue.message}`, {
    param: param === "" ? null : param,
    code: issue.code === "invalid_type" ? "invalid_type" : "invalid_value",
  });
}

/**
 * How many JSON values `text` holds, as counted by {@link MAX_JSON_VALUES} (`{`, `[` and `,`
 * outside strings: at least one per value in a container). One pass, no allocation; stops
 * counting once past `max`.
 */
export function countJsonValues(text: string, max: number = MAX_JSON_VALUES): number {
  let count = 0;
  // The next quote and backslash found so far (-1: none left), each searched for again only
  // once passed, so that strings are skipped by indexOf in linear time.
  let quote = 0;
  let backslash = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: jump to its closing quote, stepping over escapes.
      let at = i + 1;
      while (true) {
        if (quote < at) quote = text.indexOf('"', at);
        if (quote === -1) return count;
        if (backslash !== -1 && backslash < at) backslash = text.indexOf("\\", at);
        if (backslash === -1 || backslash > quote) {
          i = quote;
          break;
        }
        at = backslash + 2;
      }
    } else if (c === 0x7b || c === 0x5b || c === 0x2c) {
      if (++count > max) return count;
    }
  }
  return count;
}

export function tooManyValues(param: string | null): ProxyError {
  const where = param === null ? "The request body" : `'${param}'`;
  return new ProxyError(
    400,
    `${where} holds more than ${MAX_JSON_VALUES} JSON values (objects, arrays and array elements)`,
    { param, code: "too_many_values" },
  );
}

/**
 * Parses a request body's text: counted first ({@link MAX_JSON_VALUES}), then `JSON.parse`d.
 * @returns the value and what is left of the value budget for JSON inside it (tool arguments).
 * @throws ProxyError 400 `too_many_values` or `invalid_json`.
 */
export function parseJsonBody(text: string): { body: unknown; valueBudget: number } {
  const values = countJsonValues(text);
  if (values > MAX_JSON_VALUES) throw tooManyValues(null);
  try {
    return { body: JSON.parse(text), valueBudget: MAX_JSON_VALUES - values };
  } catch (error) {
    throw new ProxyError(
      400,
      `Could not parse the request body as JSON: ${(error as Error).message}`,
      { code: "invalid_json" },
    );
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function arrayTooLong(param: string, length: number, max: number): ProxyError {
  return new ProxyError(
    400,
    `Invalid '${param}': array too long. Expected an array with maximum length ${max}, but got an array with length ${length} instead.`,
    { param, code: "array_above_max_length" },
  );
}

/** Throws when `value` is an array longer than `max` (other types are left to zod). */
export function checkLength(value: unknown, max: number, param: string): void {
  if (Array.isArray(value) && value.length > max) throw arrayTooLong(param, value.length, max);
}

/** Validates `items` one by one with `schema`, stopping at the first that fails. */
export function parseEach<T>(schema: z.ZodType<T>, items: readonly unknown[], key: string): T[] {
  const out: T[] = [];
  for (const [i, item] of items.entries()) {
    const parsed = schema.safeParse(item);
    if (!parsed.success) throw requestError(parsed.error, [key, i]);
    out.push(parsed.data);
  }
  return out;
}

/**
 * Parses tool call arguments (JSON text a client echoes back) for the API's `tool_use.input`,
 * which must be an object: invalid JSON, and JSON nested deeper than {@link MAX_JSON_DEPTH}
 * (it would overflow `JSON.stringify` later), is kept as a string under `_raw`; a JSON value that
 * is not an object under `value`.
 */
export function parseArguments(text: string): unknown {
  if (text.trim() === "") return {};
  try {
    const value: unknown = JSON.parse(text);
    if (exceedsJsonDepth(value)) return { _raw: text };
    return typeof value === "object" && value !== null && !Array.isArray(value) ? value : { value };
  } catch {
    return { _raw: text };
  }
}
