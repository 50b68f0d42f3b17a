/**
 * Applying a job's outcome: the settling command through its {@link Reservation}, then one record of
 * what happened that the log line and the events both read. One line per outcome: a failure's error
 * and its bury (or release, dead letter) are reported together.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobStats } from '../beanstalk/types.js';
import { formatBodyForLog, type Logger } from '../logging/logger.js';
import { backoffDelay } from '../util/backoff.js';
import type { DeadLetterInfo } from './dead-letter.js';
import type { BuryReason, JobEvent } from './events.js';
import type { DeadLetterResult, JobContext, JobStatsCache } from './process-job.js';
import type { Reservation, SettleResult } from './reservation.js';

/** What the log line of a failure carries besides the error. */
interface FailureFields {
  readonly error: Error;
  readonly durationMs: number;
  readonly attempt?: number;
  readonly unrecoverable?: boolean;
}

/** A logged body excerpt of a job that stays buried (nothing is lost): short. */
const BURIED_EXCERPT_CHARS = 1_024;
/**
 * A logged body of a job that is deleted for good: the line is its only copy, so it is kept up to this,
 * which stays inside the logger's 64 KiB line cap even when escaping quadruples it. A dead-letter tube
 * keeps bodies of any size.
 */
const DISCARDED_BODY_CHARS = 16_384;

/** How many times a dead-letter put is tried before the job is buried instead. */
const DEAD_LETTER_TRIES = 3;

/** What each settling command leaves the job as, for log lines. */
const DONE: Readonly<Record<string, string>> = { delete: 'deleted', release: 'released', bury: 'buried' };

/** The ways a reservation ends, sharing the job's event and logger. */
export class Outcomes {
  #log: Logger | undefined;
  /** The worker's `redact`, plus the task's once known. */
  redact: readonly string[];

  constructor(
    readonly ctx: JobContext,
    private readonly reservation: Reservation,
    private readonly stats: JobStatsCache,
  ) {
    this.redact = ctx.redact;
  }

  /** The connection that reserved the job. */
  get connection(): Reservation['connection'] {
    return this.reservation.connection;
  }

  /** The job's tube, id and task. */
  get event(): JobEvent {
    return this.reservation.event;
  }

  /**
   * The job's child logger, with `{ tube, jobId, task }`, made on first use: a child logger per job
   * costs more than a no-op task, and the success path logs its one line without it. The task's
   * `ctx.logger` is this one too.
   */
  get log(): Logger {
    const { tube, jobId, task } = this.reservation.event;
    this.#log ??= this.ctx.logger.child({ tube, jobId, task });
    return this.#log;
  }

  /** The task succeeded: delete the job. */
  async complete(durationMs: number): Promise<void> {
    const { ctx, reservation } = this;
    // Events are built with their properties written out: an object spread costs about a microsecond
    // here (Node 20), which the metrics, listening to every job, would pay twice per job.
    const { tube, jobId, task } = reservation.event;
    if (ctx.listens('job:completed')) ctx.emit('job:completed', { jobId, tube, task, durationMs });
    // The hot path: Reservation.settle directly, without #settle's extra async layer.
    const { result, error } = await reservation.settle(() => reservation.connection.delete(reservation.id));
    if (result === 'done' || this.#notSettled('delete', result, error)) {
      // A child logger per tube and task, made once: pino serialises its bindings when it is made, so the
      // one line every job writes carries two fields to serialise instead of four.
      ctx.taskLogger(tube, task).info({ jobId, durationMs }, 'job completed');
      if (ctx.listens('job:deleted')) ctx.emit('job:deleted', { jobId, tube, task, reason: 'completed' });
    }
  }

  /** Another attempt after `delaySeconds`, keeping the priority. */
  async release(
    counters: JobStats,
    error: Error,
    durationMs: number,
    attempt: number,
    retries: number,
    delaySeconds: number,
  ): Promise<void> {
    const { reservation } = this;
    if (await this.#settle('release', () => reservation.connection.release(reservation.id, counters.priority, delaySeconds))) {
      this.log.warn(
        { err: error, durationMs, attempt, retries, delaySeconds },
        `job failed; retry ${attempt} of ${retries} in ${delaySeconds} s`,
      );
      this.ctx.emit('job:released', { ...this.event, reason: 'retry', delaySeconds });
    }
  }

