/**
 * Burying a job with its failure record. beanstalkd cannot change a body, so the record travels in a
 * copy, made so that no worker ever sees the copy ready and a worker that dies at any step leaves at
 * worst a duplicate, never a lost job:
 *
 * 1. `put` the copy (the body with the record added, see ../failures/record.ts) into the job's tube,
 *    **delayed**, with the job's priority and TTR;
 * 2. `reserve-job <copy>` (beanstalkd 1.12+) on the same connection;
 * 3. `bury <copy>`;
 * 4. `delete <job>`: only now is the original gone.
 *
 * A death after 1 leaves a delayed copy (for {@link copyDelaySeconds}); after 2 a reserved copy that goes back to ready when the
 * connection drops. Either way the original also went back to ready and is the live job, and the copy
 * is a leftover: its own `stats-job` says `buries: 0` (a finished copy was buried before anyone could
 * see it), so the worker that reserves it deletes it unrun ({@link isUnfinishedCopy}). A death after 3
 * leaves the buried copy and the original back to ready: the job runs again and, if it succeeds, the
 * copy is a stale record that a kick would run a second time. That is the one duplicate left.
 */
import { hostname } from 'node:os';
import { formatAddress } from '../beanstalk/address.js';
import { ConnectionError } from '../beanstalk/errors.js';
import type { Beanstalk, JobStats } from '../beanstalk/types.js';
import { type CarriedCounters, type FailureEntry, type FailureIssue, type FailureReason, withFailure } from '../failures/record.js';
import type { Logger } from '../logging/logger.js';
import type { Reservation } from './reservation.js';

/**
 * How long the copy stays delayed before step 2 reserves it: one second more than the command deadline,
 * so a `put` answered within its deadline is always followed by a `reserve-job` before the copy can
 * turn ready. Should a copy outlive its worker, it surfaces after this and is deleted unrun; should it
 * turn ready first (a server slower than the deadline), whoever reserves it deletes it as unfinished and
 * this worker's `reserve-job` finds nothing, so the original is buried plainly: never a loss.
 */
export function copyDelaySeconds(commandTimeoutMs: number): number {
  return Math.max(2, Math.ceil(commandTimeoutMs / 1000) + 1);
}

/** The oldest beanstalkd with `reserve-job`. */
const MIN_VERSION: readonly [number, number] = [1, 12];

/** How a bury with a record ended. */
export type RecordBuryResult =
  /** The copy with the record is buried and the original deleted. */
  | { readonly result: 'recorded'; readonly copyId: string }
  /** Nothing was changed for good: the caller buries the original plainly (`why` says why). */
  | { readonly result: 'plain'; readonly why: string }
  /** The connection was lost on the way: the original is back to ready (see the steps above). */
  | { readonly result: 'lost'; readonly error: unknown }
  /** The final delete found no job: the TTR ran out meanwhile and the original was handed out again. */
  | { readonly result: 'not-found'; readonly copyId: string };

/** What is known of the failure being recorded. */
export interface FailureFacts {
  readonly reason: FailureReason;
  readonly error: Error;
  readonly durationMs: number | undefined;
  readonly tube: string;
  readonly unrecoverable?: boolean;
}

/**
 * Writes failure records for one worker: knows which servers can take them (1.12+), says once per
 * server when one cannot, and stamps entries with this process.
 */
export class FailureRecorder {
  readonly #host = hostname();
  readonly #warned = new Set<string>();

  constructor(
    /** WorkerOptions.failureRecords: off means a plain bury, as before records existed. */
    readonly enabled: boolean,
    private readonly logger: Logger,
    /** See {@link copyDelaySeconds}. */
    private readonly copyDelay: number = copyDelaySeconds(10_000),
  ) {}

  /** True when `connection`'s server has `reserve-job`; logs once per server when it has not. */
  supports(connection: Beanstalk): boolean {
    if (!this.enabled) return false;
    if (versionAtLeast(connection.serverVersion, MIN_VERSION)) return true;
    const server = formatAddress(connection.address);
    if (!this.#warned.has(server)) {
      this.#warned.add(server);
      this.logger.warn(
        { server, version: connection.serverVersion || 'unknown' },
        `beanstalkd at ${server} is version ${connection.serverVersion || 'unknown'}, older than 1.12 (no reserve-job): failed jobs are buried without their failure record (the reason is in this log)`,
      );
    }
    return false;
  }

