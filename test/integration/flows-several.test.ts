// Results, chains and groups over several real beanstalkd servers: a reply comes back from whichever
// server the job was put to, a chain continues on its first link's server, and a group keeps every
// job (callback, barrier, members) on one server so that its barrier can be counted there.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { JobQueue, Worker } from '../../src/index.js';
import { splitJobId } from '../../src/servers/job-id.js';
import { type BeanstalkdServer, startBeanstalkd } from '../helpers/beanstalkd.js';
import { freshTube, until } from '../helpers/real-worker.js';

const silent = pino({ level: 'silent' });

describe('flows over several servers', () => {
  let servers: BeanstalkdServer[] = [];
  let queue: JobQueue;
  const workers: Worker[] = [];

  before(async () => {
    servers = await Promise.all([startBeanstalkd(), startBeanstalkd()]);
    queue = new JobQueue({ url: servers.map((server) => server.url), logger: silent });
  });
  after(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await queue?.close();
    await Promise.all(servers.map((server) => server.stop()));
  });

  const startWorker = async (tubes: string[]): Promise<Worker> => {
    const worker = new Worker({ tubes, url: servers.map((server) => server.url), logger: silent, concurrency: 4 });
    workers.push(worker);
    await worker.start();
    return worker;
  };

  it('returns every result whichever server its job went to', { timeout: 30_000 }, async () => {
    const t = freshTube('sev-res');
    const double = queue.task(t)(async function double(kw: { n: number }) {
      return kw.n * 2;
    });
    await startWorker([t]);
    const jobs = await Promise.all(Array.from({ length: 6 }, (_, n) => double.put({ n }, { result: true })));
    // Round-robin: both servers hold some of them.
    assert.equal(new Set(jobs.map((job) => splitJobId(job.id).server)).size, 2);
    assert.deepEqual(await Promise.all(jobs.map((job) => job.result({ timeoutMs: 10_000 }))), [0, 2, 4, 6, 8, 10]);
  });

  it('runs a chain and a group with its callback once, on one server each', { timeout: 30_000 }, async () => {
    const t = freshTube('sev-flow');
    let callbacks = 0;
    const step = queue.task(t)(async function step(kw: { n: number }) {
      return kw.n + 1;
    });
    const done = queue.task(t)(async function done() {
      callbacks += 1;
      return callbacks;
    });
    await startWorker([t]);
    const chained = await queue.chain(step.with({ n: 0 }), step.pipe('n'), step.pipe('n')).put({ result: true });
    assert.equal(await chained.result({ timeoutMs: 10_000 }), 3);

    for (const key of ['a', 'b', 'c']) {
      const members = Array.from({ length: 6 }, (_, n) => step.with({ n }));
      const ids = await queue
        .group(...(members as [(typeof members)[0], ...typeof members]))
        .callback(done.with())
        .put({ key });
      const where = new Set([...ids.members, ids.callback as string].map((id) => splitJobId(id).server));
      assert.equal(where.size, 1, `group ${key}: every job on one server`);
    }
    await until(
      () => callbacks,
      (count) => count === 3,
      10_000,
      'the three callbacks',
    );
    const last = await queue
      .group(step.with({ n: 1 }), step.with({ n: 2 }))
      .callback(done.with())
      .put({ result: true });
    assert.equal(await last.result({ timeoutMs: 20_000 }), 4);
    assert.equal(callbacks, 4);
  });
});
