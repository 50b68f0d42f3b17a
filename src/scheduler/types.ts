/** Types of schedules: what `queue.schedule()` takes and what the registry keeps. */
import type { JobQueue } from '../tasks/queue.js';
import type { TaskMetadata } from '../tasks/types.js';

/**
 * What to do with a tick found late, after the schedulers were down (or the chosen server was) for
 * longer than the schedule's own interval: `skip` runs nothing for it, `once` runs that one old tick.
 * Either way the next tick is computed from now, so downtime never turns into a burst of jobs.
 */
export type CatchUp = 'skip' | 'once';

/** Options of `queue.schedule(name, cron, task, kwargs, options)`. */
export interface ScheduleOptions {
  /**
   * The IANA time zone the cron expression is read in (`Europe/Paris`): ticks follow its DST changes.
   * @defaultValue `'UTC'`, so every scheduler computes the same ticks whatever its host's zone
   */
  readonly timezone?: string;
  /**
   * What a tick found late after downtime does (see {@link CatchUp}).
   * @defaultValue `'skip'`
   */
  readonly catchUp?: CatchUp;
  /** The priority of each scheduled job. @defaultValue the task's, else the queue's, else 1024 */
  readonly priority?: number;
  /** The TTR, in seconds, of each scheduled job. @defaultValue the task's, else the queue's, else 60 */
  readonly ttr?: number;
}

/** One declared schedule, as the registry keeps it (validated). */
export interface Schedule {
  /** The schedule's name: part of its marker tube's name, `bsworker.schedule.<name>`. */
  readonly name: string;
  /** The cron expression as given (5 fields, or 6 with seconds first). */
  readonly cron: string;
  readonly timezone: string;
  readonly catchUp: CatchUp;
  /** The task each tick puts a job for. */
  readonly task: TaskMetadata;
  readonly kwargs: Readonly<Record<string, unknown>>;
  readonly priority: number | undefined;
  readonly ttr: number | undefined;
  /** The queue that puts the scheduled jobs (spread over its servers as any put is). */
  readonly queue: JobQueue;
}

/** The body of a schedule's marker job: the tick it stands for and the expression it was computed from. */
export interface Marker {
  readonly schedule: string;
  /** ISO-8601 instant of the tick. */
  readonly tick: string;
  readonly cron: string;
  readonly timezone: string;
}
