/** What every operating command shares: its connection, its `--url` and `--json` options, its errors. */
import { type Command, Option } from 'commander';
import type { Admin } from '../../admin/admin.js';
import { AdminError, NotFoundError as AdminNotFound } from '../../admin/errors.js';
import { ConnectionError, NotFoundError } from '../../beanstalk/errors.js';
import { UsageError } from '../errors.js';
import { parseUrl } from '../parse.js';

/** The spelling and help of `--url`, shared by the worker's flags table and every other command. */
export const URL_FLAG = Object.freeze({
  flags: '--url <url>',
  description: 'beanstalkd server: beanstalk://host:port, host:port or host (default: $BEANSTALKD_URL, else 127.0.0.1:11300)',
});

/** The `--url` option every command takes. */
export function urlOption(): Option {
  return new Option(URL_FLAG.flags, URL_FLAG.description).argParser(parseUrl);
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

/** The buried jobs of `tube`, 0 when the tube does not exist (beanstalkd drops empty unused tubes). */
export async function buriedIn(admin: Admin, tube: string): Promise<number> {
  try {
    return (await admin.tube(tube)).totals.buried;
  } catch (error) {
    if (error instanceof AdminNotFound) return 0;
    throw error;
  }
}
