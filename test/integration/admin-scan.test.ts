// Listing a tube's jobs by scanning recent ids, against a real beanstalkd: more jobs than a page,
// interleaved with jobs of other tubes and states and deleted ids, paged by cursor until exhausted; the
// scan bound and the time bound reported; and, after a restart from a binlog, ids that go on above the
// server's total-jobs found by the peeks and the upward probe.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Admin } from '../../src/admin/admin.js';
import type { JobPage } from '../../src/admin/types.js';
import { resolveServerAddress } from '../../src/beanstalk/address.js';
import { BeanstalkConnection } from '../../src/beanstalk/connection.js';
import type { Beanstalk } from '../../src/beanstalk/types.js';
import { type BeanstalkdServer, freePort, rawPut, startBeanstalkd } from '../helpers/beanstalkd.js';
import { bury } from '../helpers/raw-session.js';
import { freshTube } from '../helpers/real-worker.js';

const TEST_TIMEOUT = { timeout: 30_000 };
const PARAMS = { priority: 1024, delaySeconds: 0, ttrSeconds: 60 };

/** Every page of `tube` in `state`, following the cursors until exhausted. */
async function allPages(admin: Admin, tube: string, state: 'buried' | 'ready' | 'delayed' | null, limit: number): Promise<JobPage[]> {
  const pages: JobPage[] = [];
  let cursor: string | null = null;
  for (let n = 0; n < 100; n += 1) {
    const page = await admin.jobs(tube, state, { limit, cursor });
    pages.push(page);
    if (page.exhausted) return pages;
    assert.ok(page.nextCursor !== null, 'a page that is not the last has a cursor');
    cursor = page.nextCursor;
  }
  assert.fail('more than 100 pages');
}

