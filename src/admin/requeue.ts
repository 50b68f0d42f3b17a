/**
 * Putting dead letters back: the ready jobs of a dead-letter tube whose record (`meta.dead_letter.tube`)
 * names the wanted tube go back into it, with their failure history kept (`requeueBody`); every other
 * job of the dead-letter tube is left as it was. The letters are found with the scan of `scan.ts`.
 *
 * Nothing is lost: the new job is put first, and the dead letter is deleted only after the server said
 * `INSERTED`. A failure in between (the connection lost, the process killed) leaves the job twice, once
 * in each tube, never in neither; a requeue run again would put the letter back a second time.
 */
import type { JobStats } from '../beanstalk/types.js';
import { requeueBody } from '../failures/record.js';
import { deadLetterOf } from './describe.js';
import { AdminError, ConflictError, InvalidInputError, NotFoundError, UnavailableError } from './errors.js';
import { checkInteger, checkTube } from './input.js';
import { scanTube } from './jobs.js';
import { SCAN_MAX } from './scan.js';
import type { AdminServer } from './servers.js';
import {
  MAX_LISTED_IDS,
  type RequeueDuplicate,
  type RequeuedJob,
  type RequeueFailure,
  type RequeueJobResult,
  type RequeueResult,
  type ScanStop,
} from './types.js';

/** Options of {@link requeueDeadLetters}. */
export interface RequeueOptions {
  /** The dead-letter tube. */
  readonly from: string;
  /** The original tube: only letters that failed there go back, into it. */
  readonly tube: string;
  /** Put back at most this many. @defaultValue all */
  readonly limit?: number;
  /** Go on below this cursor (a `nextCursor` of an earlier requeue). */
  readonly cursor?: string | null;
  /** Ids examined at most, over the whole requeue. @defaultValue 100000 */
  readonly scan?: number;
  /** The time bound of the whole requeue. @defaultValue 30000 */
  readonly timeoutMs?: number;
}

/** The defaults of a requeue: it sweeps further than a page, since it is one command for all the letters. */
export const REQUEUE_DEFAULTS = Object.freeze({ scan: 100_000, timeoutMs: 30_000 });

