/**
 * What happens to one reserved job, from its body to its outcome: decode it, find its task, check it
 * for earlier crashes, run it, then settle it through its {@link Reservation} as the policy decides.
 * Nothing here throws: a bad job, a failing task or a lost connection is logged and never stops the
 * worker, and every path ends the reservation (deleted, released, buried, or given back to the server).
 */
import { performance } from 'node:perf_hooks';
import { formatAddress, type ServerAddress } from '../beanstalk/address.js';
import type { Beanstalk, JobStats } from '../beanstalk/types.js';
import { decodeEnvelope } from '../envelope/envelope.js';
import { type CarriedCounters, carriedOf, withCarried } from '../failures/record.js';
import { FlowMetaError, readFlow } from '../flows/meta.js';
import type { Logger } from '../logging/logger.js';
import { isUnrecoverable, KwargsValidationError } from '../tasks/errors.js';
import { findTask, type RegisteredTask } from '../tasks/registry.js';
import { checkJobKwargs } from './check-kwargs.js';
import type { DeadLetterInfo } from './dead-letter.js';
import type { BuryReason, WorkerEvents } from './events.js';
import { FlowRun, waitForBarrier } from './flow-run.js';
import { Outcomes } from './outcomes.js';
import { decideFailure } from './policy.js';
import { throttle } from './rate-limit.js';
import { type FailureRecorder, isUnfinishedCopy } from './record-bury.js';
import type { Reservation } from './reservation.js';
import { failureOf, runTask } from './run-task.js';
import type { TaskThreadPool } from './threads/pool.js';

export { TaskTimeoutError } from './run-task.js';

/**
 * How a dead-letter put ended: `put` with the failure record, `put-bare` as the original body alone
 * when not even a minimal record fits the server's limit.
 */
export type DeadLetterResult = 'put' | 'put-bare';

/** What {@link processJob} needs from its worker. */
export interface JobContext {
  readonly logger: Logger;
  readonly maxKicks: number;
  /** See WorkerOptions.maxCrashes. */
  readonly maxCrashes: number;
  /** The watched tubes. */
  readonly tubes: readonly string[];
  /** Auto-kick is on: buried jobs will be kicked again without anyone asking. */
  readonly autoKick: boolean;
  /** The worker's logger with `{ tube, task }` bound, made once per pair (the per-job success line). */
  taskLogger(tube: string | undefined, task: string | undefined): Logger;
  /** kwargs keys whose values never reach a log. */
  readonly redact: readonly string[];
  /** Buries jobs with their failure records (or says why it cannot). */
  readonly recorder: FailureRecorder;
  /** Moves a job to the dead-letter tube; undefined when there is none. Rejects when the put failed. */
  readonly deadLetter: ((body: Buffer, info: DeadLetterInfo) => Promise<DeadLetterResult>) | undefined;
  /**
   * True when this job should be checked for earlier crashes before it runs. The check costs a
   * `stats-job` round trip, so the worker asks for it only where a crashed job can be: see Worker.
   */
  takeCrashCheck(): boolean;
  /** Opens a connection of its own to a server (a group's callback collecting its members' results). */
  openConnection(address: ServerAddress): Promise<Beanstalk>;
  /** The task threads, when tasks run off the worker's thread (WorkerOptions.threads). */
  threads(): TaskThreadPool | undefined;
  /** Called when a job overran its TTR: jobs handed back by the server are checked again. */
  onOverrun(): void;
  /** True when `event` has listeners: event objects are built only then. */
  listens(event: keyof WorkerEvents): boolean;
  emit<K extends keyof WorkerEvents & string>(event: K, ...args: WorkerEvents[K]): void;
}

/**
 * The job's `stats-job`, read at most once and only when needed: never on the success path of a short
 * job from a known tube. Failures, bad bodies, crash checks, long tasks and overruns read it.
 */
export class JobStatsCache {
  #own: Promise<JobStats | null> | undefined;
  #stats: Promise<JobStats | null> | undefined;

