/**
 * What happens to one reserved job. Every path ends the reservation in exactly one way: delete, release
 * (a retry), bury, or, when a stop cannot wait, a closed connection that gives the job back. Nothing
 * here throws: a bad job, a failing task or a lost connection is logged and never stops the worker.
 */
import { performance } from 'node:perf_hooks';
import { ConnectionError, NotFoundError } from '../beanstalk/errors.js';
import type { Beanstalk, JobStats, ReservedJob } from '../beanstalk/types.js';
import { decodeEnvelope } from '../envelope/envelope.js';
import { type Logger, toError } from '../logging/logger.js';
import { isUnrecoverable } from '../tasks/errors.js';
import { findTask, type RegisteredTask } from '../tasks/registry.js';
import type { TaskContext } from '../tasks/types.js';
import { retryDelaySeconds } from './backoff.js';
import type { DeadLetterInfo } from './dead-letter.js';
import type { BuryReason, JobEvent, WorkerEvents } from './events.js';
import type { JobAbort } from './job-abort.js';
import { keepAlive } from './keep-alive.js';

/** What {@link processJob} needs from its worker. */
export interface JobContext {
  readonly logger: Logger;
  readonly maxKicks: number;
  /** See WorkerOptions.maxCrashes. */
  readonly maxCrashes: number;
  /** The watched tubes. With one, every job's tube is known without asking the server. */
  readonly tubes: readonly string[];
  /** Moves a job that reached the kick bound to the dead-letter tube; undefined when there is none. */
  readonly deadLetter: ((body: Buffer, info: DeadLetterInfo) => Promise<void>) | undefined;
  /**
   * True when this job should be checked for earlier crashes before it runs. The check costs a
   * `stats-job` round trip, so the worker asks for it only where a crashed job can be: see Worker.
   */
  takeCrashCheck(): boolean;
  /** True when `event` has listeners: event objects are built only then. */
  listens(event: keyof WorkerEvents): boolean;
  emit<K extends keyof WorkerEvents & string>(event: K, ...args: WorkerEvents[K]): void;
}

/** A job being processed. A forced stop sets `released` and aborts it through `abort`. */
export interface InFlightJob {
  readonly id: string;
  released: boolean;
  /** Set once the command that ends the reservation is on its way; a stop then leaves the job alone. */
  settling?: boolean;
  /**
   * Called once that command is written. The slot can then write its next reserve behind it on the same
   * connection: replies come back in order, so the job is settled before the next one arrives.
   */
  onSettling?: () => void;
  /** Tube and task, once known. */
  event?: JobEvent;
  /** Called by the slot's tick while the job runs (see TTR_PROBE_MS). */
  onTick?: (now: number) => void;
  readonly abort: JobAbort;
}

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
 * The job's `stats-job`, read at most once and only when needed: never on the success path of a short
 * job from a known tube. Failures, bad bodies, crash checks and long tasks read it.
 */
class JobStatsCache {
  #stats: Promise<JobStats | null> | undefined;

  constructor(
    private readonly connection: Beanstalk,
    private readonly id: string,
  ) {}

  /** The job's stats; null when the job is gone; rejects when the connection fails. */
  get(): Promise<JobStats | null> {
    this.#stats ??= this.connection.statsJob(this.id);
    return this.#stats;
  }

  /**
   * The stats, or undefined after handling their absence: a vanished job is logged, and a failed read
   * gives the job back by dropping the connection (without its counters the job cannot be judged, and
   * the slot must not reserve beside a job it still holds). The slot then reconnects.
   */
  async require(log: Logger): Promise<JobStats | undefined> {
    try {
      const stats = await this.get();
      if (stats) return stats;
      log.warn({ jobId: this.id }, 'the job vanished before it could be settled (deleted by someone else?)');
    } catch (error) {
      log.error({ err: error, jobId: this.id }, 'stats-job failed; giving the job back by dropping the connection');
      await this.connection.quit().catch(() => undefined);
    }
    return undefined;
  }
}

