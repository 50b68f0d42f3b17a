/**
 * Every error the beanstalkd adapter produces. Replies from the server become these classes in exactly
 * one place, {@link errorFromReply}; nothing else in bsworker inspects reply words.
 *
 * `TIMED_OUT` is missing on purpose: a reserve that times out means "no job" and resolves to `null`.
 */

/** Base class of every error that comes from beanstalkd or from talking to it. */
export class BeanstalkError extends Error {
  /** The beanstalkd reply word (`NOT_FOUND`, `JOB_TOO_BIG`, ...) or `CONNECTION` for socket trouble. */
  readonly code: string;
  /** The beanstalkd command that got this reply, for example `delete`. */
  readonly command: string | undefined;

  constructor(code: string, message: string, options?: { command?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BeanstalkError';
    this.code = code;
    this.command = options?.command;
  }
}

/** The job does not exist, or is not reserved by this connection (`NOT_FOUND`). */
export class NotFoundError extends BeanstalkError {
  constructor(command: string, id?: string) {
    super(
      'NOT_FOUND',
      `beanstalkd: ${command}${id === undefined ? '' : ` ${id}`}: NOT_FOUND (no such job, or not reserved by this connection)`,
      { command },
    );
    this.name = 'NotFoundError';
  }
}

/** The body is larger than the server's `max-job-size` (`JOB_TOO_BIG`). */
export class JobTooBigError extends BeanstalkError {
  constructor(command: string) {
    super('JOB_TOO_BIG', `beanstalkd: ${command}: JOB_TOO_BIG (the body exceeds the server's max-job-size)`, { command });
    this.name = 'JobTooBigError';
  }
}

/** The server is in drain mode and takes no new jobs (`DRAINING`). */
export class DrainingError extends BeanstalkError {
  constructor(command: string) {
    super('DRAINING', `beanstalkd: ${command}: DRAINING (the server accepts no new jobs)`, { command });
    this.name = 'DrainingError';
  }
}

/**
 * A job reserved by this connection is within a second of its TTR (`DEADLINE_SOON`), so the reserve
 * returned early without a job.
 */
export class DeadlineSoonError extends BeanstalkError {
  constructor(command: string) {
    super('DEADLINE_SOON', `beanstalkd: ${command}: DEADLINE_SOON (a job reserved by this connection is about to time out)`, { command });
    this.name = 'DeadlineSoonError';
  }
}

/** The server could not allocate memory, or its binlog disk is full (`OUT_OF_MEMORY`). */
export class OutOfMemoryError extends BeanstalkError {
  constructor(command: string) {
    super('OUT_OF_MEMORY', `beanstalkd: ${command}: OUT_OF_MEMORY (the server is out of memory or binlog space)`, { command });
    this.name = 'OutOfMemoryError';
  }
}

/** beanstalkd reported a bug in itself (`INTERNAL_ERROR`). */
export class InternalServerError extends BeanstalkError {
  constructor(command: string) {
    super('INTERNAL_ERROR', `beanstalkd: ${command}: INTERNAL_ERROR (a bug in the server)`, { command });
    this.name = 'InternalServerError';
  }
}

/**
 * The server stored the job but buried it at once because it could not grow its priority queue
 * (`BURIED` as the reply to `put` or `release`). The job exists: {@link jobId} says which one when known.
 */
export class BuriedOnPutError extends BeanstalkError {
  /** The id of the buried job: known for a release; for a put it is unknown (only the reply word is mapped). */
  readonly jobId: string | undefined;

