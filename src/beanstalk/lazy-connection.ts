/**
 * A connection opened on first use and reopened on the next use after a loss. While the server is down,
 * a use waits, retrying with backoff, for up to `connectTimeoutMs`, then rejects with ConnectionError:
 * a short outage (a beanstalkd restart) costs producers a pause, not an error.
 */
import { backoffDelay } from '../util/backoff.js';
import { formatAddress, type ServerAddress } from './address.js';
import { BeanstalkConnection } from './connection.js';
import { ConnectionError } from './errors.js';
import type { Beanstalk } from './types.js';

/**
 * Opens one connection; bounded by `connectTimeoutMs`. `stallTimeoutMs` drops a connection whose server
 * stops answering (producers and workers); `unrefWhenIdle` is for producers (see ConnectOptions).
 */
export type ConnectFunction = (
  address: ServerAddress,
  options: {
    readonly connectTimeoutMs: number;
    readonly stallTimeoutMs?: number;
    readonly unrefWhenIdle?: boolean;
  },
) => Promise<Beanstalk>;

/** Options of {@link LazyConnection}. */
export interface LazyConnectionOptions {
  readonly address: ServerAddress;
  /** How long one use may wait for the server before rejecting. */
  readonly connectTimeoutMs: number;
  /** @defaultValue BeanstalkConnection.connect */
  readonly connect?: ConnectFunction;
  /** Called before each retry, with the error and the delay. */
  readonly onRetry?: (error: ConnectionError, delayMs: number) => void;
  /** Passed on to every connect (see ConnectOptions). */
  readonly stallTimeoutMs?: number;
  /** Passed on to every connect (see ConnectOptions). */
  readonly unrefWhenIdle?: boolean;
  /**
   * Wait out an unreachable server, retrying with backoff until `connectTimeoutMs`. False makes one
   * attempt per use, so a server that refuses connections is reported at once: for the admin layer,
   * which must say a server is down rather than wait for it.
   * @defaultValue true
   */
  readonly retry?: boolean;
}

const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 1_000;

/** One lazily (re)opened connection, shared by everything that uses it. */
export class LazyConnection {
  readonly #options: LazyConnectionOptions;
  #connection: Beanstalk | undefined;
  #connecting: Promise<Beanstalk> | undefined;
  #closed = false;

  constructor(options: LazyConnectionOptions) {
    this.#options = options;
  }

  /** The open connection, if there is one: the fast path, without a promise. */
  get current(): Beanstalk | undefined {
    return this.#connection !== undefined && !this.#connection.isClosed ? this.#connection : undefined;
  }

  /**
   * The open connection, or a new one. Concurrent callers share one attempt. With `deadline` (a
   * `Date.now()` time), this caller gives up then with a ConnectionError, though the attempt goes on
   * for the others.
   */
  get(deadline?: number): Promise<Beanstalk> {
    const open = this.current;
    if (open) return Promise.resolve(open);
    if (this.#closed) return Promise.reject(new Error('This connection was closed; create a new one'));
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined;
    });
    return deadline === undefined ? this.#connecting : this.#until(this.#connecting, deadline);
  }

  /** `attempt`, or a ConnectionError at `deadline`, whichever comes first. */
  #until(attempt: Promise<Beanstalk>, deadline: number): Promise<Beanstalk> {
    const where = formatAddress(this.#options.address);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new ConnectionError(where, `could not reach beanstalkd at ${where} within ${this.#options.connectTimeoutMs} ms`)),
        Math.max(0, deadline - Date.now()),
      );
      attempt.then(resolve, reject).finally(() => clearTimeout(timer));
    });
  }

  /** Closes the connection and refuses later uses. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const connection = this.#connection ?? (await this.#connecting?.catch(() => undefined));
    this.#connection = undefined;
    await connection?.quit();
  }

  async #open(): Promise<Beanstalk> {
    // Yield first: a connect that throws synchronously must not settle before `??=` has assigned.
    await undefined;
    const connect = this.#options.connect ?? BeanstalkConnection.connect;
    const deadline = Date.now() + this.#options.connectTimeoutMs;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const connection = await connect(this.#options.address, {
          connectTimeoutMs: Math.max(1, deadline - Date.now()),
          ...(this.#options.stallTimeoutMs === undefined ? {} : { stallTimeoutMs: this.#options.stallTimeoutMs }),
          ...(this.#options.unrefWhenIdle === undefined ? {} : { unrefWhenIdle: this.#options.unrefWhenIdle }),
        });
        if (this.#closed) {
          await connection.quit();
          throw new Error('This connection was closed; create a new one');
        }
        this.#connection = connection;
        return connection;
      } catch (error) {
        // Only an unreachable server is worth waiting out; anything else is reported at once.
        if (!(error instanceof ConnectionError) || this.#closed || this.#options.retry === false) throw error;
        const delayMs = Math.round(backoffDelay(attempt, { initial: RETRY_MIN_MS, max: RETRY_MAX_MS, jitter: 0.5 }));
        if (Date.now() + delayMs >= deadline) {
          const where = formatAddress(this.#options.address);
          throw new ConnectionError(where, `${error.message} (gave up after ${this.#options.connectTimeoutMs} ms)`, { cause: error });
        }
        this.#options.onRetry?.(error, delayMs);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }
}