/**
 * Runs one reserved job to its end on `connection`, the connection that reserved it (delete, release,
 * bury and touch work only there). Resolves when the job is settled or given back.
 */
export async function processJob(ctx: JobContext, connection: Beanstalk, job: ReservedJob, inFlight: InFlightJob): Promise<void> {
  const decoded = decodeEnvelope(job.body);
  const stats = new JobStatsCache(connection, job.id);
  // The reserve reply does not say which tube the job came from. With one watched tube it can only be
  // that one; with several, the envelope's tube is believed when it is one of them. Otherwise the server
  // is asked.
  const { tubes } = ctx;
  const named = decoded.ok ? decoded.envelope.tube : undefined;
  let tube: string | undefined = tubes.length === 1 ? tubes[0] : named !== undefined && tubes.includes(named) ? named : undefined;
  let known: JobStats | undefined;
  if (tube === undefined || !decoded.ok || ctx.takeCrashCheck()) {
    known = await stats.require(ctx.logger);
    if (!known) return;
    tube = known.tube;
  }
  const task = decoded.ok ? findTask(tube, decoded.envelope.func_name) : undefined;
  const event: JobEvent = { jobId: job.id, tube, task: decoded.ok ? decoded.envelope.func_name : undefined };
  inFlight.event = event;
  const end = new Ending(ctx, connection, event, inFlight);

  // Jobs that cannot run are buried like failures, and bounded like them: at the kick bound they go to
  // the dead-letter tube or are deleted with their body logged, so auto-kick cannot cycle them for ever.
  const cannotRun = async (reason: BuryReason, detail: string): Promise<void> => {
    const counters = await stats.require(ctx.logger);
    if (!counters) return;
    return counters.kicks < ctx.maxKicks
      ? end.bury(counters, reason, detail, job.body)
      : end.giveUp(counters, job.body, new Error(detail), 0);
  };
  if (!decoded.ok) return cannotRun('undecodable', decoded.message);
  if (!task) {
    return cannotRun(
      'unregistered',
      `no task named ${JSON.stringify(decoded.envelope.func_name)} is registered in tube ${JSON.stringify(tube)}`,
    );
  }

  // Reservations that ended with no delete, release, bury or TTR timeout: the worker holding the job
  // died (or a stop gave it back). Past the limit the job is taken for the cause and parked.
  if (known && ctx.maxCrashes > 0) {
    const abandoned = known.reserves - 1 - known.releases - known.buries - known.timeouts;
    if (abandoned >= ctx.maxCrashes * (known.kicks + 1)) {
      return cannotRun(
        'crashed',
        `reserved ${known.reserves} times, ${abandoned} of them ended without a result (the worker died or was stopped); kick it to try again`,
      );
    }
  }

  if (ctx.listens('job:reserved')) ctx.emit('job:reserved', event);
  const started = performance.now();
  const failure = await runTask(task, decoded.envelope.kwargs, connection, () => end.log, event, stats, known, inFlight);
  const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
  if (inFlight.released) {
    ctx.logger.warn(
      { ...event, durationMs, err: failure },
      'the job was given back to beanstalkd when the worker stopped; it will run again',
    );
    return;
  }
  if (!failure) {
    if (ctx.listens('job:completed')) ctx.emit('job:completed', { ...event, durationMs });
    if (await end.settle('delete', () => connection.delete(job.id))) {
      ctx.logger.info({ tube, jobId: job.id, task: event.task, durationMs }, 'job completed');
      if (ctx.listens('job:deleted')) ctx.emit('job:deleted', { ...event, reason: 'completed' });
    }
    return;
  }

  // The failure path reads the counters: the attempt, the kicks and the priority to keep.
  const counters = await stats.require(ctx.logger);
  if (!counters) return;
  const attempt = counters.releases + 1;
  ctx.emit('job:failed', { ...event, error: failure, kicks: counters.kicks, attempt });
  const retries = task.options.retries ?? 0;
  if (!isUnrecoverable(failure) && counters.releases < retries) {
    const delaySeconds = retryDelaySeconds(task.options.backoff, attempt);
    if (await end.settle('release', () => connection.release(job.id, counters.priority, delaySeconds))) {
      end.log.warn(
        { err: failure, durationMs, attempt, retries, delaySeconds },
        `job failed; retry ${attempt} of ${retries} in ${delaySeconds} s`,
      );
      ctx.emit('job:released', { ...event, reason: 'retry', delaySeconds });
    }
    return;
  }
  if (counters.kicks < ctx.maxKicks)
    return end.bury(counters, 'failed', failure.message, undefined, { err: failure, durationMs, attempt, maxKicks: ctx.maxKicks });
  return end.giveUp(counters, job.body, failure, durationMs);
}

