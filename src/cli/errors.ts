/** Exit codes and the errors the CLI turns into them. */
import { JobLoadError } from '../loader/load-jobs.js';
import { KwargsValidationError } from '../tasks/errors.js';
import { terminalSafeText } from './output.js';

/**
 * `bsworker` exit codes. `partial`: an operating command over several servers did what it could, but
 * some servers did not answer, so its output (printed in full) misses their part.
 */
export const EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2, partial: 3 });

/** Bad input on the command line (or a jobs directory that cannot serve the tubes): exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Some of several servers did not answer: the output covers the others (exit 3). */
export class PartialError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PartialError';
  }
}

/** The exit code for an error that ended a command. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof PartialError) return EXIT.partial;
  if (error instanceof UsageError || error instanceof JobLoadError || error instanceof KwargsValidationError) return EXIT.usage;
  // Our validators throw TypeError/RangeError for bad arguments: those are usage errors too.
  if (error instanceof TypeError || error instanceof RangeError) return EXIT.usage;
  return EXIT.failure;
}

/**
 * One line for the terminal. Every control character is escaped (`\u000d`), not only those of job
 * bodies: messages quote values from the command line, which a shell passes through raw.
 */
export function formatError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `bsworker: error: ${terminalSafeText(message)}`;
}

/**
 * Lines to print under the error line: for a jobs module that failed to import, where it failed
 * (indented, escaped). Empty for every other error, whose one line says it all.
 */
export function formatErrorDetail(error: unknown): string[] {
  if (!(error instanceof JobLoadError)) return [];
  return error.detail.map((line) => terminalSafeText(`    ${line.trimEnd()}`));
}
