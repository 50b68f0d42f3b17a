/**
 * The messages between the worker's thread (which holds the connection and keeps jobs alive) and the
 * task threads (which run task code). Plain data only: structured clone carries them.
 */
import type { JobStats } from '../../beanstalk/types.js';

/** What the worker's thread sends to a task thread. */
export type ToTaskThread =
  /** Run the task `name` of `tube` with `kwargs` for job `jobId`. */
  | {
      readonly type: 'run';
      readonly run: number;
      readonly tube: string;
      readonly name: string;
      readonly jobId: string;
      readonly kwargs: Record<string, unknown>;
      /** The envelope's `meta`, for `ctx.meta`. */
      readonly meta?: Record<string, unknown>;
      /** Send the return value back with `done`. */
      readonly wantsValue?: boolean;
    }
  /** The run was aborted (timeout, forced stop): its signal aborts with this reason. */
  | { readonly type: 'abort'; readonly run: number; readonly reason: ErrorData }
  /** The answer to a `stats` request. */
  | { readonly type: 'stats'; readonly run: number; readonly request: number; readonly stats?: JobStats; readonly error?: ErrorData }
  /** The answer to a `touch` request. */
  | { readonly type: 'touched'; readonly run: number; readonly request: number; readonly error?: ErrorData };

/** What a task thread sends back. */
export type FromTaskThread =
  /** The thread has imported the jobs and is ready for runs. */
  | { readonly type: 'ready'; readonly tasks: number }
  /** The jobs could not be imported. */
  | { readonly type: 'load-failed'; readonly error: ErrorData }
  /**
   * A run ended; `error` when the task failed. `value` is the task's return value, sent only when the
   * job's flow needs it (a chain's next link, a result), so other runs clone nothing.
   */
  | { readonly type: 'done'; readonly run: number; readonly error?: ErrorData; readonly value?: unknown }
  /** The task reported progress (`ctx.progress(value)`). */
  | { readonly type: 'progress'; readonly run: number; readonly value: unknown }
  /** The task asked for its job's counters (`ctx.stats()`). */
  | { readonly type: 'stats'; readonly run: number; readonly request: number }
  /** The task asked for a touch (`ctx.touch()`). */
  | { readonly type: 'touch'; readonly run: number; readonly request: number };

/** An Error as data. */
export interface ErrorData {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  /** The task threw UnrecoverableError. */
  readonly unrecoverable?: boolean;
}

/** The data a task thread starts with. */
export interface TaskThreadData {
  /** The jobs directory every task thread imports, as the CLI does. */
  readonly jobsDir: string;
  /** The level of the task loggers inside the thread. */
  readonly logLevel: string;
}
