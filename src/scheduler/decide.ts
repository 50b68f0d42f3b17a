/**
 * What the active scheduler does with a marker it reserved: pure functions of the marker, the schedule
 * and the time, so the tick and catch-up rules are unit-tested without a server.
 */
import type { Cron } from 'croner';
import { nextTick } from './cron.js';
import type { CatchUp, Marker } from './types.js';

/**
 * How late a marker may be and still count as on time, beyond the schedule's interval. beanstalkd
 * delays are whole seconds, so a marker becomes ready up to a second after its tick, and the reserve,
 * the put and the next marker's put take a little more: without this slack a 1-second schedule would
 * find its own markers "late".
 */
export const LATE_GRACE_MS = 2_000;

/** A marker read early by more than this (kicked by hand) is put back to wait for its tick. */
export const EARLY_SLACK_MS = 1_000;

/** The schedule as the decision needs it: its expression and time zone, compiled, and its catch-up. */
export interface DecisionSchedule {
  readonly cron: string;
  readonly timezone: string;
  readonly catchUp: CatchUp;
  readonly compiled: Cron;
}

/** What to do with a reserved marker. */
export type MarkerDecision =
  /** Put the job for `tick`, then the next marker for `next` (null: the expression fires no more). */
  | { readonly kind: 'run'; readonly tick: Date; readonly late: boolean; readonly next: Date | null }
  /** A late tick with catchUp `skip`: put no job, only the next marker, computed from now. */
  | { readonly kind: 'skip'; readonly tick: Date; readonly next: Date | null }
  /** Read before its tick (kicked): put a copy that waits until then. */
  | { readonly kind: 'early'; readonly tick: Date }
  /** Computed from another expression or zone (the declaration changed): replace it from now. */
  | { readonly kind: 'replace'; readonly next: Date | null }
  /** A tick this scheduler already ran (a second marker left by a takeover): drop it. */
  | { readonly kind: 'duplicate'; readonly tick: Date };

/**
 * Decides what to do with `marker` at `now`. `lastTickMs` is the latest tick this scheduler ran while
 * active (markers of earlier or equal ticks are leftovers of a takeover). A marker is late when the
 * tick after it is already past (with {@link LATE_GRACE_MS}): at least one tick was missed, so the
 * schedule's catch-up decides, and the next marker is computed from now, never from the old tick.
 */
export function decideMarker(marker: Marker, schedule: DecisionSchedule, now: Date, lastTickMs?: number): MarkerDecision {
  if (marker.cron !== schedule.cron || marker.timezone !== schedule.timezone)
    return { kind: 'replace', next: nextTick(schedule.compiled, now) };
  const tick = new Date(marker.tick);
  if (lastTickMs !== undefined && tick.getTime() <= lastTickMs) return { kind: 'duplicate', tick };
  if (tick.getTime() > now.getTime() + EARLY_SLACK_MS) return { kind: 'early', tick };
  const following = nextTick(schedule.compiled, tick);
  const late = following !== null && following.getTime() + LATE_GRACE_MS < now.getTime();
  if (!late) return { kind: 'run', tick, late: false, next: following };
  const fromNow = nextTick(schedule.compiled, now);
  if (schedule.catchUp === 'skip') return { kind: 'skip', tick, next: fromNow };
  return { kind: 'run', tick, late: true, next: fromNow };
}

/** Whole seconds to delay a marker so that it becomes ready at `tick`, never before (0 when past). */
export function delayUntil(tick: Date, now: Date): number {
  return Math.max(0, Math.ceil((tick.getTime() - now.getTime()) / 1_000));
}

/**
 * Of several markers found in one tube (left by a takeover), the one to keep: the latest tick among
 * those of the current expression. A marker for a later tick exists only once the job of the earlier
 * one was put (the job is put before the next marker), so keeping the latest never runs a tick twice.
 * Undefined when none matches the expression.
 */
export function markerToKeep(markers: readonly Marker[], cron: string, timezone: string): Marker | undefined {
  let kept: Marker | undefined;
  for (const marker of markers) {
    if (marker.cron !== cron || marker.timezone !== timezone) continue;
    if (kept === undefined || Date.parse(marker.tick) > Date.parse(kept.tick)) kept = marker;
  }
  return kept;
}