describe('listing jobs by a scan of recent ids', () => {
  let server: BeanstalkdServer;
  let admin: Admin;
  let connection: Beanstalk;

  before(async () => {
    server = await startBeanstalkd();
    admin = new Admin({ urls: [server.url] });
    connection = await BeanstalkConnection.connect(resolveServerAddress(server.url));
  });
  after(async () => {
    await connection?.quit();
    await admin?.close();
    await server?.stop();
  });

  /** Puts a mix into `t` and `u`: per round a buried, a ready, a delayed and a deleted job in t, and a buried job in u. */
  async function mixedJobs(
    t: string,
    u: string,
    rounds: number,
  ): Promise<{ buried: string[]; ready: string[]; delayed: string[]; other: string[] }> {
    const ids = { buried: [] as string[], ready: [] as string[], delayed: [] as string[], other: [] as string[] };
    for (let n = 0; n < rounds; n += 1) {
      ids.buried.push(await connection.putInTube(t, Buffer.from(`{"func_name":"f","tube":"${t}","kwargs":{"n":${n}}}`), PARAMS));
      ids.other.push(await connection.putInTube(u, Buffer.from('other'), PARAMS));
      ids.ready.push(await connection.putInTube(t, Buffer.from('ready'), PARAMS));
      ids.delayed.push(await connection.putInTube(t, Buffer.from('delayed'), { ...PARAMS, delaySeconds: 3_600 }));
      await connection.delete(await connection.putInTube(t, Buffer.from('gone'), PARAMS));
    }
    await bury(server, [...ids.buried, ...ids.other]);
    return ids;
  }

  it('pages through more buried jobs than a page, newest first, none twice, none of another tube or state', TEST_TIMEOUT, async () => {
    const [t, u] = [freshTube('scan'), freshTube('scan')];
    const ids = await mixedJobs(t, u, 25);

    const pages = await allPages(admin, t, 'buried', 7);
    const listed = pages.flatMap((page) => page.jobs.map((job) => job.id));
    assert.deepEqual(listed, [...ids.buried].reverse(), 'every buried job of t, newest first');
    assert.ok(pages.length >= 4, `${pages.length} pages of at most 7`);
    for (const page of pages.slice(0, -1)) {
      assert.equal(page.jobs.length, 7);
      assert.equal(page.stoppedBy, 'limit');
      assert.equal(page.nextCursor, page.jobs.at(-1)?.id, 'the next page goes on below the last job listed');
    }
    const last = pages.at(-1);
    assert.deepEqual([last?.exhausted, last?.nextCursor, last?.stoppedBy], [true, null, 'end']);
    for (const job of pages.flatMap((page) => page.jobs)) {
      assert.deepEqual([job.tube, job.state, job.server], [t, 'buried', server.url]);
      assert.equal(job.envelope?.func_name, 'f', 'the body is read and decoded');
    }

    const [ready, delayed, every] = await Promise.all([
      allPages(admin, t, 'ready', 1_000),
      allPages(admin, t, 'delayed', 1_000),
      allPages(admin, t, null, 1_000),
    ]);
    assert.deepEqual(
      ready.flatMap((page) => page.jobs.map((job) => job.id)),
      [...ids.ready].reverse(),
    );
    assert.deepEqual(
      delayed.flatMap((page) => page.jobs.map((job) => job.id)),
      [...ids.delayed].reverse(),
    );
    assert.equal(every.flatMap((page) => page.jobs).length, 75, 'every state: buried, ready and delayed');
    const others = await allPages(admin, u, 'buried', 1_000);
    assert.deepEqual(
      others.flatMap((page) => page.jobs.map((job) => job.id)),
      [...ids.other].reverse(),
    );
  });

  it('finds a reserved job; an explicit cursor starts below it', TEST_TIMEOUT, async () => {
    const t = freshTube('scan');
    const [a, b, c] = [await rawPut(server.url, t, 'a'), await rawPut(server.url, t, 'b'), await rawPut(server.url, t, 'c')];
    const socket = createConnection({ host: '127.0.0.1', port: server.port });
    try {
      const reply = await new Promise<string>((resolve) =>
        socket.once('data', (chunk) => resolve(String(chunk))).write(`reserve-job ${b}\r\n`),
      );
      assert.match(reply, /^RESERVED /);
      const reserved = await admin.jobs(t, 'reserved');
      assert.deepEqual(
        reserved.jobs.map((job) => [job.id, job.state, job.raw]),
        [[b, 'reserved', 'b']],
      );
    } finally {
      socket.destroy();
    }
    const below = await admin.jobs(t, 'ready', { cursor: c });
    assert.equal(below.startId, String(Number(c) - 1));
    assert.deepEqual(
      below.jobs.map((job) => job.id),
      [b, a],
      'ids below the cursor only (b is ready again: its reservation ended with the socket)',
    );
  });

  it('reports the scan bound: scanned ids, where it stopped, and the cursor to go on', TEST_TIMEOUT, async () => {
    const t = freshTube('bound');
    const ids: string[] = [];
    for (let n = 0; n < 30; n += 1) ids.push(await connection.putInTube(t, Buffer.from('x'), PARAMS));
    await bury(server, ids);
    const first = await admin.jobs(t, 'buried', { scan: 10, limit: 1_000 });
    assert.equal(first.stoppedBy, 'scan-bound');
    assert.equal(first.scanned, 10);
    assert.equal(first.exhausted, false);
    const start = BigInt(first.startId ?? '0');
    assert.ok(start >= BigInt(ids.at(-1) ?? '0'), `the scan starts at the highest id (${start})`);
    assert.equal(first.nextCursor, String(start - 9n));
    const next = await admin.jobs(t, 'buried', { scan: 10, limit: 1_000, cursor: first.nextCursor });
    assert.equal(next.startId, String(start - 10n), 'the next page starts just below');
    const both = [...first.jobs, ...next.jobs].map((job) => job.id);
    assert.equal(new Set(both).size, both.length, 'no job on two pages');
    assert.deepEqual(both, [...ids].reverse().slice(0, both.length));
    assert.ok(both.length >= 10, `${both.length} jobs in 20 ids`);
  });

  it(
    'reports the time bound: a page that runs out of time says so, and the next page starts at the unanswered id',
    TEST_TIMEOUT,
    async () => {
      const t = freshTube('slow');
      const ids: string[] = [];
      for (let n = 0; n < 10; n += 1) ids.push(await connection.putInTube(t, Buffer.from('x'), PARAMS));
      await bury(server, ids);
      const slowFrom = BigInt(ids[4] as string);
      // stats-job of the older half answers late: the page must end at its deadline with the newer half.
      const slow = new Admin({
        urls: [server.url],
        connect: async (address, options) => {
          const real = await BeanstalkConnection.connect(address, options);
          return new Proxy(real, {
            get(target, property) {
              if (property === 'statsJob') {
                return async (id: string) => {
                  if (BigInt(id) <= slowFrom) await new Promise((resolve) => setTimeout(resolve, 1_500));
                  return target.statsJob(id);
                };
              }
              const value = Reflect.get(target, property, target);
              return typeof value === 'function' ? value.bind(target) : value;
            },
          });
        },
      });
      try {
        const started = Date.now();
        const page = await slow.jobs(t, 'buried', { timeoutMs: 400, limit: 1_000 });
        assert.ok(Date.now() - started < 1_400, `it returned at its deadline (${Date.now() - started} ms), not after the slow replies`);
        assert.equal(page.stoppedBy, 'deadline');
        assert.equal(page.exhausted, false);
        assert.deepEqual(
          page.jobs.map((job) => job.id),
          ids.slice(5).reverse(),
        );
        assert.equal(page.nextCursor, String(slowFrom + 1n));
      } finally {
        await slow.close();
      }
    },
  );

  it('an empty tube, or one that does not exist: an empty page that is exhausted', TEST_TIMEOUT, async () => {
    const page = await admin.jobs(freshTube('none'), 'buried');
    assert.deepEqual([page.jobs, page.exhausted, page.nextCursor, page.stoppedBy], [[], true, null, 'end']);
    assert.ok(page.scanned > 0, 'it scanned the ids to find out');
    const { ids, page: idsPage } = await admin.jobIds(freshTube('none'), 'ready', { limit: 5 });
    assert.deepEqual([ids, idsPage.exhausted], [[], true]);
  });
});