  /**
   * Buries the job, keeping its priority, with its failure record when the server can take one (see
   * ./record-bury.ts): then the buried job is a copy with a new id, named in the log line and the event.
   */
  async bury(counters: JobStats, reason: BuryReason, detail: string, fields: FailureFields): Promise<void> {
    const { reservation, ctx } = this;
    let buriedAs: string | undefined;
    let plainWhy: string | undefined;
    if (ctx.recorder.supports(reservation.connection)) {
      const facts = {
        reason,
        error: fields.error,
        durationMs: reason === 'failed' ? fields.durationMs : undefined,
        tube: this.event.tube ?? counters.tube,
        unrecoverable: fields.unrecoverable === true,
      };
      const recorded = await ctx.recorder.bury(reservation, counters, facts, async () => {
        const { result, error } = await reservation.settle(() => reservation.connection.delete(reservation.id));
        if (result === 'done') return 'done';
        if (result === 'not-found') return 'not-found';
        this.#notSettled('delete', result, error);
        return 'lost';
      });
      switch (recorded.result) {
        case 'recorded':
          buriedAs = reservation.publicIdOf(recorded.copyId);
          break;
        case 'not-found':
          // The original was handed out again while its copy was made: both exist now, and the copy
          // keeps the record.
          this.reportOverrun('delete', `delete found no job ${reservation.id} after its failure record was buried as ${recorded.copyId}`);
          return;
        case 'lost':
          if (recorded.error !== undefined) {
            await reservation.drop();
            this.log.error(
              { err: recorded.error },
              'the connection was lost while burying the job with its failure record: the job goes back to ready',
            );
          }
          return;
        default:
          plainWhy = recorded.why;
      }
      // Buried without the mark, an unrecoverable job would be revived by auto-kick: it gets the kick
      // bound's outcome instead.
      if (plainWhy !== undefined && fields.unrecoverable === true && ctx.autoKick && ctx.deadLetter === undefined) {
        return this.giveUp(counters, 'discard', fields.error, fields.durationMs, true);
      }
    }
    if (buriedAs === undefined && !(await this.#settle('bury', () => reservation.connection.bury(reservation.id, counters.priority))))
      return;
    const { error, ...rest } = fields;
    const where = buriedAs === undefined ? {} : { buriedAs };
    const note = plainWhy === undefined ? {} : { record: `not kept: ${plainWhy}` };
    if (reason === 'failed') {
      this.log.warn(
        { err: error, ...rest, reason, kicks: counters.kicks, maxKicks: this.ctx.maxKicks, ...where, ...note },
        'job failed; buried',
      );
    } else {
      const body = formatBodyForLog(reservation.body, { redact: this.redact, maxChars: BURIED_EXCERPT_CHARS });
      this.log.error({ reason, detail, body, ...where, ...note }, `job buried: ${detail}`);
    }
    this.ctx.emit('job:buried', { ...this.event, reason, detail, ...where });
  }

  /**
   * The job must not run again: move it to the dead-letter tube, or delete it with its body logged.
   * A dead letter that cannot fit the server's limit even with a minimal record goes there as the bare
   * original body (it fitted when it was put), its record in the log line; one whose put keeps failing
   * is buried instead (auto-kick finishes moving it later): the job is never lost.
   */
  async giveUp(
    counters: JobStats,
    action: 'dead-letter' | 'discard',
    failure: Error,
    durationMs: number,
    unrecoverable = false,
  ): Promise<void> {
    const { ctx, reservation } = this;
    const { kicks } = counters;
    let moved: DeadLetterResult | undefined;
    if (action === 'dead-letter' && ctx.deadLetter) {
      const info = {
        error: failure,
        tube: this.event.tube ?? '',
        jobId: reservation.jobId,
        attempts: counters.releases + 1,
        kicks,
        priority: counters.priority,
        ttrSeconds: counters.ttrSeconds,
      };
      moved = await this.#putDeadLetter(info);
      if (moved === undefined) {
        // Kept, never lost. Auto-kick finishes moving a job buried at the kick bound; one buried below it
        // (an unrecoverable failure) may be kicked and run again, which only failure records can prevent.
        this.log.error('could not put the job into the dead-letter tube; burying it instead');
        return this.bury(counters, 'failed', failure.message, { error: failure, durationMs, unrecoverable });
      }
    }
    if (!(await this.#settle('delete', () => reservation.connection.delete(reservation.id)))) return;
    const why = unrecoverable ? 'failed with UnrecoverableError' : `failed after ${kicks} kick(s)`;
    const where =
      moved === 'put'
        ? 'moved to the dead-letter tube'
        : moved === 'put-bare'
          ? 'moved to the dead-letter tube as it was, without its failure record (no room under max-job-size): the failure is in this line'
          : 'deleted, its body is in this line';
    const body = moved ? undefined : formatBodyForLog(reservation.body, { redact: this.redact, maxChars: DISCARDED_BODY_CHARS });
    this.log.error({ err: failure, durationMs, kicks, maxKicks: ctx.maxKicks, body }, `job ${why}; ${where}`);
    ctx.emit('job:deleted', {
      ...this.event,
      reason: moved ? 'dead-letter' : 'max-kicks',
      body: reservation.body.toString('utf8'),
    });
  }

  /**
   * The dead-letter put, tried a few times: a server out of memory or draining, or a dropped control
   * connection, may be over in a moment, and the alternative (burying) may let auto-kick run the job
   * again. The job is touched between tries so that its TTR does not run out meanwhile. Undefined when
   * every try failed.
   */
  async #putDeadLetter(info: DeadLetterInfo): Promise<DeadLetterResult | undefined> {
    const { ctx, reservation } = this;
    for (let attempt = 1; attempt <= DEAD_LETTER_TRIES; attempt += 1) {
      try {
        return await (ctx.deadLetter as NonNullable<JobContext['deadLetter']>)(reservation.body, info);
      } catch (error) {
        this.log.warn({ err: error, attempt, tries: DEAD_LETTER_TRIES }, 'the dead-letter put failed');
        if (attempt === DEAD_LETTER_TRIES) break;
        await sleep(backoffDelay(attempt, { initial: 200, max: 2_000, jitter: 0.5 }));
        await reservation.connection.touch(reservation.id).catch(() => undefined);
      }
    }
    return undefined;
  }

  /** Releases the job without running it (a group's callback waiting for its members); true when done. */
  releaseUnrun(priority: number, delaySeconds: number): Promise<boolean> {
    const { reservation } = this;
    return this.#settle('release', () => reservation.connection.release(reservation.id, priority, delaySeconds));
  }

  /** Gives the job back by dropping its connection: for a job that cannot be judged now. */
  dropReservation(): Promise<void> {
    return this.reservation.drop();
  }

  /** A stop gave the job back while it ran: it will run again. */
  givenBack(durationMs: number, failure: Error | undefined): void {
    this.ctx.logger.warn(
      { ...this.event, durationMs, err: failure },
      'the job was given back to beanstalkd when the worker stopped; it will run again',
    );
  }

  /**
   * Before settling: did the run outlast the job's TTR? Then beanstalkd may have handed it to another
   * worker, and the job may run (or have run) twice. A run that took longer than the smallest TTR
   * before its TTR was ever read (a blocked event loop skips the probe) reads it first: only then is a
   * promise returned, so a short job's path awaits nothing.
   */
  checkOverrun(durationMs: number): Promise<void> | undefined {
    const { reservation } = this;
    if (reservation.overrunReported) return undefined;
    const now = performance.now();
    if (reservation.ttrMs === undefined) {
      if (now - reservation.reservedAt <= 1_000) return undefined;
      return this.stats.get().then(
        (counters) => {
          if (counters) reservation.ttrMs = counters.ttrSeconds * 1000;
          this.#overrunSince(durationMs, now);
        },
        () => undefined,
      );
    }
    this.#overrunSince(durationMs, now);
    return undefined;
  }

  #overrunSince(durationMs: number, now: number): void {
    const { reservation } = this;
    const ttrMs = reservation.ttrMs;
    if (ttrMs === undefined) return;
    const sinceReset = now - reservation.lastResetAt;
    if (sinceReset > ttrMs) {
      this.reportOverrun(
        'run',
        `the task ran ${Math.round(durationMs)} ms, ${Math.round(sinceReset)} ms since its TTR (${ttrMs / 1000} s) was last reset`,
      );
    }
  }

  /** Reports an overrun once: a log line and a `job:overrun` event; later jobs are checked for crashes. */
  reportOverrun(command: string, detail: string): void {
    const { reservation, ctx } = this;
    if (reservation.overrunReported) return;
    reservation.overrunReported = true;
    this.log.warn(
      { command, detail, ttrSeconds: reservation.ttrMs === undefined ? undefined : reservation.ttrMs / 1000 },
      `TTR overrun: ${detail}; beanstalkd may have handed the job to another worker, so it may run twice`,
    );
    ctx.emit('job:overrun', { ...this.event, command, detail });
    ctx.onOverrun();
  }

  /** Sends the settling command; true when it was carried out. Failures are logged here. */
  async #settle(command: string, run: () => Promise<void>): Promise<boolean> {
    const { result, error } = await this.reservation.settle(run);
    return result === 'done' || this.#notSettled(command, result, error);
  }

  /** Reports a settling command that was not carried out; always false. */
  #notSettled(command: string, result: SettleResult, error: unknown): false {
    switch (result) {
      case 'not-found':
        this.reportOverrun(command, `${command} found no job ${this.reservation.id}: beanstalkd had already handed it out again`);
        break;
      case 'connection-lost':
        // Written but unanswered: the server may have carried it out before the connection went.
        this.log.error(
          { err: error, command },
          `${command} got no answer before the connection was lost: the job is either ${DONE[command] ?? command} or back to ready`,
        );
        break;
      case 'failed':
        this.log.error({ err: error, command }, `${command} failed; the job goes back to ready with the dropped connection`);
        break;
      default:
        break;
    }
    return false;
  }
}
