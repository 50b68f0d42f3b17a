/** Delays: before a retry (per task) and before a reconnect (per worker). */
import type { BackoffOptions } from '../tasks/types.js';

/** The backoff a task gets when it sets none. */
export const BACKOFF_DEFAULTS: Readonly<Required<BackoffOptions>> = Object.freeze({
  type: 'exponential',
  delaySeconds: 1,
  maxDelaySeconds: 3_600,
  jitter: true,
});

/**
 * Seconds to wait before retry number `attempt` (1 for the first retry). With jitter the delay is spread
 * over 50-100% of its value, so jobs that failed together do not all come back in the same second.
 */
export function retryDelaySeconds(options: BackoffOptions | undefined, attempt: number, random: () => number = Math.random): number {
  const { type, delaySeconds, maxDelaySeconds, jitter } = { ...BACKOFF_DEFAULTS, ...options };
  const base = type === 'fixed' ? delaySeconds : delaySeconds * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(base, maxDelaySeconds);
  return Math.round(jitter ? capped * (0.5 + random() * 0.5) : capped);
}

/**
 * Milliseconds to wait before reconnect attempt `attempt` (1 for the first): doubling from `minMs`,
 * capped at `maxMs`, with full jitter over 50-100% so that many workers do not reconnect in step.
 */
export function reconnectDelayMs(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const capped = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(capped * (0.5 + random() * 0.5));
}