function objectOf(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** The record's own priority and TTR when the worker kept them there, else the letter's. */
function scheduleOf(body: Buffer, stats: JobStats): { priority: number; ttrSeconds: number } {
  let record: Record<string, unknown> | undefined;
  try {
    record = objectOf(objectOf(objectOf(JSON.parse(body.toString('utf8')))?.meta)?.dead_letter);
  } catch {
    record = undefined;
  }
  const integer = (value: unknown, min: number): number | undefined =>
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= 4_294_967_295 ? value : undefined;
  return {
    priority: integer(record?.priority, 0) ?? stats.priority,
    // A TTR below 2 s sits inside the server's safety margin (the put check refuses it).
    ttrSeconds: integer(record?.ttr, 2) ?? Math.max(2, stats.ttrSeconds),
  };
}

/** The original tube a dead letter names, or undefined for a job that is not a dead letter. */
function originalTube(body: Buffer): string | undefined {
  try {
    return deadLetterOf(objectOf(JSON.parse(body.toString('utf8')))?.meta)?.tube ?? undefined;
  } catch {
    return undefined;
  }
}

/** Puts back the dead letters of `options.from` that failed in `options.tube`, on one server. */
export async function requeueDeadLetters(
  server: AdminServer,
  options: RequeueOptions,
  formatId: (server: AdminServer, id: string) => string,
): Promise<RequeueResult> {
  const from = checkTube(options.from, 'from');
  const tube = checkTube(options.tube, 'tube');
  if (from === tube) throw new InvalidInputError('INVALID_TUBE', `the dead-letter tube and the original tube are both ${tube}`);
  const limit = options.limit === undefined ? Number.POSITIVE_INFINITY : checkInteger(options.limit, 'limit', 1, 4_294_967_295);
  const scanBound = checkInteger(options.scan ?? REQUEUE_DEFAULTS.scan, 'scan', 1, SCAN_MAX.scan);
  const timeoutMs = checkInteger(options.timeoutMs ?? REQUEUE_DEFAULTS.timeoutMs, 'timeoutMs', 1, 10 * SCAN_MAX.timeoutMs);
  const deadline = Date.now() + timeoutMs;
  const maxBytes = (): Promise<number> => server.run(async (connection) => connection.maxJobSize);

  const jobs: RequeuedJob[] = [];
  const duplicates: RequeueDuplicate[] = [];
  const failed: RequeueFailure[] = [];
  let requeued = 0;
  let otherTube = 0;
  let notDeadLetters = 0;
  let scanned = 0;
  let cursor = options.cursor ?? null;
  let stoppedBy: ScanStop = 'end';
  let exhausted = false;

  for (;;) {
    const left = deadline - Date.now();
    if (requeued >= limit || left <= 0 || scanned >= scanBound) {
      stoppedBy = requeued >= limit ? 'limit' : left <= 0 ? 'deadline' : 'scan-bound';
      break;
    }
    const { matches, page } = await scanTube(server, from, 'ready', {
      cursor,
      limit: SCAN_MAX.limit,
      scan: scanBound - scanned,
      timeoutMs: Math.max(1, Math.min(left, SCAN_MAX.timeoutMs)),
    });
    scanned += page.scanned;
    cursor = page.nextCursor;
    let cutShort = false;
    for (const stats of matches) {
      if (requeued >= limit) {
        // Not reached: the next requeue starts at this letter.
        cursor = String(BigInt(stats.id) + 1n);
        cutShort = true;
        break;
      }
      const letter = await server.run((connection) => connection.peek(stats.id));
      // Gone since the scan (deleted, or taken by another requeue): nothing to put back.
      if (!letter) continue;
      const original = originalTube(letter.body);
      // Fitted to the server's limit: the record added to the history may not push it past.
      const body = original === tube ? requeueBody(letter.body, { maxBytes: await maxBytes() }) : undefined;
      if (original !== undefined && original !== tube) otherTube += 1;
      if (!body) {
        if (original === undefined || original === tube) notDeadLetters += 1;
        continue;
      }
      const schedule = scheduleOf(letter.body, stats);
      let id: string;
      try {
        id = await server.inTube(tube, (connection) =>
          connection.putInTube(tube, body, { priority: schedule.priority, delaySeconds: 0, ttrSeconds: schedule.ttrSeconds }),
        );
      } catch (error) {
        // A body that no longer fits (the record made it grow): this letter stays; the others go on.
        if (!(error instanceof InvalidInputError)) throw error;
        if (failed.length < MAX_LISTED_IDS)
          failed.push({ server: server.name, deadLetterId: formatId(server, stats.id), error: error.message });
        continue;
      }
      try {
        await server.run((connection) => connection.delete(stats.id));
      } catch (error) {
        // Inserted but not deleted: the job is in both tubes now, which is what the order is for.
        duplicates.push({
          server: server.name,
          deadLetterId: formatId(server, stats.id),
          id: formatId(server, id),
          error: messageOf(error),
        });
        if (error instanceof UnavailableError) throw error;
        continue;
      }
      requeued += 1;
      if (jobs.length < MAX_LISTED_IDS) {
        jobs.push({ server: server.name, deadLetterId: formatId(server, stats.id), id: formatId(server, id), ...schedule });
      }
    }
    if (cutShort) {
      stoppedBy = 'limit';
      break;
    }
    if (page.exhausted) {
      exhausted = true;
      stoppedBy = 'end';
      break;
    }
    if (page.stoppedBy === 'deadline') {
      stoppedBy = 'deadline';
      break;
    }
  }
  return {
    server: server.name,
    from,
    tube,
    requeued,
    jobs,
    duplicates,
    failed,
    otherTube,
    notDeadLetters,
    scanned,
    nextCursor: exhausted ? null : cursor,
    exhausted,
    stoppedBy,
  };
}

function messageOf(error: unknown): string {
  return error instanceof AdminError || error instanceof Error ? error.message : String(error);
}

/**
 * Puts one dead letter back into the tube its record names, failure history kept, then deletes the
 * letter. `JOB_NOT_FOUND` for no such job, `JOB_RESERVED` while a worker holds it, `NOT_A_DEAD_LETTER`
 * for a job without a dead-letter record. As with {@link requeueDeadLetters}, the new job is put first.
 */
export async function requeueOne(
  server: AdminServer,
  id: string,
  shownId: string,
  formatId: (server: AdminServer, id: string) => string,
): Promise<RequeueJobResult> {
  const found = await server.run(async (connection) => {
    const stats = await connection.statsJob(id);
    const letter = stats ? await connection.peek(id) : undefined;
    return stats && letter ? { stats, letter, maxBytes: connection.maxJobSize } : undefined;
  });
  if (!found) throw new NotFoundError('JOB_NOT_FOUND', `job ${shownId} does not exist`);
  const { stats, letter } = found;
  if (stats.state === 'reserved') {
    throw new ConflictError('JOB_RESERVED', `job ${shownId} is reserved by a worker; requeue it once it is back in its tube`);
  }
  const tube = originalTube(letter.body);
  const body = tube === undefined ? undefined : requeueBody(letter.body, { maxBytes: found.maxBytes });
  if (tube === undefined || body === undefined) {
    throw new ConflictError('NOT_A_DEAD_LETTER', `job ${shownId} has no dead-letter record naming the tube it failed in`);
  }
  const schedule = scheduleOf(letter.body, stats);
  const newId = await server.inTube(tube, (connection) =>
    connection.putInTube(tube, body, { priority: schedule.priority, delaySeconds: 0, ttrSeconds: schedule.ttrSeconds }),
  );
  let deadLetterDeleted = true;
  try {
    await server.run((connection) => connection.delete(id));
  } catch (error) {
    // Inserted but not deleted: a duplicate, which the result says, rather than a loss.
    if (error instanceof UnavailableError) throw error;
    deadLetterDeleted = false;
  }
  return {
    server: server.name,
    deadLetterId: formatId(server, id),
    id: formatId(server, newId),
    tube,
    ...schedule,
    deadLetterDeleted,
  };
}
