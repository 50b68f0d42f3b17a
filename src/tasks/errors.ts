/** Errors a task throws to steer what the worker does with its job. */

/**
 * Thrown by a task to say that trying again cannot help (bad input, a record that no longer exists):
 * the job is buried at once, without using its retries.
 */
export class UnrecoverableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnrecoverableError';
  }
}
