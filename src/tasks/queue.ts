/**
 * JobQueue: the producer side. It registers tasks (`queue.task(tube)`) and puts their jobs over one
 * lazily opened connection that every concurrent `put` pipelines on; a lost connection is reopened by the
 * next put. Never a connection per put: that costs a TCP handshake and a `stats` round trip each time.
 * With several servers, puts are spread over them by a PutRouter (src/servers/), one connection each.
 */
import type { ServerAddress } from '../beanstalk/address.js';
import { BeanstalkConnection, MAX_IN_FLIGHT } from '../beanstalk/connection.js';
import type { PutBody } from '../beanstalk/encode.js';
import { type ConnectFunction, LazyConnection } from '../beanstalk/lazy-connection.js';
import type { Beanstalk, PutParams } from '../beanstalk/types.js';
import { assertBodyLength, assertInteger } from '../beanstalk/validate.js';
import { decodeEnvelope, encodeCallText } from '../envelope/envelope.js';
import type { AnyLink, ChainResult, CheckedChain, LinkResult } from '../flows/links.js';
import { type Chain, type FlowQueue, type Group, makeChain, makeGroup } from '../flows/put-flows.js';
import { createLogger, type Logger } from '../logging/logger.js';
import { ReplyListener } from '../results/reply-listener.js';
import { type ResultJob, settledResult } from '../results/result-job.js';
import { defineSchedule, type Schedule, type ScheduleOptions } from '../scheduler/index.js';
import { PutRouter } from '../servers/put-router.js';
import { parseServerList } from '../servers/server-list.js';
import { createTaskDecorator } from './decorator.js';
import { KwargsValidationError } from './errors.js';
import { inlineContext } from './inline.js';
import { getTaskMetadata } from './metadata.js';
import { PutManyBatch, putWindowed } from './put-many.js';
import { DEFAULTS_KEYS, resolvePutParams, validatePutOptions } from './put-options.js';
import { bodyBuffer, closedError, type PutCallbacks, PutSender, toPutBody } from './put-sender.js';
import type { JobQueueOptions } from './queue-options.js';
import { findTask } from './registry.js';
import { isThenable, type KwargsSchema, type KwargsValidation, validateKwargs } from './schema.js';
import type {
  KwargsOf,
  PutArgs,
  PutDefaults,
  PutManyOptions,
  PutOptions,
  ResultPutOptions,
  SchemaTaskDecorator,
  TaskContext,
  TaskDecorator,
  TaskFunction,
  TaskMetadata,
  TaskOptions,
  TaskResult,
} from './types.js';

/** beanstalkd's default `max-job-size` (`-z`), the limit inline mode checks bodies against. */
const DEFAULT_MAX_JOB_SIZE = 65_535;

export type { JobQueueOptions } from './queue-options.js';

/** Registers tasks and puts their jobs into beanstalkd. */
export class JobQueue implements FlowQueue {
  /** True when puts run tasks in-process instead of sending them. */
  readonly inline: boolean;
  /** The server this queue puts to; the first one when there are several. */
  readonly address: ServerAddress;
  /** Every server this queue puts to, by name (`host:port`). */
  readonly servers: readonly string[];
  /** With several servers, what spreads the puts; undefined with one. */
  readonly #router: PutRouter | undefined;
  readonly #defaults: PutDefaults | undefined;
  #logger: Logger | undefined;
  readonly #connection: LazyConnection;
  /** The single-server put path (with several servers, the router's). */
  readonly #sender: PutSender;
  readonly #connectTimeoutMs: number;
  #closed = false;
  #inlineIds = 0;
  /** How listeners open their connections (the option, or the real one). */
  readonly #connect: ConnectFunction;
  /** The reply tube and its listener, made by the first put that asks for a result. */
  #replies: ReplyListener | undefined;
  readonly #addresses: readonly ServerAddress[];

