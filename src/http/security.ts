/**
 * The API's guards, each a pure function of the request's headers so that it is tested on its own:
 * the bearer token (compared in constant time), the `Host` header (DNS rebinding), and the origin of a
 * state-changing request (a browser page of another site). The server applies them in that order to
 * every request but the health probes; see the README's "HTTP API: security".
 */

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { isLoopbackHost } from '../util/hosts.js';

/** Tokens shorter than this are refused: a guessable token is no authentication. */
export const TOKEN_MIN_LENGTH = 16;

/** The environment variable that gives the token when `--token-file` does not. */
export const TOKEN_ENV = 'BSWORKER_TOKEN';

/** A token the server makes when none is configured: 32 random bytes, URL-safe base64 (43 characters). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Checks a configured token: at least {@link TOKEN_MIN_LENGTH} characters, all visible ASCII (it travels
 * in a header). Throws a TypeError that names `source` and never quotes the token.
 */
export function checkToken(token: string, source: string): string {
  if (token.length < TOKEN_MIN_LENGTH) {
    throw new TypeError(
      `the token from ${source} is ${token.length} characters long; use at least ${TOKEN_MIN_LENGTH} (e.g. openssl rand -hex 32)`,
    );
  }
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new TypeError(`the token from ${source} holds spaces or characters outside printable ASCII, which a header cannot carry`);
  }
  return token;
}

/** What {@link readTokenFile} found. */
export interface TokenFile {
  readonly token: string;
  /** True when the file can be read by other users than its owner (mode & 0o077): worth a warning. */
  readonly readableByOthers: boolean;
}

