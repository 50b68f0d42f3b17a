// GET /api/workers: `bsworker serve --worker-metrics` reads each worker's own /metrics, against a real
// beanstalkd and a real worker whose metrics endpoint runs in this process.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { registryRenderer, startMetricsServer } from '../../src/metrics/http.js';
import { parseSamples, readingOf } from '../../src/metrics/scrape.js';
import { collectWorkerMetrics } from '../../src/metrics/worker-metrics.js';
import { type BeanstalkdServer, freePort, rawPut, startBeanstalkd } from '../helpers/beanstalkd.js';
import { envelope } from '../helpers/cli.js';
import { startApi } from '../helpers/http.js';
import { freshTube, registry, startWorker } from '../helpers/real-worker.js';

describe('GET /api/workers', () => {
  let server: BeanstalkdServer;
  before(async () => {
    server = await startBeanstalkd();
  });
  after(async () => {
    await server.stop();
  });

  it("reads each worker's /metrics: up, active and counts by outcome and tube; an unreachable one is listed as such", async (t) => {
    const tube = freshTube('workers');
    registry.task(tube)(function works() {});
    registry.task(tube)(function breaks() {
      throw new Error('no');
    });
    const { worker, events } = await startWorker(t, { tubes: [tube], url: server.url });
    const metrics = collectWorkerMetrics(worker);
    const endpoint = await startMetricsServer({ port: 0, render: registryRenderer(metrics.registry) });
    t.after(() => endpoint.close());
    const ok = [await rawPut(server.url, tube, envelope('works', tube, {})), await rawPut(server.url, tube, envelope('works', tube, {}))];
    const bad = await rawPut(server.url, tube, envelope('breaks', tube, {}));
    for (const id of ok) await events.waitFor('job:deleted', (e) => e.jobId === id);
    await events.waitFor('job:buried', (e) => e.jobId === bad);

    const silent = `http://127.0.0.1:${await freePort()}/metrics`;
    const api = await startApi(server.url, { workerMetrics: [endpoint.url, silent] });
    t.after(() => api.close());
    const reply = await api.request('GET', '/api/workers');
    assert.equal(reply.status, 200, reply.text);
    const [mine, gone] = (reply.json as { workers: ReturnType<typeof readingOf>[] }).workers;
    assert.deepEqual(
      [mine?.url, mine?.reachable, mine?.workersUp, mine?.active, mine?.jobs.completed, mine?.jobs.failed, mine?.jobs.buried],
      [endpoint.url, true, 1, 0, 2, 1, 1],
    );
    assert.equal(mine?.tubes[tube]?.completed, 2);
    assert.deepEqual([gone?.url, gone?.reachable, gone?.workersUp], [silent, false, null]);
    assert.match(String(gone?.error), /ECONNREFUSED|fetch failed/);
  });

  it('parses the text format: labels with escapes, comments and malformed lines skipped', () => {
    const text = [
      '# HELP bsworker_jobs_total Jobs by outcome.',
      '# TYPE bsworker_jobs_total counter',
      'bsworker_jobs_total{tube="a",task="t",outcome="completed"} 3',
      'bsworker_jobs_total{tube="we\\"ird\\\\",task="t",outcome="completed"} 2',
      'bsworker_worker_up 1',
      'not a sample line {',
      'bsworker_jobs_active NaN',
    ].join('\n');
    assert.equal(parseSamples(text).length, 3);
    const reading = readingOf('u', text);
    assert.deepEqual({ ...reading.jobs }, { completed: 5 });
    assert.deepEqual(Object.keys(reading.tubes).sort(), ['a', 'we"ird\\']);
    assert.deepEqual([reading.workersUp, reading.active], [1, null]);
  });
});
