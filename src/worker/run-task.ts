/**
 * Running one task: its context, its timeout, a forced stop, the TTR keep-alive, and the coercion of
 * whatever it throws into an Error. {@link runTask} never rejects and never throws: a task cannot
 * leave its job without an outcome, whatever it throws or returns (toError cannot throw).
 */
import { performance } from 'node:perf_hooks';
import type { JobStats } from '../beanstalk/types.js';
import { type Logger, toError } from '../logging/logger.js';
import type { RegisteredTask } from '../tasks/registry.js';
import type { TaskContext } from '../tasks/types.js';
import { keepAlive } from './keep-alive.js';
import type { Outcomes } from './outcomes.js';
import type { JobStatsCache } from './process-job.js';
import type { Reservation } from './reservation.js';
import type { TaskThreadPool } from './threads/pool.js';

/** The error a task's run ends with when its `timeoutMs` runs out. */
export class TaskTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`the task ran longer than its timeoutMs (${timeoutMs} ms)`);
    this.name = 'TaskTimeoutError';
  }
}

/**
 * A task still running after this long gets its job's TTR read (one `stats-job`) and the keep-alive
 * started. The slot's tick notices it up to TICK_MS (50 ms) later; the first touch then comes at most
 * 300 ms + TTR/2 after the start, inside beanstalkd's smallest TTR (1 s).
 */
const TTR_PROBE_MS = 250;

/**
 * The failure a thrown value stands for. A readable Error is kept as it is; anything else becomes a
 * plain Error with toError's description. Only a primitive is kept as its `cause`: the worker may log
 * through a logger the user passed in, and a logger that walks causes would read a hostile object (a
 * Proxy whose traps throw) again, and throw.
 */
export function failureOf(thrown: unknown): Error {
  const error = toError(thrown);
  if (error === thrown) return error;
  const primitive = thrown === null || (typeof thrown !== 'object' && typeof thrown !== 'function');
  const failure = primitive ? new Error(error.message, { cause: thrown }) : new Error(error.message);
  failure.name = error.name;
  return failure;
}

/** What {@link runTask} needs besides the task. */
export interface RunTaskInput {
  readonly task: RegisteredTask;
  readonly kwargs: Record<string, unknown>;
  readonly reservation: Reservation;
  /** The job's outcomes: its child logger (made on first use) and where a late keep-alive is reported. */
  readonly out: Pick<Outcomes, 'log' | 'reportOverrun' | 'ctx'>;
  /** The job's counters, read at most once. */
  readonly stats: Pick<JobStatsCache, 'get'>;
  /** Already read (a crash check), so the keep-alive starts at once. */
  readonly known: JobStats | undefined;
  /** Where task code runs when not on this thread. */
  readonly threads: TaskThreadPool | undefined;
  /** The envelope's `meta`, for `ctx.meta`. */
  readonly meta?: Record<string, unknown>;
  /** Given when the job's flow needs the task's return value: the run stores it here on success. */
  readonly output?: { value: unknown };
  /** Takes `ctx.progress(value)`; without it, progress goes nowhere. */
  readonly onProgress?: (value: unknown) => void;
}

/**
 * Runs the task. Resolves to the failure, or undefined on success. Settles early when `timeoutMs` runs
 * out or a forced stop aborts the job: a task that ignores its signal cannot hold the worker.
 */
export function runTask(input: RunTaskInput): Promise<Error | undefined> {
  return new TaskRun(input).start();
}

/**
 * One run of a task, and the task's context: one object per job where closures for each of the
 * context's functions, the TTR probe and the run's promise used to be made for every job. The context's
 * functions keep working when destructured (`const { touch } = ctx`): each is bound on first read.
 */
class TaskRun implements TaskContext {
  readonly jobId: string;
  readonly tube: string;
  readonly name: string;
  /** The input without its kwargs (see #kwargs). */
  readonly #input: Omit<RunTaskInput, 'kwargs'>;
  /**
   * The kwargs, until the task has them. The run outlives the task (the job's abort listener holds it
   * until the reservation ends, a round trip after the settling command): holding 60 KB of decoded
   * kwargs that long kept them alive across young-generation collections, which copied and promoted them.
   */
  #kwargs: Record<string, unknown> | undefined;
  #resolve!: (failure: Error | undefined) => void;
  #finished = false;
  #timer: NodeJS.Timeout | undefined;
  #stopKeepAlive: (() => void) | undefined;
  /** When the TTR probe reads the job's TTR (see TTR_PROBE_MS). */
  readonly #probeAt: number;
  #touchBound: (() => Promise<void>) | undefined;
  #statsBound: (() => Promise<JobStats>) | undefined;
  #attemptBound: (() => Promise<number>) | undefined;
  #progressBound: ((value: unknown) => void) | undefined;

  constructor(input: RunTaskInput) {
    const { kwargs, ...rest } = input;
    this.#input = rest;
    this.#kwargs = kwargs;
    const { reservation, task } = input;
    this.jobId = reservation.jobId;
    this.tube = reservation.event.tube ?? '';
    this.name = task.name;
    this.#probeAt = reservation.reservedAt + TTR_PROBE_MS;
  }

  get signal(): AbortSignal {
    return this.#input.reservation.abort.signal;
  }

  get logger(): Logger {
    return this.#input.out.log;
  }

