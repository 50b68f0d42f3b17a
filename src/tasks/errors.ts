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

/**
 * A `putMany` that failed part-way. The jobs before the failure (and any already in flight) were put:
 * `jobIds[i]` is the id of item `i`, or undefined when that item was not put, so a caller can retry
 * exactly the missing ones instead of putting the whole batch twice.
 */
export class PutManyError extends Error {
  /** The id of each item that was put, undefined for the others. */
  readonly jobIds: readonly (string | undefined)[];
  /** The index of the item whose put failed first. */
  readonly failedIndex: number;

  constructor(jobIds: readonly (string | undefined)[], failedIndex: number, cause: unknown) {
    const put = jobIds.filter((id) => id !== undefined).length;
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`putMany: item ${failedIndex} failed (${reason}); ${put} of ${jobIds.length} jobs were put`, { cause });
    this.name = 'PutManyError';
    this.jobIds = jobIds;
    this.failedIndex = failedIndex;
  }
}
