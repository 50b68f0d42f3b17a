/**
 * Auto-kick (the original design's `kick_period`): every period, kick the buried jobs of each watched
 * tube, so failures are retried automatically until the kick bound dead-letters or deletes them.
 *
 * How often a tube is kicked must not depend on how many workers watch it, or `maxKicks` would be
 * spent N times faster with N workers. So each tube has one **kick lock**: a small job in its own tube
 * (`bsworker.kick.<tube>`), which every auto-kicker waits for with a blocking reserve. beanstalkd hands
 * it to exactly one of them; that one kicks the tube and releases the lock with a delay of one period,
 * so the next round, by whichever worker, comes a period later. A kicker that dies holding the lock
 * gives it back with its connection. No state lives outside beanstalkd.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { NotFoundError } from '../beanstalk/errors.js';
import { type BuriedJobFilter, kickBuried } from '../beanstalk/kick-buried.js';
import type { LazyConnection } from '../beanstalk/lazy-connection.js';
import type { Beanstalk, JobStats, ReservedJob } from '../beanstalk/types.js';
import { readFailureHistory, withCarried } from '../failures/record.js';
import type { Logger } from '../logging/logger.js';
import { reconnectDelayMs } from './backoff.js';
import type { DeadLetterResult } from './process-job.js';

/** Options of {@link startAutoKick}. */
export interface AutoKickOptions {
  /** The kicker's own connection: its blocking reserve waits for kick locks and nothing else. */
  readonly control: LazyConnection;
  readonly tubes: readonly string[];
  readonly periodSeconds: number;
  readonly logger: Logger;
  readonly maxKicks: number;
  /**
   * Moves a buried job already at the kick bound to the dead-letter tube (its worker's dead-letter put
   * failed): kicking it would only run it again. Undefined without a dead-letter tube.
   */
  readonly deadLetter: ((body: Buffer, job: JobStats) => Promise<DeadLetterResult>) | undefined;
}

/** The prefix of kick-lock tubes. */
export const KICK_LOCK_PREFIX = 'bsworker.kick.';
/** How long the kicker waits for a lock per reserve; between waits it checks that every lock exists. */
const LOCK_WAIT_SECONDS = 1;
/** A lock held longer than this goes back to ready (a kicker whose round hung). */
const LOCK_TTR_SECONDS = 120;
/** The most buried jobs one round kicks in one tube; the rest wait a period. */
const MAX_KICKS_PER_ROUND = 1_000;

/** The kick-lock tube of `tube` (hashed when the name would pass beanstalkd's 200-byte limit). */
export function kickLockTube(tube: string): string {
  const name = `${KICK_LOCK_PREFIX}${tube}`;
  return name.length <= 200 ? name : `${KICK_LOCK_PREFIX}sha1.${createHash('sha1').update(tube).digest('hex')}`;
}

/** Starts kicking; the returned function stops it (closing the connection ends a waiting reserve). */
export function startAutoKick(options: AutoKickOptions): () => Promise<void> {
  const stop = new AbortController();
  const running = kickLoop(options, stop.signal);
  return async () => {
    stop.abort();
    await options.control.close().catch(() => undefined);
    await running;
  };
}

async function kickLoop(options: AutoKickOptions, signal: AbortSignal): Promise<void> {
  const { control, logger } = options;
  const locks = new Map(options.tubes.map((tube) => [kickLockTube(tube), tube]));
  const prepared = new WeakSet<Beanstalk>();
  for (let failures = 0; !signal.aborted; ) {
    try {
      const connection = await control.get();
      if (!prepared.has(connection)) {
        await Promise.all([...locks.keys()].map((lock) => connection.watch(lock)));
        await connection.ignore('default');
        prepared.add(connection);
        await ensureLocks(connection, locks);
      }
      // Bounded like every command of the worker: the connection's stall watchdog drops a silent server.
      const lock = await connection.reserve(LOCK_WAIT_SECONDS);
      failures = 0;
      if (lock) await holdLock(connection, lock, locks, options);
      else await ensureLocks(connection, locks);
    } catch (error) {
      if (signal.aborted) break;
      failures += 1;
      const delayMs = reconnectDelayMs(failures, 500, 10_000);
      logger.warn({ reason: (error as Error).message, delayMs }, 'auto-kick failed; trying again');
      await sleep(delayMs, undefined, { signal }).catch(() => undefined);
    }
  }
}

