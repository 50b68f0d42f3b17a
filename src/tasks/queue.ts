/**
 * JobQueue: the producer side. It registers tasks (`queue.task(tube)`) and puts their jobs over one
 * lazily opened connection that every concurrent `put` pipelines on; a lost connection is reopened by the
 * next put. Never a connection per put: that costs a TCP handshake and a `stats` round trip each time.
 */
import { resolveServerAddress, type ServerAddress } from '../beanstalk/address.js';
import { MAX_IN_FLIGHT } from '../beanstalk/connection.js';
import { type ConnectFunction, LazyConnection } from '../beanstalk/lazy-connection.js';
import type { Beanstalk, JobStats, PutParams } from '../beanstalk/types.js';
import { assertBodySize, assertInteger } from '../beanstalk/validate.js';
import { decodeEnvelope, encodeEnvelope } from '../envelope/envelope.js';
import { createLogger, type Logger } from '../logging/logger.js';
import { createTaskDecorator } from './decorator.js';
import { PutManyError } from './errors.js';
import { getTaskMetadata } from './metadata.js';
import { PUT_DEFAULTS, resolvePutParams, validatePutOptions } from './put-options.js';
import { findTask } from './registry.js';
import type {
  KwargsOf,
  PutArgs,
  PutManyOptions,
  PutOptions,
  TaskContext,
  TaskDecorator,
  TaskFunction,
  TaskMetadata,
  TaskOptions,
} from './types.js';

/** Options of {@link JobQueue}. */
export interface JobQueueOptions {
  /**
   * The beanstalkd server: `beanstalk://host:port`, `host:port` or `host`.
   * @defaultValue `BEANSTALKD_URL` from the environment, else `127.0.0.1:11300`
   */
  readonly url?: string;
  /** @defaultValue a pino logger at `info` (JSON, or pretty on a terminal) */
  readonly logger?: Logger;
  /** Priority, delay and TTR for every put of this queue, below task and call options. */
  readonly defaults?: PutOptions;
  /**
   * Run tasks in-process on `put` instead of sending them to beanstalkd (for tests of user code; no
   * server needed). The kwargs still go through the wire format, so tests see what a worker would.
   * @defaultValue true when the environment has `BSWORKER_INLINE=1`
   */
  readonly inline?: boolean;
  /**
   * How long a put waits for an unreachable server (retrying) before rejecting with ConnectionError.
   * @defaultValue 10000
   */
  readonly connectTimeoutMs?: number;
  /** Opens connections; replace it to test without a server. @defaultValue BeanstalkConnection.connect */
  readonly connect?: ConnectFunction;
}

/** beanstalkd's default `max-job-size` (`-z`), the limit inline mode checks bodies against. */
const DEFAULT_MAX_JOB_SIZE = 65_535;

/** Registers tasks and puts their jobs into beanstalkd. */
export class JobQueue {
  /** True when puts run tasks in-process instead of sending them. */
  readonly inline: boolean;
  /** The server this queue puts to. */
  readonly address: ServerAddress;
  readonly #defaults: PutOptions | undefined;
  #logger: Logger | undefined;
  readonly #connection: LazyConnection;
  #closed = false;
  #inlineIds = 0;

