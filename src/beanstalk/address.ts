/**
 * Where beanstalkd is. Accepts `beanstalk://host:port`, `host:port` and `host`; an explicit option wins,
 * then `BEANSTALKD_URL`, then `127.0.0.1:11300`.
 *
 * Addresses are parsed into a list-ready shape ({@link ServerAddress}) so that a later `--url a,b,c`
 * can hand the connection layer several servers without changing its callers.
 */

/** One beanstalkd server. */
export interface ServerAddress {
  readonly host: string;
  readonly port: number;
}

/** The port beanstalkd listens on by default. */
export const DEFAULT_PORT = 11300;

/** The server used when neither an option nor `BEANSTALKD_URL` names one. */
export const DEFAULT_ADDRESS: ServerAddress = Object.freeze({ host: '127.0.0.1', port: DEFAULT_PORT });

/** The environment variable read when no URL is given. */
export const URL_ENV = 'BEANSTALKD_URL';

/** Formats an address as `host:port` (IPv6 hosts in brackets), the form used in every message. */
export function formatAddress(address: ServerAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * Parses one server URL. Throws a TypeError naming the value when it is not `beanstalk://host:port`,
 * `host:port` or `host`.
 */
export function parseServerUrl(url: string): ServerAddress {
  const text = url.trim();
  const bad = (why: string): TypeError =>
    new TypeError(
      `Expected a beanstalkd URL like \`beanstalk://127.0.0.1:11300\`, \`127.0.0.1:11300\` or \`localhost\`, got \`${url}\`: ${why}`,
    );
  if (text === '') throw bad('it is empty');

  let rest = text;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rest);
  if (scheme) {
    if (scheme[1]?.toLowerCase() !== 'beanstalk') throw bad(`the scheme must be beanstalk://, not ${scheme[1]}://`);
    rest = rest.slice(scheme[0].length).replace(/\/+$/, '');
  }
  if (rest.includes('/') || rest.includes('@') || /\s/.test(rest)) throw bad('only a host and a port are allowed');

  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(rest);
  if (bracketed) {
    host = bracketed[1] ?? '';
    portText = bracketed[2];
  } else {
    const parts = rest.split(':');
    if (parts.length > 2) throw bad('write an IPv6 address in brackets, like [::1]:11300');
    host = parts[0] ?? '';
    portText = parts[1];
  }
  if (host === '') throw bad('the host is missing');
  if (bracketed ? !/^[0-9A-Fa-f:.]+$/.test(host) || !host.includes(':') : !/^[A-Za-z0-9._-]+$/.test(host)) {
    throw bad(`\`${host}\` is not a host name or IP address`);
  }
  // One spelling per server: a server's name (`host:port`) keys its qualified job ids, put routing by
  // key and `--server`, so `LOCALHOST` and `localhost`, or `[0:0::1]` and `[::1]`, must be one name.
  if (bracketed) {
    const canonical = canonicalIpv6(host);
    if (canonical === undefined) throw bad(`\`${host}\` is not an IPv6 address`);
    host = canonical;
  } else {
    host = host.toLowerCase();
  }

  let port = DEFAULT_PORT;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65_535) {
      throw bad(`the port must be a number from 1 to 65535, got \`${portText}\``);
    }
    port = Number(portText);
  }
  return { host, port };
}

/** The shortest lowercase form of an IPv6 address (as WHATWG URLs write it), or undefined if it is not one. */
function canonicalIpv6(host: string): string | undefined {
  try {
    return new URL(`beanstalk://[${host}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

/**
 * Resolves the server to use: `url` when given, else `BEANSTALKD_URL` from `env`, else 127.0.0.1:11300.
 */
export function resolveServerAddress(url?: string, env: NodeJS.ProcessEnv = process.env): ServerAddress {
  if (url !== undefined) return parseServerUrl(url);
  const fromEnv = env[URL_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') return parseServerUrl(fromEnv);
  return DEFAULT_ADDRESS;
}
