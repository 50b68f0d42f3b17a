// monitoring/: the Grafana dashboard and the alert rules parse, and every metric they query is one that
// bsworker exposes (read from the real registries, so a renamed metric fails here).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { ClusterMetrics } from '../../src/metrics/cluster.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { WorkerMetrics } from '../../src/metrics/worker-metrics.js';

// js-yaml (a dev dependency) has no types installed, and this file needs only its load().
const { load } = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };

const read = (name: string): Promise<string> => readFile(new URL(`../../monitoring/${name}`, import.meta.url), 'utf8');

/** Every series name bsworker exposes: the metric names, and a histogram's _bucket, _sum and _count. */
function exposedNames(): Set<string> {
  const registries = [new WorkerMetrics().registry, new ServerMetrics({ servers: [] }).registry, new ClusterMetrics().registry];
  const names = new Set<string>();
  for (const registry of registries) {
    for (const metric of registry.getMetricsAsArray()) {
      names.add(metric.name);
      if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${metric.name}${suffix}`);
    }
  }
  return names;
}

/** The bsworker and beanstalkd series an expression reads. */
const queried = (expr: string): string[] => [...expr.matchAll(/\b(?:bsworker|beanstalkd)_[a-z0-9_]+\b/g)].map((match) => match[0]);

interface Panel {
  id: number;
  title: string;
  type: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets: { expr: string; refId: string }[];
}

describe('monitoring/', () => {
  it('the Grafana dashboard parses, and queries only metrics bsworker exposes', async () => {
    const dashboard = JSON.parse(await read('grafana-dashboard.json')) as {
      title: string;
      uid: string;
      panels: Panel[];
      templating: { list: { name: string; query: { query: string } }[] };
      __inputs: { name: string; type: string }[];
    };
    assert.equal(dashboard.title, 'bsworker');
    assert.deepEqual(
      dashboard.__inputs.map((input) => [input.name, input.type]),
      [['DS_PROMETHEUS', 'datasource']],
    );
    const names = exposedNames();
    const ids = new Set<number>();
    const seen = new Set<string>();
    for (const panel of dashboard.panels) {
      assert.ok(!ids.has(panel.id), `panel id ${panel.id} once`);
      ids.add(panel.id);
      assert.ok(panel.gridPos.x + panel.gridPos.w <= 24, `${panel.title} fits the 24-column grid`);
      assert.ok(panel.targets.length > 0, `${panel.title} has a query`);
      for (const target of panel.targets) {
        for (const name of queried(target.expr)) {
          assert.ok(names.has(name), `${panel.title} queries ${name}, which bsworker does not expose`);
          seen.add(name);
        }
      }
    }
    for (const variable of dashboard.templating.list) {
      for (const name of queried(variable.query.query)) assert.ok(names.has(name), `variable ${variable.name} reads ${name}`);
    }
    // What the dashboard is for: backlog by state, buried, throughput by outcome, duration, workers up.
    for (const name of ['bsworker_tube_jobs', 'bsworker_jobs_total', 'bsworker_job_duration_seconds_bucket', 'bsworker_worker_up']) {
      assert.ok(seen.has(name), `the dashboard shows ${name}`);
    }
  });

  it('the alert rules parse: a growing buried count and a worker down, over exposed metrics', async () => {
    const rules = load(await read('alerts.yml')) as {
      groups: {
        name: string;
        rules: { alert: string; expr: string; for: string; labels: { severity: string }; annotations: Record<string, string> }[];
      }[];
    };
    const all = rules.groups.flatMap((group) => group.rules);
    assert.deepEqual(
      all.map((rule) => rule.alert),
      ['BsworkerBuriedJobsGrowing', 'BsworkerWorkerDown'],
    );
    const names = exposedNames();
    for (const rule of all) {
      assert.match(rule.for, /^\d+m$/);
      assert.ok(['warning', 'critical'].includes(rule.labels.severity));
      assert.ok(rule.annotations.summary && rule.annotations.description, `${rule.alert} is described`);
      for (const name of queried(rule.expr)) assert.ok(names.has(name), `${rule.alert} reads ${name}`);
    }
    assert.match(all[0]?.expr ?? '', /bsworker_tube_jobs\{state="buried"\}/);
    assert.match(all[1]?.expr ?? '', /bsworker_worker_up/);
  });
});
