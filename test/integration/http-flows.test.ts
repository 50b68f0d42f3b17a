// Flows and progress in the HTTP API, against a real beanstalkd: a job's `flow` (chain link, chord with
// its members left, a caller waiting, a malformed flow) in the job's own view and in lists, never the
// reply token; and GET /api/progress over a real worker whose /progress endpoint runs in this process,
// then over a real `bsworker --processes 2 --metrics-port` whose supervisor merges its children's.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { jsonRenderer, registryRenderer, startMetricsServer } from '../../src/metrics/http.js';
import { ProgressBoard } from '../../src/metrics/progress.js';
import { collectWorkerMetrics } from '../../src/metrics/worker-metrics.js';
import { type BeanstalkdServer, freePort, rawPut, startBeanstalkd } from '../helpers/beanstalkd.js';
import { Cli, children, envelope, prefix, writeFixtureJobs } from '../helpers/cli.js';
import { assertDocumented, type OpenApiDocument, type Reply, startApi, type TestApi } from '../helpers/http.js';
import { deferred, freshTube, registry, startWorker, until } from '../helpers/real-worker.js';

const TEST_TIMEOUT = { timeout: 30_000 };
const HOSTILE = '<img src=x onerror=alert(1)>';

/** A body with `meta`, as another language's producer would write it. */
const withMeta = (funcName: string, tube: string, kwargs: Record<string, unknown>, meta: Record<string, unknown>): string =>
  JSON.stringify({ func_name: funcName, tube, kwargs, meta });

interface Flow {
  summary: string;
  chain: { position: number; of: number; nextCount: number; next: { func_name: string; tube: string; kwargs?: unknown }[] } | null;
  chord: { tube: string; membersLeft: number | null } | null;
  group: { tube: string; barrier: string; callback: string | null } | null;
  reply: boolean;
  malformed: string | null;
}

