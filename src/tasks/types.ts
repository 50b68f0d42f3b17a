/** Types shared by the decorator, the Putter and the JobQueue. */

import type { JobStats } from '../beanstalk/types.js';
import type { Link } from '../flows/links.js';
import type { Logger } from '../logging/logger.js';
import type { ResultJob } from '../results/result-job.js';
import type { KwargsSchema, SchemaInput, SchemaOutput } from './schema.js';

/**
 * What a task receives as its second argument when a worker runs it. (Called inline, a task gets none.)
 */
export interface TaskContext {
  readonly jobId: string;
  /** The tube the job was reserved from. */
  readonly tube: string;
  /** The task's registered name. */
  readonly name: string;
  /** Aborts when `timeoutMs` runs out and on a forced stop: pass it to fetch, streams, child processes. */
  readonly signal: AbortSignal;
  /** The job's child logger, with `{ tube, jobId, task }`. */
  readonly logger: Logger;
  /** Resets the job's TTR now. The worker already does this about every TTR/2 while the task runs. */
  touch(): Promise<void>;
  /**
   * The job's counters from beanstalkd (`stats-job`: releases, kicks, reserves, timeouts, priority,
   * TTR...). One round trip on the first call, cached after: the worker does not read them for a job
   * that succeeds quickly, so a task that does not ask does not pay for them.
   */
  stats(): Promise<JobStats>;
  /** 1 on the first run, growing with each retry: `releases + 1` from {@link TaskContext.stats}. */
  attempt(): Promise<number>;
  /**
   * The envelope's `meta`: the schedule and tick of a scheduled job, a chain link's place, ...
   * Undefined when the job carries none (and in an inline run).
   */
  readonly meta: Readonly<Record<string, unknown>> | undefined;
  /**
   * Reports progress (any JSON value: a number, `{ done, total }`): sent to a caller that put the job
   * with `{ result: true }` (`job.progress()`), and emitted as the worker's `job:progress` event (the
   * HTTP API and the dashboard). Never throws and never waits: reports that come faster than a round
   * trip to beanstalkd are coalesced, the newest kept. Does nothing inline.
   */
  progress(value: unknown): void;
}

/**
 * A task: a function of one keyword-arguments object (and, in a worker, a {@link TaskContext}). Its
 * return value is ignored by the worker; a throw or a rejection marks the job as failed.
 */
// biome-ignore lint/suspicious/noExplicitAny: `any` lets every parameter type fit; KwargsOf<F> recovers it.
export type TaskFunction = (kwargs: any, context?: any) => unknown;

/** The kwargs type of a task that takes none. */
export type EmptyKwargs = Record<string, never>;

/** The keyword arguments a task takes, as its first parameter declares them. */
export type KwargsOf<F extends TaskFunction> = Parameters<F> extends [] ? EmptyKwargs : NonNullable<Parameters<F>[0]>;

/**
 * Priority, delay and TTR: what a call, a task and a queue can each set. Every field falls back to the
 * task's, then the queue's defaults.
 */
export interface PutDefaults {
  /**
   * 0 is the most urgent, 2^32-1 the least; jobs below 1024 count as urgent in beanstalkd's stats.
   * @defaultValue 1024
   */
  readonly priority?: number;
  /**
   * Seconds before the job becomes ready.
   * @defaultValue 0
   */
  readonly delay?: number;
  /**
   * Time to run, in seconds: how long a worker may hold the job before beanstalkd gives it to another
   * worker. At least 2.
   * @defaultValue 60
   */
  readonly ttr?: number;
}

/** How one job is put: its priority, delay and TTR, and with several servers, which one. */
export interface PutOptions extends PutDefaults {
  /**
   * With several servers, the job goes to the server this key hashes to (rendezvous hashing: stable
   * across processes and runs), so jobs with one key land on one server; without it, puts go round-robin.
   * Ignored with one server. 1 to 1,000 characters.
   */
  readonly key?: string;
  /**
   * Ask for the task's return value: `put` then resolves to a {@link ResultJob} (its `id`, and
   * `result()`) instead of the id. The value comes back through a reply tube only this queue reads;
   * results nobody asked for are never stored. See the README's "Results".
   * @defaultValue false
   */
  readonly result?: boolean;
}

