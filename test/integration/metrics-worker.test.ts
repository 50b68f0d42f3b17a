// A real Worker against a real beanstalkd, its metrics scraped over HTTP: every count checked against
// what was run, the exposition checked line by line.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { registryRenderer, startMetricsServer } from '../../src/metrics/http.js';
import { collectWorkerMetrics, UNREGISTERED_TASK } from '../../src/metrics/worker-metrics.js';
import { unregisterTask } from '../../src/tasks/registry.js';
import { type BeanstalkdServer, rawPut, startBeanstalkd } from '../helpers/beanstalkd.js';
import { httpGet, parseExposition, scrape } from '../helpers/prometheus.js';
import { freshTube, registry, startWorker, until } from '../helpers/real-worker.js';

const body = (task: string, tube: string, kwargs: Record<string, unknown> = {}): string =>
  JSON.stringify({ func_name: task, tube, kwargs });

describe('worker metrics', { timeout: 30_000 }, () => {
  let server: BeanstalkdServer;
  const registered: [string, string][] = [];

  before(async () => {
    server = await startBeanstalkd();
  });
  after(async () => {
    for (const [tube, name] of registered) unregisterTask(tube, name);
    await server?.stop();
  });

  it('labels every job series with its server: one worker over two servers counts each apart', async (t) => {
    const other = await startBeanstalkd();
    t.after(() => other.stop());
    const tube = freshTube('m2');
    registry.task(tube, { name: 'ok' })(async () => undefined);
    registered.push([tube, 'ok']);
    const { worker, events } = await startWorker(t, { tubes: [tube], url: [server.url, other.url], concurrency: 2 });
    const metrics = collectWorkerMetrics(worker);
    const endpoint = await startMetricsServer({ port: 0, render: registryRenderer(metrics.registry) });
    t.after(() => endpoint.close());
    const before = await scrape(endpoint.url);
    for (const at of [server.url, other.url])
      assert.equal(before.value('bsworker_jobs_total', { server: at, tube, task: 'ok', outcome: 'completed' }), 0);
    const ids = [
      await rawPut(server.url, tube, body('ok', tube)),
      await rawPut(server.url, tube, body('ok', tube)),
      await rawPut(other.url, tube, body('ok', tube)),
    ];
    const qualified = [`${server.url}/${ids[0]}`, `${server.url}/${ids[1]}`, `${other.url}/${ids[2]}`];
    for (const id of qualified) await events.waitFor('job:completed', (e) => e.jobId === id);
    const after = await scrape(endpoint.url);
    assert.equal(after.value('bsworker_jobs_total', { server: server.url, tube, task: 'ok', outcome: 'completed' }), 2);
    assert.equal(after.value('bsworker_jobs_total', { server: other.url, tube, task: 'ok', outcome: 'completed' }), 1);
    assert.equal(after.value('bsworker_job_duration_seconds_count', { server: other.url, tube, task: 'ok' }), 1);
    for (const at of [server.url, other.url]) assert.equal(after.value('bsworker_worker_errors_total', { server: at }), 0);

    // A server that dies counts its lost connections under its own name only.
    await other.stop('SIGKILL');
    await events.waitFor('worker:error', () => true);
    const lost = await scrape(endpoint.url);
    assert.ok((lost.value('bsworker_worker_errors_total', { server: other.url }) as number) >= 1);
    assert.equal(lost.value('bsworker_worker_errors_total', { server: server.url }), 0);
  });

  it('counts each outcome and each run as they happened', async (t) => {
    const tube = freshTube('m');
    const flakySeen = new Set<string>();
    registry.task(tube, { name: 'ok' })(async () => undefined);
    registry.task(tube, { name: 'fail' })(async () => {
      throw new Error('fails every time');
    });
    registry.task(tube, { name: 'flaky', retries: 1, backoff: { type: 'fixed', delaySeconds: 0, jitter: false } })(
      async (kw: { id: string }) => {
        if (flakySeen.has(kw.id)) return;
        flakySeen.add(kw.id);
        throw new Error('fails the first time');
      },
    );
    registered.push([tube, 'ok'], [tube, 'fail'], [tube, 'flaky']);
    const { worker, events } = await startWorker(t, { tubes: [tube], url: server.url, concurrency: 2 });
    const metrics = collectWorkerMetrics(worker);
    const endpoint = await startMetricsServer({ port: 0, render: registryRenderer(metrics.registry) });
    t.after(() => endpoint.close());

    // Before any job: every registered task has its series, at 0; the worker is up.
    const before = await scrape(endpoint.url);
    assert.equal(before.value('bsworker_jobs_total', { tube, task: 'ok', outcome: 'completed' }), 0);
    assert.equal(before.value('bsworker_worker_up'), 1);
    assert.equal(before.value('bsworker_jobs_active'), 0);

    for (let i = 0; i < 5; i += 1) await rawPut(server.url, tube, body('ok', tube));
    for (let i = 0; i < 2; i += 1) await rawPut(server.url, tube, body('fail', tube));
    await rawPut(server.url, tube, body('flaky', tube, { id: 'a' }));
    // Untrusted names: neither may become a label value.
    await rawPut(server.url, tube, body('no such task \u202e', tube));
    await rawPut(server.url, tube, 'not json at all');

    // 5 ok + 1 flaky complete; 2 fail + 2 unrunnable are buried.
    await until(
      () => events.events.filter((e) => e.name === 'job:deleted' || e.name === 'job:buried').length,
      (n) => n >= 10,
      10_000,
      'ten jobs settled',
    );
    const after = await scrape(endpoint.url);
    const jobs = (task: string, outcome: string): number | undefined => after.value('bsworker_jobs_total', { tube, task, outcome });
    assert.equal(jobs('ok', 'completed'), 5);
    assert.equal(jobs('fail', 'failed'), 2);
    assert.equal(jobs('fail', 'buried'), 2);
    assert.equal(jobs('flaky', 'failed'), 1);
    assert.equal(jobs('flaky', 'retried'), 1);
    assert.equal(jobs('flaky', 'completed'), 1);
    assert.equal(jobs(UNREGISTERED_TASK, 'buried'), 2);
    for (const task of ['ok', 'fail', 'flaky', UNREGISTERED_TASK]) assert.equal(jobs(task, 'overrun'), 0);
    // Only bounded values: the watched tube, the three tasks and `unregistered`.
    const tasks = new Set(after.all('bsworker_jobs_total').map((s) => s.labels.task));
    assert.deepEqual([...tasks].sort(), ['fail', 'flaky', 'ok', UNREGISTERED_TASK]);
    assert.deepEqual(new Set(after.all('bsworker_jobs_total').map((s) => s.labels.tube)), new Set([tube]));

    // Runs: 5 + 1 completed, 2 + 1 failed; the unrunnable jobs never ran.
    const count = (task: string): number | undefined => after.value('bsworker_job_duration_seconds_count', { tube, task });
    assert.deepEqual([count('ok'), count('fail'), count('flaky'), count(UNREGISTERED_TASK)], [5, 2, 2, 0]);
    const okSum = after.value('bsworker_job_duration_seconds_sum', { tube, task: 'ok' }) as number;
    assert.ok(okSum >= 0 && okSum < 5, `5 no-op runs took ${okSum} s`);
    // A no-op run is well under a second: in the 1 s bucket already.
    assert.equal(after.value('bsworker_job_duration_seconds_bucket', { tube, task: 'ok', le: '1' }), 5);
    assert.equal(after.value('bsworker_jobs_active'), 0);
    assert.equal(after.value('bsworker_reconnects_total'), 0);
    assert.equal(after.types.get('bsworker_job_duration_seconds'), 'histogram');
    assert.equal(after.types.get('bsworker_jobs_total'), 'counter');

    // Counters keep their values once the worker stops; up goes to 0.
    await worker.stop();
    const stopped = await scrape(endpoint.url);
    assert.equal(stopped.value('bsworker_worker_up'), 0);
    assert.equal(stopped.value('bsworker_jobs_total', { tube, task: 'ok', outcome: 'completed' }), 5);
  });

  it('counts dead letters, discards, a running job and a reconnect', async (t) => {
    const tube = freshTube('m');
    const dead = freshTube('dead');
    let release: (() => void) | undefined;
    const running = new Promise<void>((resolve) => {
      release = resolve;
    });
    registry.task(tube, { name: 'doomed' })(async () => {
      throw new Error('always');
    });
    registry.task(tube, { name: 'hold' })(async () => running);
    registered.push([tube, 'doomed'], [tube, 'hold']);
    // maxKicks 0: a failure is at the bound at once.
    const lettered = await startWorker(t, { tubes: [tube], url: server.url, maxKicks: 0, deadLetterTube: dead, concurrency: 2 });
    const metrics = collectWorkerMetrics(lettered.worker);
    await rawPut(server.url, tube, body('doomed', tube));
    await lettered.events.waitFor('job:deleted', (e) => e.reason === 'dead-letter');
    await rawPut(server.url, tube, body('hold', tube));
    await lettered.events.waitFor('job:reserved', (e) => e.task === 'hold');
    const text = await metrics.registry.metrics();
    const during = parseExposition(text);
    assert.equal(during.value('bsworker_jobs_total', { tube, task: 'doomed', outcome: 'dead_lettered' }), 1);
    assert.equal(during.value('bsworker_jobs_total', { tube, task: 'doomed', outcome: 'failed' }), 1);
    assert.equal(during.value('bsworker_jobs_active'), 1);
    release?.();
    await lettered.events.waitFor('job:completed', (e) => e.task === 'hold');
    await lettered.worker.stop();

    // Without a dead-letter tube the job is deleted at the bound: discarded. Then the server restarts.
    const restartable = await startBeanstalkd();
    t.after(() => restartable.stop());
    const discarding = await startWorker(t, { tubes: [tube], url: restartable.url, maxKicks: 0 });
    const second = collectWorkerMetrics(discarding.worker);
    await rawPut(restartable.url, tube, body('doomed', tube));
    await discarding.events.waitFor('job:deleted', (e) => e.reason === 'max-kicks');
    const port = restartable.port;
    await restartable.stop('SIGKILL');
    const again = await startBeanstalkd({ port });
    t.after(() => again.stop());
    await discarding.events.waitFor('worker:reconnected', () => true, 15_000);
    const scraped = parseExposition(await second.registry.metrics());
    assert.equal(scraped.value('bsworker_jobs_total', { tube, task: 'doomed', outcome: 'discarded' }), 1);
    assert.equal(scraped.value('bsworker_jobs_total', { tube, task: 'doomed', outcome: 'dead_lettered' }), 0);
    assert.ok((scraped.value('bsworker_reconnects_total', { server: restartable.url }) as number) >= 1);
    assert.ok((scraped.value('bsworker_worker_errors_total', { server: restartable.url }) as number) >= 1);
  });

  it('serves only GET and HEAD on /metrics', async (t) => {
    const tube = freshTube('m');
    const { worker } = await startWorker(t, { tubes: [tube], url: server.url });
    const metrics = collectWorkerMetrics(worker);
    const endpoint = await startMetricsServer({ port: 0, render: registryRenderer(metrics.registry) });
    t.after(() => endpoint.close());
    assert.equal(endpoint.host, '127.0.0.1');
    assert.equal((await httpGet(endpoint.url.replace('/metrics', '/other'))).status, 404);
    const ok = await httpGet(`${endpoint.url}?x=1`);
    assert.equal(ok.status, 200);
    assert.match(ok.body, /# TYPE bsworker_jobs_total counter/);
  });
});
