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
import { keepAlive } from './keep-alive.js';

/** What {@link processJob} needs from its worker. */
export interface JobContext {
  readonly logger: Logger;
  readonly maxKicks: number;
  /** See WorkerOptions.maxCrashes. */
  readonly maxCrashes: number;
  /** Moves a job that reached the kick bound to the dead-letter tube; undefined when there is none. */
  readonly deadLetter: ((body: Buffer, info: DeadLetterInfo) => Promise<void>) | undefined;
  emit<K extends keyof WorkerEvents & string>(event: K, ...args: WorkerEvents[K]): void;
}

/** A job being processed. A forced stop sets `released` and aborts `controller`. */
export interface InFlightJob {
  readonly id: string;
  released: boolean;
  /** Set once the command that ends the reservation is on its way; a stop then leaves the job alone. */
  settling?: boolean;
  /** Tube and task, once known. */
  event?: JobEvent;
  readonly controller: AbortController;
}

/** The error a task's run ends with when its `timeoutMs` runs out. */
export class TaskTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`the task ran longer than its timeoutMs (${timeoutMs} ms)`);
    this.name = 'TaskTimeoutError';
  }
}

/**
 * Runs one reserved job to its end on `connection`, the connection that reserved it (delete, release,
 * bury and touch work only there). Resolves when the job is settled or given back.
 */
export async function processJob(ctx: JobContext, connection: Beanstalk, job: ReservedJob, inFlight: InFlightJob): Promise<void> {
  // One round trip before running: the reserve reply does not say which tube the job came from, and the
  // counters give the attempt, the kick count, the priority to keep on a bury and the TTR to keep alive.
  let stats: JobStats | null;
  try {
    stats = await connection.statsJob(job.id);
  } catch (error) {
    // Without its stats the job cannot be judged. Dropping the connection gives it back at once (and
    // keeps this slot from reserving beside a job it still holds); the slot then reconnects.
    ctx.logger.error({ err: error, jobId: job.id }, 'stats-job failed; giving the job back by dropping the connection');
    await connection.quit().catch(() => undefined);
    return;
  }
  if (!stats) {
    ctx.logger.warn({ jobId: job.id }, 'the job vanished before it could run (deleted by someone else?)');
    return;
  }
  const { tube } = stats;
  const decoded = decodeEnvelope(job.body);
  const task = decoded.ok ? findTask(tube, decoded.envelope.func_name) : undefined;
  const event: JobEvent = { jobId: job.id, tube, task: decoded.ok ? decoded.envelope.func_name : undefined };
  inFlight.event = event;
  const log = ctx.logger.child({ tube, jobId: job.id, task: event.task });
  const end = new Ending(ctx, connection, log, event, stats, inFlight);

  // Jobs that cannot run are buried like failures, and bounded like them: at the kick bound they go to
  // the dead-letter tube or are deleted with their body logged, so auto-kick cannot cycle them for ever.
  const cannotRun = (reason: BuryReason, detail: string): Promise<void> =>
    stats.kicks < ctx.maxKicks ? end.bury(reason, detail, job.body) : end.giveUp(job.body, new Error(detail), 0);
  if (!decoded.ok) return cannotRun('undecodable', decoded.message);
  if (!task) {
    return cannotRun(
      'unregistered',
      `no task named ${JSON.stringify(decoded.envelope.func_name)} is registered in tube ${JSON.stringify(tube)}`,
    );
  }

  // Reservations that ended with no delete, release, bury or TTR timeout: the worker holding the job
  // died (or a stop gave it back). Past the limit the job is taken for the cause and parked.
  const abandoned = stats.reserves - 1 - stats.releases - stats.buries - stats.timeouts;
  if (abandoned >= ctx.maxCrashes * (stats.kicks + 1)) {
    return cannotRun(
      'crashed',
      `reserved ${stats.reserves} times, ${abandoned} of them ended without a result (the worker died or was stopped); kick it to try again`,
    );
  }

  ctx.emit('job:reserved', event);
  log.debug({ attempt: stats.releases + 1, kicks: stats.kicks }, 'job started');
  const started = performance.now();
  const failure = await runTask(task, decoded.envelope.kwargs, connection, log, stats, inFlight);
  const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
  if (inFlight.released) {
    log.warn({ durationMs, err: failure }, 'the job was given back to beanstalkd when the worker stopped; it will run again');
    return;
  }
  if (!failure) {
    ctx.emit('job:completed', { ...event, durationMs });
    if (await end.settle('delete', () => connection.delete(job.id))) {
      log.info({ durationMs }, 'job completed');
      ctx.emit('job:deleted', { ...event, reason: 'completed' });
    }
    return;
  }

  const attempt = stats.releases + 1;
  ctx.emit('job:failed', { ...event, error: failure, kicks: stats.kicks, attempt });
  const retries = task.options.retries ?? 0;
  if (!isUnrecoverable(failure) && stats.releases < retries) {
    const delaySeconds = retryDelaySeconds(task.options.backoff, attempt);
    if (await end.settle('release', () => connection.release(job.id, stats.priority, delaySeconds))) {
      log.warn(
        { err: failure, durationMs, attempt, retries, delaySeconds },
        `job failed; retry ${attempt} of ${retries} in ${delaySeconds} s`,
      );
      ctx.emit('job:released', { ...event, reason: 'retry', delaySeconds });
    }
    return;
  }
  if (stats.kicks < ctx.maxKicks)
    return end.bury('failed', failure.message, undefined, { err: failure, durationMs, attempt, maxKicks: ctx.maxKicks });
  return end.giveUp(job.body, failure, durationMs);
}