/**
 * Runs the task with its context. Resolves to the failure, or undefined on success; never rejects.
 * Settles early when `timeoutMs` runs out or a forced stop aborts the job: a task that ignores its
 * signal cannot hold the worker. A task still running after {@link TTR_PROBE_MS} gets its TTR kept alive.
 */
async function runTask(
  task: RegisteredTask,
  kwargs: Record<string, unknown>,
  connection: Beanstalk,
  jobLog: () => Logger,
  event: JobEvent,
  stats: JobStatsCache,
  known: JobStats | undefined,
  inFlight: InFlightJob,
): Promise<Error | undefined> {
  const { abort } = inFlight;
  const timeoutMs = task.options.timeoutMs;
  const touch = (): Promise<void> => connection.touch(inFlight.id);
  const readStats = async (): Promise<JobStats> => {
    const counters = await stats.get();
    if (!counters) throw new Error(`job ${inFlight.id} is no longer on the server`);
    return counters;
  };
  const context: TaskContext = {
    jobId: inFlight.id,
    tube: event.tube ?? '',
    name: task.name,
    get signal() {
      return abort.signal;
    },
    get logger() {
      return jobLog();
    },
    touch,
    stats: readStats,
    attempt: async () => (await readStats()).releases + 1,
  };
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  let stopKeepAlive: (() => void) | undefined;
  const startKeepAlive = (ttrSeconds: number): void => {
    if (!finished) stopKeepAlive = keepAlive(touch, ttrSeconds, jobLog());
  };
  if (known) startKeepAlive(known.ttrSeconds);
  else {
    // The slot's tick calls this (no timer per job); the first call after TTR_PROBE_MS reads the TTR.
    const probeAt = performance.now() + TTR_PROBE_MS;
    inFlight.onTick = (now) => {
      if (now < probeAt || finished) return;
      inFlight.onTick = undefined;
      stats.get().then(
        (counters) => {
          if (counters) startKeepAlive(counters.ttrSeconds);
        },
        (error: unknown) => jobLog().warn({ err: error }, 'could not read the TTR to keep the job alive'),
      );
    };
  }
  try {
    // One promise for the run, the timeout and a forced stop, whichever comes first; a task that returns
    // without a promise settles it without a trip through the microtask queue.
    return await new Promise<Error | undefined>((resolve) => {
      abort.onAbort((reason) => resolve(toError(reason)));
      if (timeoutMs !== undefined) timer = setTimeout(() => abort.abort(new TaskTimeoutError(timeoutMs)), timeoutMs);
      let result: unknown;
      try {
        result = task.run(kwargs, context);
      } catch (thrown) {
        resolve(toError(thrown));
        return;
      }
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
        Promise.resolve(result).then(
          () => resolve(undefined),
          (thrown: unknown) => resolve(toError(thrown)),
        );
      } else {
        resolve(undefined);
      }
    });
  } finally {
    finished = true;
    inFlight.onTick = undefined;
    clearTimeout(timer);
    stopKeepAlive?.();
  }
}

