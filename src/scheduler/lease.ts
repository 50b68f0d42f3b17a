/**
 * The lease: one job in the lock tube, reserved by the active scheduler. beanstalkd itself enforces
 * the rest: a reserved job belongs to one connection, it comes back to ready at once when that
 * connection drops (a SIGKILL) and after its TTR when it is not touched (a SIGSTOP, a hung host).
 */
import type { Beanstalk } from '../beanstalk/types.js';
import { ACTIVE_TUBE, LOCK_TUBE, parseActiveInfo } from './markers.js';

/** The body of the lease job: only its presence matters; the text says what it is to an operator. */
const LEASE_BODY = '{"lease":"bsworker scheduler"}';

/** What {@link takeLease} needs from its caller. */
export interface LeaseOptions {
  readonly ttrSeconds: number;
  /** How long one wait for the lease may block the connection, in seconds: a stop takes effect after it. */
  readonly waitSeconds: number;
  /** True once the scheduler is stopping. */
  readonly stopped: () => boolean;
  /** Waits `ms` (cut short by a stop). */
  readonly sleep: (ms: number) => Promise<void>;
  readonly random?: () => number;
}

/**
 * Waits on `connection` until it holds the only lease, and resolves to its id; undefined when stopped
 * first. The connection must watch only the lock tube.
 *
 * A scheduler that finds the lock tube empty puts a lease, so two that start together may both put
 * one. After reserving, the holder looks at the tube: extra leases still ready (or delayed, buried)
 * are deleted, and when another scheduler has one reserved too, this one deletes its own and tries
 * again after a random pause, so that of two racing schedulers at most one goes on (both may back off,
 * then one wins the next round).
 */
export async function takeLease(connection: Beanstalk, options: LeaseOptions): Promise<string | undefined> {
  const random = options.random ?? Math.random;
  let stale: string | undefined;
  while (!options.stopped()) {
    const stats = await connection.statsTube(LOCK_TUBE);
    // A stale lease is not one to wait for: it may never come back (see staleLease).
    if ((stats?.total ?? 0) - (stale === undefined ? 0 : 1) <= 0) {
      await connection.putInTube(LOCK_TUBE, Buffer.from(LEASE_BODY), { priority: 0, delaySeconds: 0, ttrSeconds: options.ttrSeconds });
    }
    const job = await connection.reserve(options.waitSeconds);
    if (job === null) {
      stale = await staleLease(connection);
      continue;
    }
    const after = await connection.statsTube(LOCK_TUBE);
    const holders = (after?.reserved ?? 1) - (stale !== undefined && stale !== job.id ? 1 : 0);
    if (holders > 1) {
      await connection.delete(job.id);
      await options.sleep(100 + Math.floor(random() * 900));
      continue;
    }
    if (after !== null && after.total > 1) await deleteExtraLeases(connection);
    return job.id;
  }
  return undefined;
}

/**
 * The lease of the scheduler named active, when it is still reserved more than a second past its TTR.
 * beanstalkd 1.12 sometimes never times out a job reserved by a connection that has gone silent (a
 * SIGSTOPped process: seen here in about one run in five), so waiting for that lease to come back could
 * wait for ever. Its holder fences itself (it steps down once a TTR passed without a touch), so this
 * one may take over with a new lease.
 */
async function staleLease(connection: Beanstalk): Promise<string | undefined> {
  await connection.use(ACTIVE_TUBE);
  const job = await connection.peekReady();
  const info = job === null ? undefined : parseActiveInfo(job.body);
  if (info === undefined) return undefined;
  const stats = await connection.statsJob(info.lease);
  return stats !== null && stats.tube === LOCK_TUBE && stats.state === 'reserved' && stats.timeLeftSeconds <= -1 ? info.lease : undefined;
}

/** Deletes the lock tube's leases that nobody holds (ready, delayed or buried): any client may. */
async function deleteExtraLeases(connection: Beanstalk): Promise<void> {
  await connection.use(LOCK_TUBE);
  // Bounded: a tube refilled faster than this empties it is someone else's bug, not a reason to spin.
  for (let round = 0; round < 16; round += 1) {
    const extra = (await connection.peekReady()) ?? (await connection.peekDelayed()) ?? (await connection.peekBuried());
    if (extra === null) return;
    try {
      await connection.delete(extra.id);
    } catch (error) {
      // Reserved by another scheduler between the peek and the delete: its own check sees two holders.
      if ((error as { code?: unknown }).code !== 'NOT_FOUND') throw error;
    }
  }
}