/** Reads a token file: its first line, trimmed (so `echo TOKEN > F` works), checked by {@link checkToken}. */
export async function readTokenFile(path: string): Promise<TokenFile> {
  const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
  const token = (text.split(/\r?\n/)[0] ?? '').trim();
  return { token: checkToken(token, `--token-file ${JSON.stringify(path)}`), readableByOthers: (info.mode & 0o077) !== 0 };
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Checks `Authorization: Bearer <token>` headers against one token. Both sides are hashed first, so
 * `timingSafeEqual` compares equal-length digests and the time taken says nothing about the token,
 * not even its length.
 */
export class TokenVerifier {
  readonly #digest: Buffer;

  constructor(token: string) {
    this.#digest = digest(token);
  }

  /** True when `header` is `Bearer <the token>` (the scheme in any case). */
  verify(header: string | undefined): boolean {
    const match = typeof header === 'string' ? /^Bearer +(\S+) *$/i.exec(header) : null;
    // Hashed and compared even when absent, so a missing header takes as long as a wrong one.
    const given = digest(match?.[1] ?? '');
    return timingSafeEqual(given, this.#digest) && match !== null;
  }
}

/** True for the wildcard addresses, which listen on every interface. */
export function isWildcardHost(host: string): boolean {
  return ['0.0.0.0', '::', '[::]', '0:0:0:0:0:0:0:0'].includes(host.toLowerCase());
}

/** A `Host` header or an `--allowed-host` value, split into a lower-case name and a port (undefined when absent). */
export function splitHost(value: string): { name: string; port: number | undefined } | undefined {
  // Host names are ASCII letters, digits, dots, hyphens (and underscores, which some internal names use).
  const match = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::([0-9]{1,5}))?$/i.exec(value.trim());
  if (!match?.[1]) return undefined;
  const port = match[2] === undefined ? undefined : Number(match[2]);
  if (port !== undefined && port > 65_535) return undefined;
  return { name: match[1].toLowerCase(), port };
}

/** An allowed host: a name, and the one port it is allowed with (undefined: any). */
interface AllowedHost {
  readonly name: string;
  readonly port: number | undefined;
}

/**
 * The names a `Host` header may carry. A DNS-rebinding page reaches the server under its own domain
 * name, so the guard is on the name: the loopback names, the address listened on (every local address
 * for a wildcard), and the `--allowed-host` values. The port is not checked for these (an SSH tunnel
 * or a proxy changes it, and a port is no defence against rebinding), except for an `--allowed-host
 * NAME:PORT`, which allows only that port. `*` turns the check off.
 */
export class HostAllowList {
  readonly #hosts: readonly AllowedHost[];
  readonly #any: boolean;

  /** Throws a TypeError for an `--allowed-host` value that is not `NAME`, `NAME:PORT` or `*`. */
  constructor(listenHost: string, extra: readonly string[] = []) {
    this.#any = extra.includes('*');
    const names = ['localhost', '127.0.0.1', '[::1]'];
    if (isWildcardHost(listenHost)) names.push(...localAddresses());
    else names.push(isIP(listenHost) === 6 ? `[${listenHost.toLowerCase()}]` : listenHost.toLowerCase());
    const hosts: AllowedHost[] = names.map((name) => ({ name, port: undefined }));
    for (const value of extra) {
      if (value === '*') continue;
      const host = splitHost(value);
      if (!host)
        throw new TypeError(`Expected an allowed host to be NAME or NAME:PORT (e.g. api.example.com), got ${JSON.stringify(value)}`);
      hosts.push(host);
    }
    this.#hosts = hosts;
  }

  /** True when `header` (a request's `Host`) names this server. */
  allows(header: string | undefined): boolean {
    if (this.#any) return true;
    if (header === undefined) return false;
    const host = splitHost(header);
    if (!host) return false;
    // 127.0.0.2 and the other 127/8 addresses are this machine too.
    if (isLoopbackHost(host.name)) return true;
    return this.#hosts.some((allowed) => allowed.name === host.name && (allowed.port === undefined || allowed.port === host.port));
  }
}

/** This machine's interface addresses, as they appear in a `Host` header (IPv6 bracketed). */
function localAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((entries) => entries ?? [])
    .map((entry) => (entry.family === 'IPv6' ? `[${entry.address.toLowerCase().replace(/%.*$/, '')}]` : entry.address));
}

/** `host:port` with the scheme's default port left out, as an origin's `host` is written. */
function withoutDefaultPort(host: string, protocol: 'http:' | 'https:'): string {
  const split = splitHost(host);
  if (!split) return host.toLowerCase();
  const isDefault =
    split.port === undefined || (protocol === 'http:' && split.port === 80) || (protocol === 'https:' && split.port === 443);
  return isDefault ? split.name : `${split.name}:${split.port}`;
}

/**
 * Why a state-changing request must be refused as coming from another site, or undefined to let it
 * through. `Origin`, when present, must be the server's own origin (`http(s)://` and the request's own
 * `Host`), or `null` from a same-origin page (see below); `Sec-Fetch-Site` must not be `cross-site` or
 * `same-site`. A client that is not a browser
 * sends neither header and is not affected.
 */
export function foreignOriginReason(headers: {
  readonly origin?: string | undefined;
  readonly host?: string | undefined;
  readonly 'sec-fetch-site'?: string | undefined;
}): string | undefined {
  const site = headers['sec-fetch-site']?.toLowerCase();
  if (site === 'cross-site' || site === 'same-site') return `Sec-Fetch-Site is ${site}: the request comes from another site's page`;
  const origin = headers.origin;
  if (origin === undefined) return undefined;
  // A page served with Referrer-Policy: no-referrer (the dashboard's) sends `Origin: null` with its own
  // posts; the browser's Sec-Fetch-Site, which no page can set, then says whether it is this site's.
  if (origin === 'null' && site === 'same-origin') return undefined;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return 'the Origin header is not an origin';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'the request comes from a page that is not served over HTTP';
  if (headers.host === undefined || url.host.toLowerCase() !== withoutDefaultPort(headers.host, url.protocol)) {
    return 'the Origin header names another site than this server';
  }
  return undefined;
}
