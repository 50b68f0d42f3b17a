/**
 * The admin layer's errors: what went wrong in the caller's terms, each with a stable `code`. The CLI
 * turns every one into exit 2 and one line; the HTTP API into a status (404, 400, 409, 503) and a JSON
 * body with the code. Nothing here knows about exit codes or HTTP.
 */
import { ConnectionError, DrainingError, JobTooBigError, OutOfMemoryError } from '../beanstalk/errors.js';

/** Base class of the admin layer's errors. */
export class AdminError extends Error {
  /** A stable, machine-readable reason, such as `JOB_NOT_FOUND` or `INVALID_TUBE`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AdminError';
    this.code = code;
  }
}

/** Codes of {@link NotFoundError}. */
export type NotFoundCode = 'JOB_NOT_FOUND' | 'TUBE_NOT_FOUND' | 'NO_JOB_IN_STATE' | 'SERVER_NOT_FOUND';

/** The job, tube or server named does not exist (HTTP 404). */
export class NotFoundError extends AdminError {
  declare readonly code: NotFoundCode;

  constructor(code: NotFoundCode, message: string) {
    super(code, message);
    this.name = 'NotFoundError';
  }
}

/**
 * Codes of {@link InvalidInputError}: `INVALID_TUBE`, `INVALID_JOB_ID`, `INVALID_CURSOR`,
 * `INVALID_OPTION` (a number out of range), `INVALID_KWARGS`, `INVALID_FUNC_NAME`, `JOB_TOO_BIG`
 * (the body would not fit the server's `max-job-size`), `AMBIGUOUS_JOB_ID` (no server named, several
 * configured); the schema checks add their own.
 */
export type InvalidInputCode =
  | 'INVALID_TUBE'
  | 'INVALID_JOB_ID'
  | 'INVALID_CURSOR'
  | 'INVALID_OPTION'
  | 'INVALID_KWARGS'
  | 'INVALID_FUNC_NAME'
  | 'JOB_TOO_BIG'
  | 'AMBIGUOUS_JOB_ID'
  | (string & {});

/** The request itself is wrong, whatever the servers hold (HTTP 400). */
export class InvalidInputError extends AdminError {
  /** Details for a caller to show, such as a schema's issues; undefined when the message says it all. */
  readonly details: unknown;

  constructor(code: InvalidInputCode, message: string, options?: { cause?: unknown; details?: unknown }) {
    super(code, message, options);
    this.name = 'InvalidInputError';
    this.details = options?.details;
  }
}

/** Codes of {@link ConflictError}. */
export type ConflictCode = 'JOB_RESERVED' | 'WRONG_STATE' | 'JOB_CHANGED' | 'NOT_A_DEAD_LETTER';

/** The job is in a state that does not allow the operation: reserved by a worker, or not buried (HTTP 409). */
export class ConflictError extends AdminError {
  declare readonly code: ConflictCode;

  constructor(code: ConflictCode, message: string) {
    super(code, message);
    this.name = 'ConflictError';
  }
}

/** Codes of {@link UnavailableError}. */
export type UnavailableCode = 'SERVER_UNAVAILABLE' | 'SERVER_DRAINING' | 'SERVER_OUT_OF_MEMORY' | 'OUTCOME_UNKNOWN';

/**
 * A server could not be reached or refused the work for now (HTTP 503). `OUTCOME_UNKNOWN`: a put was
 * sent but its reply was lost, so the job may exist; check before putting it again.
 */
export class UnavailableError extends AdminError {
  declare readonly code: UnavailableCode;
  /** The server, `host:port`. */
  readonly server: string;

  constructor(code: UnavailableCode, server: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'UnavailableError';
    this.server = server;
  }
}

/**
 * The admin error for a failure of the adapter: a lost or refused connection, a draining or full server,
 * a body too big. Anything else (a bug, a protocol error) is returned as it is: an unexpected failure,
 * not the caller's fault. Arguments are checked before they reach the adapter (see `input.ts`).
 */
export function toAdminError(error: unknown, server: string): unknown {
  if (error instanceof AdminError) return error;
  if (error instanceof ConnectionError) {
    const code = error.code === 'OUTCOME_UNKNOWN' ? 'OUTCOME_UNKNOWN' : 'SERVER_UNAVAILABLE';
    return new UnavailableError(code, server, error.message, { cause: error });
  }
  if (error instanceof DrainingError) return new UnavailableError('SERVER_DRAINING', server, error.message, { cause: error });
  if (error instanceof OutOfMemoryError) return new UnavailableError('SERVER_OUT_OF_MEMORY', server, error.message, { cause: error });
  if (error instanceof JobTooBigError) return new InvalidInputError('JOB_TOO_BIG', error.message, { cause: error });
  return error;
}
