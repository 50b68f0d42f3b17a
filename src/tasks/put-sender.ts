/**
 * The producer's put on one server: the hot path of `put()` and `putMany`. A put into an open
 * connection is written in the same synchronous step, settling through callbacks rather than a chain
 * of promises (each link is another trip through the microtask queue: a put() makes one promise, the
 * one its caller awaits, and a putMany item none); an ASCII body travels as text inside the command
 * string (see PutBody), so a burst of puts is joined into one string and written in one call, with no
 * Buffer per put.
 *
 * A put that certainly never reached the socket (still batched, or waiting for room in the window,
 * when the connection was lost) is retried on a new connection until its deadline; one that was
 * written and lost its reply rejects with PutOutcomeUnknownError, never retried: it may have inserted
 * the job.
 */
import { formatAddress, type ServerAddress } from '../beanstalk/address.js';
import { BeanstalkConnection } from '../beanstalk/connection.js';
import { isAscii, MAX_TEXT_BODY, type PutBody } from '../beanstalk/encode.js';
import { ConnectionError, isNotSent } from '../beanstalk/errors.js';
import type { LazyConnection } from '../beanstalk/lazy-connection.js';
import type { Settle } from '../beanstalk/pending-command.js';
import type { Beanstalk, PutParams } from '../beanstalk/types.js';

/**
 * How a put settles: `resolve` with the job id, or `reject`; exactly one, exactly once. Methods of one
 * object, so that a caller with many puts (putMany) makes one small object per put, not closures.
 */
export interface PutCallbacks {
  resolve(id: string): void;
  reject(error: unknown): void;
}

/** What a {@link PutSender} needs from its queue. */
export interface PutSenderOptions {
  readonly connection: LazyConnection;
  readonly address: ServerAddress;
  /** How long a put may retry, for the message of the error that gives up. */
  readonly connectTimeoutMs: number;
  /** True once the queue is closed: no retry then, and no new connection. */
  isClosed(): boolean;
}

/**
 * The body of an encoded call as it will be sent: the text itself when it is pure ASCII (one byte per
 * character, written inside the command string) and at most {@link MAX_TEXT_BODY} long, else its
 * UTF-8 bytes. `bytes`, the text's UTF-8 length, is given by a caller that has measured it already.
 */
export function toPutBody(text: string, bytes?: number): PutBody {
  if (text.length > MAX_TEXT_BODY) return Buffer.from(text, 'utf8');
  const ascii = bytes === undefined ? isAscii(text) : bytes === text.length;
  return ascii ? text : Buffer.from(text, 'utf8');
}

/** The body as bytes, for what needs a Buffer (a decoder, a put through the several-servers router). */
export function bodyBuffer(body: PutBody): Buffer {
  return typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
}

/** Puts bodies on one server's connection; see the module comment. */
export class PutSender {
  readonly #options: PutSenderOptions;

  constructor(options: PutSenderOptions) {
    this.#options = options;
  }

  /** Puts `body`; resolves to the job id. */
  put(tube: string, body: PutBody, params: PutParams, deadline: number): Promise<string> {
    return new Promise((resolve, reject) => this.putThen(tube, body, params, deadline, { resolve, reject }));
  }

  /** {@link put} without a promise: settles through `done`. */
  putThen(tube: string, body: PutBody, params: PutParams, deadline: number, done: PutCallbacks): void {
    const open = this.#options.connection.current;
    if (isOwnConnection(open)) {
      open.putInTubeThen(tube, body, params, new PutAttempt(this, tube, body, params, deadline, done));
      return;
    }
    // Not connected yet (or a connection made by a custom `connect`, which takes Buffers).
    this.#slowPut(open, tube, body, params, deadline).then(
      (id) => done.resolve(id),
      (error: unknown) => done.reject(error),
    );
  }

  /** A put written on the open connection failed: retried if it was never sent, else rejected. */
  failed(error: unknown, attempt: PutAttempt): void {
    const { tube, body, params, deadline, done } = attempt;
    if (!isNotSent(error) || this.#options.isClosed()) {
      done.reject(error);
      return;
    }
    this.#retry(error, tube, body, params, deadline).then(
      (id) => done.resolve(id),
      (failure: unknown) => done.reject(failure),
    );
  }

  async #slowPut(open: Beanstalk | undefined, tube: string, body: PutBody, params: PutParams, deadline: number): Promise<string> {
    try {
      const connection = open ?? (await this.#open(deadline));
      return await putOn(connection, tube, body, params);
    } catch (error) {
      return this.#retry(error, tube, body, params, deadline);
    }
  }

  async #retry(error: unknown, tube: string, body: PutBody, params: PutParams, deadline: number): Promise<string> {
    for (let failure = error; ; ) {
      if (!isNotSent(failure) || this.#options.isClosed()) throw failure;
      if (Date.now() >= deadline) {
        throw new ConnectionError(
          formatAddress(this.#options.address),
          `${(failure as Error).message} (the job was not put; gave up after ${this.#options.connectTimeoutMs} ms)`,
          { command: 'put', cause: failure },
        );
      }
      try {
        return await putOn(await this.#open(deadline), tube, body, params);
      } catch (next) {
        failure = next;
      }
    }
  }

  /** The connection, opened (or reopened) if need be; refuses once the queue is closed. */
  async #open(deadline: number): Promise<Beanstalk> {
    const connection = this.#options.connection.current ?? (await this.#options.connection.get(deadline));
    if (this.#options.isClosed()) throw closedError();
    return connection;
  }
}

/** One put on the open connection: its reply settles `done`, or its failure goes to the sender. */
class PutAttempt implements Settle<string> {
  constructor(
    readonly sender: PutSender,
    readonly tube: string,
    readonly body: PutBody,
    readonly params: PutParams,
    readonly deadline: number,
    readonly done: PutCallbacks,
  ) {}

  resolve(id: string): void {
    this.done.resolve(id);
  }

  reject(error: Error): void {
    this.sender.failed(error, this);
  }
}

/** A put on any Beanstalk: an ASCII body as text on our own connection, else as bytes. */
function putOn(connection: Beanstalk, tube: string, body: PutBody, params: PutParams): Promise<string> {
  if (isOwnConnection(connection)) return connection.putInTube(tube, body, params);
  return connection.putInTube(tube, bodyBuffer(body), params);
}

/**
 * True for a BeanstalkConnection whose puts are its own: a wrapper made by a custom `connect` (a Proxy
 * that hooks `putInTube`, in tests) keeps the promise path and gets Buffers, as the Beanstalk
 * interface promises it.
 */
function isOwnConnection(connection: Beanstalk | undefined): connection is BeanstalkConnection {
  return connection instanceof BeanstalkConnection && connection.putInTube === BeanstalkConnection.prototype.putInTube;
}

/** The error of a put on a closed JobQueue. */
export function closedError(): Error {
  return new Error('This JobQueue is closed; create a new one to put more jobs');
}
