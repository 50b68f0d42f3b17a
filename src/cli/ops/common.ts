/**
 * What every operating command shares: its connection, its `--url`, `--server` and `--json` options,
 * job ids that may name their server, its errors, and the exit code of output that misses a server.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { Admin } from '../../admin/admin.js';
import { AdminError, NotFoundError as AdminNotFound } from '../../admin/errors.js';
import { parseServerUrl } from '../../beanstalk/address.js';
import { ConnectionError, NotFoundError } from '../../beanstalk/errors.js';
import { parseServerList } from '../../servers/server-list.js';
import { PartialError, UsageError } from '../errors.js';
import { parseJobId } from '../parse.js';

/** The spelling and help of the worker's `--url` (its flags table); the operating commands take a list, {@link urlOption}. */
export const URL_FLAG = Object.freeze({
  flags: '--url <url>',
  description:
    'beanstalkd server: beanstalk://host:port, host:port or host, or several comma-separated (default: $BEANSTALKD_URL, else 127.0.0.1:11300)',
});

/** A `--url` value: one server or a comma-separated list of them (validated, returned as given). */
export function parseUrlList(value: string): string {
  try {
    parseServerList(value);
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
  }
  return value;
}

/** The `--url` option every operating command takes: one server, or several (`a,b,c`). */
export function urlOption(): Option {
  return new Option(
    URL_FLAG.flags,
    'beanstalkd server: beanstalk://host:port, host:port or host, or several comma-separated (default: $BEANSTALKD_URL, else 127.0.0.1:11300)',
  ).argParser(parseUrlList);
}

/** `--server NAME`: with several servers, act on one of them only. */
export function serverOption(): Option {
  return new Option('--server <name>', 'with several servers (--url a,b,c): only this one, host:port as listed').argParser((value) => {
    try {
      parseServerUrl(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
    return value;
  });
}

/**
 * A job id on the command line: `42`, or `host:port/42` when several servers are configured (the form
 * every command prints then). The server part is checked to be an address; which servers are configured
 * is the admin layer's check.
 */
export function parseJobRef(value: string): string {
  const text = value.trim();
  const slash = text.lastIndexOf('/');
  if (slash < 0) return parseJobId(text);
  try {
    parseServerUrl(text.slice(0, slash));
  } catch (error) {
    throw new InvalidArgumentError(`the server part of job id ${JSON.stringify(text)} is not host:port: ${(error as Error).message}`);
  }
  return `${text.slice(0, slash)}/${parseJobId(text.slice(slash + 1))}`;
}

/**
 * After the output is printed: with servers that did not answer, ends the command with exit 3
 * ({@link PartialError}), its message naming them, so a script can tell complete output from output
 * that covers only the servers that answered.
 */
export function endIfPartial(unavailable: readonly string[] | undefined, configured: number): void {
  if (unavailable === undefined || unavailable.length === 0) return;
  const answered = configured - unavailable.length;
  throw new PartialError(
    `${unavailable.length} of ${configured} beanstalkd servers did not answer (${unavailable.join(', ')}): the output covers the other ${answered}`,
  );
}

/** The `--json` option: one JSON document on stdout instead of text. */
export function jsonOption(): Option {
  return new Option('--json', 'print JSON (a stable shape, documented in the README) instead of text');
}

/**
 * Wraps a command's action: the admin layer's errors (an unknown job or tube, bad input, a job in the
 * wrong state, an unreachable server) are bad input for an operating command (exit 2, one line), not a
 * runtime failure; anything else (a bug, a protocol error) exits 1.
 */
export function opsAction<A extends unknown[]>(action: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (error) {
      if (error instanceof AdminError || error instanceof ConnectionError || error instanceof NotFoundError) {
        throw new UsageError(error.message);
      }
      throw error;
    }
  };
}

/** `bsworker --url X cmd` puts --url before the subcommand, where the root parses it: honour it. */
export function urlOf(command: Command, options: { url?: string }): string | undefined {
  return options.url ?? command.parent?.opts<{ url?: string }>().url;
}

/** The `server` admin option of a command's `--server`, spread into {@link withAdmin}'s options. */
export function serverOf(options: { server?: string }): { server?: string } {
  return options.server === undefined ? {} : { server: options.server };
}

/** The buried jobs of `tube`, 0 when the tube does not exist (beanstalkd drops empty unused tubes). */
export async function buriedIn(admin: Admin, tube: string): Promise<number> {
  try {
    return (await admin.tube(tube)).totals.buried;
  } catch (error) {
    if (error instanceof AdminNotFound) return 0;
    throw error;
  }
}