  /** @param carried - The counters a copy carries from the jobs it replaced (see ./record-bury.ts). */
  constructor(
    private readonly reservation: Reservation,
    private readonly carried: CarriedCounters | undefined = undefined,
  ) {}

  /** The job's own `stats-job`, without carried counters. */
  own(): Promise<JobStats | null> {
    this.#own ??= this.reservation.connection.statsJob(this.reservation.id);
    return this.#own;
  }

  /**
   * The job's stats over its whole life (its own plus what it carries); null when the job is gone;
   * rejects when the connection fails or stops answering (see the slot's stall watchdog).
   */
  get(): Promise<JobStats | null> {
    const { carried } = this;
    this.#stats ??= carried === undefined ? this.own() : this.own().then((own) => own && withCarried(own, carried));
    return this.#stats;
  }

  /**
   * The stats, or undefined after handling their absence: a vanished job is logged, and a failed read
   * gives the job back by dropping the connection (without its counters the job cannot be judged; a
   * failed read means the connection is lost or stalled anyway). The engine then reconnects.
   */
  async require(log: Logger): Promise<JobStats | undefined> {
    try {
      const stats = await this.get();
      if (stats) return stats;
      log.warn({ jobId: this.reservation.jobId }, 'the job vanished before it could be settled (deleted by someone else?)');
    } catch (error) {
      log.error({ err: error, jobId: this.reservation.jobId }, 'stats-job failed; giving the job back by dropping the connection');
      await this.reservation.drop();
    }
    return undefined;
  }
}

/**
 * Runs one reserved job to its end on the connection that reserved it (delete, release, bury and touch
 * work only there). Resolves when the job is settled or given back; never rejects.
 */
export function processJob(ctx: JobContext, reservation: Reservation): Promise<void> {
  // `.catch` rather than an async wrapper: one promise less on every job's path.
  return handle(ctx, reservation).catch(async (error: unknown) => {
    // A bug here must not leave the job without an outcome: it is given back by dropping the connection,
    // and the crash check (which counts reservations without an outcome) parks it if it keeps happening.
    ctx.logger.error(
      { err: failureOf(error), jobId: reservation.jobId },
      'processing a job failed unexpectedly; giving it back by dropping the connection',
    );
    ctx.emit('worker:error', failureOf(error), { server: formatAddress(reservation.connection.address) });
    await reservation.drop();
  });
}

