/**
 * The one backoff curve in bsworker: task retries, reconnects, a producer waiting for its server, a
 * supervisor restarting a child and auto-kick after a failure all wait by it, each with its own numbers.
 */

/** A curve: doubling from `initial`, capped at `max`, then spread down by up to `jitter` of itself. */
export interface DelayCurve {
  /** The first delay, in whatever unit the caller counts (ms or s). */
  readonly initial: number;
  /** No delay is longer. */
  readonly max: number;
  /**
   * The share of each delay that is random, 0 to 1: 0.5 spreads delays over 50-100% of their value, so
   * that workers that failed together do not all come back in the same instant. Never above `max`.
   */
  readonly jitter: number;
}

/**
 * The delay before attempt `attempt` (1 for the first retry): `initial * 2^(attempt - 1)`, capped at
 * `max`, times a factor in `[1 - jitter, 1]`.
 *
 * @param random a number in [0, 1); replaceable for tests
 */
export function backoffDelay(attempt: number, curve: DelayCurve, random: () => number = Math.random): number {
  const doublings = Math.min(Math.max(0, attempt - 1), 1_000);
  const capped = Math.min(curve.max, curve.initial * 2 ** doublings);
  return capped * (1 - curve.jitter + curve.jitter * random());
}