  constructor(options: JobQueueOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError('Expected JobQueue options to be an object');
    validatePutOptions(options.defaults, 'defaults.');
    this.#defaults = options.defaults;
    this.#logger = options.logger;
    this.address = resolveServerAddress(options.url);
    this.inline = options.inline ?? process.env.BSWORKER_INLINE === '1';
    this.#connection = new LazyConnection({
      address: this.address,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      connect: options.connect,
      onRetry: (error, delayMs) => this.#log().warn({ err: error, delayMs }, 'beanstalkd unreachable; the put waits and retries'),
    });
  }

  /**
   * Registers a task in `tube`. Use it as a wrapper, `queue.task('emails')(async function send(kw) {})`,
   * which returns a Putter, or as a decorator on a static method, `@queue.task('emails')`.
   */
  task(tube: string, options?: TaskOptions): TaskDecorator {
    return createTaskDecorator(this, tube, options);
  }

  /**
   * Puts a job for a registered task: a Putter, a decorated static method or the original function.
   * Fully typed, unlike `.put()` on a decorated method (TypeScript decorators cannot change a member's
   * type). Resolves to the job id.
   */
  put<F extends TaskFunction>(task: F, ...args: PutArgs<F>): Promise<string> {
    const metadata = getTaskMetadata(task);
    if (!metadata) return Promise.reject(notATask(task));
    const [kwargs, options] = args;
    return this.putTask(metadata, kwargs, options);
  }

  /**
   * Puts one job per kwargs for a registered task, pipelined with a bounded window; resolves to the ids
   * in order. Fully typed, like {@link put}. See `Putter.putMany`.
   */
  putMany<F extends TaskFunction>(task: F, kwargsList: readonly KwargsOf<F>[], options?: PutManyOptions): Promise<string[]> {
    const metadata = getTaskMetadata(task);
    if (!metadata) return Promise.reject(notATask(task));
    return this.putManyTask(metadata, kwargsList, options);
  }

  /** Puts a job for the task described by `metadata`. Used by Putters; prefer {@link put}. */
  putTask(metadata: TaskMetadata, kwargs: unknown, options: PutOptions | undefined): Promise<string> {
    let params: PutParams;
    let body: Buffer;
    try {
      this.#assertOpen();
      validatePutOptions(options);
      params = resolvePutParams(options, metadata.options, this.#defaults);
      body = encodeEnvelope(metadata.name, metadata.tube, kwargs ?? {});
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.inline) return this.#runInline(metadata, body);
    // Not async on purpose, like putInTube: with the connection open, the put is written here and now.
    const open = this.#connection.current;
    if (open) return open.putInTube(metadata.tube, body, params);
    return this.#open().then((connection) => connection.putInTube(metadata.tube, body, params));
  }

  /** The connection, opened (or reopened) if need be; refuses once the queue is closed. */
  async #open(): Promise<Beanstalk> {
    const connection = this.#connection.current ?? (await this.#connection.get());
    this.#assertOpen();
    return connection;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('This JobQueue is closed; create a new one to put more jobs');
  }

  /** Puts jobs for the task described by `metadata`. Used by Putters; prefer {@link putMany}. */
  async putManyTask(metadata: TaskMetadata, kwargsList: readonly unknown[], options: PutManyOptions | undefined): Promise<string[]> {
    this.#assertOpen();
    if (!Array.isArray(kwargsList))
      throw new TypeError(`Expected putMany's first argument to be an array of kwargs, got ${typeof kwargsList}`);
    const { window = PUT_MANY_WINDOW, ...putOptions } = options ?? {};
    validatePutOptions(putOptions);
    assertInteger(window, 'window', 1, MAX_IN_FLIGHT);
    const params = resolvePutParams(putOptions, metadata.options, this.#defaults);
    // Everything is encoded first: bad input at item 500 must not leave items 0-499 already queued.
    const bodies = kwargsList.map((kwargs, index) => atItem(index, () => encodeEnvelope(metadata.name, metadata.tube, kwargs ?? {})));
    // Nothing to put: no reason to open a connection (or to wait for an unreachable server).
    if (bodies.length === 0) return [];
    if (this.inline) {
      // Sized against a default server before the first task runs, as a server-bound batch would be.
      assertBodySizes(bodies, DEFAULT_MAX_JOB_SIZE);
      const ids: string[] = [];
      for (const body of bodies) ids.push(await this.#runInline(metadata, body));
      return ids;
    }
    const connection = await this.#open();
    assertBodySizes(bodies, connection.maxJobSize);
    return putWindowed(connection, metadata.tube, bodies, params, window);
  }

  /** Closes the connection, if one is open. Later puts reject. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#connection.close();
  }

  async #runInline(metadata: TaskMetadata, body: Buffer): Promise<string> {
    // The size a default server would accept, so a put that passes in tests does not fail in production.
    assertBodySize(body, DEFAULT_MAX_JOB_SIZE);
    // Decode what was encoded so the task sees exactly what a worker would give it (Dates as strings).
    const decoded = decodeEnvelope(body);
    if (!decoded.ok) throw new Error(`inline put: ${decoded.message}`);
    const task = findTask(metadata.tube, metadata.name);
    if (!task) throw new Error(`inline put: no task \`${metadata.name}\` is registered in tube \`${metadata.tube}\``);
    this.#inlineIds += 1;
    const jobId = `inline-${this.#inlineIds}`;
    const context: TaskContext = {
      jobId,
      tube: metadata.tube,
      name: metadata.name,
      signal: new AbortController().signal,
      logger: this.#log().child({ tube: metadata.tube, jobId, task: metadata.name }),
      touch: async () => {},
      // What a fresh job on a server would report: its first run, never released, buried or kicked.
      stats: async () => inlineStats(jobId, metadata),
      attempt: async () => 1,
    };
    await task.run(decoded.envelope.kwargs, context);
    return jobId;
  }

  #log(): Logger {
    this.#logger ??= createLogger();
    return this.#logger;
  }
}

/** puts in flight at once in a putMany, unless its `window` option says otherwise. */
const PUT_MANY_WINDOW = 1_024;

/** Runs `check` for item `index` of a putMany; an error it throws names the item. */
function atItem<T>(index: number, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof Error) error.message = `putMany: item ${index}: ${error.message}`;
    throw error;
  }
}

