/**
 * Kicking buried jobs only, one by id. beanstalkd's `kick N` acts on the tube in use and, when no buried
 * job is left at that moment, kicks delayed jobs instead: with a count read beforehand, another process
 * kicking the same jobs first turns our kick into a kick of delayed jobs (a retry backoff cut short).
 * `peek-buried` then `kick-job <id>` moves only a job that was just seen buried. Shared by
 * `bsworker kick` and the worker's auto-kick.
 */
import { NotFoundError } from './errors.js';
import type { Beanstalk, PeekedJob } from './types.js';

/** What one tube's kick did. */
export interface KickedTube {
  /** The tube name. */
  readonly tube: string;
  /** How many buried jobs were kicked to ready. */
  readonly kicked: number;
  /** The buried count before the kick minus `kicked`: what a bound left buried (jobs buried meanwhile are not counted). */
  readonly stillBuried: number;
}

/**
 * Decides, for each buried job at the head of the tube, whether to kick it (`kick`), deal with it some
 * other way and go on (`handled`, e.g. moved to a dead-letter tube), or stop the round (`stop`).
 */
export type BuriedJobFilter = (job: PeekedJob) => Promise<'kick' | 'handled' | 'stop'>;

/**
 * Kicks up to `bound` buried jobs of `tube` (all of them when unset) on `connection`, which is left
 * using `tube`. Resolves to null when the tube had no buried job. Jobs buried while it runs may be
 * kicked too; a job is never kicked twice in one call (a job that fails at once and is buried again
 * waits for the next call).
 */
export async function kickBuried(
  connection: Beanstalk,
  tube: string,
  bound?: number,
  filter?: BuriedJobFilter,
): Promise<KickedTube | null> {
  const buried = (await connection.statsTube(tube))?.buried ?? 0;
  const limit = Math.min(bound ?? buried, buried);
  if (limit === 0) return null;
  await connection.use(tube);
  const seen = new Set<string>();
  let kicked = 0;
  // Each step sees the head of the buried list: bounded by the count read above, plus the jobs another
  // client moves away between our two commands (each such step moves nothing but sees a new head).
  for (let steps = 0; kicked < limit && steps < 2 * limit; steps += 1) {
    const head = await connection.peekBuried();
    if (!head || seen.has(head.id)) break;
    seen.add(head.id);
    const verdict = filter ? await filter(head) : 'kick';
    if (verdict === 'stop') break;
    if (verdict === 'handled') continue;
    try {
      await connection.kickJob(head.id);
      kicked += 1;
    } catch (error) {
      // Kicked or deleted by someone else between the peek and the kick: look at the new head.
      if (!(error instanceof NotFoundError)) throw error;
    }
  }
  return { tube, kicked, stillBuried: Math.max(0, buried - kicked) };
}
