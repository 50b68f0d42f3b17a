/** Delays: before a retry (per task) and before a reconnect (per worker). */
import type { BackoffOptions } from '../tasks/types.js';
import { backoffDelay } from '../util/backoff.js';

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
  const curve = { initial: delaySeconds, max: maxDelaySeconds, jitter: jitter ? 0.5 : 0 };
  return Math.round(backoffDelay(type === 'fixed' ? 1 : attempt, curve, random));
}

/**
 * Milliseconds to wait before reconnect attempt `attempt` (1 for the first): doubling from `minMs`,
 * capped at `maxMs`, spread over 50-100% so that many workers do not reconnect in step.
 */
export function reconnectDelayMs(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  return Math.round(backoffDelay(attempt, { initial: minMs, max: maxMs, jitter: 0.5 }, random));
}