/** The ways a reservation ends, sharing the job's event and logger. */
class Ending {
  #log: Logger | undefined;

  constructor(
    private readonly ctx: JobContext,
    private readonly connection: Beanstalk,
    private readonly event: JobEvent,
    private readonly inFlight: InFlightJob,
  ) {}

  /**
   * The job's child logger, with `{ tube, jobId, task }`, made on first use: a child logger per job
   * costs more than a no-op task, and the success path logs its one line without it. The task's
   * `ctx.logger` is this one too.
   */
  get log(): Logger {
    this.#log ??= this.ctx.logger.child({ tube: this.event.tube, jobId: this.event.jobId, task: this.event.task });
    return this.#log;
  }

  /** Buries the job, keeping its priority. */
  async bury(counters: JobStats, reason: BuryReason, detail: string, body?: Buffer, fields?: Record<string, unknown>): Promise<void> {
    if (this.inFlight.released) return;
    if (await this.settle('bury', () => this.connection.bury(this.event.jobId, counters.priority))) {
      // One line per outcome: a failure's error and its bury are reported together.
      if (reason === 'failed') this.log.warn({ ...fields, reason, kicks: counters.kicks }, 'job failed; buried');
      else this.log.error({ reason, detail, body: body?.toString('utf8') }, `job buried: ${detail}`);
      this.ctx.emit('job:buried', { ...this.event, reason, detail });
    }
  }

  /**
   * The kick bound is reached: move the job to the dead-letter tube, or delete it with its body logged.
   * When the dead-letter put fails the job is buried instead: it is never lost.
   */
  async giveUp(counters: JobStats, body: Buffer, failure: Error, durationMs: number): Promise<void> {
    const { kicks } = counters;
    if (this.ctx.deadLetter) {
      try {
        await this.ctx.deadLetter(body, {
          error: failure,
          tube: this.event.tube ?? '',
          jobId: this.event.jobId,
          attempts: counters.releases + 1,
          kicks,
        });
      } catch (error) {
        this.log.error({ err: error }, 'could not put the job into the dead-letter tube; burying it instead');
        return this.bury(counters, 'failed', failure.message, undefined, { err: failure, durationMs });
      }
    }
    if (await this.settle('delete', () => this.connection.delete(this.event.jobId))) {
      const where = this.ctx.deadLetter ? 'moved to the dead-letter tube' : 'deleted, its body is in this line';
      const text = body.toString('utf8');
      this.log.error(
        { err: failure, durationMs, kicks, maxKicks: this.ctx.maxKicks, body: text },
        `job failed after ${kicks} kick(s); ${where}`,
      );
      this.ctx.emit('job:deleted', {
        ...this.event,
        reason: this.ctx.deadLetter ? 'dead-letter' : 'max-kicks',
        body: text,
      });
    }
  }

  /**
   * Runs the command that ends a reservation. NOT_FOUND means the TTR ran out and beanstalkd gave the job
   * to someone else: logged as an overrun, not thrown. A lost connection gives the job back on the server.
   */
  async settle(command: string, run: () => Promise<void>): Promise<boolean> {
    if (this.inFlight.released) return false;
    this.inFlight.settling = true;
    try {
      // `run` writes its command synchronously; the slot may pipeline its next reserve behind it.
      const written = run();
      this.inFlight.onSettling?.();
      await written;
      return true;
    } catch (error) {
      if (error instanceof NotFoundError) {
        this.log.warn({ command }, `TTR overrun: ${command} found no job ${this.event.jobId}; beanstalkd had already handed it out again`);
        this.ctx.emit('job:overrun', { ...this.event, command });
      } else if (error instanceof ConnectionError) {
        this.log.error({ err: error, command }, `${command} failed: connection lost; beanstalkd puts the job back to ready`);
      } else {
        this.log.error({ err: error, command }, `${command} failed`);
      }
      return false;
    }
  }
}