/** Put options that ask for the result: `put` resolves to a {@link ResultJob}. */
export type ResultPutOptions = Omit<PutOptions, 'result'> & { readonly result: true };

/** The return value a task's result carries (after JSON, as `result()` gives it). */
export type TaskResult<F extends TaskFunction> = Awaited<ReturnType<F>>;

/** The arguments of `task.with(...)`: kwargs are optional only for a task that takes none or declares them optional. */
export type LinkArgs<F extends TaskFunction> =
  [] extends Parameters<F> ? [kwargs?: KwargsOf<F>, options?: PutDefaults] : [kwargs: KwargsOf<F>, options?: PutDefaults];

/** The arguments of `task.pipe(key, ...)`: the kwargs without the piped key. */
export type PipeArgs<K, F extends TaskFunction> =
  // biome-ignore lint/complexity/noBannedTypes: `{}` is exactly the kwargs of a link that gives none.
  {} extends Omit<KwargsOf<F>, K & keyof KwargsOf<F>>
    ? [kwargs?: Omit<KwargsOf<F>, K & keyof KwargsOf<F>>, options?: PutDefaults]
    : [kwargs: Omit<KwargsOf<F>, K & keyof KwargsOf<F>>, options?: PutDefaults];

/** Options of `putMany`: the put options for every job, and how many puts may be in flight at once. */
export interface PutManyOptions extends PutOptions {
  /**
   * Puts written and not yet answered, at most. Large enough to keep the connection busy, small enough
   * that a batch of a million jobs does not sit in memory as a million pending promises.
   * @defaultValue 1024
   */
  readonly window?: number;
}

/** How long to wait before each retry. */
export interface BackoffOptions {
  /**
   * `fixed`: always `delaySeconds`. `exponential`: `delaySeconds * 2^(attempt-1)`, capped.
   * @defaultValue 'exponential'
   */
  readonly type?: 'fixed' | 'exponential';
  /**
   * The first delay, in seconds.
   * @defaultValue 1
   */
  readonly delaySeconds?: number;
  /**
   * The longest delay, in seconds.
   * @defaultValue 3600
   */
  readonly maxDelaySeconds?: number;
  /**
   * Spread each delay randomly over 50-100% of its value, so that jobs that failed together do not all
   * come back together.
   * @defaultValue true
   */
  readonly jitter?: boolean;
}

/**
 * A task's rate limit: at most `max` jobs of the task start in any `perSeconds` window, counted in each
 * worker process on its own (not across processes or machines; see the README's "Rate limits").
 */
export interface RateLimit {
  /** Starts allowed per window: an integer from 1 to 1,000,000. */
  readonly max: number;
  /** The window, in seconds: a number from 0.001 to 2,147,483 (fractions allowed: 0.5 is half a second). */
  readonly perSeconds: number;
}

