/** The errors `job.result()` rejects with. */

/** The job failed for good (buried, dead-lettered or discarded: no retry follows) and this is its error. */
export class JobFailedError extends Error {
  /** The name of the error the task threw (`TypeError`, `TaskTimeoutError`, ...). */
  readonly errorName: string;
  /** Why the worker gave up on it: `failed`, `invalid`, `crashed`, `unregistered`. */
  readonly reason: string;
  /** The job's id, as `put` answered it. */
  readonly jobId: string;

  constructor(jobId: string, errorName: string, message: string, reason: string) {
    super(`job ${jobId} failed (${reason}): ${errorName}: ${message}`);
    this.name = 'JobFailedError';
    this.errorName = errorName;
    this.reason = reason;
    this.jobId = jobId;
  }
}

/**
 * No result came within `timeoutMs`. The job may still be waiting, running or retrying; its result, if
 * it comes later, is deleted on arrival (the caller gave up on it).
 */
export class ResultTimeoutError extends Error {
  readonly jobId: string;

  constructor(jobId: string, timeoutMs: number) {
    super(`no result for job ${jobId} within ${timeoutMs} ms`);
    this.name = 'ResultTimeoutError';
    this.jobId = jobId;
  }
}

/** The queue was closed (or its reply listener lost its server for good) while the result was awaited. */
export class ResultUnavailableError extends Error {
  readonly jobId: string;

  constructor(jobId: string, why: string) {
    super(`the result of job ${jobId} cannot arrive: ${why}`);
    this.name = 'ResultUnavailableError';
    this.jobId = jobId;
  }
}