async function handle(ctx: JobContext, reservation: Reservation): Promise<void> {
  const decoded = decodeEnvelope(reservation.body);
  const meta = decoded.ok ? decoded.envelope.meta : undefined;
  const carried = meta === undefined ? undefined : carriedOf(meta.carried);
  const stats = new JobStatsCache(reservation, carried);
  // The tube is the one the engine reserved the job from: the server's fact. A body naming another tube
  // changes nothing, so only a task registered in the job's own tube can run.
  const tube = reservation.tube;
  let known: JobStats | undefined;
  if (!decoded.ok || carried !== undefined || ctx.takeCrashCheck()) {
    known = await stats.require(ctx.logger);
    if (!known) return;
    reservation.ttrMs = known.ttrSeconds * 1000;
  }
  if (carried !== undefined && isUnfinishedCopy((await stats.own()) as JobStats)) {
    return leftoverCopy(ctx, reservation, tube, carried);
  }
  const task = decoded.ok ? findTask(tube, decoded.envelope.func_name) : undefined;
  reservation.event = { jobId: reservation.jobId, tube, task: decoded.ok ? decoded.envelope.func_name : undefined };
  const out = new Outcomes(ctx, reservation, stats);

  if (!decoded.ok) return cannotRun(out, stats, 'undecodable', decoded.message);
  if (!task) {
    const detail = `no task named ${JSON.stringify(decoded.envelope.func_name)} is registered in tube ${JSON.stringify(tube)}`;
    return cannotRun(out, stats, 'unregistered', detail);
  }
  // Chains, groups and results ride in meta; a job without meta pays nothing for them.
  const flowRead = meta === undefined ? undefined : readFlow(meta);
  if (flowRead instanceof FlowMetaError) return cannotRun(out, stats, 'invalid', flowRead.message, flowRead);
  const flow = flowRead === undefined ? undefined : new FlowRun(flowRead, reservation, out, ctx);
  const taskRedact = task.options.redact;
  if (taskRedact !== undefined && taskRedact.length > 0) out.redact = [...ctx.redact, ...taskRedact];

  // Reservations that ended with no delete, release or bury: the worker holding the job died, a stop
  // gave it back, or it overran its TTR (a blocked event loop, a wedged worker). Past the limit the job
  // is taken for the cause and parked.
  if (known && ctx.maxCrashes > 0) {
    const abandoned = known.reserves - 1 - known.releases - known.buries;
    if (abandoned >= ctx.maxCrashes * (known.kicks + 1)) {
      const detail = `reserved ${known.reserves} times, ${abandoned} of them ended without a result (the worker died, was stopped, or overran the TTR); kick it to try again`;
      return cannotRun(out, stats, 'crashed', detail, undefined, flow);
    }
  }

  let kwargs = decoded.envelope.kwargs;
  // A group's callback runs only once every member has succeeded, with their results if it takes them.
  const chord = flow?.flow.chord;
  if (flow !== undefined && chord !== undefined) {
    if (await waitForBarrier(chord, out, stats)) return;
    if (chord.results !== undefined) {
      const values = await flow.collectResults(chord.results);
      if (values instanceof Error) return failed(ctx, out, stats, task, values, 0, flow);
      kwargs = { ...kwargs, [chord.results.pipe]: values };
      try {
        return await runChecked(ctx, reservation, out, stats, task, kwargs, known, meta, flow);
      } finally {
        // Results not consumed by a success go back to ready for the next run of the callback.
        await flow.close();
      }
    }
  }
  return runChecked(ctx, reservation, out, stats, task, kwargs, known, meta, flow);
}

/** The rest of {@link handle} once the job is known to be runnable: its schema, its rate limit, the run, the outcome. */
async function runChecked(
  ctx: JobContext,
  reservation: Reservation,
  out: Outcomes,
  stats: JobStatsCache,
  task: RegisteredTask,
  given: Record<string, unknown>,
  knownBefore: JobStats | undefined,
  meta: Record<string, unknown> | undefined,
  flow: FlowRun | undefined,
): Promise<void> {
  let kwargs = given;
  let known = knownBefore;
  if (task.options.schema !== undefined) {
    const checked = await checkJobKwargs(task, kwargs, ctx.threads() !== undefined);
    // The error carries the issues (`error.issues`) into the failure record; its message is the detail.
    if (checked instanceof KwargsValidationError) return cannotRun(out, stats, 'invalid', checked.message, checked, flow);
    kwargs = checked;
  }

  // Over its rate limit, the job is held (never released) until its turn: see ./rate-limit.ts.
  const limit = task.options.rateLimit;
  if (limit !== undefined) {
    const waiting = throttle({ ctx, reservation, task, limit, stats, log: out.log });
    if (waiting !== undefined) {
      known = await waiting;
      if (known === undefined) return;
    }
  }
  if (ctx.listens('job:reserved')) ctx.emit('job:reserved', reservation.event);
  const started = performance.now();
  let failure =
    flow === undefined && meta === undefined
      ? await runTask({ task, kwargs, reservation, out, stats, known, threads: ctx.threads() })
      : await runTask({ task, kwargs, reservation, out, stats, known, threads: ctx.threads(), meta, ...flow?.runInput() });
  const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
  if (reservation.wasGivenBack) return out.givenBack(durationMs, failure);
  // Synchronous unless the run was long enough to need the TTR read: the success path awaits nothing here.
  const checking = out.checkOverrun(durationMs);
  if (checking) await checking;
  // The flow's next steps come before the delete: a crash between them repeats a step, never loses one.
  if (!failure && flow !== undefined) failure = await flow.advance();
  if (!failure) return out.complete(durationMs);
  return failed(ctx, out, stats, task, failure, durationMs, flow);
}

