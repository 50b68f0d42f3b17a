// The beanstalkd adapter against a real server: every command, the typed errors, validation that
// writes nothing, and no promise left hanging when the socket goes away.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseServerUrl } from '../../src/beanstalk/address.js';
import { BeanstalkConnection } from '../../src/beanstalk/connection.js';
import { ConnectionError, DeadlineSoonError, DrainingError, NotFoundError } from '../../src/beanstalk/errors.js';
import { type BeanstalkdServer, freePort, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { startPeer, type TcpPeer } from '../helpers/tcp-peer.js';

const tube = (): string => `c-${randomUUID().slice(0, 8)}`;
const params = { priority: 1024, delaySeconds: 0, ttrSeconds: 60 };
const body = (text: string): Buffer => Buffer.from(text, 'utf8');

describe('BeanstalkConnection', () => {
  let server: BeanstalkdServer;
  let conn: BeanstalkConnection;

  before(async () => {
    server = await startBeanstalkd({ maxJobSize: 100 });
    conn = await BeanstalkConnection.connect(parseServerUrl(server.url));
  });
  after(async () => {
    await conn?.quit();
    await server?.stop();
  });

  it('reads max-job-size from stats when it connects', () => {
    assert.equal(conn.maxJobSize, 100);
  });

  it('puts into a tube, reserves, and deletes', async () => {
    const t = tube();
    const id = await conn.putInTube(t, body('hello'), params);
    assert.match(id, /^\d+$/);
    assert.equal((await rawStatsJob(server.url, id))?.tube, t);

    const worker = await BeanstalkConnection.connect(conn.address);
    try {
      assert.equal(await worker.watch(t), 2);
      assert.equal(await worker.ignore('default'), 1);
      assert.deepEqual(await worker.listTubesWatched(), [t]);
      const job = await worker.reserve(0);
      assert.equal(job?.id, id);
      assert.equal(job?.body.toString(), 'hello');
      await worker.touch(id);
      await worker.delete(id);
      assert.equal(await rawStatsJob(server.url, id), null);
    } finally {
      await worker.quit();
    }
  });

  it('answers null when a reserve times out (TIMED_OUT is not an error)', async () => {
    const worker = await BeanstalkConnection.connect(conn.address);
    try {
      await worker.watch(tube());
      await worker.ignore('default');
      assert.equal(await worker.reserve(0), null);
    } finally {
      await worker.quit();
    }
  });

  it('releases, buries, kicks and peeks', async () => {
    const t = tube();
    const worker = await BeanstalkConnection.connect(conn.address);
    try {
      await worker.watch(t);
      await worker.ignore('default');
      const a = await conn.putInTube(t, body('a'), { ...params, priority: 5 });
      const b = await conn.putInTube(t, body('b'), { ...params, priority: 6 });
      const delayed = await conn.putInTube(t, body('d'), { ...params, delaySeconds: 3600 });

      assert.equal((await worker.reserve(0))?.id, a, 'lowest priority number first');
      await worker.release(a, 7, 0);
      assert.equal((await worker.statsJob(a))?.priority, 7);
      assert.equal((await worker.statsJob(a))?.releases, 1);

      assert.equal((await worker.reserve(0))?.id, b);
      await worker.bury(b, 6);
      const jobStats = await worker.statsJob(b);
      assert.equal(jobStats?.state, 'buried');
      assert.equal(jobStats?.tube, t);
      assert.equal(jobStats?.buries, 1);

      await conn.use(t);
      assert.equal((await conn.peekReady())?.id, a);
      assert.equal((await conn.peekBuried())?.id, b);
      assert.equal((await conn.peekDelayed())?.id, delayed);
      assert.equal((await conn.peek(b))?.body.toString(), 'b');
      assert.equal(await conn.peek('999999999'), null);

      const tubeStats = await conn.statsTube(t);
      assert.deepEqual([tubeStats?.ready, tubeStats?.buried, tubeStats?.delayed], [1, 1, 1]);

      // kick moves buried jobs before delayed ones.
      assert.equal(await conn.kick(1), 1);
      assert.equal((await conn.statsJob(b))?.state, 'ready');
      assert.equal((await conn.statsJob(b))?.kicks, 1);
      await conn.kickJob(delayed);
      assert.equal((await conn.statsJob(delayed))?.state, 'ready');
      for (const id of [a, b, delayed]) await conn.delete(id);
    } finally {
      await worker.quit();
    }
  });

  it('lists tubes, reads server stats and pauses a tube', async () => {
    const t = tube();
    await conn.putInTube(t, body('x'), params);
    assert.ok((await conn.listTubes()).includes(t));
    const stats = await conn.stats();
    assert.equal(stats['max-job-size'], 100);
    await conn.pauseTube(t, 30);
    assert.equal((await conn.statsTube(t))?.pauseSeconds, 30);
    assert.equal(await conn.statsTube(tube()), null, 'an unknown tube is null, not an error');
  });

  it('turns NOT_FOUND into NotFoundError, and null for stats-job and peek', async () => {
    await assert.rejects(conn.delete('999999999'), (error: unknown) => error instanceof NotFoundError && error.code === 'NOT_FOUND');
    await assert.rejects(conn.kickJob('999999999'), NotFoundError);
    assert.equal(await conn.statsJob('999999999'), null);
  });

  it('answers DEADLINE_SOON from a reserve as DeadlineSoonError, not as a job', async () => {
    const t = tube();
    const worker = await BeanstalkConnection.connect(conn.address);
    try {
      await worker.watch(t);
      await worker.ignore('default');
      await conn.putInTube(t, body('x'), { ...params, ttrSeconds: 2 });
      assert.ok(await worker.reserve(0));
      // The reserved job's last second arrives while this reserve waits.
      await assert.rejects(worker.reserve(5), DeadlineSoonError);
    } finally {
      await worker.quit();
    }
  });

  describe('validation writes nothing and keeps the connection usable', () => {
    const counters = async (): Promise<[number, number]> => {
      const stats = await conn.stats();
      return [Number(stats['cmd-put']), Number(stats['cmd-use'])];
    };
    const cases: [string, () => Promise<unknown>, RegExp, ErrorConstructor][] = [
      ['a tube with a space', () => conn.putInTube('a b', body('x'), params), /tube.*"a b"/, TypeError],
      ['a tube starting with -', () => conn.putInTube('-x', body('x'), params), /may not start with `-`/, TypeError],
      ['a 201-byte tube', () => conn.putInTube('t'.repeat(201), body('x'), params), /at most 200 bytes/, RangeError],
      ['a non-ASCII tube', () => conn.putInTube('tübe', body('x'), params), /tube/, TypeError],
      ['priority -1', () => conn.put(body('x'), { ...params, priority: -1 }), /`priority`.*`-1`/, RangeError],
      ['priority 2^32', () => conn.put(body('x'), { ...params, priority: 2 ** 32 }), /`priority`.*4294967296/, RangeError],
      ['priority 1.5', () => conn.put(body('x'), { ...params, priority: 1.5 }), /`priority`.*1\.5/, RangeError],
      ['delay NaN', () => conn.put(body('x'), { ...params, delaySeconds: Number.NaN }), /`delay`.*NaN/, RangeError],
      ['ttr 1', () => conn.put(body('x'), { ...params, ttrSeconds: 1 }), /`ttr`.*at least 2/, RangeError],
      ['ttr 0', () => conn.put(body('x'), { ...params, ttrSeconds: 0 }), /`ttr`.*at least 2/, RangeError],
      ['101 bytes', () => conn.put(Buffer.alloc(101, 'a'), params), /at most 100 bytes.*101 bytes/, RangeError],
      // 51 characters, 102 bytes: the limit is in bytes.
      ['51 x "é"', () => conn.put(body('é'.repeat(51)), params), /102 bytes/, RangeError],
      ['a job id that smuggles a command', () => conn.delete('1\r\ndelete 2'), /job id/, TypeError],
    ];
    for (const [name, call, message, type] of cases) {
      it(`refuses ${name}`, async () => {
        const before = await counters();
        await assert.rejects(call(), (error: unknown) => error instanceof type && message.test((error as Error).message));
        assert.deepEqual(await counters(), before, 'nothing reached the server');
        const t = tube();
        assert.match(await conn.putInTube(t, body('é'.repeat(50)), params), /^\d+$/, '100 bytes still go through');
      });
    }
  });

  it('pipelines many puts into several tubes on one connection', async () => {
    const tubes = [tube(), tube(), tube()];
    // Runs of one tube, then switches, then interleaved: every pattern of tube changes under pipelining.
    const order = Array.from({ length: 600 }, (_, i) => (i < 300 ? Math.floor(i / 100) : i % 3));
    const ids = await Promise.all(order.map((t, i) => conn.putInTube(tubes[t] as string, body(`job ${i}`), params)));
    assert.equal(new Set(ids).size, 600);
    for (const t of tubes) assert.equal((await rawStatsTube(server.url, t))?.['current-jobs-ready'], '200');
    const expectedTubes = order.map((t) => tubes[t]);
    // Every job landed where its own put said, not where a neighbour's use left the connection.
    const landed = await Promise.all(ids.map((id) => conn.statsJob(id)));
    for (const [i, stats] of landed.entries()) assert.equal(stats?.tube, expectedTubes[i], `job ${i}`);
  });
});

describe('BeanstalkConnection when the server goes away', () => {
  it('rejects every pending call with ConnectionError, and later calls at once', async () => {
    const server = await startBeanstalkd();
    const conn = await BeanstalkConnection.connect(parseServerUrl(server.url));
    await conn.watch('gone');
    // Attach the expectation before the kill: the rejection arrives while stop() is awaited.
    const pending = assert.rejects(conn.reserve(30), ConnectionError);
    await server.stop('SIGKILL');
    await pending;
    assert.equal(conn.isClosed, true);
    await assert.rejects(conn.stats(), ConnectionError);
    await conn.quit();
  });

  it('refuses to connect with a message naming the address and how to start beanstalkd', async () => {
    const port = await freePort();
    await assert.rejects(BeanstalkConnection.connect({ host: '127.0.0.1', port }), (error: unknown) => {
      assert.ok(error instanceof ConnectionError);
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.match(error.message, /beanstalkd -l 127\.0\.0\.1 -p \d+/);
      return true;
    });
  });

  it('answers DRAINING for a put once the server drains', async () => {
    const server = await startBeanstalkd();
    const conn = await BeanstalkConnection.connect(parseServerUrl(server.url));
    try {
      process.kill(server.pid, 'SIGUSR1');
      // The signal is handled asynchronously by the server: ask until it answers DRAINING (bounded).
      let error: unknown;
      for (let i = 0; i < 200 && !(error instanceof DrainingError); i += 1) {
        error = await conn.putInTube('d', body('x'), params).then(
          () => undefined,
          (e: unknown) => e,
        );
      }
      assert.ok(error instanceof DrainingError, `expected DrainingError, got ${String(error)}`);
      assert.equal((await conn.stats()).draining, 'true');
    } finally {
      await conn.quit();
      await server.stop();
    }
  });
});

describe('BeanstalkConnection against peers that are not beanstalkd', () => {
  /** A peer that answers each connection's first bytes with `reply` (or never, when undefined). */
  function fakePeer(reply: string | undefined): Promise<TcpPeer> {
    return startPeer((socket) => {
      if (reply !== undefined) socket.once('data', () => socket.write(reply));
    });
  }

  it('gives up on a peer that accepts but never answers, within connectTimeoutMs', async () => {
    const peer = await fakePeer(undefined);
    try {
      const started = Date.now();
      await assert.rejects(
        BeanstalkConnection.connect({ host: '127.0.0.1', port: peer.port }, { connectTimeoutMs: 300 }),
        /no answer within 300 ms/,
      );
      assert.ok(Date.now() - started < 5_000, 'rejected near the deadline, not after the OS gives up');
    } finally {
      await peer.close();
    }
  });

  it('does not crash on a reply body that is not beanstalkd YAML', async () => {
    const peer = await fakePeer('OK 4\r\n[[[[\r\n');
    try {
      const conn = await BeanstalkConnection.connect({ host: '127.0.0.1', port: peer.port }, { connectTimeoutMs: 2_000 });
      assert.equal(conn.maxJobSize, 65_535, 'no max-job-size in the reply: the default stands');
      await conn.quit();
    } finally {
      await peer.close();
    }
  });
});

describe('commandTimeoutMs', () => {
  it('drops a connection whose server answers the first command and then falls silent', async () => {
    // Answers the `stats` of connect(), then nothing: a hung or stopped beanstalkd.
    const peer = await startPeer((socket) => {
      socket.once('data', () => socket.write('OK 4\r\n---\n\r\n'));
    });
    try {
      const conn = await BeanstalkConnection.connect(
        { host: '127.0.0.1', port: peer.port },
        { connectTimeoutMs: 2_000, commandTimeoutMs: 300 },
      );
      await assert.rejects(
        conn.statsTube('t'),
        (error: unknown) => error instanceof ConnectionError && /did not answer stats-tube within 300 ms/.test(error.message),
      );
      assert.equal(conn.isClosed || (await conn.quit().then(() => true)), true);
    } finally {
      await peer.close();
    }
  });
});

describe('tube names that a YAML parser would read as numbers', () => {
  it('come back exactly from stats-job and list-tubes', async () => {
    const server = await startBeanstalkd();
    const conn = await BeanstalkConnection.connect(parseServerUrl(server.url));
    try {
      for (const name of ['1.0', '010', '1e3', '0x1A', '.inf', 'null', 'true']) {
        const id = await conn.putInTube(name, body('x'), params);
        assert.equal((await conn.statsJob(id))?.tube, name);
        assert.ok((await conn.listTubes()).includes(name), `${name} listed as itself`);
      }
    } finally {
      await conn.quit();
      await server.stop();
    }
  });
});
