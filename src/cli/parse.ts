/** Parsers for command-line values; each throws commander's InvalidArgumentError with a clear reason. */
import { isIP } from 'node:net';
import { InvalidArgumentError } from 'commander';
import type { LevelWithSilent } from 'pino';
import { assertTubeName, normaliseJobId, UINT32_MAX } from '../beanstalk/validate.js';
import { LOG_LEVELS } from '../logging/logger.js';
import { UsageError } from './errors.js';

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `a,b,c` -> validated, de-duplicated tube names. */
export function parseTubes(value: string): string[] {
  const tubes = [
    ...new Set(
      value
        .split(',')
        .map((tube) => tube.trim())
        .filter((tube) => tube !== ''),
    ),
  ];
  if (tubes.length === 0) throw new InvalidArgumentError('give at least one tube name, like --tubes emails,reports');
  for (const tube of tubes) {
    try {
      assertTubeName(tube);
    } catch (error) {
      throw new InvalidArgumentError(reason(error));
    }
  }
  return tubes;
}

/** One validated tube name. */
export function parseTube(value: string): string {
  try {
    assertTubeName(value);
  } catch (error) {
    throw new InvalidArgumentError(reason(error));
  }
  return value;
}

/** `a,b` -> de-duplicated, non-empty keys (for `--redact`). */
export function parseKeys(value: string): string[] {
  const keys = [
    ...new Set(
      value
        .split(',')
        .map((key) => key.trim())
        .filter((key) => key !== ''),
    ),
  ];
  if (keys.length === 0) throw new InvalidArgumentError('give at least one kwargs key, like --redact password,token');
  return keys;
}

/**
 * `BSWORKER_REDACT` as keys, or undefined when it names none (empty, or only commas). Commander does
 * not parse a default, and the environment is read while the program is built, where nothing may throw.
 */
export function parseRedactEnv(value: string): string[] | undefined {
  const keys = value
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key !== '');
  return keys.length === 0 ? undefined : [...new Set(keys)];
}

/** A whole number in `min..max`. */
export function integerIn(min: number, max = UINT32_MAX): (value: string) => number {
  return (value) => {
    if (!/^[0-9]+$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return Number(value);
  };
}

/** A pino level name. */
export function parseLogLevel(value: string): string {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`);
  }
  return value;
}

/** A job id (decimal digits). */
export function parseJobId(value: string): string {
  try {
    return normaliseJobId(value.trim(), 'id');
  } catch (error) {
    throw new InvalidArgumentError(reason(error));
  }
}

/**
 * Checks a log level that did not go through {@link parseLogLevel}: commander does not parse a default,
 * so a `LOG_LEVEL` from the environment arrives unchecked.
 */
export function logLevelOf(value: string): LevelWithSilent {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new UsageError(`unknown log level \`${value}\` (from --log-level or LOG_LEVEL); expected one of ${LOG_LEVELS.join(', ')}`);
  }
  return value as LevelWithSilent;
}

/**
 * An address to listen on: an IPv4 or IPv6 literal, or `localhost`. Names are refused: which address
 * a name resolves to (and so who can connect) would be decided by DNS at start.
 */
export function parseListenHost(value: string): string {
  const host = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  if (host === 'localhost' || isIP(host) !== 0) return host;
  throw new InvalidArgumentError(`expected an IP address such as 127.0.0.1, ::1 or 0.0.0.0, or localhost; got ${JSON.stringify(value)}`);
}