  get touch(): () => Promise<void> {
    this.#touchBound ??= () => this.#touch();
    return this.#touchBound;
  }

  get stats(): () => Promise<JobStats> {
    this.#statsBound ??= () => this.#readStats();
    return this.#statsBound;
  }

  get meta(): Record<string, unknown> | undefined {
    return this.#input.meta;
  }

  get progress(): (value: unknown) => void {
    this.#progressBound ??= (value) => {
      if (this.#finished) return;
      const { onProgress } = this.#input;
      if (onProgress !== undefined) return onProgress(value);
      // A job with no flow has no sink: the event is still emitted, and only here, so a job that
      // never reports progress pays nothing for it.
      const { ctx } = this.#input.out;
      if (ctx.listens('job:progress')) ctx.emit('job:progress', { ...this.#input.reservation.event, value });
    };
    return this.#progressBound;
  }

  get attempt(): () => Promise<number> {
    this.#attemptBound ??= async () => (await this.#readStats()).releases + 1;
    return this.#attemptBound;
  }

  /** Runs the task; see {@link runTask}. */
  start(): Promise<Error | undefined> {
    const { reservation, known, threads, task } = this.#input;
    const kwargs = this.#kwargs as Record<string, unknown>;
    this.#kwargs = undefined;
    if (known) this.#startKeepAlive(known.ttrSeconds);
    // The worker's tick calls tick() (no timer per job); the first call after TTR_PROBE_MS reads the TTR.
    else reservation.ticker = this;
    // One promise for the run, the timeout and a forced stop, whichever comes first; a task that returns
    // without a promise settles it without a trip through the microtask queue.
    const run = new Promise<Error | undefined>((resolve) => {
      this.#resolve = resolve;
    });
    const timeoutMs = task.options.timeoutMs;
    const { abort } = reservation;
    if (timeoutMs !== undefined) this.#timer = setTimeout(() => abort.abort(new TaskTimeoutError(timeoutMs)), timeoutMs);
    if (threads) {
      const { tube = '', task: name = task.name } = reservation.event;
      const { output, meta } = this.#input;
      const handle = threads.run({
        tube,
        name,
        jobId: reservation.jobId,
        kwargs,
        meta,
        wantsValue: output !== undefined,
        progress: this.progress,
        stats: this.stats,
        touch: this.touch,
      });
      abort.onAbort((reason) => {
        const error = failureOf(reason);
        handle.abort(error);
        this.#end(error);
      });
      handle.done.then(
        (value) => {
          if (output !== undefined) output.value = value;
          this.#end(undefined);
        },
        (thrown: unknown) => this.#end(failureOf(thrown)),
      );
      return run;
    }
    abort.onAbort((reason) => this.#end(failureOf(reason)));
    try {
      const result: unknown = task.run(kwargs, this);
      // Reading `then` runs user code (a getter, a Proxy trap): inside the try, like the call.
      const then = (result as { then?: unknown } | null | undefined)?.then;
      const { output } = this.#input;
      if (typeof then !== 'function') {
        if (output !== undefined) output.value = result;
        this.#end(undefined);
      } else {
        Promise.resolve(result).then(
          (value: unknown) => {
            if (output !== undefined) output.value = value;
            this.#end(undefined);
          },
          (thrown: unknown) => this.#end(failureOf(thrown)),
        );
      }
    } catch (thrown) {
      this.#end(failureOf(thrown));
    }
    return run;
  }

  /** Called by the worker's tick while the job runs: past TTR_PROBE_MS, reads the TTR once and starts the keep-alive. */
  tick(now: number): void {
    if (now < this.#probeAt || this.#finished) return;
    this.#input.reservation.ticker = undefined;
    this.#input.stats.get().then(
      (counters) => {
        if (counters) this.#startKeepAlive(counters.ttrSeconds);
      },
      (error: unknown) => this.logger.warn({ err: error }, 'could not read the TTR to keep the job alive'),
    );
  }

  /** The first outcome wins (the run, its timeout, a forced stop); the keep-alive and the probe end with it. */
  #end(failure: Error | undefined): void {
    if (this.#finished) return;
    this.#finished = true;
    const { reservation } = this.#input;
    if (reservation.ticker === this) reservation.ticker = undefined;
    clearTimeout(this.#timer);
    this.#stopKeepAlive?.();
    this.#resolve(failure);
  }

  async #touch(): Promise<void> {
    const { reservation } = this.#input;
    const sentAt = performance.now();
    await reservation.connection.touch(reservation.id);
    // The server reset the TTR at or after sentAt: counting from there never overstates what is left.
    if (sentAt > reservation.lastResetAt) reservation.lastResetAt = sentAt;
  }

  async #readStats(): Promise<JobStats> {
    const counters = await this.#input.stats.get();
    if (!counters) throw new Error(`job ${this.#input.reservation.id} is no longer on the server`);
    return counters;
  }

  #startKeepAlive(ttrSeconds: number): void {
    const { reservation, out } = this.#input;
    reservation.ttrMs = ttrSeconds * 1000;
    if (this.#finished) return;
    this.#stopKeepAlive = keepAlive({
      reservation,
      touch: this.touch,
      log: this.logger,
      onLate: (lateByMs) => out.reportOverrun('keep-alive', `the keep-alive came ${lateByMs} ms after the TTR ran out`),
    });
  }
}