  constructor(command: string, jobId?: string) {
    super(
      'BURIED',
      `beanstalkd: ${command}: BURIED (the server is out of memory and buried the job${jobId === undefined ? '' : ` ${jobId}`})`,
      { command },
    );
    this.name = 'BuriedOnPutError';
    this.jobId = jobId;
  }
}

/**
 * The server rejected a command as malformed (`BAD_FORMAT`, `UNKNOWN_COMMAND`, `EXPECTED_CRLF`).
 * bsworker validates everything before writing, so this means a bug or a desynchronised stream;
 * the connection is closed because the server may run a rejected body as commands.
 */
export class ProtocolError extends BeanstalkError {
  constructor(code: string, command: string) {
    super(code, `beanstalkd: ${command}: ${code} (the server rejected the command; the connection was closed to keep the stream safe)`, {
      command,
    });
    this.name = 'ProtocolError';
  }
}

/** Any other reply the adapter did not expect. */
export class UnexpectedReplyError extends BeanstalkError {
  constructor(reply: string, command: string) {
    super(reply, `beanstalkd: ${command}: unexpected reply ${JSON.stringify(reply)}`, { command });
    this.name = 'UnexpectedReplyError';
  }
}

/**
 * The connection could not be made, or was lost or closed while a command was pending. The command may
 * or may not have reached the server; reserved jobs of a lost connection go back to ready on the server.
 */
export class ConnectionError extends BeanstalkError {
  /** The server address, `host:port`. */
  readonly address: string;

  constructor(address: string, message: string, options?: { command?: string; cause?: unknown }) {
    super(options && CODE in options ? String((options as { [CODE]?: unknown })[CODE]) : 'CONNECTION', message, options);
    this.name = 'ConnectionError';
    this.address = address;
  }
}

// Lets a subclass choose its code without a public constructor parameter for it.
const CODE = Symbol('code');

/**
 * A put that was written to the server, whose reply was lost with the connection (or never came within
 * `connectTimeoutMs`). **The job may have been inserted**: check (for example by a key in the kwargs)
 * before putting it again, or it may run twice. Any other error from a put means the job was not
 * inserted (except {@link BuriedOnPutError}: inserted, and buried), so retrying those is safe.
 */
export class PutOutcomeUnknownError extends ConnectionError {
  constructor(address: string, reason: ConnectionError) {
    super(
      address,
      `the put reached beanstalkd at ${address} but its reply was lost (${reason.message}): the job may have been inserted; check before putting it again`,
      { command: 'put', cause: reason, [CODE]: 'OUTCOME_UNKNOWN' } as { command: string; cause: unknown },
    );
    this.name = 'PutOutcomeUnknownError';
  }
}

/** Connection errors of commands that were certainly never written (see {@link notSent}). */
const NOT_SENT = new WeakSet<Error>();

/**
 * Marks `error` as the failure of a command that never reached the socket, so the producer knows a
 * retry cannot insert a job twice. Internal: users see an ordinary ConnectionError.
 */
export function notSent(error: ConnectionError): ConnectionError {
  NOT_SENT.add(error);
  return error;
}

/** True when `error` failed a command before any of it was written (see {@link notSent}). */
export function isNotSent(error: unknown): boolean {
  return error instanceof ConnectionError && NOT_SENT.has(error);
}

/** Replies that mean the server mis-parsed what we sent: the stream can no longer be trusted. */
const PROTOCOL_REPLIES = new Set(['BAD_FORMAT', 'UNKNOWN_COMMAND', 'EXPECTED_CRLF']);

/** True when a reply word means the connection must be dropped (see {@link ProtocolError}). */
export function isProtocolReply(reply: string): boolean {
  return PROTOCOL_REPLIES.has(reply);
}

/**
 * Turns a failure reply (a bare reply word such as `'NOT_FOUND'`) into a typed error.
 * The only place in bsworker that maps reply words to errors.
 */
export function errorFromReply(reply: string, command: string, id?: string): BeanstalkError {
  switch (reply) {
    case 'NOT_FOUND':
      return new NotFoundError(command, id);
    case 'JOB_TOO_BIG':
      return new JobTooBigError(command);
    case 'DRAINING':
      return new DrainingError(command);
    case 'DEADLINE_SOON':
      return new DeadlineSoonError(command);
    case 'OUT_OF_MEMORY':
      return new OutOfMemoryError(command);
    case 'INTERNAL_ERROR':
      return new InternalServerError(command);
    case 'BURIED':
      return new BuriedOnPutError(command, id);
    default:
      return isProtocolReply(reply) ? new ProtocolError(reply, command) : new UnexpectedReplyError(reply, command);
  }
}
