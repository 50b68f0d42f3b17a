/**
 * The worker's counts on the hot path: plain numbers per (tube, task), turned into prom-client metrics
 * only when a scrape asks. prom-client's own `inc()`/`observe()` hash their labels on every call
 * (about 0.3 and 0.4 us each here), which on a 30k jobs/s drain is a few percent of a job's whole cost;
 * an increment on a record found by two Map lookups is a few nanoseconds.
 */
import type { Histogram, Metric, Registry } from 'prom-client';

/** Every outcome `bsworker_jobs_total` counts; the order is the index into {@link Series.counts}. */
export const OUTCOMES = ['completed', 'failed', 'retried', 'buried', 'dead_lettered', 'discarded', 'overrun', 'given_back'] as const;

/** One value of the `outcome` label. */
export type Outcome = (typeof OUTCOMES)[number];

/** The index of each outcome in {@link Series.counts}. */
export const OUTCOME_INDEX: Readonly<Record<Outcome, number>> = Object.freeze(
  Object.fromEntries(OUTCOMES.map((outcome, index) => [outcome, index])) as Record<Outcome, number>,
);

/**
 * The duration buckets, in seconds: from a no-op task (1 ms) to one near a long TTR (10 min). A task
 * that runs longer is still counted, in `+Inf`.
 */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
]);

/** The counts of one (tube, task) pair. */
export class Series {
  /** One count per outcome, indexed by {@link OUTCOME_INDEX}. */
  readonly counts = new Float64Array(OUTCOMES.length);
  /** Runs per bucket, not cumulative: `buckets[i]` counts runs in (bounds[i-1], bounds[i]]. */
  readonly buckets: Float64Array;
  /** Seconds, over every observed run. */
  sum = 0;
  /** Observed runs, those above the last bound included. */
  count = 0;

  constructor(
    readonly labels: { readonly server: string; readonly tube: string; readonly task: string },
    private readonly bounds: readonly number[],
  ) {
    this.buckets = new Float64Array(bounds.length);
  }

  /** Adds one run of `seconds`. */
  observe(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    this.sum += seconds;
    this.count += 1;
    const { bounds, buckets } = this;
    for (let i = 0; i < bounds.length; i += 1) {
      if (seconds <= (bounds[i] as number)) {
        buckets[i] = (buckets[i] as number) + 1;
        return;
      }
    }
  }
}

/** One value of a metric as prom-client's `get()` returns it. */
interface MetricValue {
  readonly value: number;
  readonly labels: Record<string, string | number>;
  readonly metricName?: string;
}

/**
 * A histogram over {@link Series}, shaped as prom-client's `Histogram.get()` result so that a Registry
 * formats it and `AggregatorRegistry.aggregate` sums it like one of its own. It has no `observe()`:
 * the series are observed directly.
 */
export class SeriesHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
    private readonly series: () => Iterable<Series>,
  ) {}

  /** What a scrape reads: cumulative buckets, `+Inf`, `_sum` and `_count` per series. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: MetricValue[] }> {
    const values: MetricValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const series of this.series()) {
      const { server, tube, task } = series.labels;
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i += 1) {
        cumulative += series.buckets[i] as number;
        values.push({ value: cumulative, labels: { le: this.bounds[i] as number, server, tube, task }, metricName: bucketName });
      }
      values.push({ value: series.count, labels: { le: '+Inf', server, tube, task }, metricName: bucketName });
      values.push({ value: series.sum, labels: { server, tube, task }, metricName: `${this.name}_sum` });
      values.push({ value: series.count, labels: { server, tube, task }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Called by `Registry.resetMetrics()`; the counts belong to the series, which are never reset. */
  reset(): void {}

  /** Adds this histogram to `registry`, which accepts it as it would a prom-client Histogram. */
  register(registry: Registry): void {
    // The Registry only reads name, get() and reset(); its type names prom-client's own classes.
    registry.registerMetric(this as unknown as Histogram as Metric);
  }
}
