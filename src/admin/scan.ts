/**
 * Listing jobs, which beanstalkd has no command for. Ids are sequential per server, so a page is a scan
 * of recent ids, newest first: `stats-job <id>` for each (small replies, pipelined on the one connection
 * with at most `inFlight` outstanding), keeping those in the wanted tube and state. It is bounded in
 * commands (`scan` ids per page) and in time (`deadlineMs`), and paged by a cursor: the lowest id
 * examined, below which the next page goes on.
 *
 * The first page starts at the highest id ({@link findHighestId}): the server's `total-jobs`, raised to
 * any id seen at the head of a tube (`peek-ready`, `-delayed`, `-buried`), then probed upward window by
 * window until a window of ids holds no job. `total-jobs` counts the jobs put since the server started,
 * which without a binlog is the highest id; after a restart from a binlog ids go on from the replayed
 * ones, which the peeks and the probe find. What the probe cannot see: newer jobs above a run of more
 * than {@link PROBE_WINDOW} consecutive ids that were all deleted since the restart. Passing a cursor
 * (one above the id to start at) starts anywhere.
 */
import type { Beanstalk, JobStats } from '../beanstalk/types.js';
import type { ScanStop } from './types.js';

/** Ids probed at once above the highest id known; a window with no job ends the probe. */
export const PROBE_WINDOW = 256;
/** Probe windows at most: 64 windows is 16,384 ids above the start. */
const MAX_PROBE_WINDOWS = 64;

/** Bounds of one page; see {@link SCAN_DEFAULTS}. */
export interface ScanBounds {
  /** Stop once this many matching jobs were found. */
  readonly limit: number;
  /** Examine at most this many ids. */
  readonly scan: number;
  /** `stats-job` commands outstanding at once. */
  readonly inFlight: number;
  /** Stop at this time (`Date.now()`), with what was found so far. */
  readonly deadline: number;
}

/** The defaults of a page: 20 jobs, 5,000 ids, 256 in flight, 5 seconds. */
export const SCAN_DEFAULTS = Object.freeze({ limit: 20, scan: 5_000, inFlight: 256, timeoutMs: 5_000 });
/** The largest values a caller may ask for. */
export const SCAN_MAX = Object.freeze({ limit: 1_000, scan: 1_000_000, inFlight: 4_096, timeoutMs: 60_000 });

/** What {@link scanIds} found. */
export interface ScanResult {
  /** The matching jobs' stats, newest (highest id) first. */
  readonly matches: readonly JobStats[];
  /** Ids examined (replies read). */
  readonly scanned: number;
  /** The lowest id examined, or undefined when none was. */
  readonly lowest: bigint | undefined;
  readonly stoppedBy: ScanStop;
}

/**
 * Examines ids from `start` down to 1 with `fetch` (null: no such job), keeping those `accept` takes,
 * until one of `bounds` is reached. Replies are read in id order, so `matches` is newest first and
 * everything above `lowest` was examined. Commands still in flight at the end are left to settle
 * (their results, or failures, are ignored).
 */
export async function scanIds(
  start: bigint,
  bounds: ScanBounds,
  fetch: (id: bigint) => Promise<JobStats | null>,
  accept: (stats: JobStats) => boolean,
  now: () => number = Date.now,
): Promise<ScanResult> {
  const matches: JobStats[] = [];
  const floor = start - BigInt(bounds.scan) + 1n > 1n ? start - BigInt(bounds.scan) + 1n : 1n;
  const queue: { id: bigint; reply: Promise<JobStats | null> }[] = [];
  let next = start;
  let scanned = 0;
  let lowest: bigint | undefined;
  const refill = (): void => {
    while (queue.length < bounds.inFlight && next >= floor) {
      const reply = fetch(next);
      // Failures are seen when the reply is read; one left unread must not become an unhandled rejection.
      reply.catch(() => undefined);
      queue.push({ id: next, reply });
      next -= 1n;
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), Math.max(0, bounds.deadline - now()));
  });
  let stoppedBy: ScanStop;
  try {
    refill();
    for (;;) {
      const head = queue.shift();
      if (head === undefined) {
        stoppedBy = floor > 1n ? 'scan-bound' : 'end';
        break;
      }
      const stats = now() >= bounds.deadline ? 'deadline' : await Promise.race([head.reply, deadline]);
      if (stats === 'deadline') {
        stoppedBy = 'deadline';
        break;
      }
      scanned += 1;
      lowest = head.id;
      if (stats !== null && accept(stats)) matches.push(stats);
      if (matches.length >= bounds.limit) {
        stoppedBy = head.id > 1n ? 'limit' : 'end';
        break;
      }
      refill();
    }
  } finally {
    clearTimeout(timer);
  }
  return { matches, scanned, lowest, stoppedBy };
}

/**
 * The highest job id on the server, as far as it can be told without writing: see the module comment.
 * 0n when the server holds no job and has had none put.
 */
export async function findHighestId(
  connection: Beanstalk,
  peekHeads: () => Promise<readonly string[]>,
  deadline: number,
  now: () => number = Date.now,
): Promise<bigint> {
  const [stats, heads] = await Promise.all([connection.stats(), peekHeads()]);
  let highest = BigInt(Math.max(0, Math.floor(Number(stats['total-jobs']) || 0)));
  for (const id of heads) if (BigInt(id) > highest) highest = BigInt(id);
  for (let window = 0; window < MAX_PROBE_WINDOWS && now() < deadline; window += 1) {
    const ids = Array.from({ length: PROBE_WINDOW }, (_, i) => highest + BigInt(i + 1));
    const found = await Promise.all(ids.map((id) => connection.statsJob(String(id))));
    const above = ids.filter((_, i) => found[i] !== null);
    const top = above.at(-1);
    if (top === undefined) break;
    highest = top;
  }
  return highest;
}
