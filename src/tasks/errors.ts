/** Errors a task throws to steer what the worker does with its job, and the producer's own. */
import { type KwargsIssue, summarizeIssues } from './schema.js';

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
 * `jobIds[i]` is the id of item `i`, or undefined when that item was not put. The items listed in
 * `outcomeUnknown` were sent and lost their reply with the connection: they may have been inserted.
 * Every other item without an id was certainly not put, so a caller can retry exactly those, and check
 * the unknown ones first, instead of putting the whole batch twice.
 */
export class PutManyError extends Error {
  /** The id of each item that was put, undefined for the others. */
  readonly jobIds: readonly (string | undefined)[];
  /** The index of the item whose put failed first. */
  readonly failedIndex: number;
  /** The indexes, ascending, of the items that may have been inserted (PutOutcomeUnknownError). */
  readonly outcomeUnknown: readonly number[];

  constructor(jobIds: readonly (string | undefined)[], failedIndex: number, cause: unknown, outcomeUnknown: readonly number[] = []) {
    const put = jobIds.filter((id) => id !== undefined).length;
    const reason = cause instanceof Error ? cause.message : String(cause);
    const unknown =
      outcomeUnknown.length === 0
        ? ''
        : `, ${outcomeUnknown.length} may have been (items ${listed(outcomeUnknown)}: check before putting them again)`;
    super(
      `putMany: item ${failedIndex} failed (${reason}); ${put} of ${jobIds.length} jobs were put${unknown}, the other ${jobIds.length - put - outcomeUnknown.length} were not`,
      { cause },
    );
    this.name = 'PutManyError';
    this.jobIds = jobIds;
    this.failedIndex = failedIndex;
    this.outcomeUnknown = outcomeUnknown;
  }
}

/** The first few indexes, for a message that stays one line. */
function listed(indexes: readonly number[]): string {
  const shown = indexes.slice(0, 5).join(', ');
  return indexes.length > 5 ? `${shown} and ${indexes.length - 5} more` : shown;
}

/**
 * Kwargs that a task's schema refused. A put rejects with it before anything is sent; calling a Putter
 * with a schema rejects with it before the function runs; a worker buries such a job (reason
 * `invalid`) with this error as its failure, never running it. `issues` says what is wrong and where.
 */
export class KwargsValidationError extends Error {
  readonly code = 'INVALID_KWARGS';
  /** What the schema found, in order (capped: see the README's "Schemas"). */
  readonly issues: readonly KwargsIssue[];
  /** The task's tube and name. */
  readonly tube: string;
  readonly task: string;

  constructor(task: { readonly tube: string; readonly name: string }, issues: readonly KwargsIssue[]) {
    super(`invalid kwargs for task \`${task.name}\` in tube \`${task.tube}\`: ${summarizeIssues(issues)}`);
    this.name = 'KwargsValidationError';
    this.issues = issues;
    this.tube = task.tube;
    this.task = task.name;
  }
}
