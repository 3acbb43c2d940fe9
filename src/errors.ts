/**
 * OpenAI-shaped errors: one class with an HTTP status, rendered by the app's single `onError`.
 * Wire shape (https://platform.openai.com/docs/guides/error-codes):
 * `{"error":{"message","type","param","code"}}`.
 */

/** OpenAI's error `type` values, plus the ones this proxy adds for upstream faults. */
export type OpenAIErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "rate_limit_error"
  | "server_error"
  | "api_error"
  | "overloaded_error"
  | "timeout_error";

/** The JSON body of an error response. */
export interface OpenAIErrorBody {
  error: {
    message: string;
    type: OpenAIErrorType;
    param: string | null;
    code: string | null;
  };
}

/** Options for {@link ProxyError}. */
export interface ProxyErrorOptions {
  type?: OpenAIErrorType;
  param?: string | null;
  code?: string | null;
  /** Seconds, sent as the `Retry-After` header (429, 503). */
  retryAfterSeconds?: number;
  /**
   * Sent as `x-should-retry`, which the OpenAI and Anthropic SDKs obey before their own rules
   * (they retry every 429 and 5xx, and ignore a `Retry-After` over a minute).
   */
  shouldRetry?: boolean;
  cause?: unknown;
}

/** An error a client can see: HTTP status plus OpenAI's error fields. */
export class ProxyError extends Error {
  readonly status: number;
  readonly type: OpenAIErrorType;
  readonly param: string | null;
  readonly code: string | null;
  readonly retryAfterSeconds: number | undefined;
  readonly shouldRetry: boolean | undefined;

  constructor(status: number, message: string, options: ProxyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ProxyError";
    this.status = status;
    this.type = options.type ?? defaultType(status);
    this.param = options.param ?? null;
    this.code = options.code ?? null;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.shouldRetry = options.shouldRetry;
  }

  /** The response body in OpenAI's shape. */
  toJSON(): OpenAIErrorBody {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.code },
    };
  }

  /** Response headers that go with this error (`Retry-After` when known, `x-should-retry`). */
  headers(): Record<string, string> {
    return {
      ...(this.retryAfterSeconds === undefined
        ? {}
        : { "Retry-After": String(Math.max(1, Math.ceil(this.retryAfterSeconds))) }),
      ...(this.shouldRetry === undefined ? {} : { "x-should-retry": String(this.shouldRetry) }),
    };
  }
}

/** The OpenAI error type conventionally used for an HTTP status. */
export function defaultType(status: number): OpenAIErrorType {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status === 504) return "timeout_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** Wraps anything thrown into a {@link ProxyError} (unknown errors become a 500 without internals). */
export function toProxyError(error: unknown): ProxyError {
  if (error instanceof ProxyError) return error;
  return new ProxyError(500, "Internal proxy error", { type: "server_error", cause: error });
}

/**
 * The Messages API's error `type` values (https://docs.anthropic.com/en/api/errors), by HTTP
 * status: 400 invalid_request_error, 401 authentication_error, 402 billing_error,
 * 403 permission_error, 404 not_found_error, 413 request_too_large, 429 rate_limit_error,
 * 500 api_error, 504 timeout_error, 529 overloaded_error.
 */
export type AnthropicErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "billing_error"
  | "permission_error"
  | "not_found_error"
  | "request_too_large"
  | "rate_limit_error"
  | "api_error"
  | "timeout_error"
  | "overloaded_error";

/** The JSON body of an error response in the Messages API's shape. */
export interface AnthropicErrorBody {
  type: "error";
  error: { type: AnthropicErrorType; message: string };
  /** The proxy's request id (also sent as the `request-id` header), or null. */
  request_id: string | null;
}

/**
 * The HTTP status an error gets on the Messages surface: its own, except that an upstream
 * overload (`upstream_overloaded`, which the OpenAI surfaces answer as 503) stays the API's 529.
 */
export function anthropicStatus(error: ProxyError): number {
  return error.code === "upstream_overloaded" ? 529 : error.status;
}

/** The Messages API's error type for an error ({@link AnthropicErrorType}, chosen by status). */
export function anthropicErrorType(error: ProxyError): AnthropicErrorType {
  const status = anthropicStatus(error);
  switch (status) {
    case 401:
      return "authentication_error";
    case 402:
      return "billing_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 408:
    case 504:
      return "timeout_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 529:
      return "overloaded_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

/**
 * The response body of an error in the Messages API's shape: `{"type":"error","error":{"type","message"}}`.
 * The shape has no `param`: a message that does not name its param gets it as a prefix, as the
 * API words its own (`messages[0].content[1]: ...`).
 */
export function anthropicErrorBody(error: ProxyError, requestId?: string): AnthropicErrorBody {
  const message =
    error.param === null || error.message.includes(error.param)
      ? error.message
      : `${error.param}: ${error.message}`;
  return {
    type: "error",
    error: { type: anthropicErrorType(error), message },
    request_id: requestId ?? null,
  };
}
