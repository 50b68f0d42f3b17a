// The metrics' pure parts: the hot-path histogram renders exactly as prom-client's own, the supervisor's
// sum keeps gone children's counters and drops malformed answers, and the listen-address checks.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { IPC, type MetricJson } from '../../src/cli/ipc.js';
import { parseListenHost } from '../../src/cli/parse.js';
import { ClusterMetrics } from '../../src/metrics/cluster.js';
import { DEFAULT_DURATION_BUCKETS, Series, SeriesHistogram } from '../../src/metrics/tally.js';
import { isLoopbackHost } from '../../src/util/hosts.js';
import { parseExposition } from '../helpers/prometheus.js';

describe('SeriesHistogram', () => {
  it('renders the same exposition as a prom-client Histogram fed the same runs', async () => {
    const durations = [0, 0.0004, 0.001, 0.003, 0.2, 0.2, 7, 599.9, 601, 1e6];
    const ours = new Registry();
    const series = [
      new Series({ server: '127.0.0.1:11300', tube: 'a', task: 'x' }, DEFAULT_DURATION_BUCKETS),
      new Series({ server: '127.0.0.1:11301', tube: 'a', task: 'y"\\' }, DEFAULT_DURATION_BUCKETS),
    ];
    new SeriesHistogram('d_seconds', 'help text', DEFAULT_DURATION_BUCKETS, () => series).register(ours);
    const theirs = new Registry();
    const reference = new Histogram({
      name: 'd_seconds',
      help: 'help text',
      labelNames: ['server', 'tube', 'task'],
      buckets: [...DEFAULT_DURATION_BUCKETS],
      registers: [theirs],
    });
    for (const [i, seconds] of durations.entries()) {
      const one = series[i % 2] as Series;
      one.observe(seconds);
      reference.observe(one.labels, seconds);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    // What the supervisor's sum reads: the same values, labels and names (prom-client adds exemplar: null).
    const plain = (metrics: MetricJson[]): unknown =>
      metrics.map(({ name, help, type, aggregator, values }) => ({
        name,
        help,
        type,
        aggregator,
        values: values.map(({ value, labels, metricName }: { value: number; labels: object; metricName?: string }) => ({
          value,
          labels,
          metricName,
        })),
      }));
    assert.deepEqual(plain(await ours.getMetricsAsJSON()), plain(await theirs.getMetricsAsJSON()));
    parseExposition(await ours.metrics());
  });

  it('ignores a negative or non-finite duration instead of corrupting the sum', () => {
    const series = new Series({ server: 's', tube: 'a', task: 'x' }, [1]);
    for (const seconds of [-1, Number.NaN, Number.POSITIVE_INFINITY]) series.observe(seconds);
    assert.deepEqual([series.count, series.sum, series.buckets[0]], [0, 0, 0]);
  });
});

/** A child process as ClusterMetrics sees it: messages in, requests out. */
class FakeChild extends EventEmitter {
  connected = true;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  constructor(readonly answer: (id: number) => unknown) {
    super();
  }
  send(message: { type: string; id: number }, callback?: (error: Error | null) => void): boolean {
    setImmediate(() => {
      const reply = this.answer(message.id);
      if (reply !== undefined) this.emit('message', reply);
    });
    callback?.(null);
    return true;
  }
  die(): void {
    this.connected = false;
    this.exitCode = 0;
    this.emit('close', 0, null);
  }
}

async function childMetrics(completed: number, active: number): Promise<MetricJson[]> {
  const registry = new Registry();
  new Counter({ name: 'jobs_total', help: 'h', labelNames: ['outcome'], registers: [registry] }).inc({ outcome: 'completed' }, completed);
  const { Gauge } = await import('prom-client');
  new Gauge({ name: 'active', help: 'h', registers: [registry] }).set(active);
  return registry.getMetricsAsJSON();
}

describe('ClusterMetrics', () => {
  it('sums the children; keeps the counters of one that is gone, never its gauges', async () => {
    const cluster = new ClusterMetrics({ childTimeoutMs: 500 });
    const a = await childMetrics(3, 1);
    const b = await childMetrics(4, 1);
    const first = new FakeChild((id) => ({ type: IPC.metricsReply, id, metrics: a }));
    const second = new FakeChild((id) => ({ type: IPC.metricsReply, id, metrics: b }));
    cluster.watch(first as unknown as ChildProcess);
    cluster.watch(second as unknown as ChildProcess);
    const both = parseExposition((await cluster.render()).body);
    assert.equal(both.value('jobs_total', { outcome: 'completed' }), 7);
    assert.equal(both.value('active'), 2);
    assert.equal(both.value('bsworker_supervisor_children'), 2);

    // The first child sends its last counts and goes: they stay in the sum, its gauge does not.
    first.emit('message', { type: IPC.metricsFinal, metrics: await childMetrics(5, 0) });
    first.die();
    const after = parseExposition((await cluster.render()).body);
    assert.equal(after.value('jobs_total', { outcome: 'completed' }), 9);
    assert.equal(after.value('active'), 1);
    assert.equal(after.value('bsworker_supervisor_children'), 1);
    assert.equal(after.value('bsworker_metrics_children_missing'), 0);
  });

  it('reports no worker up, rather than nothing, while no child answers', async () => {
    const scraped = parseExposition((await new ClusterMetrics().render()).body);
    assert.equal(scraped.value('bsworker_worker_up'), 0);
    assert.equal(scraped.value('bsworker_jobs_active'), 0);
    assert.equal(scraped.value('bsworker_supervisor_children'), 0);
  });

  it('counts a silent or malformed child as missing and still answers', async () => {
    const cluster = new ClusterMetrics({ childTimeoutMs: 100 });
    let answer: unknown = await childMetrics(2, 1);
    const child = new FakeChild((id) => ({ type: IPC.metricsReply, id, metrics: answer }));
    cluster.watch(child as unknown as ChildProcess);
    assert.equal(parseExposition((await cluster.render()).body).value('jobs_total', { outcome: 'completed' }), 2);

    answer = [{ name: 'jobs_total', type: 'counter', values: [{ value: 'lots' }] }];
    const malformed = parseExposition((await cluster.render()).body);
    assert.equal(malformed.value('bsworker_metrics_children_missing'), 1);
    // From its last good answer: the counter, not the gauge.
    assert.equal(malformed.value('jobs_total', { outcome: 'completed' }), 2);
    assert.equal(malformed.value('active'), undefined);

    const silent = new FakeChild(() => undefined);
    cluster.watch(silent as unknown as ChildProcess);
    const started = performance.now();
    const scraped = parseExposition((await cluster.render()).body);
    assert.ok(performance.now() - started < 1_000);
    assert.equal(scraped.value('bsworker_metrics_children_missing'), 2);
    assert.equal(scraped.value('bsworker_metrics_children_missed_total'), 3);
  });
});

describe('listen addresses', () => {
  it('knows loopback from the rest', () => {
    for (const host of ['127.0.0.1', '127.8.9.10', '::1', '[::1]', 'localhost']) assert.equal(isLoopbackHost(host), true, host);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', '128.0.0.1', 'example.com'])
      assert.equal(isLoopbackHost(host), false, host);
  });

  it('--metrics-host takes IP addresses and localhost, not names', () => {
    assert.equal(parseListenHost('127.0.0.1'), '127.0.0.1');
    assert.equal(parseListenHost('[::1]'), '::1');
    assert.equal(parseListenHost('0.0.0.0'), '0.0.0.0');
    assert.equal(parseListenHost('localhost'), 'localhost');
    assert.throws(() => parseListenHost('metrics.internal'), /expected an IP address/);
    assert.throws(() => parseListenHost('127.0.0.1:9464'), /expected an IP address/);
  });
});
