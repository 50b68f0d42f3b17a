/**
 * TTR keep-alive. beanstalkd hands a job to another worker once its TTR runs out, so a long task would
 * run twice. While a task is pending, the job is touched about every TTR/2, which resets the TTR.
 *
 * The keep-alive shares the task's event loop: code that blocks the loop for longer than the TTR
 * (CPU-bound work) holds the touch back too. That cannot be prevented from this thread, but it is
 * always noticed: a touch that comes later than the TTR reports the overrun through `onLate`.
 */
import { performance } from 'node:perf_hooks';
import { NotFoundError } from '../beanstalk/errors.js';
import type { Logger } from '../logging/logger.js';
import type { Reservation } from './reservation.js';

/** The shortest interval between touches, so that a 2-second TTR is touched often enough but not in a tight loop. */
const MIN_INTERVAL_MS = 500;
/** The longest interval a Node timer can hold. */
const MAX_INTERVAL_MS = 2_147_483_647;

/** What {@link keepAlive} needs. */
export interface KeepAliveOptions {
  /** The job; its `ttrMs` is known and its `lastResetAt` says when the TTR was last reset. */
  readonly reservation: Reservation;
  /** Sends one touch and records the reset. */
  readonly touch: () => Promise<void>;
  readonly log: Logger;
  /** Called once when a touch is due after the TTR already ran out. */
  readonly onLate: (lateByMs: number) => void;
}

/**
 * Touches the job every `ttr / 2` until the returned function is called. A touch that fails is
 * logged; NOT_FOUND ends the keep-alive (the job is no longer ours).
 */
export function keepAlive({ reservation, touch, log, onLate }: KeepAliveOptions): () => void {
  const ttrMs = reservation.ttrMs ?? 1_000;
  // setInterval turns anything past 2^31-1 ms into 1 ms: a huge TTR would touch in a tight loop.
  const intervalMs = Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, ttrMs / 2));
  const timer = setInterval(() => {
    const sinceReset = performance.now() - reservation.lastResetAt;
    if (sinceReset > ttrMs) onLate(Math.round(sinceReset - ttrMs));
    touch().then(
      () => log.debug('job touched (TTR reset)'),
      (error: unknown) => {
        if (error instanceof NotFoundError) {
          clearInterval(timer);
          log.warn('touch found no job: the TTR ran out before the keep-alive, and the job may run twice');
        } else {
          log.warn({ err: error }, 'touch failed');
        }
      },
    );
  }, intervalMs);
  // The timer must not keep a stopping process alive on its own.
  timer.unref();
  return () => clearInterval(timer);
}
