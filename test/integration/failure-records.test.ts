// Failure records against a real beanstalkd: what a buried job carries, what a worker killed at each
// step of the copy leaves behind, and the plain bury on a server older than 1.12.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Admin } from '../../src/admin/index.js';
import { JobQueue } from '../../src/index.js';
import {
  type BeanstalkdServer,
  rawCommand,
  rawPeekBody,
  rawPut,
  rawStatsJob,
  rawStatsTube,
  startBeanstalkd,
} from '../helpers/beanstalkd.js';
import { Cli, children, envelope, prefix, writeFixtureJobs } from '../helpers/cli.js';
import { rawSession } from '../helpers/raw-session.js';
import { eventsOf, registry, startWorker, until } from '../helpers/real-worker.js';
import { startProxy } from '../helpers/tcp-proxy.js';

interface Entry {
  reason: string;
  name: string;
  message: string;
  stack?: string;
  attempt: number;
  kicks: number;
  worker: { host: string; pid: number };
  server: string;
  job_id: string;
  tube: string;
  at: string;
}

const historyOf = async (url: string, id: string): Promise<{ failures: Entry[]; carried?: Record<string, unknown> }> =>
  JSON.parse((await rawPeekBody(url, id)) as string).meta;

describe('failure records against beanstalkd', () => {
  let server: BeanstalkdServer;
  let queue: JobQueue;
  before(async () => {
    server = await startBeanstalkd();
    queue = new JobQueue({ url: server.url, logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    await queue.close();
    await server.stop();
  });

  it('a buried job carries each failure: error, stack, attempt, kicks, worker, server, tube and time', async (t) => {
    const tb = prefix('rec');
    let runs = 0;
    const flaky = queue.task(tb, { retries: 1, backoff: { type: 'fixed', delaySeconds: 0 } })(async function flaky(_kw: { order: number }) {
      runs += 1;
      throw new TypeError(`run ${runs} failed`);
    });
    const { events } = await startWorker(t, { tubes: [tb], url: server.url, maxKicks: 5 });
    const id = await flaky.put({ order: 7 });
    const first = await events.waitFor('job:buried', (e) => e.jobId === id);
    const copy: string = first.buriedAs;
    assert.equal(await rawStatsJob(server.url, id), null, 'the original is deleted');
    assert.equal((await rawStatsJob(server.url, copy))?.state, 'buried');
    const one = await historyOf(server.url, copy);
    assert.equal(one.failures.length, 1);
    const [entry] = one.failures as [Entry];
    assert.deepEqual(
      [entry.reason, entry.name, entry.message, entry.attempt, entry.kicks, entry.job_id, entry.tube, entry.server],
      ['failed', 'TypeError', 'run 2 failed', 2, 0, id, tb, server.url],
    );
    assert.deepEqual(entry.worker, { host: hostname(), pid: process.pid });
    assert.match(entry.stack ?? '', /TypeError: run 2 failed\n\s+at /);
    assert.ok(Math.abs(Date.parse(entry.at) - Date.now()) < 60_000, entry.at);
    assert.deepEqual(one.carried, { from: id, reserves: 1, releases: 1, buries: 0, kicks: 0, timeouts: 0 });
    // The kwargs are untouched.
    assert.deepEqual(JSON.parse((await rawPeekBody(server.url, copy)) as string).kwargs, { order: 7 });

    // Kicked, it runs again (no retries left: they were used before the first bury) and its history grows.
    assert.equal(await rawCommand(server.url, `kick-job ${copy}\r\n`), 'KICKED\r\n');
    const second = await events.waitFor('job:buried', (e) => e.jobId === copy);
    const two = await historyOf(server.url, second.buriedAs);
    assert.deepEqual(
      two.failures.map((f) => [f.message, f.attempt, f.kicks, f.job_id]),
      [
        ['run 2 failed', 2, 0, id],
        ['run 3 failed', 2, 1, copy],
      ],
    );
    assert.equal(runs, 3);
    assert.equal(eventsOf(events, 'job:released', copy).length, 0, 'the retries were not given again by the copy');
    // The admin layer (bsworker peek, the HTTP API) counts across copies as the worker does.
    const admin = new Admin({ urls: [server.url] });
    t.after(() => admin.close());
    const report = await admin.job(second.buriedAs);
    assert.deepEqual([report.kicks, report.releases, report.history?.failures.length], [1, 1, 2]);
  });

  it('an unrunnable job (unregistered task) is buried with its reason as the record', async (t) => {
    const tb = prefix('unreg');
    registry.task(tb)(function present() {});
    const { events } = await startWorker(t, { tubes: [tb], url: server.url });
    const id = await rawPut(server.url, tb, envelope('absent', tb, { a: 1 }));
    const buried = await events.waitFor('job:buried', (e) => e.jobId === id);
    const [entry] = (await historyOf(server.url, buried.buriedAs)).failures as [Entry];
    assert.equal(entry.reason, 'unregistered');
    assert.match(entry.message, /no task named "absent"/);
  });

  it('a copy left unfinished (buries 0) is deleted unrun when it surfaces; the original is the live job', async (t) => {
    const tb = prefix('left');
    let runs = 0;
    registry.task(tb)(function counted() {
      runs += 1;
    });
    // What a worker that died after step 1 leaves: a delayed copy that carries counters and names its original.
    const body = JSON.stringify({
      func_name: 'counted',
      tube: tb,
      kwargs: {},
      meta: { failures: [], carried: { from: '1', reserves: 0, releases: 0, buries: 0, kicks: 0, timeouts: 0 } },
    });
    const copy = await rawPut(server.url, tb, body, { delay: 120 });
    const { events } = await startWorker(t, { tubes: [tb], url: server.url });
    // kick-job brings it forward (and counts a kick, which must not make it look finished).
    assert.equal(await rawCommand(server.url, `kick-job ${copy}\r\n`), 'KICKED\r\n');
    const deleted = await events.waitFor('job:deleted', (e) => e.jobId === copy);
    assert.equal(deleted.reason, 'duplicate');
    assert.equal(runs, 0);
  });
});

describe('failure records: a worker killed at each step of the copy', () => {
  let server: BeanstalkdServer;
  let temp: string;
  let jobsDir: string;
  before(async () => {
    server = await startBeanstalkd();
    temp = await mkdtemp(join(tmpdir(), 'bsworker-records-'));
    jobsDir = join(temp, 'jobs');
    await writeFixtureJobs(jobsDir);
  });
  after(async () => {
    for (const child of children) child.child.kill('SIGKILL');
    await server.stop();
    await rm(temp, { recursive: true, force: true });
  });

  // Killed just before this command reached the server (so after the step before it).
  const steps = [
    { before: 'put', left: 'nothing: the job goes back to ready' },
    { before: 'reserve-job', left: 'a delayed copy, deleted unrun when it surfaces' },
    { before: 'bury', left: 'a reserved copy, back to ready and deleted unrun' },
    { before: 'delete', left: 'the buried copy and the original back to ready: the one duplicate' },
  ] as const;
  for (const step of steps) {
    it(`killed before \`${step.before}\` leaves ${step.left}; nothing is lost`, async (t) => {
      const p = prefix('kill');
      const tube = `${p}-fail`;
      let cli: Cli | undefined;
      let killed = false;
      const proxy = await startProxy(server.port, {
        onClientData: (chunk) => {
          // The command may follow others in one write (a put right behind its `use`): any line start.
          const text = chunk.toString('latin1');
          if (killed || !(text.startsWith(`${step.before} `) || text.includes(`\r\n${step.before} `))) return 'forward';
          killed = true;
          cli?.child.kill('SIGKILL');
          return 'drop';
        },
      });
      t.after(() => proxy.close());
      cli = new Cli(['--jobs', jobsDir, '--url', proxy.url, '--tubes', tube], { FIXTURE_PREFIX: p });
      const id = await rawPut(server.url, tube, envelope('fail', tube, { orderId: 1 }));
      const exit = await cli.waitForExit(15_000);
      assert.equal(exit.signal, 'SIGKILL', 'the worker was killed at the step');

      // A second worker takes over, with the same (always failing) task.
      let runs = 0;
      registry.task(tube)(function fail() {
        runs += 1;
        throw new Error('still failing');
      });
      const { events } = await startWorker(t, { tubes: [tube], url: server.url });
      if (step.before === 'reserve-job') {
        // The delayed copy surfaces after its delay (11 s): bring it forward, unless it already has.
        const [, peeked] = await rawSession(server.port, [`use ${tube}`, 'peek-delayed']);
        const copy = /^FOUND (\d+)/.exec(peeked ?? '')?.[1];
        if (copy) assert.match(await rawCommand(server.url, `kick-job ${copy}\r\n`), /^(KICKED|NOT_FOUND)/);
      }
      if (step.before === 'reserve-job' || step.before === 'bury') {
        assert.equal((await events.waitFor('job:deleted', (e) => e.reason === 'duplicate', 15_000)).task, undefined, 'deleted unrun');
      }
      await events.waitFor('job:buried', (e) => e.jobId === id, 15_000);
      const settled = await until(
        () => rawStatsTube(server.url, tube),
        (s) => s?.['current-jobs-ready'] === '0' && s['current-jobs-reserved'] === '0' && s['current-jobs-delayed'] === '0',
        10_000,
        'the tube settles',
      );
      const buried = Number(settled?.['current-jobs-buried']);
      assert.equal(buried, step.before === 'delete' ? 2 : 1, 'buried jobs left');
      assert.equal(runs, 1, 'the live job ran once more, and no leftover copy ran');
      // Every buried job left carries its record.
      const [, ...peeks] = await rawSession(server.port, [`use ${tube}`, 'peek-buried']);
      const head = /^FOUND (\d+)/.exec(peeks[0] ?? '')?.[1] as string;
      assert.ok((await historyOf(server.url, head)).failures.length >= 1);
    });
  }
});

describe('failure records on a server older than 1.12', () => {
  it('buries plainly, says so once, and the job keeps its id', async (t) => {
    const server = await startBeanstalkd();
    t.after(() => server.stop());
    // The server reports 1.11 (same length, so the reply's byte count still holds).
    const proxy = await startProxy(server.port, {
      rewriteServerData: (chunk) => Buffer.from(chunk.toString('latin1').replace('version: "1.12"', 'version: "1.11"'), 'latin1'),
    });
    t.after(() => proxy.close());
    const tb = prefix('old');
    registry.task(tb)(function alwaysFails() {
      throw new Error('nope');
    });
    const { events, logs } = await startWorker(t, { tubes: [tb], url: proxy.url });
    const ids = [
      await rawPut(server.url, tb, envelope('alwaysFails', tb, {})),
      await rawPut(server.url, tb, envelope('alwaysFails', tb, {})),
    ];
    for (const id of ids) {
      const buried = await events.waitFor('job:buried', (e) => e.jobId === id);
      assert.equal(buried.buriedAs, undefined);
      assert.equal((await rawStatsJob(server.url, id))?.state, 'buried');
    }
    assert.equal(logs.find(/older than 1\.12/).length, 1, 'said once');
  });
});
