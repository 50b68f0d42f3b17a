/**
 * A bound on wrong tokens per client address at the login form, so the form cannot be used to guess the
 * token at network speed. The API's bearer check has no such bound: the token is 256 bits when the
 * server makes it, and a guess costs a request either way; the form gets one because it is the door a
 * person, and a script pretending to be one, is shown.
 *
 * Counts live in memory, in a fixed window per address, and the map is bounded: past
 * {@link LOGIN_LIMITS.maxAddresses} the oldest address is forgotten, which a flood of spoofed-looking
 * addresses can use to reset another's count only by sending that many requests itself.
 */

/** The login bounds, in one place. */
export const LOGIN_LIMITS = Object.freeze({
  /** Wrong tokens an address may give per window before the form refuses it. */
  failures: 10,
  /** The window, in milliseconds. */
  windowMs: 5 * 60 * 1000,
  /** Addresses remembered at most. */
  maxAddresses: 10_000,
});

/** Wrong logins per address. */
export class LoginLimiter {
  /** address → failures and when its window ends; a Map keeps insertion order, oldest first. */
  readonly #failures = new Map<string, { count: number; endsAt: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Milliseconds until `address` may try again; 0 when it may now. */
  retryAfterMs(address: string): number {
    const entry = this.#failures.get(address);
    if (!entry) return 0;
    const left = entry.endsAt - this.#now();
    if (left <= 0) {
      this.#failures.delete(address);
      return 0;
    }
    return entry.count >= LOGIN_LIMITS.failures ? left : 0;
  }

  /** Counts a wrong token from `address`. */
  failed(address: string): void {
    const now = this.#now();
    const entry = this.#failures.get(address);
    if (entry && entry.endsAt > now) {
      entry.count += 1;
      return;
    }
    this.#failures.delete(address);
    while (this.#failures.size >= LOGIN_LIMITS.maxAddresses) {
      const oldest = this.#failures.keys().next().value;
      if (oldest === undefined) break;
      this.#failures.delete(oldest);
    }
    this.#failures.set(address, { count: 1, endsAt: now + LOGIN_LIMITS.windowMs });
  }

  /** Forgets `address`'s failures (it gave the right token). */
  succeeded(address: string): void {
    this.#failures.delete(address);
  }
}