describe('flows and progress in the HTTP API', () => {
  let beanstalkd: BeanstalkdServer;
  let api: TestApi;
  let document: OpenApiDocument;

  async function call(route: string, path: string): Promise<Reply> {
    const reply = await api.request('GET', path);
    assert.equal(reply.status, 200, reply.text);
    assertDocumented(document, 'GET', route, reply);
    return reply;
  }

  before(async () => {
    beanstalkd = await startBeanstalkd();
    api = await startApi(beanstalkd.url);
    document = (await api.request('GET', '/api/openapi.json')).json as OpenApiDocument;
  });
  after(async () => {
    await api?.close();
    await beanstalkd?.stop();
  });

  it(
    'describes a chain link, a group member, a chord with its members left and a malformed flow; never the token',
    TEST_TIMEOUT,
    async () => {
      const tube = freshTube('flows');
      const barrier = freshTube('barrier');
      const next = [
        { func_name: 'charge', tube: 'pay', kwargs: { card: 'secret-card' } },
        { func_name: 'notify', tube: 'mail', kwargs: { to: HOSTILE } },
      ];
      const link = await rawPut(
        beanstalkd.url,
        tube,
        withMeta('reserve', tube, {}, { chain: { index: 0, of: 3, next }, reply: { tube: 'r-1', token: 'secret-token' } }),
      );
      await rawPut(beanstalkd.url, barrier, envelope('barrier', barrier, {}));
      await rawPut(beanstalkd.url, barrier, envelope('barrier', barrier, {}));
      const chord = await rawPut(beanstalkd.url, tube, withMeta('sum', tube, {}, { chord: { tube: barrier } }));
      const member = await rawPut(
        beanstalkd.url,
        tube,
        withMeta('part', tube, {}, { group: { tube: barrier, barrier: '1', callback: chord } }),
      );
      const broken = await rawPut(beanstalkd.url, tube, withMeta('odd', tube, {}, { chain: { index: 0, of: 1, next: 'nope' } }));

      const one = (await call('/api/jobs/{id}', `/api/jobs/${link}`)).json as { flow: Flow; envelope: { meta: unknown } };
      assert.equal(one.flow.summary, 'link 1 of 3, then charge, notify; a caller waits for its result');
      assert.deepEqual(
        one.flow.chain?.next.map((l) => [l.func_name, l.tube, l.kwargs]),
        next.map((l) => [l.func_name, l.tube, l.kwargs]),
      );
      assert.equal(one.flow.reply, true);
      assert.deepEqual((one.envelope.meta as { reply: unknown }).reply, { tube: 'r-1', token: '[redacted]' });

      const left = (await call('/api/jobs/{id}', `/api/jobs/${chord}`)).json as { flow: Flow };
      assert.deepEqual(left.flow.chord, { tube: barrier, membersLeft: 2 });
      assert.equal(left.flow.summary, `callback of group ${barrier}, 2 members left`);
      const part = (await call('/api/jobs/{id}', `/api/jobs/${member}`)).json as { flow: Flow };
      assert.deepEqual(part.flow.group, { tube: barrier, barrier: '1', callback: chord });
      const odd = (await call('/api/jobs/{id}', `/api/jobs/${broken}`)).json as { flow: Flow };
      assert.match(odd.flow.malformed ?? '', /meta\.chain\.next/);

      const page = await call('/api/tubes/{tube}/jobs', `/api/tubes/${tube}/jobs?state=ready`);
      const listed = (page.json as { jobs: { id: string; flow: Flow | null }[] }).jobs;
      const listedLink = listed.find((job) => job.id === link);
      assert.deepEqual(listedLink?.flow?.chain?.next, [
        { func_name: 'charge', tube: 'pay' },
        { func_name: 'notify', tube: 'mail' },
      ]);
      // A list names links, never their kwargs; a chord's count is read only in the job's own view.
      assert.doesNotMatch(page.text, /secret-card/);
      assert.equal(listed.find((job) => job.id === chord)?.flow?.chord?.membersLeft, null);
      for (const text of [page.text, JSON.stringify(one)]) assert.doesNotMatch(text, /secret-token/);
    },
  );

  it(
    'GET /api/progress lists a running job that reports progress, as text, until it ends; an unreachable worker is reported',
    TEST_TIMEOUT,
    async (t) => {
      const tube = freshTube('progress');
      const gate = deferred();
      const started = deferred();
      registry.task(tube)(async function crunch(_kw: unknown, ctx?: { progress(value: unknown): void }) {
        ctx?.progress({ done: 1, total: 3 });
        ctx?.progress({ done: 2, total: 3, note: HOSTILE });
        started.resolve();
        await gate.promise;
      });
      registry.task(tube)(async function big(_kw: unknown, ctx?: { progress(value: unknown): void }) {
        ctx?.progress('x'.repeat(5_000));
        await gate.promise;
      });
      registry.task(tube)(function quiet() {});
      const { worker, events } = await startWorker(t, { tubes: [tube], url: beanstalkd.url, concurrency: 3 });
      const board = new ProgressBoard();
      t.after(board.attach(worker));
      const metrics = collectWorkerMetrics(worker);
      const endpoint = await startMetricsServer({
        port: 0,
        render: registryRenderer(metrics.registry),
        documents: { '/progress': jsonRenderer(() => board.snapshot()) },
      });
      t.after(() => endpoint.close());
      const silent = `http://127.0.0.1:${await freePort()}/metrics`;
      const progressApi = await startApi(beanstalkd.url, { workerMetrics: [endpoint.url, silent] });
      t.after(() => progressApi.close());

      // A job that never reports progress leaves nothing on the board, and the end events stay unheard.
      const quiet = await rawPut(beanstalkd.url, tube, envelope('quiet', tube, {}));
      await events.waitFor('job:deleted', (e) => e.jobId === quiet);
      const endListeners = worker.listenerCount('job:completed' as never);

      const crunch = await rawPut(beanstalkd.url, tube, envelope('crunch', tube, {}));
      const big = await rawPut(beanstalkd.url, tube, envelope('big', tube, {}));
      await started.promise;
      assert.equal(worker.listenerCount('job:completed' as never), endListeners + 1, 'the board hears job ends while it holds a job');
      const read = async () => {
        const reply = await progressApi.request('GET', '/api/progress');
        assert.equal(reply.status, 200, reply.text);
        assertDocumented(document, 'GET', '/api/progress', reply);
        return reply;
      };
      const reply = await until(read, (r) => (r.json as { jobs: unknown[] }).jobs.length === 2, 5_000, 'both jobs on the board');
      const { jobs, workers } = reply.json as {
        jobs: { worker: string; jobId: string; tube: string; task: string; value: unknown; truncated: boolean }[];
        workers: { url: string; reachable: boolean; error: string | null }[];
      };
      const mine = jobs.find((job) => job.jobId === crunch);
      assert.deepEqual(
        [mine?.worker, mine?.tube, mine?.task, mine?.value, mine?.truncated],
        [endpoint.url, tube, 'crunch', { done: 2, total: 3, note: HOSTILE }, false],
      );
      const cut = jobs.find((job) => job.jobId === big);
      assert.equal(cut?.truncated, true);
      assert.equal(typeof cut?.value, 'string');
      assert.ok(Buffer.byteLength(String(cut?.value)) <= 1_024);
      // The API's JSON never carries markup as it is.
      assert.doesNotMatch(reply.text, /<img/);
      assert.deepEqual(
        workers.map((w) => [w.url, w.reachable]),
        [
          [endpoint.url, true],
          [silent, false],
        ],
      );

      gate.resolve();
      await events.waitFor('job:deleted', (e) => e.jobId === crunch);
      await events.waitFor('job:deleted', (e) => e.jobId === big);
      assert.equal(board.size, 0);
      assert.equal(worker.listenerCount('job:completed' as never), endListeners, 'and stops hearing them once empty');
      assert.deepEqual(((await read()).json as { jobs: unknown[] }).jobs, []);
    },
  );

  it('a supervisor (--processes 2 --metrics-port) serves its children’s progress merged', TEST_TIMEOUT, async (t) => {
    const temp = await mkdtemp(join(tmpdir(), 'bsworker-progress-'));
    t.after(() => rm(temp, { recursive: true, force: true }));
    const jobsDir = join(temp, 'jobs');
    await writeFixtureJobs(jobsDir, { typescript: false });
    await writeFile(
      join(jobsDir, 'report.mjs'),
      `import { existsSync } from 'node:fs';
import { p, queue } from './queue.mjs';
export const report = queue.task(\`\${p}-report\`)(async function report(kw, ctx) {
  ctx.progress({ step: kw.n });
  const deadline = Date.now() + 20_000;
  while (!existsSync(kw.releaseFile) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
});
`,
    );
    const p = prefix('prog');
    const cli = new Cli(['--jobs', jobsDir, '--url', beanstalkd.url, '--tubes', `${p}-report`, '--processes', '2', '--metrics-port', '0'], {
      FIXTURE_PREFIX: p,
    });
    t.after(async () => {
      if (cli.exit === undefined) cli.child.kill('SIGTERM');
      await cli.exited;
      for (const other of children) await other.exited;
    });
    const line = await cli.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('metrics of every child'), 'the metrics line');
    const progressUrl = String(line.url).replace(/metrics$/, 'progress');
    const releaseFile = join(temp, 'release');
    const ids = [
      await rawPut(beanstalkd.url, `${p}-report`, envelope('report', `${p}-report`, { n: 1, releaseFile })),
      await rawPut(beanstalkd.url, `${p}-report`, envelope('report', `${p}-report`, { n: 2, releaseFile })),
    ];
    const merged = await until(
      async () => (await (await fetch(progressUrl)).json()) as { jobs: { jobId: string; value: { step: number } }[]; missing: number },
      (doc) => doc.jobs.length === 2,
      15_000,
      'both children reporting',
    );
    assert.deepEqual(merged.jobs.map((job) => job.jobId).sort(), [...ids].sort());
    assert.deepEqual(merged.jobs.map((job) => job.value.step).sort(), [1, 2]);
    assert.equal(merged.missing, 0);
    await writeFile(releaseFile, '');
    await until(
      async () => ((await (await fetch(progressUrl)).json()) as { jobs: unknown[] }).jobs.length,
      (n) => n === 0,
      10_000,
      'the board empty after the jobs end',
    );
  });
});