/**
 * Runs the task with its context. Resolves to the failure, or undefined on success; never rejects.
 * Settles early when `timeoutMs` runs out or a forced stop aborts the job: a task that ignores its
 * signal cannot hold the worker.
 */
async function runTask(
  task: RegisteredTask,
  kwargs: Record<string, unknown>,
  connection: Beanstalk,
  log: Logger,
  stats: JobStats,
  inFlight: InFlightJob,
): Promise<Error | undefined> {
  const { controller } = inFlight;
  const timeoutMs = task.options.timeoutMs;
  const touch = (): Promise<void> => connection.touch(inFlight.id);
  const context: TaskContext = {
    jobId: inFlight.id,
    tube: stats.tube,
    name: task.name,
    attempt: stats.releases + 1,
    kicks: stats.kicks,
    signal: controller.signal,
    logger: log,
    touch,
  };
  let timer: NodeJS.Timeout | undefined;
  const stopKeepAlive = keepAlive(touch, stats.ttrSeconds, log);
  try {
    const stopped = new Promise<Error>((resolve) => {
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => controller.abort(new TaskTimeoutError(timeoutMs)), timeoutMs);
      }
      const onAbort = (): void => resolve(toError(controller.signal.reason));
      if (controller.signal.aborted) onAbort();
      else controller.signal.addEventListener('abort', onAbort, { once: true });
    });
    const ran = (async () => {
      await task.run(kwargs, context);
    })().then(
      () => undefined,
      (thrown: unknown) => toError(thrown),
    );
    return await Promise.race([ran, stopped]);
  } finally {
    clearTimeout(timer);
    stopKeepAlive();
  }
}

/** The ways a reservation ends, sharing the job's logger, event and stats. */
class Ending {
  constructor(
    private readonly ctx: JobContext,
    private readonly connection: Beanstalk,
    private readonly log: Logger,
    private readonly event: JobEvent,
    private readonly stats: JobStats,
    private readonly inFlight: InFlightJob,
  ) {}

  /** Buries the job, keeping its priority. */
  async bury(reason: BuryReason, detail: string, body?: Buffer, fields?: Record<string, unknown>): Promise<void> {
    if (this.inFlight.released) return;
    if (await this.settle('bury', () => this.connection.bury(this.event.jobId, this.stats.priority))) {
      // One line per outcome: a failure's error and its bury are reported together.
      if (reason === 'failed') this.log.warn({ ...fields, reason, kicks: this.stats.kicks }, 'job failed; buried');
      else this.log.error({ reason, detail, body: body?.toString('utf8') }, `job buried: ${detail}`);
      this.ctx.emit('job:buried', { ...this.event, reason, detail });
    }
  }

  /**
   * The kick bound is reached: move the job to the dead-letter tube, or delete it with its body logged.
   * When the dead-letter put fails the job is buried instead: it is never lost.
   */
  async giveUp(body: Buffer, failure: Error, durationMs: number): Promise<void> {
    const { kicks } = this.stats;
    if (this.ctx.deadLetter) {
      try {
        await this.ctx.deadLetter(body, {
          error: failure,
          tube: this.event.tube ?? '',
          jobId: this.event.jobId,
          attempts: this.stats.releases + 1,
          kicks,
        });
      } catch (error) {
        this.log.error({ err: error }, 'could not put the job into the dead-letter tube; burying it instead');
        return this.bury('failed', failure.message, undefined, { err: failure, durationMs });
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
      await run();
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