/**
 * A failure-record copy whose worker died before burying it (see ./record-bury.ts): the job it names
 * went back to ready and is the live one, so the copy is deleted unrun.
 */
async function leftoverCopy(ctx: JobContext, reservation: Reservation, tube: string, carried: CarriedCounters): Promise<void> {
  const { result, error } = await reservation.settle(() => reservation.connection.delete(reservation.id));
  const fields = { tube, jobId: reservation.jobId, copyOf: carried.from };
  if (result === 'done') {
    ctx.logger.warn(
      fields,
      `deleted an unfinished failure-record copy of job ${carried.from} (its worker stopped before burying it; job ${carried.from} is the live one)`,
    );
    if (ctx.listens('job:deleted')) ctx.emit('job:deleted', { jobId: reservation.jobId, tube, task: undefined, reason: 'duplicate' });
  } else {
    ctx.logger.warn({ ...fields, err: error, result }, 'could not delete an unfinished failure-record copy; it goes back to ready');
  }
}

/** A job that cannot run (undecodable, unregistered, crashed, invalid) is buried like a failure, and bounded like one. */
async function cannotRun(
  out: Outcomes,
  stats: JobStatsCache,
  reason: BuryReason,
  detail: string,
  error: Error = new Error(detail),
  flow?: FlowRun,
): Promise<void> {
  const counters = await stats.require(out.ctx.logger);
  if (!counters) return;
  const decision = decideFailure({
    reason,
    unrecoverable: false,
    releases: counters.releases,
    kicks: counters.kicks,
    retries: 0,
    backoff: undefined,
    maxKicks: out.ctx.maxKicks,
    deadLetter: out.ctx.deadLetter !== undefined,
    autoKick: out.ctx.autoKick,
    parkable: false,
  });
  // retries is 0, so the policy never answers `release` here.
  if (decision.action === 'dead-letter' || decision.action === 'discard') await out.giveUp(counters, decision.action, error, 0);
  else await out.bury(counters, reason, detail, { error, durationMs: 0 });
  await flow?.failed(error, reason);
}

async function failed(
  ctx: JobContext,
  out: Outcomes,
  stats: JobStatsCache,
  task: RegisteredTask,
  failure: Error,
  durationMs: number,
  flow: FlowRun | undefined,
): Promise<void> {
  // The failure path reads the counters: the attempt, the kicks and the priority to keep.
  const counters = await stats.require(ctx.logger);
  if (!counters) return;
  const attempt = counters.releases + 1;
  const { jobId, tube, task: name } = out.event;
  ctx.emit('job:failed', { jobId, tube, task: name, error: failure, kicks: counters.kicks, attempt, durationMs });
  let unrecoverable = false;
  try {
    unrecoverable = isUnrecoverable(failure);
  } catch {
    // A value whose properties cannot be read is no UnrecoverableError.
  }
  const decision = decideFailure({
    reason: 'failed',
    unrecoverable,
    releases: counters.releases,
    kicks: counters.kicks,
    retries: task.options.retries ?? 0,
    backoff: task.options.backoff,
    maxKicks: ctx.maxKicks,
    deadLetter: ctx.deadLetter !== undefined,
    autoKick: ctx.autoKick,
    parkable: unrecoverable && ctx.recorder.supports(out.connection),
  });
  switch (decision.action) {
    case 'release':
      return out.release(counters, failure, durationMs, decision.attempt, task.options.retries ?? 0, decision.delaySeconds);
    case 'bury':
      await out.bury(counters, 'failed', failure.message, { error: failure, durationMs, attempt, unrecoverable });
      break;
    default:
      await out.giveUp(counters, decision.action, failure, durationMs, unrecoverable);
  }
  // No more attempts without someone kicking it: a caller waiting for the result learns of the failure.
  await flow?.failed(failure, 'failed');
}
