/** Exit codes and the errors the CLI turns into them. */
import { JobLoadError } from '../loader/load-jobs.js';

/** `bsworker` exit codes. */
export const EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2 });

/** Bad input on the command line (or a jobs directory that cannot serve the tubes): exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The exit code for an error that ended a command. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof UsageError || error instanceof JobLoadError) return EXIT.usage;
  // Our validators throw TypeError/RangeError for bad arguments: those are usage errors too.
  if (error instanceof TypeError || error instanceof RangeError) return EXIT.usage;
  return EXIT.failure;
}

/** One line for the terminal. */
export function formatError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `bsworker: error: ${message.replace(/\s*\n\s*/g, ' ')}`;
}
