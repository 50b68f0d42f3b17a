// putMany against a real server: ids in order, the put options on every job, bad input that puts
// nothing, a server failure part-way that says exactly which jobs were put, and the connection's window
// (MAX_IN_FLIGHT) under more puts than it lets through at once.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { BeanstalkConnection, MAX_IN_FLIGHT } from '../../src/beanstalk/connection.js';
import type { Beanstalk } from '../../src/beanstalk/types.js';
import { DrainingError, JobQueue, PutManyError } from '../../src/index.js';
import { type BeanstalkdServer, rawCommand, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';

const tube = (): string => `pm-${randomUUID().slice(0, 8)}`;
const silent = pino({ level: 'silent' });

/** One counter of the server's `stats`. */
async function serverStat(url: string, key: string): Promise<string> {
  const reply = await rawCommand(url, 'stats\r\n');
  const match = new RegExp(`^${key}: (\\S+)$`, 'm').exec(reply);
  assert.ok(match?.[1] !== undefined, `stats has ${key}`);
  return match[1];
}

/** The kwargs of a job, read back from the server with `peek`. */
async function peekKwargs(url: string, id: string): Promise<unknown> {
  const reply = await rawCommand(url, `peek ${id}\r\n`);
  assert.match(reply, new RegExp(`^FOUND ${id} \\d+\\r\\n`));
  const body = reply.slice(reply.indexOf('\r\n') + 2, -2);
  return (JSON.parse(body) as { kwargs: unknown }).kwargs;
}

/** The number of jobs the server holds in `t`; 0 when the tube does not exist (nothing was ever put). */
async function jobsInTube(url: string, t: string): Promise<number> {
  const stats = await rawStatsTube(url, t);
  return stats === null ? 0 : Number(stats['total-jobs']);
}

/** Sends SIGUSR1 (drain mode: `put` answers DRAINING) and waits until the server reports it. */
async function drain(server: BeanstalkdServer): Promise<void> {
  process.kill(server.pid, 'SIGUSR1');
  // The signal is asynchronous and has no event to await from here: poll the server's own flag.
  const deadline = Date.now() + 5_000;
  while ((await serverStat(server.url, 'draining')) !== 'true') {
    assert.ok(Date.now() < deadline, 'beanstalkd entered drain mode after SIGUSR1');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Asserts that ids are decimal and strictly increasing, i.e. distinct and put in this order. */
function assertIncreasing(ids: readonly string[]): void {
  for (const [i, id] of ids.entries()) {
    assert.match(id, /^\d+$/, `id ${i}`);
    if (i > 0) assert.ok(Number(id) > Number(ids[i - 1]), `id ${i} (${id}) comes after id ${i - 1} (${ids[i - 1]})`);
  }
}

describe('putMany against beanstalkd', () => {
  let server: BeanstalkdServer;
  before(async () => {
    server = await startBeanstalkd();
  });
  after(async () => server?.stop());

  it('puts 3,000 jobs and resolves to their ids in order, each with its own kwargs and the put options', async () => {
    const queue = new JobQueue({ url: server.url, logger: silent });
    const t = tube();
    const item = queue.task(t)(async function item(_kw: { i: number; label: string }) {});
    try {
      const list = Array.from({ length: 3_000 }, (_, i) => ({ i, label: `item-${i}` }));
      const ids = await item.putMany(list, { priority: 7, ttr: 30 });
      assert.equal(ids.length, 3_000);
      assertIncreasing(ids);
      for (const i of [0, 1, 1_499, 2_998, 2_999]) {
        assert.deepEqual(await peekKwargs(server.url, ids[i] as string), { i, label: `item-${i}` }, `kwargs of item ${i}`);
      }
      const stats = await rawStatsTube(server.url, t);
      assert.equal(stats?.['current-jobs-ready'], '3000');
      assert.equal(stats?.['total-jobs'], '3000');
      for (const i of [0, 1_500, 2_999]) {
        const job = await rawStatsJob(server.url, ids[i] as string);
        assert.equal(job?.tube, t);
        assert.equal(job?.pri, '7', `priority of item ${i}`);
        assert.equal(job?.ttr, '30', `ttr of item ${i}`);
        assert.equal(job?.delay, '0', `delay of item ${i}`);
        assert.equal(job?.state, 'ready');
      }
    } finally {
      await queue.close();
    }
  });

  it("falls back to the task's options, then the queue's defaults, field by field, as put() does", async () => {
    const queue = new JobQueue({ url: server.url, logger: silent, defaults: { priority: 900, ttr: 120, delay: 5 } });
    const t = tube();
    const task = queue.task(t, { priority: 10 })(async function layered(_kw: { n: number }) {});
    try {
      const check = async (ids: string[], expected: { pri: string; delay: string; ttr: string; state: string }): Promise<void> => {
        for (const id of ids) {
          const job = await rawStatsJob(server.url, id);
          assert.deepEqual({ pri: job?.pri, delay: job?.delay, ttr: job?.ttr, state: job?.state }, expected, `job ${id}`);
        }
      };
      // No call options: priority from the task, delay and ttr from the queue.
      await check(await task.putMany([{ n: 1 }, { n: 2 }]), { pri: '10', delay: '5', ttr: '120', state: 'delayed' });
      // Call options win over both, one field at a time.
      await check(await task.putMany([{ n: 3 }, { n: 4 }, { n: 5 }], { delay: 0, ttr: 45 }), {
        pri: '10',
        delay: '0',
        ttr: '45',
        state: 'ready',
      });
      await check(await task.putMany([{ n: 6 }], { priority: 3, window: 1 }), { pri: '3', delay: '5', ttr: '120', state: 'delayed' });
      // And put() agrees with putMany() for the same layers.
      const single = await task.put({ n: 7 });
      await check([single], { pri: '10', delay: '5', ttr: '120', state: 'delayed' });
      const stats = await rawStatsTube(server.url, t);
      assert.equal(stats?.['current-jobs-delayed'], '4');
      assert.equal(stats?.['current-jobs-ready'], '3');
    } finally {
      await queue.close();
    }
  });

  it('puts nothing when an item cannot be encoded, and names the item and the path', async () => {
    const queue = new JobQueue({ url: server.url, logger: silent });
    const t = tube();
    const task = queue.task(t)(async function encodeCheck(_kw: Record<string, unknown>) {});
    try {
      const putsBefore = await serverStat(server.url, 'cmd-put');
      const withBigInt = Array.from({ length: 100 }, (_, i): Record<string, unknown> => ({ i }));
      withBigInt[57] = { i: 57, big: 10n };
      await assert.rejects(task.putMany(withBigInt), (error: unknown) => {
        assert.ok(error instanceof TypeError, `a TypeError, got ${String(error)}`);
        assert.match(error.message, /\bitem 57\b/);
        assert.match(error.message, /kwargs\.big:/);
        assert.match(error.message, /BigInt/);
        return true;
      });
      const withUndefined = Array.from({ length: 100 }, (_, i): Record<string, unknown> => ({ i }));
      withUndefined[57] = { i: 57, user: { id: undefined } };
      await assert.rejects(task.putMany(withUndefined), (error: unknown) => {
        assert.ok(error instanceof TypeError, `a TypeError, got ${String(error)}`);
        assert.match(error.message, /\bitem 57\b/);
        assert.match(error.message, /kwargs\.user\.id:/);
        return true;
      });
      const notAnObject: unknown[] = [{ i: 0 }, { i: 1 }, 'hello'];
      await assert.rejects(task.putMany(notAnObject as Record<string, unknown>[]), (error: unknown) => {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, /\bitem 2\b/);
        return true;
      });
      await assert.rejects(task.putMany({ i: 1 } as unknown as Record<string, unknown>[]), /array/);

      assert.equal(await jobsInTube(server.url, t), 0, 'no job in the tube');
      assert.equal(await serverStat(server.url, 'cmd-put'), putsBefore, 'no put reached the server');
    } finally {
      await queue.close();
    }
  });

  it('refuses unknown options and a bad window before putting anything; window 1 and MAX_IN_FLIGHT work', async () => {
    const queue = new JobQueue({ url: server.url, logger: silent });
    const t = tube();
    const task = queue.task(t)(async function windowCheck(_kw: { n: number }) {});
    const list = Array.from({ length: 20 }, (_, n) => ({ n }));
    try {
      const putsBefore = await serverStat(server.url, 'cmd-put');
      await assert.rejects(
        task.putMany(list, { prio: 1 } as never),
        (error: unknown) => error instanceof TypeError && /Unknown option `prio`/.test(error.message) && /`priority`/.test(error.message),
      );
      await assert.rejects(
        task.putMany(list, { windowSize: 10 } as never),
        (error: unknown) => error instanceof TypeError && /Unknown option `windowSize`/.test(error.message),
      );
      await assert.rejects(task.putMany(list, { ttr: 1 }), /ttr/);
      for (const window of [0, -1, 1.5, Number.NaN, MAX_IN_FLIGHT + 1, 5_000]) {
        await assert.rejects(
          task.putMany(list, { window }),
          (error: unknown) =>
            error instanceof RangeError && error.message.includes('`window`') && error.message.includes(`1 to ${MAX_IN_FLIGHT}`),
          `window ${window}`,
        );
      }
      await assert.rejects(task.putMany(list, { window: '8' as unknown as number }), TypeError);
      assert.equal(await serverStat(server.url, 'cmd-put'), putsBefore, 'no put reached the server');
      assert.equal(await jobsInTube(server.url, t), 0);

      const one = await task.putMany(list, { window: 1 });
      assert.equal(one.length, 20);
      assertIncreasing(one);
      const widest = await task.putMany(list, { window: MAX_IN_FLIGHT });
      assertIncreasing(widest);
      assert.equal(await jobsInTube(server.url, t), 40);
      assert.deepEqual(await peekKwargs(server.url, one[19] as string), { n: 19 });
    } finally {
      await queue.close();
    }
  });

  it('resolves an empty array to [] without opening a connection', async () => {
    const queue = new JobQueue({ url: server.url, logger: silent });
    const task = queue.task(tube())(async function emptyBatch(_kw: { n: number }) {});
    try {
      const before = Number(await serverStat(server.url, 'total-connections'));
      assert.deepEqual(await task.putMany([]), []);
      assert.deepEqual(await queue.putMany(task, [], { priority: 1 }), []);
      // +1 for this stats probe only: the queue opened nothing.
      assert.equal(Number(await serverStat(server.url, 'total-connections')) - before, 1);
    } finally {
      await queue.close();
    }
  });

  it('keeps 10,000 concurrent put()s, more than MAX_IN_FLIGHT, in order on one connection', async () => {
    assert.ok(MAX_IN_FLIGHT < 10_000, 'the test needs more puts than the window');
    const queue = new JobQueue({ url: server.url, logger: silent });
    const t = tube();
    const ping = queue.task(t)(async function windowPing(_kw: { n: number }) {});
    try {
      const before = Number(await serverStat(server.url, 'total-connections'));
      const ids = await Promise.all(Array.from({ length: 10_000 }, (_, n) => ping.put({ n })));
      assert.equal(Number(await serverStat(server.url, 'total-connections')) - before, 2, 'one connection, plus this probe');
      assert.equal(new Set(ids).size, 10_000);
      // The connection sends waiting commands in call order, so the server numbers them in that order.
      assertIncreasing(ids);
      assert.deepEqual(await peekKwargs(server.url, ids[9_999] as string), { n: 9_999 });
      assert.deepEqual(await peekKwargs(server.url, ids[MAX_IN_FLIGHT] as string), { n: MAX_IN_FLIGHT });
      assert.equal((await rawStatsTube(server.url, t))?.['current-jobs-ready'], '10000');
    } finally {
      await queue.close();
    }
  });

  it('works through queue.putMany for a decorated static method, and refuses a function that is not a task', async () => {
    const queue = new JobQueue({ url: server.url, logger: silent });
    const t = tube();
    class Emails {
      @queue.task(t, { ttr: 90 })
      static async welcome(_kw: { to: string }): Promise<void> {}
      static async plain(_kw: { to: string }): Promise<void> {}
    }
    try {
      const ids = await queue.putMany(Emails.welcome, [{ to: 'a@b.c' }, { to: 'd@e.f' }], { priority: 2 });
      assert.equal(ids.length, 2);
      assertIncreasing(ids);
      const reply = await rawCommand(server.url, `peek ${ids[1]}\r\n`);
      assert.match(reply, /\{"func_name":"welcome","tube":"pm-[0-9a-f]{8}","kwargs":\{"to":"d@e\.f"\}\}/);
      const job = await rawStatsJob(server.url, ids[0] as string);
      assert.equal(job?.pri, '2');
      assert.equal(job?.ttr, '90');

      await assert.rejects(
        queue.putMany(Emails.plain, [{ to: 'x' }]),
        (error: unknown) => error instanceof TypeError && /`plain` is not a registered task/.test(error.message),
      );
      await assert.rejects(queue.putMany((async () => {}) as (kw: { a: number }) => Promise<void>, [{ a: 1 }]), TypeError);
      assert.equal(await jobsInTube(server.url, t), 2);
    } finally {
      await queue.close();
    }
    await assert.rejects(queue.putMany(Emails.welcome, [{ to: 'late' }]), /closed/);
  });
});

describe('putMany: body size', () => {
  let small: BeanstalkdServer;
  before(async () => {
    small = await startBeanstalkd({ maxJobSize: 256 });
  });
  after(async () => small?.stop());

  it("refuses a body over the server's max-job-size at item 3 before putting any item", async () => {
    const queue = new JobQueue({ url: small.url, logger: silent });
    const t = tube();
    const task = queue.task(t)(async function sized(_kw: { text: string }) {});
    try {
      const list = [{ text: 'a' }, { text: 'b' }, { text: 'c' }, { text: 'x'.repeat(300) }, { text: 'e' }];
      await assert.rejects(task.putMany(list), (error: unknown) => {
        assert.ok(error instanceof RangeError, `a RangeError, got ${String(error)}`);
        assert.match(error.message, /\bitem 3\b/);
        assert.match(error.message, /at most 256 bytes/);
        return true;
      });
      assert.equal(await jobsInTube(small.url, t), 0);
      assert.equal(await serverStat(small.url, 'cmd-put'), '0', 'no put reached the server');
      // The connection is still good for a batch that fits.
      const ids = await task.putMany([{ text: 'a' }, { text: 'b' }]);
      assertIncreasing(ids);
      assert.equal(await jobsInTube(small.url, t), 2);
    } finally {
      await queue.close();
    }
  });
});

describe('putMany: a server failure part-way (drain mode)', () => {
  it('rejects with a PutManyError whose ids are all undefined when the server drains from the start', async () => {
    const own = await startBeanstalkd();
    const queue = new JobQueue({ url: own.url, logger: silent });
    const t = tube();
    const task = queue.task(t)(async function drained(_kw: { n: number }) {});
    try {
      await drain(own);
      const error = await task.putMany(Array.from({ length: 50 }, (_, n) => ({ n }))).then(
        () => assert.fail('putMany resolved while the server drains'),
        (caught: unknown) => caught,
      );
      assert.ok(error instanceof PutManyError, `a PutManyError, got ${String(error)}`);
      assert.equal(error.jobIds.length, 50);
      assert.ok(
        error.jobIds.every((id) => id === undefined),
        'no item has an id',
      );
      assert.equal(error.failedIndex, 0);
      assert.ok(error.cause instanceof DrainingError, `the cause is the server's DRAINING, got ${String(error.cause)}`);
      assert.match(error.message, /item 0 failed.*0 of 50 jobs were put/);
      assert.equal(await jobsInTube(own.url, t), 0);
    } finally {
      await queue.close();
      await own.stop();
    }
  });

  it('says exactly which items were put when the server starts draining at item 20 (window 8)', async () => {
    const own = await startBeanstalkd();
    const FAIL_AT = 20;
    const WINDOW = 8;
    // A hook between putMany and the real connection: put number FAIL_AT (and every later one) waits until
    // every earlier put has been answered and the server is draining, then goes to the server. Items
    // 0..19 are therefore on the server, and every put from 20 on gets DRAINING, whatever the timing.
    let calls = 0;
    let unsettled = 0;
    const earlier: Promise<unknown>[] = [];
    let drained: Promise<void> | undefined;
    const hook = (connection: BeanstalkConnection): Beanstalk => {
      const putInTube = (t: string, body: Buffer, params: Parameters<Beanstalk['putInTube']>[2]): Promise<string> => {
        const index = calls;
        calls += 1;
        unsettled += 1;
        let sent: Promise<string>;
        if (index < FAIL_AT) {
          sent = connection.putInTube(t, body, params);
          earlier.push(sent.catch(() => undefined));
        } else {
          drained ??= Promise.all(earlier).then(() => drain(own));
          sent = drained.then(() => connection.putInTube(t, body, params));
        }
        return sent.finally(() => {
          unsettled -= 1;
        });
      };
      return new Proxy(connection, {
        get(target, property) {
          if (property === 'putInTube') return putInTube;
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    };
    const queue = new JobQueue({
      url: own.url,
      logger: silent,
      connect: async (address, options) => hook(await BeanstalkConnection.connect(address, options)),
    });
    const t = tube();
    const task = queue.task(t)(async function partly(_kw: { n: number }) {});
    try {
      const list = Array.from({ length: 60 }, (_, n) => ({ n }));
      const error = await task.putMany(list, { window: WINDOW }).then(
        () => assert.fail('putMany resolved while the server drains'),
        (caught: unknown) => caught,
      );
      assert.ok(error instanceof PutManyError, `a PutManyError, got ${String(error)}`);
      assert.equal(unsettled, 0, 'putMany settled only after every put in flight was answered');
      // No new put starts after the failure: only the ones already in the window were sent.
      assert.equal(calls, FAIL_AT + WINDOW);
      assert.equal(error.failedIndex, FAIL_AT);
      assert.ok(error.cause instanceof DrainingError, `the cause is the server's DRAINING, got ${String(error.cause)}`);
      assert.match(error.message, /item 20 failed.*20 of 60 jobs were put/);
      assert.equal(error.jobIds.length, 60);

      const put = error.jobIds.slice(0, FAIL_AT);
      assert.ok(
        error.jobIds.slice(FAIL_AT).every((id) => id === undefined),
        'items from 20 on have no id',
      );
      assertIncreasing(put as string[]);
      for (const [n, id] of put.entries()) {
        const job = await rawStatsJob(own.url, id as string);
        assert.equal(job?.tube, t, `job of item ${n} is on the server`);
        assert.deepEqual(await peekKwargs(own.url, id as string), { n });
      }
      const stats = await rawStatsTube(own.url, t);
      assert.equal(stats?.['total-jobs'], String(FAIL_AT), 'nothing else was put');
      assert.equal(stats?.['current-jobs-ready'], String(FAIL_AT));
    } finally {
      await queue.close();
      await own.stop();
    }
  });
});

describe('putMany inline', () => {
  it('runs the task once per item, in order, and resolves to inline ids', async () => {
    const queue = new JobQueue({ inline: true, logger: silent });
    const seen: unknown[] = [];
    const task = queue.task(tube())(async function inlineBatch(kw: { n: number; when: Date }) {
      await new Promise((resolve) => setImmediate(resolve));
      seen.push(kw);
    });
    const when = new Date('2026-01-02T03:04:05.000Z');
    const ids = await task.putMany([0, 1, 2, 3].map((n) => ({ n, when })));
    assert.equal(ids.length, 4);
    assert.equal(new Set(ids).size, 4);
    for (const id of ids) assert.match(id, /^inline-\d+$/);
    // In order, one after the other, and through the wire format (the Date arrives as a string).
    assert.deepEqual(
      seen,
      [0, 1, 2, 3].map((n) => ({ n, when: '2026-01-02T03:04:05.000Z' })),
    );
    assert.deepEqual(await task.putMany([]), []);
  });

  it('puts nothing (runs nothing) when item 3 is over the default max-job-size', async () => {
    const queue = new JobQueue({ inline: true, logger: silent });
    let runs = 0;
    const task = queue.task(tube())(async function inlineSized(_kw: { text: string }) {
      runs += 1;
    });
    const list = [{ text: 'a' }, { text: 'b' }, { text: 'c' }, { text: 'x'.repeat(70_000) }];
    const error = await task.putMany(list).then(
      () => assert.fail('putMany resolved with an oversized item'),
      (caught: unknown) => caught,
    );
    assert.equal(runs, 0, 'no item ran: bad input puts nothing, inline as on a server');
    assert.ok(error instanceof RangeError, `a RangeError, got ${String(error)}`);
    assert.match(error.message, /at most 65535 bytes/);
    assert.match(error.message, /\bitem 3\b/);
  });
});