  /** The history entry for a failure. */
  entry(reservation: Reservation, counters: JobStats, facts: FailureFacts): FailureEntry {
    const { error } = facts;
    const issues = issuesOf(error);
    return {
      reason: facts.reason,
      name: safeString(error.name) || 'Error',
      message: safeString(error.message),
      ...(typeof error.stack === 'string' ? { stack: error.stack } : {}),
      attempt: counters.releases + 1,
      kicks: counters.kicks,
      worker: { host: this.#host, pid: process.pid },
      server: formatAddress(reservation.connection.address),
      job_id: reservation.jobId,
      tube: facts.tube,
      at: new Date().toISOString(),
      ...(facts.durationMs === undefined ? {} : { duration_ms: facts.durationMs }),
      ...(issues ? { issues } : {}),
      ...(facts.unrecoverable === true ? { unrecoverable: true } : {}),
    };
  }

  /**
   * Steps 1 to 3 (see the file's comment), then `settle` for step 4, which the caller sends through its
   * Reservation so that the job still ends exactly once. `counters` are the job's whole counters (its
   * own plus any it carries from earlier copies).
   */
  async bury(
    reservation: Reservation,
    counters: JobStats,
    facts: FailureFacts,
    settle: (copyId: string) => Promise<'done' | 'not-found' | 'lost'>,
  ): Promise<RecordBuryResult> {
    const { connection } = reservation;
    const carried: CarriedCounters = {
      from: reservation.jobId,
      // The copy's own reserve-job and bury count as this reservation's reserve and bury.
      reserves: Math.max(0, counters.reserves - 1),
      releases: counters.releases,
      buries: counters.buries,
      kicks: counters.kicks,
      timeouts: counters.timeouts,
    };
    const body = withFailure(reservation.body, this.entry(reservation, counters, facts), carried, connection.maxJobSize);
    if (body === null) return { result: 'plain', why: 'the body is not a JSON object, or has no room for the record under max-job-size' };
    let copyId: string;
    try {
      copyId = await connection.putInTube(facts.tube, body, {
        priority: counters.priority,
        delaySeconds: this.copyDelay,
        ttrSeconds: counters.ttrSeconds,
      });
    } catch (error) {
      if (error instanceof ConnectionError) return { result: 'lost', error };
      return { result: 'plain', why: `the copy could not be put (${safeString((error as Error)?.message)})` };
    }
    try {
      const reserved = await connection.reserveJob(copyId);
      if (reserved === null) {
        // Someone deleted or reserved the copy in the moment it was delayed: let it be, bury the original.
        return { result: 'plain', why: `the copy ${copyId} could not be reserved` };
      }
      await connection.bury(copyId, counters.priority);
    } catch (error) {
      if (error instanceof ConnectionError) return { result: 'lost', error };
      // The copy is reserved here (or gone): delete it, so the original stays the only live job.
      await connection.delete(copyId).catch(() => undefined);
      return { result: 'plain', why: `the copy ${copyId} could not be buried (${safeString((error as Error)?.message)})` };
    }
    const settled = await settle(copyId);
    if (settled === 'done') return { result: 'recorded', copyId };
    if (settled === 'not-found') return { result: 'not-found', copyId };
    return { result: 'lost', error: undefined };
  }
}

/**
 * True when a job carrying counters (a copy) was never buried: its worker died between putting it and
 * burying it, and the original it names is the live job. See the file's comment.
 */
export function isUnfinishedCopy(ownStats: JobStats): boolean {
  return ownStats.buries === 0;
}

function versionAtLeast(version: string, [major, minor]: readonly [number, number]): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version);
  if (!match) return false;
  const [got, gotMinor] = [Number(match[1]), Number(match[2])];
  return got > major || (got === major && gotMinor >= minor);
}

function safeString(value: unknown): string {
  try {
    return typeof value === 'string' ? value : value === undefined ? '' : String(value);
  } catch {
    return '';
  }
}

/** Standard Schema issues attached to an error as `issues` (see the task schemas). */
function issuesOf(error: Error): FailureIssue[] | undefined {
  let raw: unknown;
  try {
    raw = (error as { issues?: unknown }).issues;
  } catch {
    return undefined;
  }
  if (!Array.isArray(raw)) return undefined;
  return raw.slice(0, 20).map((issue: unknown) => {
    const { message, path } = (issue ?? {}) as { message?: unknown; path?: unknown };
    return {
      message: safeString(message),
      ...(Array.isArray(path)
        ? { path: path.map((part: unknown) => safeString(typeof part === 'object' && part !== null && 'key' in part ? part.key : part)) }
        : {}),
    };
  });
}
