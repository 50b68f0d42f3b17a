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
  readonly out: Pick<Outcomes, 'log' | 'reportOverrun'>;
  /** The job's counters, read at most once. */
  readonly stats: Pick<JobStatsCache, 'get'>;
  /** Already read (a crash check), so the keep-alive starts at once. */
  readonly known: JobStats | undefined;
  /** Where task code runs when not on this thread. */
  readonly threads: TaskThreadPool | undefined;
}

/**
 * Runs the task. Resolves to the failure, or undefined on success. Settles early when `timeoutMs` runs
 * out or a forced stop aborts the job: a task that ignores its signal cannot hold the worker.
 */
export async function runTask(input: RunTaskInput): Promise<Error | undefined> {
  const { task, reservation, out } = input;
  const log = (): Logger => out.log;
  const { abort } = reservation;
  const timeoutMs = task.options.timeoutMs;
  const touch = async (): Promise<void> => {
    const sentAt = performance.now();
    await reservation.connection.touch(reservation.id);
    // The server reset the TTR at or after sentAt: counting from there never overstates what is left.
    if (sentAt > reservation.lastResetAt) reservation.lastResetAt = sentAt;
  };
  const readStats = async (): Promise<JobStats> => {
    const counters = await input.stats.get();
    if (!counters) throw new Error(`job ${reservation.id} is no longer on the server`);
    return counters;
  };
  const context: TaskContext = {
    jobId: reservation.id,
    tube: reservation.event.tube ?? '',
    name: task.name,
    get signal() {
      return abort.signal;
    },
    get logger() {
      return log();
    },
    touch,
    stats: readStats,
    attempt: async () => (await readStats()).releases + 1,
  };
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  let stopKeepAlive: (() => void) | undefined;
  const startKeepAlive = (ttrSeconds: number): void => {
    reservation.ttrMs = ttrSeconds * 1000;
    if (!finished)
      stopKeepAlive = keepAlive({
        reservation,
        touch,
        log: log(),
        onLate: (lateByMs) => out.reportOverrun('keep-alive', `the keep-alive came ${lateByMs} ms after the TTR ran out`),
      });
  };
  if (input.known) startKeepAlive(input.known.ttrSeconds);
  else {
    // The slot's tick calls this (no timer per job); the first call after TTR_PROBE_MS reads the TTR.
    const probeAt = reservation.reservedAt + TTR_PROBE_MS;
    reservation.onTick = (now) => {
      if (now < probeAt || finished) return;
      reservation.onTick = undefined;
      input.stats.get().then(
        (counters) => {
          if (counters) startKeepAlive(counters.ttrSeconds);
        },
        (error: unknown) => log().warn({ err: error }, 'could not read the TTR to keep the job alive'),
      );
    };
  }
  try {
    // One promise for the run, the timeout and a forced stop, whichever comes first; a task that returns
    // without a promise settles it without a trip through the microtask queue.
    return await new Promise<Error | undefined>((resolve) => {
      if (timeoutMs !== undefined) timer = setTimeout(() => abort.abort(new TaskTimeoutError(timeoutMs)), timeoutMs);
      if (input.threads) {
        const { tube = '', task: name = task.name } = reservation.event;
        const handle = input.threads.run({ tube, name, jobId: reservation.id, kwargs: input.kwargs, stats: readStats, touch });
        abort.onAbort((reason) => {
          const error = failureOf(reason);
          handle.abort(error);
          resolve(error);
        });
        handle.done.then(
          () => resolve(undefined),
          (thrown: unknown) => resolve(failureOf(thrown)),
        );
        return;
      }
      abort.onAbort((reason) => resolve(failureOf(reason)));
      try {
        const result: unknown = task.run(input.kwargs, context);
        // Reading `then` runs user code (a getter, a Proxy trap): inside the try, like the call.
        const then = (result as { then?: unknown } | null | undefined)?.then;
        if (typeof then !== 'function') {
          resolve(undefined);
          return;
        }
        Promise.resolve(result).then(
          () => resolve(undefined),
          (thrown: unknown) => resolve(failureOf(thrown)),
        );
      } catch (thrown) {
        resolve(failureOf(thrown));
      }
    });
  } finally {
    finished = true;
    reservation.onTick = undefined;
    clearTimeout(timer);
    stopKeepAlive?.();
  }
}
