/** Errors a task throws to steer what the worker does with its job. */

// A brand instead of `instanceof`: the worker and the task may load two copies of bsworker (the CLI's
// and the project's), whose classes differ but whose Symbol.for keys are the same.
const UNRECOVERABLE = Symbol.for('bsworker.UnrecoverableError');

/**
 * Thrown by a task to say that trying again cannot help (bad input, a record that no longer exists):
 * the job is buried at once, without using its retries.
 */
export class UnrecoverableError extends Error {
  readonly [UNRECOVERABLE] = true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnrecoverableError';
  }
}

/** True for an UnrecoverableError from any copy of bsworker. */
export function isUnrecoverable(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { [UNRECOVERABLE]?: unknown })[UNRECOVERABLE] === true;
}
