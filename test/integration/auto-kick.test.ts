// Kicking against a real beanstalkd: only buried jobs are ever kicked (never a delayed one, even when two
// kickers race), and how often a buried job is kicked does not depend on how many workers watch its tube.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { resolveServerAddress } from '../../src/beanstalk/address.js';
import { BeanstalkConnection } from '../../src/beanstalk/connection.js';
import { kickBuried } from '../../src/beanstalk/kick-buried.js';
import { JobQueue } from '../../src/tasks/queue.js';
import { kickLockTube } from '../../src/worker/auto-kick.js';
import { type BeanstalkdServer, rawCommand, rawPut, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { freshTube, startWorker, until } from '../helpers/real-worker.js';

describe('kicking buried jobs against beanstalkd', () => {
  let server: BeanstalkdServer;
  let queue: JobQueue;

  before(async () => {
    server = await startBeanstalkd();
    queue = new JobQueue({ url: server.url, logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    await queue?.close();
    await server?.stop();
  });

  /** Puts a job into `tube` and buries it, as a failed run would. */
  async function buriedJob(tube: string): Promise<string> {
    const connection = await BeanstalkConnection.connect(resolveServerAddress(server.url));
    try {
      await connection.watch(tube);
      await connection.ignore('default');
      const id = await connection.putInTube(tube, Buffer.from('x'), { priority: 1024, delaySeconds: 0, ttrSeconds: 60 });
      const job = await connection.reserve(1);
      assert.equal(job?.id, id);
      await connection.bury(id, 1024);
      return id;
    } finally {
      await connection.quit();
    }
  }

  it('two kickers racing over one buried job never kick the delayed job behind it', async () => {
    const tube = freshTube('race');
    for (let round = 0; round < 20; round += 1) {
      const delayed = await rawPut(server.url, tube, 'wait', { delay: 3_600 });
      const buried = await buriedJob(tube);
      const [a, b] = await Promise.all([0, 1].map(() => BeanstalkConnection.connect(resolveServerAddress(server.url))));
      try {
        const results = await Promise.all([kickBuried(a as BeanstalkConnection, tube), kickBuried(b as BeanstalkConnection, tube)]);
        assert.equal(
          results.reduce((sum, r) => sum + (r?.kicked ?? 0), 0),
          1,
          'the buried job is kicked once',
        );
      } finally {
        await Promise.all([a?.quit(), b?.quit()]);
      }
      assert.equal((await rawStatsJob(server.url, delayed))?.state, 'delayed', `round ${round}: the delayed job stays delayed`);
      await rawCommand(server.url, `delete ${delayed}\r\n`);
      await rawCommand(server.url, `delete ${buried}\r\n`);
    }
  });

  it('three workers with --kick-period 1 kick a poison job once a period between them, not three times', async (t) => {
    const tube = freshTube('rate');
    const runs: number[] = [];
    const poison = queue.task(tube)(function poison(_kw: object) {
      runs.push(performance.now());
      throw new Error('always fails');
    });
    const workers: Awaited<ReturnType<typeof startWorker>>[] = [];
    for (let i = 0; i < 3; i += 1) {
      workers.push(await startWorker(t, { tubes: [tube], url: server.url, kickPeriodSeconds: 1, maxKicks: 3 }));
    }
    await poison.put({});
    // Each bury makes a copy with a new id: the tube holds this one job, so any max-kicks delete is it.
    await until(
      () =>
        workers.some(({ events }) =>
          events.events.some((e) => e.name === 'job:deleted' && (e.payload as { reason?: string }).reason === 'max-kicks'),
        ),
      Boolean,
      15_000,
      'the job reaches the kick bound',
    );
    assert.equal(runs.length, 4, 'the first run and one per kick');
    // The first kick may come at once (a round was due); from then on kicks are a period apart.
    const gaps = runs.slice(1).map((at, i) => at - (runs[i] as number));
    // (Each run starts a little after its kick, by however long the busy machine takes: hence the margins.)
    const shown = gaps.map(Math.round).join(', ');
    for (const gap of gaps.slice(1)) assert.ok(gap >= 700, `kicks a period apart, got gaps ${shown} ms`);
    assert.ok((runs[3] as number) - (runs[1] as number) >= 1_700, `two kicks take two periods, got gaps ${shown} ms`);
    // One kick lock for the tube, whichever worker holds it.
    const lock = await rawStatsTube(server.url, kickLockTube(tube));
    const locks = Number(lock?.['current-jobs-ready']) + Number(lock?.['current-jobs-delayed']) + Number(lock?.['current-jobs-reserved']);
    assert.equal(locks, 1);
  });

  it('a job buried at the kick bound is moved to the dead-letter tube by auto-kick, never run again', async (t) => {
    const tube = freshTube('bound');
    const dead = freshTube('bound-dead');
    let runs = 0;
    queue.task(tube)(function atBound(_kw: object) {
      runs += 1;
    });
    const id = await buriedJob(tube);
    await startWorker(t, { tubes: [tube], url: server.url, kickPeriodSeconds: 1, maxKicks: 0, deadLetterTube: dead });
    await until(
      () => rawStatsJob(server.url, id),
      (stats) => stats === null,
      10_000,
      'the buried job is moved',
    );
    assert.equal((await rawStatsTube(server.url, dead))?.['current-jobs-ready'], '1');
    assert.equal(runs, 0);
  });
});

describe('auto-kick when the dead-letter tube cannot take a job', () => {
  it('leaves a job at the kick bound buried (not kicked, not run) while the server refuses puts', async (t) => {
    const server = await startBeanstalkd();
    t.after(() => server.stop());
    const tube = freshTube('drain');
    let runs = 0;
    const queue = new JobQueue({ url: server.url, logger: pino({ level: 'silent' }) });
    t.after(() => queue.close());
    queue.task(tube)(function refused(_kw: object) {
      runs += 1;
    });
    // The job is held reserved here until the worker's kick lock exists, then buried: the lock is a put,
    // which the server refuses once it drains.
    const connection = await BeanstalkConnection.connect(resolveServerAddress(server.url));
    t.after(() => connection.quit());
    await connection.watch(tube);
    const body = Buffer.from(JSON.stringify({ func_name: 'refused', tube, kwargs: {} }));
    const id = await connection.putInTube(tube, body, { priority: 1024, delaySeconds: 0, ttrSeconds: 60 });
    assert.equal((await connection.reserve(1))?.id, id);
    const { logs } = await startWorker(t, {
      tubes: [tube],
      url: server.url,
      kickPeriodSeconds: 1,
      maxKicks: 0,
      deadLetterTube: freshTube('dl'),
    });
    await until(
      () => rawStatsTube(server.url, kickLockTube(tube)),
      (stats) => stats !== null,
      5_000,
      'the kick lock',
    );
    // Drain mode: every put answers DRAINING, so the dead-letter put fails.
    process.kill(server.pid, 'SIGUSR1');
    await connection.bury(id, 1024);
    await until(
      () => logs.find(/could not move a job at the kick bound/).length,
      (n) => n >= 2,
      10_000,
      'two rounds that hold the job',
    );
    assert.equal((await rawStatsJob(server.url, id))?.state, 'buried');
    assert.equal(runs, 0, 'never run again');
  });
});
