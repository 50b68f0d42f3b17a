// Puts over several real beanstalkd servers: round-robin and keyed spreading, qualified ids, and what a
// producer does when a server is killed, drains, stops answering, is down at start or comes back.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import pino from 'pino';
import { ConnectionError, PutOutcomeUnknownError } from '../../src/beanstalk/errors.js';
import { splitJobId } from '../../src/servers/job-id.js';
import { JobQueue } from '../../src/tasks/queue.js';
import { type BeanstalkdServer, freePort, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { freshTube } from '../helpers/real-worker.js';

const TEST_TIMEOUT = { timeout: 30_000 };

/** Ready jobs of `tube` on each server, in order. */
async function readyPerServer(servers: readonly BeanstalkdServer[], tube: string): Promise<number[]> {
  return Promise.all(servers.map(async (server) => Number((await rawStatsTube(server.url, tube))?.['current-jobs-ready'] ?? 0)));
}

/** The server a qualified id names. */
function serverOf(id: string): string {
  const { server } = splitJobId(id);
  assert.ok(server, `${id} is qualified`);
  return server;
}

describe('puts over several servers', () => {
  let servers: BeanstalkdServer[] = [];
  const queues: JobQueue[] = [];
  /** A queue over `urls` whose puts give up after `connectTimeoutMs`. */
  const queueOf = (urls: readonly string[], connectTimeoutMs = 5_000): JobQueue => {
    const queue = new JobQueue({ url: urls, connectTimeoutMs, logger: pino({ level: 'silent' }) });
    queues.push(queue);
    return queue;
  };
  const taskIn = (queue: JobQueue, tube: string) => queue.task(tube)(function job(_kw: { n?: number }) {});

  before(async () => {
    servers = await Promise.all([startBeanstalkd(), startBeanstalkd(), startBeanstalkd()]);
  });
  afterEach(async () => {
    for (const queue of queues.splice(0)) await queue.close();
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.stop()));
  });

  it('spreads puts round-robin, and each id names the server that holds the job', TEST_TIMEOUT, async () => {
    const tube = freshTube('rr');
    const queue = queueOf(servers.map((server) => server.url));
    assert.deepEqual(
      queue.servers,
      servers.map((server) => server.url),
    );
    const job = taskIn(queue, tube);
    const ids = await Promise.all(Array.from({ length: 30 }, (_, n) => job.put({ n })));
    assert.deepEqual(await readyPerServer(servers, tube), [10, 10, 10]);
    for (const id of ids) {
      const { server, id: local } = splitJobId(id);
      assert.equal((await rawStatsJob(server as string, local))?.tube, tube, id);
    }
    // putMany spreads too, and checks sizes against the smallest max-job-size before the first put.
    const many = await job.putMany(Array.from({ length: 9 }, (_, n) => ({ n })));
    assert.equal(new Set(many.map(serverOf)).size, 3);
    assert.deepEqual(await readyPerServer(servers, tube), [13, 13, 13]);
  });

  it('a key sends related jobs to one server, the same in another process, while keys spread', TEST_TIMEOUT, async () => {
    const tube = freshTube('key');
    const urls = servers.map((server) => server.url);
    const one = taskIn(queueOf(urls), tube);
    const keyed = await Promise.all(Array.from({ length: 12 }, (_, n) => one.put({ n }, { key: 'customer-7' })));
    assert.equal(new Set(keyed.map(serverOf)).size, 1);
    // Another queue (another process) with the servers listed in another order agrees.
    const other = queueOf([...urls].reverse());
    assert.equal(serverOf(await other.put(one, {}, { key: 'customer-7' })), serverOf(keyed[0] as string));
    const spread = await Promise.all(Array.from({ length: 60 }, (_, n) => one.put({ n }, { key: `customer-${n}` })));
    assert.equal(new Set(spread.map(serverOf)).size, 3);
    await assert.rejects(one.put({}, { key: '' }), /`key` to be a string of 1 to 1000 characters/);
  });

  it('JOB_TOO_BIG and bad input are never retried on another server', TEST_TIMEOUT, async () => {
    const small = await Promise.all([startBeanstalkd({ maxJobSize: 512 }), startBeanstalkd({ maxJobSize: 512 })]);
    try {
      const tube = freshTube('big');
      const job = taskIn(queueOf(small.map((server) => server.url)), tube);
      const started = Date.now();
      await assert.rejects(job.put({ n: 1, pad: 'x'.repeat(2_000) } as { n: number }), /max-job-size|JOB_TOO_BIG|too big/i);
      assert.ok(Date.now() - started < 1_000, 'refused at once, not retried until the deadline');
      await assert.rejects(job.putMany([{ n: 1 }, { n: 2, pad: 'x'.repeat(2_000) } as { n: number }]), /item 1/);
      assert.deepEqual(await readyPerServer(small, tube), [0, 0], 'nothing was put');
    } finally {
      await Promise.all(small.map((server) => server.stop()));
    }
  });

  it('a killed server is skipped within a second; a server down at start is picked up when it comes', TEST_TIMEOUT, async () => {
    const own = await Promise.all([startBeanstalkd(), startBeanstalkd()]);
    const laterPort = await freePort();
    let later: BeanstalkdServer | undefined;
    try {
      const tube = freshTube('kill');
      const urls = [...own.map((server) => server.url), `127.0.0.1:${laterPort}`];
      const job = taskIn(queueOf(urls), tube);
      // The third server is not there: every put still lands, on the other two.
      const first = await Promise.all(Array.from({ length: 12 }, (_, n) => job.put({ n })));
      assert.deepEqual(new Set(first.map(serverOf)), new Set(own.map((server) => server.url)));

      await (own[0] as BeanstalkdServer).stop('SIGKILL');
      const killedAt = Date.now();
      const afterKill = await job.put({ n: 100 });
      assert.ok(Date.now() - killedAt < 1_000, `failed over in ${Date.now() - killedAt} ms`);
      assert.equal(serverOf(afterKill), own[1]?.url);
      for (let n = 0; n < 10; n++) assert.equal(serverOf(await job.put({ n })), own[1]?.url);

      later = await startBeanstalkd({ port: laterPort });
      // Skipped servers are tried again after their backoff (at most 5 s): the new one gets puts.
      const deadline = Date.now() + 10_000;
      let landed = false;
      while (!landed && Date.now() < deadline) landed = serverOf(await job.put({})) === later.url;
      assert.ok(landed, 'the server that came up later got a put');
    } finally {
      await Promise.all([...own, ...(later ? [later] : [])].map((server) => server.stop()));
    }
  });

  it('a draining server gets no puts; a server that stops answering loses only the put in flight', TEST_TIMEOUT, async () => {
    const own = await Promise.all([startBeanstalkd(), startBeanstalkd()]);
    try {
      const tube = freshTube('drain');
      const [draining, stopped] = own as [BeanstalkdServer, BeanstalkdServer];
      const ok = servers[0] as BeanstalkdServer;
      const job = taskIn(queueOf([draining.url, ok.url], 2_000), tube);
      await Promise.all([job.put({}), job.put({})]);
      // SIGUSR1 puts beanstalkd in drain mode: it answers DRAINING to every put from now on.
      process.kill(draining.pid, 'SIGUSR1');
      const before = (await readyPerServer([draining], tube))[0];
      const ids = [];
      for (let n = 0; n < 10; n++) ids.push(await job.put({ n }));
      assert.deepEqual(new Set(ids.map(serverOf)), new Set([ok.url]));
      assert.equal((await readyPerServer([draining], tube))[0], before, 'the draining server took nothing');

      // SIGSTOP: the server holds the socket and answers nothing. The put written to it cannot be
      // retried elsewhere (it may have been inserted): it rejects once the stall bound passes, and the
      // puts after it go to the other server.
      const stallTube = freshTube('stall');
      const stalling = taskIn(queueOf([stopped.url, ok.url], 2_000), stallTube);
      await Promise.all([stalling.put({}), stalling.put({})]);
      process.kill(stopped.pid, 'SIGSTOP');
      const results = await Promise.allSettled(Array.from({ length: 4 }, (_, n) => stalling.put({ n })));
      const lost = results.filter((result) => result.status === 'rejected');
      assert.ok(lost.length >= 1, 'the put written to the stopped server is not moved');
      for (const result of lost) assert.ok((result as PromiseRejectedResult).reason instanceof PutOutcomeUnknownError);
      const next = [];
      for (let n = 0; n < 4; n++) next.push(serverOf(await stalling.put({ n })));
      assert.deepEqual(new Set(next), new Set([ok.url]));
      process.kill(stopped.pid, 'SIGCONT');
    } finally {
      await Promise.all(own.map((server) => server.stop('SIGKILL')));
    }
  });

  it('with every server down, a put waits up to its bound and rejects with ConnectionError', TEST_TIMEOUT, async () => {
    const urls = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    const job = taskIn(queueOf(urls, 1_500), freshTube('down'));
    const started = Date.now();
    const error = await job.put({}).then(
      () => assert.fail('a put with no server resolved'),
      (failure: unknown) => failure,
    );
    const waited = Date.now() - started;
    assert.ok(error instanceof ConnectionError, String(error));
    assert.match((error as Error).message, /no beanstalkd server took the job within 1500 ms \(the job was not put/);
    assert.ok(waited >= 1_400 && waited < 4_000, `waited ${waited} ms`);
  });
});