  constructor(options: JobQueueOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError('Expected JobQueue options to be an object');
    validatePutOptions(options.defaults, 'defaults.', DEFAULTS_KEYS);
    this.#defaults = options.defaults;
    this.#logger = options.logger;
    const servers = parseServerList(options.url);
    this.address = (servers[0] as (typeof servers)[number]).address;
    this.servers = servers.map((server) => server.name);
    this.#addresses = servers.map((server) => server.address);
    this.#connect = options.connect ?? ((address, connectOptions) => BeanstalkConnection.connect(address, connectOptions));
    this.inline = options.inline ?? process.env.BSWORKER_INLINE === '1';
    if (options.connectTimeoutMs !== undefined) assertInteger(options.connectTimeoutMs, 'connectTimeoutMs', 1, 2_147_483_647);
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#connection = new LazyConnection({
      address: this.address,
      connectTimeoutMs: this.#connectTimeoutMs,
      // A put's bound covers a server that stopped answering too; and an idle producer must not keep
      // the process alive (a script that never calls close() still exits).
      stallTimeoutMs: this.#connectTimeoutMs,
      unrefWhenIdle: true,
      connect: options.connect,
      onRetry: (error, delayMs) => this.#log().warn({ err: error, delayMs }, 'beanstalkd unreachable; the put waits and retries'),
    });
    this.#sender = new PutSender({
      connection: this.#connection,
      address: this.address,
      connectTimeoutMs: this.#connectTimeoutMs,
      isClosed: () => this.#closed,
    });
    this.#router =
      servers.length > 1
        ? new PutRouter({
            servers,
            connectTimeoutMs: this.#connectTimeoutMs,
            ...(options.connect === undefined ? {} : { connect: options.connect }),
            onSkip: (server, error, skipMs) =>
              this.#log().warn({ server, err: error, skipMs }, 'beanstalkd server skipped; puts go to the other servers'),
          })
        : undefined;
  }

  /**
   * Registers a task in `tube`. Use it as a wrapper, `queue.task('emails')(async function send(kw) {})`,
   * which returns a Putter, or as a decorator on a static method, `@queue.task('emails')`.
   */
  task<S extends KwargsSchema>(tube: string, options: TaskOptions & { readonly schema: S }): SchemaTaskDecorator<S>;
  task(tube: string, options?: TaskOptions): TaskDecorator;
  task(tube: string, options?: TaskOptions): TaskDecorator | SchemaTaskDecorator<KwargsSchema> {
    return createTaskDecorator(this, tube, options);
  }

  /**
   * Puts a job for a registered task: a Putter, a decorated static method or the original function.
   * Fully typed, unlike `.put()` on a decorated method (TypeScript decorators cannot change a member's
   * type). Resolves to the job id.
   */
  put<F extends TaskFunction>(task: F, kwargs: KwargsOf<F> | undefined, options: ResultPutOptions): Promise<ResultJob<TaskResult<F>>>;
  put<F extends TaskFunction>(task: F, ...args: PutArgs<F>): Promise<string>;
  put<F extends TaskFunction>(task: F, ...args: unknown[]): Promise<string | ResultJob<unknown>> {
    const metadata = getTaskMetadata(task);
    if (!metadata) return Promise.reject(notATask(task));
    const [kwargs, options] = args as [unknown, PutOptions | undefined];
    return this.putTask(metadata, kwargs, options);
  }

  /**
   * A chain: the links run one after another, each once the one before has succeeded, on any worker
   * (the rest of the chain travels in the job). `b.pipe('key', kw)` hands the previous link's return
   * value to `b` as `kw.key`, type-checked. See the README's "Chains and groups".
   */
  chain<const L extends readonly [AnyLink, ...AnyLink[]]>(...links: L & CheckedChain<L>): Chain<ChainResult<L>> {
    return makeChain(this, links as readonly AnyLink[]);
  }

  /**
   * A group: jobs that run side by side; `.callback(task.with(kw))` adds a callback that runs once,
   * after every member has succeeded. See the README's "Chains and groups".
   */
  group<const M extends readonly [AnyLink, ...AnyLink[]]>(...members: M): Group<LinkResult<M[number]>> {
    return makeGroup(this, members);
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

  /**
   * Puts a job for the task described by `metadata`. Used by Putters; prefer {@link put}. `meta` is
   * written into the envelope's `meta` member (chains, schedules, results); none by default.
   */
  putTask(metadata: TaskMetadata, kwargs: unknown, options: PutOptions | undefined, meta?: Record<string, unknown>): Promise<string>;
  putTask(
    metadata: TaskMetadata,
    kwargs: unknown,
    options: PutOptions | undefined,
    meta?: Record<string, unknown>,
  ): Promise<string | ResultJob<unknown>>;
  putTask(
    metadata: TaskMetadata,
    kwargs: unknown,
    options: PutOptions | undefined,
    meta?: Record<string, unknown>,
  ): Promise<string | ResultJob<unknown>> {
    if (options?.result === true) return this.putForResult(metadata, kwargs, options, meta ?? {});
    let params: PutParams;
    let encoded: { readonly text: string; readonly kwargs: Record<string, unknown> };
    try {
      this.#assertOpen();
      validatePutOptions(options);
      params = resolvePutParams(options, metadata.options, this.#defaults);
      encoded = encodeCallText(metadata.name, metadata.tube, kwargs ?? {}, meta);
    } catch (error) {
      return Promise.reject(error);
    }
    const key = options?.key;
    const body = toPutBody(encoded.text);
    if (metadata.options.schema !== undefined) return this.#putChecked(metadata, body, encoded.kwargs, params, key);
    if (this.inline) return this.#runInline(metadata, body);
    if (this.#router !== undefined) return this.#send(metadata.tube, body, params, key);
    // The hot path: one promise, the caller's, settled from the reply.
    return new Promise((resolve, reject) =>
      this.#sender.putThen(metadata.tube, body, params, Date.now() + this.#connectTimeoutMs, { resolve, reject }),
    );
  }

  /**
   * Puts a task's job with a reply tube in its meta and resolves to its {@link ResultJob}. The reply
   * tube is watched before the job is put. Used by `put(kw, { result: true })`, chains and groups.
   */
  async putForResult(
    metadata: TaskMetadata,
    kwargs: unknown,
    options: PutOptions | undefined,
    meta: Record<string, unknown>,
  ): Promise<ResultJob<unknown>> {
    this.#assertOpen();
    validatePutOptions(options);
    const { result: _result, ...putOptions } = options ?? {};
    if (this.inline) {
      const wire = encodeCallText(metadata.name, metadata.tube, kwargs ?? {}).kwargs;
      const ran = await this.runInline(metadata, wire);
      return settledResult(ran.id, { ok: true, value: ran.value });
    }
    this.#replies ??= new ReplyListener({
      addresses: this.#addresses,
      connect: this.#connect,
      connectTimeoutMs: this.#connectTimeoutMs,
      logger: () => this.#log(),
    });
    const replies = this.#replies;
    const pending = await replies.register<unknown>();
    try {
      pending.setId(await this.putTask(metadata, kwargs, putOptions, { ...meta, reply: { tube: replies.tube, token: pending.token } }));
    } catch (error) {
      replies.unregister(pending.token);
      throw error;
    }
    return pending;
  }

  /** The queue's put defaults (chains resolve their later links' parameters with them). */
  get putDefaults(): PutDefaults | undefined {
    return this.#defaults;
  }

  /** Puts a body that is no task's job (a group's barrier job), on the server `key` routes to. */
  putRaw(tube: string, text: string, params: PutParams, key: string): Promise<string> {
    try {
      this.#assertOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#send(tube, toPutBody(text), params, key);
  }

  /** Runs a task here and now, as an inline put does; resolves to its id and its return value. */
  async runInline(metadata: TaskMetadata, kwargs: Record<string, unknown>): Promise<{ readonly id: string; readonly value: unknown }> {
    const { text, kwargs: wire } = encodeCallText(metadata.name, metadata.tube, kwargs);
    let checked: unknown;
    if (metadata.options.schema !== undefined) {
      // The copy the body was written from is what a worker decodes: no need to parse the body again.
      const result = await validateKwargs(metadata, wire);
      if (!result.ok) throw new KwargsValidationError(metadata, result.issues);
      checked = result.value;
    }
    return this.#runInlineValue(metadata, toPutBody(text), checked);
  }

  /** Puts one body on the one server, or on the one the router picks (by `key`, else in turn). */
  #send(tube: string, body: PutBody, params: PutParams, key: string | undefined): Promise<string> {
    const deadline = Date.now() + this.#connectTimeoutMs;
    if (this.#router === undefined) return this.#sender.put(tube, body, params, deadline);
    return this.#router.put(tube, bodyBuffer(body), params, key, deadline);
  }

  /** {@link #send} without a promise, for putMany's window. */
  #sendThen(tube: string, body: PutBody, params: PutParams, key: string | undefined, done: PutCallbacks): void {
    const deadline = Date.now() + this.#connectTimeoutMs;
    if (this.#router === undefined) this.#sender.putThen(tube, body, params, deadline, done);
    else
      this.#router.put(tube, bodyBuffer(body), params, key, deadline).then(
        (id) => done.resolve(id),
        (error: unknown) => done.reject(error),
      );
  }

  /**
   * A schema task's put. The schema checks the kwargs as the worker will see them: the copy the body
   * was written from (a Date is a string by then, -0 is 0), the value a worker decodes, so a put that
   * passes is a job the worker's check passes, without parsing the body again; the body sent is still
   * the kwargs as given. Without an async schema, as synchronous as any put.
   */
  #putChecked(
    metadata: TaskMetadata,
    body: PutBody,
    wire: Record<string, unknown>,
    params: PutParams,
    key: string | undefined,
  ): Promise<string> {
    const proceed = (checked: KwargsValidation): Promise<string> => {
      if (!checked.ok) return Promise.reject(new KwargsValidationError(metadata, checked.issues));
      if (this.inline) return this.#runInline(metadata, body, checked.value);
      return this.#send(metadata.tube, body, params, key);
    };
    let checked: KwargsValidation | Promise<KwargsValidation>;
    try {
      checked = validateKwargs(metadata, wire);
    } catch (error) {
      return Promise.reject(error);
    }
    return isThenable(checked) ? checked.then(proceed) : proceed(checked);
  }

  /** The connection, opened (or reopened) if need be; refuses once the queue is closed. */
  async #open(deadline?: number): Promise<Beanstalk> {
    const connection = this.#connection.current ?? (await this.#connection.get(deadline));
    this.#assertOpen();
    return connection;
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError();
  }

  /** Puts jobs for the task described by `metadata`. Used by Putters; prefer {@link putMany}. */
  async putManyTask(metadata: TaskMetadata, kwargsList: readonly unknown[], options: PutManyOptions | undefined): Promise<string[]> {
    this.#assertOpen();
    if (!Array.isArray(kwargsList))
      throw new TypeError(`Expected putMany's first argument to be an array of kwargs, got ${typeof kwargsList}`);
    const { window = PUT_MANY_WINDOW, ...putOptions } = options ?? {};
    validatePutOptions(putOptions);
    if (putOptions.result !== undefined)
      throw new TypeError('putMany does not take `result`: put each job with put(kwargs, { result: true })');
    assertInteger(window, 'window', 1, MAX_IN_FLIGHT);
    const params = resolvePutParams(putOptions, metadata.options, this.#defaults);
    // Everything is checked first (see put-many.ts): bad input at item 500 must not leave items 0-499
    // already queued. Inline puts keep the schema's outputs: they run the task with them.
    const batch = await PutManyBatch.check(metadata, kwargsList, { keepValues: this.inline, window });
    // Nothing to put: no reason to open a connection (or to wait for an unreachable server).
    if (batch.length === 0) return [];
    if (this.inline) {
      // Sized against a default server before the first task runs, as a server-bound batch would be.
      batch.assertSizes(DEFAULT_MAX_JOB_SIZE);
      const ids: string[] = [];
      for (let index = 0; index < batch.length; index += 1)
        ids.push(await this.#runInline(metadata, batch.body(index), batch.values?.[index]));
      return ids;
    }
    const maxJobSize =
      this.#router === undefined
        ? (await this.#open(Date.now() + this.#connectTimeoutMs)).maxJobSize
        : await this.#router.maxJobSize(Date.now() + this.#connectTimeoutMs);
    batch.assertSizes(maxJobSize);
    const key = putOptions.key;
    return putWindowed((body, done) => this.#sendThen(metadata.tube, body, params, key, done), batch, window);
  }

  /**
   * Declares the recurring schedule `name`: a job for `task` with `kwargs` at every tick of `cron` (5
   * fields, or 6 with seconds first), put by this queue while a `bsworker scheduler` (or a worker with
   * `--scheduler`) is active. Every argument is checked now, so a typo fails when the module is imported.
   * See the README's "Schedules" for what is guaranteed.
   */
  schedule<F extends TaskFunction>(name: string, cron: string, task: F, kwargs: KwargsOf<F>, options?: ScheduleOptions): Schedule {
    return defineSchedule(this, name, cron, task, kwargs, options);
  }

  /** Closes the connection, if one is open. Later puts reject. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([this.#connection.close(), this.#router?.close(), this.#replies?.close()]);
  }

  /** `checked` is a schema task's output value, from the check of this body; the task gets it as a worker would give it. */
  async #runInline(metadata: TaskMetadata, body: PutBody, checked?: unknown): Promise<string> {
    return (await this.#runInlineValue(metadata, body, checked)).id;
  }

  async #runInlineValue(metadata: TaskMetadata, body: PutBody, checked?: unknown): Promise<{ id: string; value: unknown }> {
    // The size a default server would accept, so a put that passes in tests does not fail in production.
    assertBodyLength(body.length, DEFAULT_MAX_JOB_SIZE);
    // Decode what was encoded so the task sees exactly what a worker would give it (Dates as strings).
    const decoded = decodeEnvelope(bodyBuffer(body));
    if (!decoded.ok) throw new Error(`inline put: ${decoded.message}`);
    const task = findTask(metadata.tube, metadata.name);
    if (!task) throw new Error(`inline put: no task \`${metadata.name}\` is registered in tube \`${metadata.tube}\``);
    const context = this.inlineContext(metadata);
    const kwargs = metadata.options.schema === undefined ? decoded.envelope.kwargs : (checked as Record<string, unknown>);
    const value = await task.run(kwargs, context);
    return { id: context.jobId, value };
  }

  /**
   * The context of a task run in this process: by an inline put, or by calling the Putter directly.
   * Its job id is `inline-N`, its signal never aborts, `touch()` does nothing, and `stats()` and
   * `attempt()` describe a first run. Used by Putters.
   */
  inlineContext(metadata: TaskMetadata): TaskContext {
    this.#inlineIds += 1;
    return inlineContext(`inline-${this.#inlineIds}`, metadata, () => this.#log());
  }

  #log(): Logger {
    this.#logger ??= createLogger();
    return this.#logger;
  }
}

/** puts in flight at once in a putMany, unless its `window` option says otherwise. */
const PUT_MANY_WINDOW = 1_024;

/** The error for a value given as a task that is not one. */
function notATask(task: unknown): TypeError {
  const name = typeof task === 'function' && task.name ? `\`${task.name}\`` : 'the value';
  return new TypeError(`${name} is not a registered task: wrap it with queue.task(tube)(fn) or decorate it with @queue.task(tube)`);
}