describe('the scan after a restart from a binlog', () => {
  it('finds jobs whose ids go on above total-jobs: by the peeks at the tube heads and the upward probe', TEST_TIMEOUT, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bsworker-scan-binlog-'));
    const port = await freePort();
    let server = await startBeanstalkd({ binlogDir: dir, port });
    try {
      const [old, t] = [freshTube('old'), freshTube('new')];
      const connection = await BeanstalkConnection.connect(resolveServerAddress(server.url));
      const ids = await Promise.all(Array.from({ length: 400 }, () => connection.putInTube(old, Buffer.from('x'), PARAMS)));
      await bury(server, [ids[0] as string]);
      await Promise.all(ids.slice(1).map((id) => connection.delete(id)));
      await connection.quit();
      await server.stop();
      server = await startBeanstalkd({ binlogDir: dir, port });

      const fresh: string[] = [];
      for (let n = 0; n < 3; n += 1) fresh.push(await rawPut(server.url, t, 'after the restart'));
      await bury(server, fresh);
      assert.ok(Number(fresh[0]) > 400, `ids went on after the restart (${fresh[0]})`);

      const admin = new Admin({ urls: [server.url] });
      try {
        const total = (await admin.servers())[0]?.stats?.jobs.total ?? 0;
        assert.ok(total < Number(fresh[0]), `total-jobs (${total}) alone would start the scan below the new jobs`);
        const page = await admin.jobs(t, 'buried');
        assert.deepEqual(
          page.jobs.map((job) => job.id),
          [...fresh].reverse(),
          'all three, though total-jobs counts only the jobs since the restart',
        );
        assert.equal(page.startId, fresh.at(-1), 'the probe found the highest id');
        assert.equal((await admin.jobs(old, 'buried')).jobs[0]?.id, ids[0], 'and the job from before the restart');
      } finally {
        await admin.close();
      }
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