/** Options of `queue.task(tube, options)`. */
export interface TaskOptions extends PutDefaults {
  /**
   * How many times a failed job is retried (released with a delay) before it is buried.
   * @defaultValue 0
   */
  readonly retries?: number;
  /** The delay before each retry. @defaultValue exponential from 1 s, capped at 1 h, with jitter */
  readonly backoff?: BackoffOptions;
  /**
   * Fail the job when the task runs longer than this; its `signal` aborts at that moment.
   * @defaultValue no limit
   */
  readonly timeoutMs?: number;
  /**
   * kwargs keys whose values never reach a log when this task's job body is logged (a job deleted at
   * the kick bound), compared without regard to case, at any depth; added to the worker's `redact`.
   * @defaultValue none
   */
  readonly redact?: readonly string[];
  /**
   * The name jobs use to find this task (`func_name` on the wire). Needed for anonymous functions, and
   * worth setting when a bundler or minifier renames functions.
   * @defaultValue the function's or method's name
   */
  readonly name?: string;
  /**
   * A Standard Schema (zod, valibot, arktype, ...) for the kwargs. `put` and `putMany` check the kwargs
   * with it before anything is sent, calling the Putter checks them before the function runs, and the
   * worker checks each job before running it (an invalid job is buried with reason `invalid`, never
   * run). The task receives the schema's output; `put` takes its input type.
   * @defaultValue none: kwargs are only checked for what JSON can carry
   */
  readonly schema?: KwargsSchema;
  /**
   * At most `max` of this task's jobs start in any `perSeconds` window, in each worker process (threads
   * of one process share it; N processes allow N times as many). A job over the limit is held, its TTR
   * kept alive, until it may start: it is never released, so waiting uses none of its `retries`.
   * @defaultValue no limit
   */
  readonly rateLimit?: RateLimit;
}

/** The arguments of `put`: kwargs are optional only for a task that takes none or declares them optional. */
export type PutArgs<F extends TaskFunction> =
  [] extends Parameters<F> ? [kwargs?: KwargsOf<F>, options?: PutOptions] : [kwargs: KwargsOf<F>, options?: PutOptions];

/**
 * What `queue.task(tube)(fn)` returns. Calling it runs the function here and now; `.put()` sends the
 * call to beanstalkd and resolves to the job id.
 */
/** The arguments of calling a Putter inline: a worker's context, if the task takes one, is optional. */
export type InlineArgs<F extends TaskFunction> =
  Parameters<F> extends [infer K, infer C, ...unknown[]] ? [kwargs: K, context?: C] : Parameters<F>;

export interface Putter<F extends TaskFunction> {
  (...args: InlineArgs<F>): ReturnType<F>;
  /** Puts a job and asks for its result: resolves to a {@link ResultJob} once the job is put. */
  put(kwargs: KwargsOf<F> | undefined, options: ResultPutOptions): Promise<ResultJob<TaskResult<F>>>;
  /** Puts a job that will run this task with `kwargs` in a worker; resolves to the job id. */
  put(...args: PutArgs<F>): Promise<string>;
  /** This task with `kwargs`, not yet put: a link of `queue.chain(...)` or `queue.group(...)`. */
  with(...args: LinkArgs<F>): Link<TaskResult<F>>;
  /**
   * A chain link that receives the previous link's return value as `kwargs[key]` (type-checked against
   * that link's return type), with the rest of its kwargs given here.
   */
  pipe<K extends keyof KwargsOf<F> & string>(key: K, ...args: PipeArgs<K, F>): Link<TaskResult<F>, KwargsOf<F>[K]>;
  /**
   * Puts one job per kwargs, pipelined on the queue's connection with a bounded window; resolves to
   * the job ids in order. Every item is encoded and checked before the first is sent, so bad input puts
   * nothing; a server failure part-way rejects with a PutManyError that says which jobs were put.
   */
  putMany(kwargsList: readonly KwargsOf<F>[], options?: PutManyOptions): Promise<string[]>;
  /** The tube the task is registered in. */
  readonly tube: string;
  /** The task's registered name (`func_name` on the wire). */
  readonly taskName: string;
}

/**
 * What `queue.task(tube)` returns: a wrapper for functions and a decorator for static methods, in both
 * the standard (TC39) and the legacy (`experimentalDecorators`) form.
 */
export interface TaskDecorator {
  /** Function form: registers `fn` and returns its Putter. */
  <F extends TaskFunction>(fn: F): Putter<F>;
  /** Standard decorator on a static method. The method gains `.put()` at run time. */
  <F extends TaskFunction>(method: F, context: ClassMethodDecoratorContext<unknown, F>): F;
  /** Legacy (`experimentalDecorators`) decorator on a static method. */
  <F extends TaskFunction>(
    target: object,
    propertyKey: string | symbol,
    descriptor: TypedPropertyDescriptor<F>,
  ): TypedPropertyDescriptor<F> | undefined;
}

