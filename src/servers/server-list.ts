/**
 * Several beanstalkd servers, named. beanstalkd has no clustering: spreading jobs over servers is the
 * client's job, and every place bsworker takes a server (the `url` option, `--url`, `BEANSTALKD_URL`)
 * takes a list, comma-separated or as an array. A server's name is its `host:port`, the form every
 * message, id and metric label already uses, so a name is meaningful to an operator without a table
 * that maps short names to addresses.
 */
import { DEFAULT_ADDRESS, formatAddress, parseServerUrl, type ServerAddress, URL_ENV } from '../beanstalk/address.js';

/** One server of a list: its address and its name (`host:port`). */
export interface NamedServer {
  readonly address: ServerAddress;
  /** `host:port`, as {@link formatAddress} writes it: the prefix of the server's qualified job ids. */
  readonly name: string;
}

/** Servers named at most in one list: past this, a list is a mistake rather than a deployment. */
export const MAX_SERVERS = 64;

/** What names the servers: one URL, a comma-separated list, or an array of either. */
export type ServerUrls = string | readonly string[];

/**
 * Parses a list of servers: `url` when given, else `BEANSTALKD_URL`, else 127.0.0.1:11300. Each item is
 * `beanstalk://host:port`, `host:port` or `host`; empty items (`a,,b`, a trailing comma) are refused, as
 * is the same server twice (it would take twice its share of puts). Throws a TypeError naming the item.
 */
export function parseServerList(url?: ServerUrls, env: NodeJS.ProcessEnv = process.env): NamedServer[] {
  let items: string[];
  if (url === undefined) {
    const fromEnv = env[URL_ENV];
    if (fromEnv === undefined || fromEnv.trim() === '') return [{ address: DEFAULT_ADDRESS, name: formatAddress(DEFAULT_ADDRESS) }];
    items = fromEnv.split(',');
  } else if (typeof url === 'string') {
    items = url.split(',');
  } else if (Array.isArray(url)) {
    items = url.flatMap((item: unknown) => {
      if (typeof item !== 'string')
        throw new TypeError(`Expected every server URL to be a string, got ${item === null ? 'null' : typeof item}`);
      return item.split(',');
    });
  } else {
    throw new TypeError(`Expected \`url\` to be a string or an array of strings, got ${typeof url}`);
  }
  if (items.length === 0) throw new TypeError('Expected at least one beanstalkd server URL, got an empty list');
  if (items.length > MAX_SERVERS) throw new TypeError(`Expected at most ${MAX_SERVERS} beanstalkd servers, got ${items.length}`);
  const servers: NamedServer[] = [];
  for (const item of items) {
    if (item.trim() === '' && items.length > 1)
      throw new TypeError('Expected a beanstalkd URL between every two commas, got an empty item');
    const address = parseServerUrl(item);
    const name = formatAddress(address);
    if (servers.some((server) => server.name === name)) throw new TypeError(`The server ${name} is listed twice`);
    servers.push({ address, name });
  }
  return servers;
}
