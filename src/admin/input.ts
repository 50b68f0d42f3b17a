/**
 * Checks of what callers pass in (tube names, numbers, job ids, cursors), as {@link InvalidInputError}s
 * with a code, before anything reaches a server. The CLI parses its flags first, so these mostly guard
 * the HTTP API; both get the same messages.
 */
import { formatAddress, parseServerUrl } from '../beanstalk/address.js';
import { assertInteger, assertTubeName } from '../beanstalk/validate.js';
import { InvalidInputError } from './errors.js';

/** Throws an {@link InvalidInputError} (`INVALID_TUBE`) unless `name` is a tube name beanstalkd accepts. */
export function checkTube(name: unknown, argument = 'tube'): string {
  try {
    assertTubeName(name, argument);
  } catch (error) {
    throw new InvalidInputError('INVALID_TUBE', (error as Error).message);
  }
  return name;
}

/** Throws an {@link InvalidInputError} (`INVALID_OPTION`) unless `value` is an integer in `min..max`. */
export function checkInteger(value: unknown, argument: string, min: number, max: number): number {
  try {
    assertInteger(value, argument, min, max);
  } catch (error) {
    throw new InvalidInputError('INVALID_OPTION', (error as Error).message);
  }
  return value;
}

// A job id on one server: what beanstalkd calls a job (1 to 2^64-1, no leading zeros needed).
const LOCAL_ID = /^[0-9]{1,20}$/;
const MAX_ID = 2n ** 64n - 1n;

/** A job id as a server knows it, and which server. */
export interface LocatedId {
  /** Index into the configured servers. */
  readonly server: number;
  /** The decimal id on that server. */
  readonly id: string;
}

/**
 * Reads an opaque job id: `42` (with one server configured) or `host:port/42` (any number of servers).
 * `servers` are the configured names (`host:port`).
 */
export function locateId(value: unknown, servers: readonly string[], argument = 'id'): LocatedId {
  const bad = (why: string): InvalidInputError =>
    new InvalidInputError('INVALID_JOB_ID', `Expected \`${argument}\` to be a job id such as 42, got ${show(value)}: ${why}`);
  if (typeof value !== 'string' && typeof value !== 'number') throw bad('not a string');
  const textValue = String(value).trim();
  const slash = textValue.lastIndexOf('/');
  const local = slash < 0 ? textValue : textValue.slice(slash + 1);
  if (!LOCAL_ID.test(local) || BigInt(local) > MAX_ID) throw bad('a job id is a whole number from 0 to 2^64-1');
  if (slash < 0) {
    if (servers.length !== 1) {
      throw new InvalidInputError(
        'AMBIGUOUS_JOB_ID',
        `job id ${local} names no server, and ${servers.length} are configured: write it as host:port/${local}`,
      );
    }
    return { server: 0, id: local };
  }
  const name = textValue.slice(0, slash);
  const server = servers.indexOf(canonicalServerName(name));
  if (server < 0) throw bad(`no configured server is called ${JSON.stringify(name)} (configured: ${servers.join(', ')})`);
  return { server, id: local };
}

/** `name` as the server list spells it (`LOCALHOST:11300` is `localhost:11300`); unchanged when it is not a URL. */
function canonicalServerName(name: string): string {
  try {
    return formatAddress(parseServerUrl(name));
  } catch {
    return name;
  }
}

/** A cursor from a {@link JobPage}: the id to go on below, `null`/`undefined` for the first page. */
export function parseCursor(value: unknown): bigint | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const textValue = typeof value === 'number' ? String(value) : value;
  if (typeof textValue !== 'string' || !LOCAL_ID.test(textValue) || BigInt(textValue) > MAX_ID + 1n) {
    throw new InvalidInputError('INVALID_CURSOR', `Expected \`cursor\` to be a cursor from an earlier page (digits), got ${show(value)}`);
  }
  return BigInt(textValue);
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  return String(value);
}
