/** Small statistics helpers: medians across runs, percentiles across latency samples. */

/** The median of `values` (the mean of the middle two for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/**
 * The `p`-th percentile (0..100) of `values`, nearest-rank: always one of the measured values, so a p99
 * over a few thousand samples is a real sample, not an interpolation.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/** p50, p90 and p99 of latency samples, in microseconds. */
export interface LatencySummary {
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
}

/** Summarises latency samples given in milliseconds (what `performance.now()` differences are). */
export function summariseLatencyMs(samplesMs: readonly number[]): LatencySummary {
  const us = samplesMs.map((ms) => ms * 1000);
  return { p50Us: percentile(us, 50), p90Us: percentile(us, 90), p99Us: percentile(us, 99) };
}
