/**
 * TTR keep-alive. beanstalkd hands a job to another worker once its TTR runs out, so a long task would
 * run twice. While a task is pending, the job is touched about every TTR/2, which resets the TTR.
 */
import { NotFoundError } from '../beanstalk/errors.js';
import type { Logger } from '../logging/logger.js';

/** The shortest interval between touches, so that a 2-second TTR is touched often enough but not in a tight loop. */
const MIN_INTERVAL_MS = 500;
/** The longest interval a Node timer can hold. */
const MAX_INTERVAL_MS = 2_147_483_647;

/**
 * Touches the job every `ttrSeconds / 2` until the returned function is called. A touch that fails is
 * logged; NOT_FOUND ends the keep-alive (the job is no longer ours).
 */
export function keepAlive(touch: () => Promise<void>, ttrSeconds: number, log: Logger): () => void {
  // setInterval turns anything past 2^31-1 ms into 1 ms: a huge TTR would touch in a tight loop.
  const intervalMs = Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, (ttrSeconds * 1000) / 2));
  const timer = setInterval(() => {
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
