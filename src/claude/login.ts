/**
 * What the proxy's own runs showed of the claude CLI's login, for `/health` and the dashboard:
 * a run that ended with the CLI's "not logged in" result (`cli_not_logged_in`, src/claude/status.ts)
 * says logged out; one that answered says logged in. Nothing is probed: until a run ended either
 * way it is unknown (null).
 */
export class CliLogin {
  #loggedIn: boolean | null = null;
  #checkedAt: string | null = null;

  /** Records what a run showed (`loggedIn`), at `now`. */
  observe(loggedIn: boolean, now: Date = new Date()): void {
    this.#loggedIn = loggedIn;
    this.#checkedAt = now.toISOString();
  }

  /** `logged_in` (null: no run told yet) and when a run last told, ISO 8601. */
  get state(): { logged_in: boolean | null; checked_at: string | null } {
    return { logged_in: this.#loggedIn, checked_at: this.#checkedAt };
  }
}