/** Checks every body against the server's limit, naming the first item over it. */
function assertBodySizes(bodies: readonly Buffer[], maxJobSize: number): void {
  for (const [index, body] of bodies.entries()) atItem(index, () => assertBodySize(body, maxJobSize));
}

/** The error for a value given as a task that is not one. */
function notATask(task: unknown): TypeError {
  const name = typeof task === 'function' && task.name ? `\`${task.name}\`` : 'the value';
  return new TypeError(`${name} is not a registered task: wrap it with queue.task(tube)(fn) or decorate it with @queue.task(tube)`);
}

/**
 * Puts `bodies` into `tube` with at most `window` puts unanswered. On the first failure no new put is
 * started; the ones in flight are awaited, and a PutManyError says which items were put.
 */
function putWindowed(connection: Beanstalk, tube: string, bodies: readonly Buffer[], params: PutParams, window: number): Promise<string[]> {
  const ids: (string | undefined)[] = new Array(bodies.length).fill(undefined);
  if (bodies.length === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    let next = 0;
    let active = 0;
    let failed: { index: number; error: unknown } | undefined;
    const launch = (): void => {
      while (failed === undefined && active < window && next < bodies.length) {
        const index = next;
        next += 1;
        active += 1;
        connection.putInTube(tube, bodies[index] as Buffer, params).then(
          (id) => {
            ids[index] = id;
            land();
          },
          (error: unknown) => {
            failed ??= { index, error };
            land();
          },
        );
      }
    };
    const land = (): void => {
      active -= 1;
      if (active === 0 && (failed !== undefined || next >= bodies.length)) {
        if (failed) reject(new PutManyError(ids, failed.index, failed.error));
        else resolve(ids as string[]);
        return;
      }
      launch();
    };
    launch();
  });
}

/** The counters a job would have on its first reservation, for inline runs. */
function inlineStats(id: string, metadata: TaskMetadata): JobStats {
  return {
    id,
    tube: metadata.tube,
    state: 'reserved',
    priority: metadata.options.priority ?? PUT_DEFAULTS.priority,
    ageSeconds: 0,
    delaySeconds: 0,
    ttrSeconds: metadata.options.ttr ?? PUT_DEFAULTS.ttr,
    timeLeftSeconds: metadata.options.ttr ?? PUT_DEFAULTS.ttr,
    reserves: 1,
    timeouts: 0,
    releases: 0,
    buries: 0,
    kicks: 0,
  };
}