/** The arguments of a schema task's `put`: kwargs are optional only when the schema accepts `{}`. */
export type SchemaPutArgs<S extends KwargsSchema> =
  // biome-ignore lint/complexity/noBannedTypes: `{}` is exactly the kwargs of a put that gives none.
  {} extends SchemaInput<S> ? [kwargs?: SchemaInput<S>, options?: PutOptions] : [kwargs: SchemaInput<S>, options?: PutOptions];

/**
 * What `queue.task(tube, { schema })(fn)` returns. Calling it checks the kwargs with the schema, then
 * runs the function with the schema's output, here and now: it returns a promise (validation may be
 * async) that rejects with KwargsValidationError when the kwargs are invalid. `.put()` checks them the
 * same way before sending the call to beanstalkd.
 */
export interface SchemaPutter<S extends KwargsSchema, R> {
  (kwargs: SchemaInput<S>, context?: TaskContext): Promise<Awaited<R>>;
  /** Checks `kwargs`, puts the job and asks for its result: resolves to a {@link ResultJob}. */
  put(kwargs: SchemaInput<S> | undefined, options: ResultPutOptions): Promise<ResultJob<Awaited<R>>>;
  /** Checks `kwargs` with the schema and puts a job that will run this task with them; resolves to the job id. */
  put(...args: SchemaPutArgs<S>): Promise<string>;
  /** This task with `kwargs`, not yet put (checked with the schema when the chain or group is put). */
  with(kwargs: SchemaInput<S>, options?: PutDefaults): Link<Awaited<R>>;
  /** A chain link that receives the previous link's return value as `kwargs[key]`. */
  pipe<K extends keyof SchemaInput<S> & string>(
    key: K,
    kwargs?: Omit<SchemaInput<S>, K>,
    options?: PutDefaults,
  ): Link<Awaited<R>, SchemaInput<S>[K]>;
  /** Checks every item with the schema, then puts them as `Putter.putMany` does. */
  putMany(kwargsList: readonly SchemaInput<S>[], options?: PutManyOptions): Promise<string[]>;
  /** The tube the task is registered in. */
  readonly tube: string;
  /** The task's registered name (`func_name` on the wire). */
  readonly taskName: string;
  /** The task's schema. */
  readonly schema: S;
}

/**
 * What `queue.task(tube, { schema })` returns: like {@link TaskDecorator}, with the function's
 * kwargs typed as the schema's output (an unannotated parameter gets that type).
 */
export interface SchemaTaskDecorator<S extends KwargsSchema> {
  /** Function form: registers `fn` and returns its Putter, whose kwargs are the schema's input. */
  <R>(fn: (kwargs: SchemaOutput<S>, context: TaskContext) => R): SchemaPutter<S, R>;
  /**
   * Standard decorator on a static method. A decorator cannot change the method's type, so
   * `queue.put(Class.method, kwargs)` is typed by the method's parameter (the schema's output).
   */
  <F extends (kwargs: SchemaOutput<S>, context: TaskContext) => unknown>(method: F, context: ClassMethodDecoratorContext<unknown, F>): F;
  /** Legacy (`experimentalDecorators`) decorator on a static method. */
  <F extends (kwargs: SchemaOutput<S>, context: TaskContext) => unknown>(
    target: object,
    propertyKey: string | symbol,
    descriptor: TypedPropertyDescriptor<F>,
  ): TypedPropertyDescriptor<F> | undefined;
}

/** What reflect-metadata records on each task function (and on its Putter). */
export interface TaskMetadata {
  readonly tube: string;
  readonly name: string;
  readonly options: TaskOptions;
}
