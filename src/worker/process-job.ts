/**
 * What happens to one reserved job. Every path ends the reservation in exactly one way: delete, bury,
 * or (when a stop cannot wait) release by closing the connection. Nothing here throws: a bad job, a
 * failing task or a lost connection is logged, never allowed to stop the worker.
 */
import { performance } from 'node:perf_hooks';
import { ConnectionError, NotFoundError } from '../beanstalk/errors.js';
import type { Beanstalk, JobStats, ReservedJob } from '../beanstalk/types.js';
import { decodeEnvelope } from '../envelope/envelope.js';
import { type Logger, toError } from '../logging/logger.js';
import { findTask } from '../tasks/registry.js';
import type { BuryReason, JobEvent, WorkerEvents } from './events.js';

/** What {@link processJob} needs from its worker. */
export interface JobContext {
  readonly connection: Beanstalk;
  readonly logger: Logger;
  readonly maxKicks: number;
  readonly watchedTubes: ReadonlySet<string>;
  emit<K extends keyof WorkerEvents & string>(event: K, ...args: WorkerEvents[K]): void;
}

/** A job being processed. The worker sets `released` when a forced stop gives the job back. */
export interface InFlightJob {
  readonly id: string;
  released: boolean;
  /** Tube and task, once the body has been decoded. */
  event?: JobEvent;
}

/** Runs one reserved job to its end. Resolves when the job is deleted, buried or given back. */
export async function processJob(ctx: JobContext, job: ReservedJob, inFlight: InFlightJob): Promise<void> {
  const decoded = decodeEnvelope(job.body);
  if (!decoded.ok) {
    const stats = await statsOrNull(ctx, job.id);
    const log = ctx.logger.child({ tube: stats?.tube, jobId: job.id });
    await bury(ctx, log, inFlight, stats, { jobId: job.id, tube: stats?.tube, task: undefined }, 'undecodable', decoded.message, job.body);
    return;
  }

  const { envelope } = decoded;
  // reserve does not say which tube a job came from. Watching one tube, we know; otherwise the body's
  // `tube` is trusted when it names a watched tube (no round trip on the success path), and stats-job
  // is asked only when it does not. See "Which tube a job came from" in the README.
  let stats: JobStats | null | undefined;
  let tube = ctx.watchedTubes.size === 1 ? ctx.watchedTubes.values().next().value : undefined;
  if (tube === undefined && envelope.tube !== undefined && ctx.watchedTubes.has(envelope.tube)) tube = envelope.tube;
  if (tube === undefined) {
    stats = await statsOrNull(ctx, job.id);
    tube = stats?.tube;
  }
  const event: JobEvent = { jobId: job.id, tube, task: envelope.func_name };
  inFlight.event = event;
  const log = ctx.logger.child({ tube, jobId: job.id, task: envelope.func_name });

  const task = tube === undefined ? undefined : findTask(tube, envelope.func_name);
  if (!task) {
    const detail = `no task named ${JSON.stringify(envelope.func_name)} is registered in tube ${JSON.stringify(tube)}`;
    stats ??= await statsOrNull(ctx, job.id);
    await bury(ctx, log, inFlight, stats, event, 'unregistered', detail, job.body);
    return;
  }

  ctx.emit('job:reserved', event);
  log.debug('job started');
  const started = performance.now();
  let failure: Error | undefined;
  try {
    await task.run(envelope.kwargs);
  } catch (thrown) {
    failure = toError(thrown);
  }
  const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
  if (inFlight.released) {
    log.warn({ durationMs, err: failure }, 'job finished after the worker gave it back; beanstalkd will run it again');
    return;
  }

  if (!failure) {
    ctx.emit('job:completed', { ...event, durationMs });
    if (await settle(ctx, log, event, 'delete', () => ctx.connection.delete(job.id))) {
      log.info({ durationMs }, 'job completed');
      ctx.emit('job:deleted', { ...event, reason: 'completed' });
    }
    return;
  }

  // The kick count decides between bury (an operator or auto-kick may retry it) and delete (done trying).
  // Read only on failure, so the success path costs one round trip: the delete.
  const failedStats = await statsOrNull(ctx, job.id);
  const kicks = failedStats?.kicks ?? 0;
  ctx.emit('job:failed', { ...event, error: failure, kicks });
  if (!failedStats) {
    log.warn({ err: failure, durationMs }, 'job failed, and is no longer reserved by this worker (TTR ran out?)');
    return;
  }
  if (kicks < ctx.maxKicks) {
    await bury(ctx, log, inFlight, failedStats, event, 'failed', failure.message, undefined, {
      err: failure,
      durationMs,
      maxKicks: ctx.maxKicks,
    });
    return;
  }
  if (await settle(ctx, log, event, 'delete', () => ctx.connection.delete(job.id))) {
    log.error(
      { err: failure, durationMs, kicks, maxKicks: ctx.maxKicks, body: job.body.toString('utf8') },
      `job failed after ${kicks} kick(s); deleted, its body is in this line`,
    );
    ctx.emit('job:deleted', { ...event, reason: 'max-kicks' });
  }
}

async function bury(
  ctx: JobContext,
  log: Logger,
  inFlight: InFlightJob,
  stats: JobStats | null | undefined,
  event: JobEvent,
  reason: BuryReason,
  detail: string,
  body?: Buffer,
  fields?: Record<string, unknown>,
): Promise<void> {
  if (inFlight.released) return;
  // Keep the job's own priority; a job we cannot see any more is not ours to bury.
  if (!stats) {
    log.warn({ reason, detail }, 'job could not be buried: it is no longer reserved by this worker');
    return;
  }
  if (await settle(ctx, log, event, 'bury', () => ctx.connection.bury(event.jobId, stats.priority))) {
    // One line per outcome: a failure's error and its bury are reported together.
    if (reason === 'failed') log.warn({ ...fields, reason, kicks: stats.kicks }, 'job failed; buried');
    else log.error({ reason, detail, body: body?.toString('utf8') }, `job buried: ${detail}`);
    ctx.emit('job:buried', { ...event, reason, detail });
  }
}

/**
 * Runs the command that ends a reservation. NOT_FOUND means the TTR ran out and beanstalkd gave the job
 * to someone else: logged as an overrun, not thrown. A lost connection gives the job back on the server.
 */
async function settle(ctx: JobContext, log: Logger, event: JobEvent, command: string, run: () => Promise<void>): Promise<boolean> {
  try {
    await run();
    return true;
  } catch (error) {
    if (error instanceof NotFoundError) {
      log.warn({ command }, `TTR overrun: ${command} found no job ${event.jobId}; beanstalkd had already handed it out again`);
      ctx.emit('job:overrun', { ...event, command });
    } else if (error instanceof ConnectionError) {
      log.error({ err: error, command }, `${command} failed: connection lost; beanstalkd puts the job back to ready`);
    } else {
      log.error({ err: error, command }, `${command} failed`);
    }
    return false;
  }
}

async function statsOrNull(ctx: JobContext, id: string): Promise<JobStats | null> {
  try {
    return await ctx.connection.statsJob(id);
  } catch (error) {
    ctx.logger.warn({ err: error, jobId: id }, 'stats-job failed');
    return null;
  }
}
