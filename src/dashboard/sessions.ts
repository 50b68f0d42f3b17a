/**
 * The dashboard's logins: a browser that gave the token on the login page gets a session cookie, which
 * the API then accepts for GET requests, and for a state-changing request only with the session's CSRF
 * token beside it. See the README's "Dashboard: security".
 *
 * The cookie holds a random session id, never the token: a stolen cookie dies with the session (at
 * logout, after {@link SESSION_DEFAULTS.lifetimeMs}, or when the server restarts) and says nothing about
 * the token. Sessions live in this process's memory only, keyed by a hash of the id so that the map's
 * lookup cannot leak the id by its timing.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The cookie's name. */
export const SESSION_COOKIE = 'bsworker_session';

/** The header a cookie-authenticated state-changing request carries its CSRF token in. */
export const CSRF_HEADER = 'x-csrf-token';

/** Session limits, in one place. */
export const SESSION_DEFAULTS = Object.freeze({
  /** A login lasts this long, then the login page is shown again. */
  lifetimeMs: 12 * 60 * 60 * 1000,
  /** At most this many live sessions; the oldest is dropped for a new one, so logins cannot fill memory. */
  maxSessions: 1_000,
});

const hashOf = (id: string): string => createHash('sha256').update(id, 'utf8').digest('hex');

/** The live sessions of one server, and the key their CSRF tokens are derived with. */
export class SessionStore {
  readonly #secret = randomBytes(32);
  /** hash(id) → expiry (ms since the epoch); a Map keeps insertion order, oldest first. */
  readonly #sessions = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Starts a session; returns its id, the cookie's value (43 URL-safe characters). */
  create(): string {
    const id = randomBytes(32).toString('base64url');
    while (this.#sessions.size >= SESSION_DEFAULTS.maxSessions) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    this.#sessions.set(hashOf(id), this.#now() + SESSION_DEFAULTS.lifetimeMs);
    return id;
  }

  /** The session id a `Cookie` header carries, when it names a live session; else undefined. */
  fromCookieHeader(header: string | undefined): string | undefined {
    const id = cookieValue(header, SESSION_COOKIE);
    if (id === undefined || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const key = hashOf(id);
    const expiry = this.#sessions.get(key);
    if (expiry === undefined) return undefined;
    if (expiry <= this.#now()) {
      this.#sessions.delete(key);
      return undefined;
    }
    return id;
  }

  /** Ends a session (logout). */
  end(id: string): void {
    this.#sessions.delete(hashOf(id));
  }

  /** The CSRF token of session `id`: an HMAC of it, so it needs no storage and reveals nothing of the id. */
  csrfToken(id: string): string {
    return createHmac('sha256', this.#secret).update(`csrf:${id}`, 'utf8').digest('base64url');
  }

  /** True when `given` is session `id`'s CSRF token (compared in constant time). */
  checkCsrf(id: string, given: string | undefined): boolean {
    const expected = Buffer.from(this.csrfToken(id), 'utf8');
    const actual = Buffer.from(typeof given === 'string' ? given : '', 'utf8');
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }
}

/** The value of cookie `name` in a `Cookie` header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The `Set-Cookie` value that stores session `id` (`secure` when served over https). */
export function sessionCookie(id: string, secure: boolean): string {
  const maxAge = Math.floor(SESSION_DEFAULTS.lifetimeMs / 1000);
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure ? '; Secure' : ''}`;
}

/** The `Set-Cookie` value that removes the session cookie. */
export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}