/** Puts a lock into every lock tube that has none (ready, delayed or reserved). */
async function ensureLocks(connection: Beanstalk, locks: ReadonlyMap<string, string>): Promise<void> {
  const stats = await Promise.all([...locks.keys()].map((lock) => connection.statsTube(lock)));
  const missing = [...locks].filter((_, i) => {
    const s = stats[i];
    return !s || s.ready + s.delayed + s.reserved === 0;
  });
  for (const [lock, tube] of missing) {
    await connection.putInTube(lock, Buffer.from(tube, 'utf8'), { priority: 0, delaySeconds: 0, ttrSeconds: LOCK_TTR_SECONDS });
  }
}

/** Holding a lock: drop it if it is a duplicate, else kick its tube and release it for one period. */
async function holdLock(
  connection: Beanstalk,
  lock: ReservedJob,
  locks: ReadonlyMap<string, string>,
  options: AutoKickOptions,
): Promise<void> {
  const stats = await connection.statsJob(lock.id);
  const tube = stats ? locks.get(stats.tube) : undefined;
  if (!stats || tube === undefined) {
    await connection.delete(lock.id).catch(() => undefined);
    return;
  }
  if (!(await isOnlyLock(connection, stats.tube, lock.id))) {
    await connection.delete(lock.id).catch(() => undefined);
    return;
  }
  try {
    await kickTube(connection, tube, options);
  } finally {
    await connection.release(lock.id, 0, options.periodSeconds);
  }
}

/**
 * Two kickers that start at once may both put a lock. The lock with the lowest id wins: a holder that
 * sees a waiting lock with a lower id drops its own, and deletes waiting ones with higher ids.
 */
async function isOnlyLock(connection: Beanstalk, lockTube: string, id: string): Promise<boolean> {
  const stats = await connection.statsTube(lockTube);
  if (!stats || stats.ready + stats.delayed === 0) return true;
  await connection.use(lockTube);
  for (const other of [await connection.peekReady(), await connection.peekDelayed()]) {
    if (!other || other.id === id) continue;
    if (Number(other.id) < Number(id)) return false;
    await connection.delete(other.id).catch((error: unknown) => {
      if (!(error instanceof NotFoundError)) throw error;
    });
  }
  return true;
}

async function kickTube(connection: Beanstalk, tube: string, options: AutoKickOptions): Promise<void> {
  const { deadLetter, maxKicks, logger } = options;
  let moved = 0;
  let parked = 0;
  const filter: BuriedJobFilter = async (job) => {
    const history = readFailureHistory(job.body);
    // A job whose last failure was UnrecoverableError must not run again without an operator: it is
    // moved to the tail of the buried list (reserved by id and buried again), out of the round's way.
    if (history?.failures.at(-1)?.unrecoverable === true) {
      const own = await connection.statsJob(job.id);
      if (own?.state === 'buried' && (await connection.reserveJob(job.id))) await connection.bury(job.id, own.priority);
      parked += 1;
      return 'handled';
    }
    if (!deadLetter) return 'kick';
    // A job buried at the kick bound is one whose dead-letter put failed: finish moving it.
    const own = await connection.statsJob(job.id);
    if (own?.state !== 'buried') return 'kick';
    // A copy with a failure record carries the kicks of the jobs it replaced.
    const stats = withCarried(own, history?.carried);
    if (stats.kicks < maxKicks) return 'kick';
    try {
      await deadLetter(job.body, stats);
    } catch (error) {
      // Kicking it would only run it again: leave it (and the tube's round) for the next period.
      logger.warn(
        { tube, jobId: job.id, reason: (error as Error).message },
        'auto-kick: could not move a job at the kick bound to the dead-letter tube; trying again next period',
      );
      return 'stop';
    }
    await connection.delete(job.id).catch((error: unknown) => {
      if (!(error instanceof NotFoundError)) throw error;
    });
    moved += 1;
    return 'handled';
  };
  const result = await kickBuried(connection, tube, MAX_KICKS_PER_ROUND, filter);
  if (result && result.kicked > 0) logger.info({ tube, kicked: result.kicked }, `auto-kick: kicked ${result.kicked} buried job(s)`);
  if (moved > 0) logger.info({ tube, moved }, `auto-kick: moved ${moved} job(s) at the kick bound to the dead-letter tube`);
  if (parked > 0) logger.debug({ tube, parked }, `auto-kick: left ${parked} job(s) that failed with UnrecoverableError buried`);
}
