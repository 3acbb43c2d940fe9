/**
 * The last requests the proxy answered (or refused) on its API surfaces, for the dashboard's
 * "Recent requests": a bounded ring in memory, newest first, lost on restart. A record holds
 * what a person needs to see how requests went (time, surface, model, status, duration,
 * tokens), never prompt or answer text.
 */

/** Records kept by default. */
export const DEFAULT_RECENT = 200;

/** One finished request. */
export interface RecentRequest {
  /** When it finished, ISO 8601. */
  time: string;
  request_id: string;
  /** `chat`, `responses` or `messages`. */
  surface: string;
  /** The model label the CLI ran (as in usage records). */
  model: string;
  /** The HTTP status the client got (a stream that failed midway: the error's status). */
  status: number;
  stream: boolean;
  duration_ms: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  /** US dollars as the CLI reported them (0 when none reached the API). */
  cost_usd: number;
  /** The error code, for a failed request. */
  code?: string;
  /** Answered by a process started ahead: this conversation's warm one, or a spare. */
  process?: "warm" | "spare";
  /** Ended at client tool calls; the run waits for their results. */
  waiting_for_tools?: boolean;
}

/** The body of `GET /dashboard/requests`. */
export interface RecentRequestList {
  object: "list";
  /** Newest first. */
  data: RecentRequest[];
}

/** A ring of the last `capacity` {@link RecentRequest}s. */
export class RecentRequests {
  readonly capacity: number;
  readonly #ring: RecentRequest[] = [];
  /** Where the next record goes once the ring is full. */
  #next = 0;

  /** @param capacity records kept (at least 1; default {@link DEFAULT_RECENT}). */
  constructor(capacity = DEFAULT_RECENT) {
    this.capacity = Math.max(1, Math.floor(capacity));
  }

  /** Number of records held. */
  get size(): number {
    return this.#ring.length;
  }

  /** Adds a record, dropping the oldest when the ring is full. */
  add(request: RecentRequest): void {
    if (this.#ring.length < this.capacity) {
      this.#ring.push(request);
      return;
    }
    this.#ring[this.#next] = request;
    this.#next = (this.#next + 1) % this.capacity;
  }

  /** The newest `limit` records (all by default), newest first. */
  list(limit = this.capacity): RecentRequest[] {
    const n = this.#ring.length;
    const count = Math.max(0, Math.min(n, Math.floor(limit)));
    const out: RecentRequest[] = [];
    // The newest is just before #next (or the last pushed while not yet full).
    const newest = n < this.capacity ? n - 1 : (this.#next - 1 + n) % n;
    for (let i = 0; i < count; i++) {
      const record = this.#ring[(newest - i + n) % n];
      if (record !== undefined) out.push({ ...record });
    }
    return out;
  }
}
