/**
 * What `put(kwargs, { result: true })` resolves to: the job's id, its result when it comes, and its
 * progress reports on the way.
 */
import { assertInteger } from '../beanstalk/validate.js';
import { JobFailedError, ResultTimeoutError, ResultUnavailableError } from './errors.js';

/** Options of {@link ResultJob.result}. */
export interface ResultOptions {
  /**
   * How long to wait, in milliseconds. When it runs out the promise rejects with ResultTimeoutError,
   * and the caller is taken to have given up: a result arriving later is deleted unread.
   * @defaultValue 60000
   */
  readonly timeoutMs?: number;
}

/** A job put with `{ result: true }`. */
export interface ResultJob<R> {
  /** The job id, as `put` answers it. */
  readonly id: string;
  /**
   * The task's return value (after JSON: Dates as strings), once a worker has run it; rejects with
   * JobFailedError when the job failed for good (buried or dead-lettered: no retry follows), with
   * ResultTimeoutError when `timeoutMs` runs out first, and with ResultUnavailableError when the queue
   * closes. Can be called more than once; every call gets the same outcome.
   */
  result(options?: ResultOptions): Promise<R>;
  /**
   * The task's `ctx.progress(value)` reports, in order, until the result comes (then the iteration
   * ends). Reports that came faster than a round trip to beanstalkd were coalesced by the worker, the
   * newest kept; reports made before this call are not replayed, except the latest.
   */
  progress(): AsyncIterableIterator<unknown>;
  /** Calls `listener` with each progress report until the result comes; returns a function that stops it. */
  onProgress(listener: (value: unknown) => void): () => void;
}

/** How a result ended, as the reply said. */
export type ResultOutcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: Error };

/** The default of {@link ResultOptions.timeoutMs}. */
export const RESULT_TIMEOUT_MS = 60_000;

/** No progress reported yet. */
const NO_PROGRESS = Symbol('no progress');

/**
 * One awaited result, registered with its queue's reply listener under `token` before its job is put
 * (a fast worker's reply must find it). `forget` unregisters it when the caller gives up.
 */
export class PendingResult<R> implements ResultJob<R> {
  #id = '';
  #outcome: ResultOutcome | undefined;
  #latest: unknown = NO_PROGRESS;
  readonly #waiters = new Set<{ resolve: (value: R) => void; reject: (error: Error) => void }>();
  readonly #listeners = new Set<(value: unknown) => void>();

  constructor(
    readonly token: string,
    private readonly forget: (token: string) => void,
  ) {}

  get id(): string {
    return this.#id;
  }

  /** Called once the put answered. */
  setId(id: string): void {
    this.#id = id;
  }

  /** True once the result (or a failure) has come. */
  get settled(): boolean {
    return this.#outcome !== undefined;
  }

  /** The reply's outcome: every waiter gets it, progress iterations end. */
  settle(outcome: ResultOutcome): void {
    if (this.#outcome !== undefined) return;
    this.#outcome = outcome;
    for (const waiter of this.#waiters) this.#deliver(waiter);
    this.#waiters.clear();
    for (const listener of this.#listeners) listener(DONE);
    this.#listeners.clear();
  }

  /** A progress report from the worker. */
  report(value: unknown): void {
    if (this.#outcome !== undefined) return;
    this.#latest = value;
    for (const listener of this.#listeners) listener(value);
  }

  result(options: ResultOptions = {}): Promise<R> {
    const timeoutMs = options.timeoutMs ?? RESULT_TIMEOUT_MS;
    try {
      assertInteger(timeoutMs, 'timeoutMs', 1, 2_147_483_647);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<R>((resolve, reject) => {
      if (this.#outcome !== undefined) return this.#deliver({ resolve, reject });
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        if (this.#waiters.size === 0 && this.#outcome === undefined) {
          // The caller gave up: later calls answer at once, and a late reply is deleted unread.
          this.#outcome = { ok: false, error: new ResultTimeoutError(this.#id, timeoutMs) };
          this.forget(this.token);
        }
        reject(new ResultTimeoutError(this.#id, timeoutMs));
      }, timeoutMs);
      const waiter = {
        resolve: (value: R) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.#waiters.add(waiter);
    });
  }

  onProgress(listener: (value: unknown) => void): () => void {
    if (this.#outcome !== undefined) return () => {};
    const wrapped = (value: unknown): void => {
      if (value !== DONE) listener(value);
    };
    this.#listeners.add(wrapped);
    return () => this.#listeners.delete(wrapped);
  }

  progress(): AsyncIterableIterator<unknown> {
    const queued: unknown[] = this.#latest === NO_PROGRESS ? [] : [this.#latest];
    let wake: (() => void) | undefined;
    let ended = this.#outcome !== undefined;
    const listener = (value: unknown): void => {
      if (value === DONE) ended = true;
      else queued.push(value);
      wake?.();
    };
    if (!ended) this.#listeners.add(listener);
    const stop = (): void => {
      ended = true;
      this.#listeners.delete(listener);
    };
    const iterator: AsyncIterableIterator<unknown> = {
      next: async () => {
        while (queued.length === 0 && !ended) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        if (queued.length > 0) return { value: queued.shift(), done: false };
        return { value: undefined, done: true };
      },
      return: async () => {
        stop();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  #deliver(waiter: { resolve: (value: R) => void; reject: (error: Error) => void }): void {
    const outcome = this.#outcome as ResultOutcome;
    if (outcome.ok) waiter.resolve(outcome.value as R);
    else waiter.reject(outcome.error);
  }
}

/** Ends progress iterations; never a value a reply can carry. */
const DONE = Symbol('done');

/** A result that is already known: an inline run's, whose task ran before `put` resolved. */
export function settledResult<R>(id: string, outcome: ResultOutcome): ResultJob<R> {
  const pending = new PendingResult<R>('inline', () => {});
  pending.setId(id);
  pending.settle(outcome);
  return pending;
}

/** The outcome of a reply that says the job failed. */
export function failedOutcome(jobId: string, name: string, message: string, reason: string): ResultOutcome {
  return { ok: false, error: new JobFailedError(jobId, name, message, reason) };
}

/** The outcome of a result the queue's close cut off. */
export function unavailableOutcome(jobId: string, why: string): ResultOutcome {
  return { ok: false, error: new ResultUnavailableError(jobId, why) };
}
