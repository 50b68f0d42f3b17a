/**
 * Reconciling a schedule's marker tube when a scheduler becomes active: afterwards the tube holds
 * exactly one marker, of the current expression. The tick a marker carries is the state; its delay on
 * the server is only when to look again, so a marker may be re-put with its delay computed anew.
 */
import type { Beanstalk, PutParams } from '../beanstalk/types.js';
import { delayUntil, markerToKeep } from './decide.js';
import { encodeMarker, markerTube, parseMarker } from './markers.js';
import type { Marker } from './types.js';

/** What {@link reconcileTube} needs to know about the schedule. */
export interface ReconcileSchedule {
  readonly name: string;
  readonly cron: string;
  readonly timezone: string;
  /** The first tick after `now`, or null when the expression fires no more. */
  readonly nextAfter: (now: Date) => Date | null;
}

/** What a reconcile did, for the log. */
export type ReconcileOutcome = 'kept' | 'created' | 'replaced' | 'collapsed' | 'ended';

/**
 * Makes the schedule's marker tube hold one marker. `connection` must watch only that tube (the
 * collapse reserves every marker in it). Markers reserved by another connection (a scheduler that was
 * stopped, not killed) are out of reach: they come back at their TTR, and the active scheduler drops
 * any whose tick it already ran.
 */
export async function reconcileTube(
  connection: Beanstalk,
  schedule: ReconcileSchedule,
  markerTtrSeconds: number,
  now: () => Date,
): Promise<ReconcileOutcome> {
  const tube = markerTube(schedule.name);
  const params = (tick: Date): PutParams => ({ priority: 0, delaySeconds: delayUntil(tick, now()), ttrSeconds: markerTtrSeconds });
  const putMarker = async (tick: Date): Promise<void> => {
    const marker: Marker = { schedule: schedule.name, tick: tick.toISOString(), cron: schedule.cron, timezone: schedule.timezone };
    await connection.putInTube(tube, Buffer.from(encodeMarker(marker)), params(tick));
  };
  const putNext = async (): Promise<ReconcileOutcome> => {
    const next = schedule.nextAfter(now());
    if (next === null) return 'ended';
    await putMarker(next);
    return 'created';
  };

  const stats = await connection.statsTube(tube);
  const unreserved = stats === null ? 0 : stats.ready + stats.delayed + stats.buried;
  // A marker reserved elsewhere (by a scheduler stopped mid-tick) is not counted: it may never come
  // back (see lease.ts on beanstalkd 1.12), and if it does, the active scheduler drops it as a tick
  // already run or handles it as a late one.
  if (unreserved === 0) return putNext();
  await connection.use(tube);
  if (unreserved === 1) {
    const only = (await connection.peekDelayed()) ?? (await connection.peekReady()) ?? (await connection.peekBuried());
    if (only === null) return putNext();
    const marker = parseMarker(only.body);
    // A buried marker never fires by itself; one of another expression (the declaration changed) is replaced.
    const fits = marker !== undefined && marker.cron === schedule.cron && marker.timezone === schedule.timezone && stats?.buried === 0;
    if (fits) return 'kept';
    const outcome = await putNext();
    await deleteIfThere(connection, only.id);
    return outcome === 'ended' ? 'ended' : 'replaced';
  }

  // Several markers (a takeover between a marker's put and the delete of the one before): reserve them
  // all, keep the latest tick of the current expression, and put it again before deleting the rest,
  // so a crash half-way leaves markers to reconcile again, never none.
  for (let round = 0; round < 4 && (await connection.kick(unreserved)) > 0; round += 1) {}
  const reserved: { readonly id: string; readonly marker: Marker | undefined }[] = [];
  for (let round = 0; round < unreserved + 16; round += 1) {
    const job = await connection.reserve(0);
    if (job === null) break;
    reserved.push({ id: job.id, marker: parseMarker(job.body) });
  }
  const found = reserved.flatMap((entry) => (entry.marker === undefined ? [] : [entry.marker]));
  const kept = markerToKeep(found, schedule.cron, schedule.timezone);
  if (kept === undefined) await putNext();
  else await putMarker(new Date(kept.tick));
  for (const entry of reserved) await deleteIfThere(connection, entry.id);
  return 'collapsed';
}

/** Deletes a job, taking NOT_FOUND (someone else deleted or reserved it) as done. */
export async function deleteIfThere(connection: Beanstalk, id: string): Promise<void> {
  try {
    await connection.delete(id);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'NOT_FOUND') throw error;
  }
}
