// Faults that once wedged a slot or cycled a job for ever, each against a real beanstalkd: thrown values
// that cannot be coerced, a `then` getter that throws, dead letters too big for the server, bodies that
// are not UTF-8, UnrecoverableError with auto-kick, a server that stops answering on the failure path,
// and a task that blocks the event loop past its TTR.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { resolveServerAddress } from '../../src/beanstalk/address.js';
import { BeanstalkConnection } from '../../src/beanstalk/connection.js';
import { UNDESCRIBABLE } from '../../src/logging/logger.js';
import { UnrecoverableError } from '../../src/tasks/errors.js';
import { JobQueue } from '../../src/tasks/queue.js';
import { originalBody } from '../../src/worker/dead-letter.js';
import {
  type BeanstalkdServer,
  rawCommand,
  rawPeekBody,
  rawPut,
  rawStatsJob,
  rawStatsTube,
  startBeanstalkd,
} from '../helpers/beanstalkd.js';
import { deferred, eventsOf, freshTube, registry, startWorker, until } from '../helpers/real-worker.js';

const silent = pino({ level: 'silent' });

/** A Proxy every trap of which throws: reading anything of it, even its prototype, throws. */
function hostileProxy(): object {
  const trap = () => {
    throw new Error('trap');
  };
  return new Proxy(
    {},
    { get: trap, getPrototypeOf: trap, has: trap, ownKeys: trap, getOwnPropertyDescriptor: trap, apply: trap, set: trap },
  );
}

/** An object whose toJSON and Symbol.toStringTag both throw: JSON.stringify and Object.prototype.toString fail. */
function hostileObject(): object {
  return {
    toJSON() {
      throw new Error('toJSON');
    },
    get [Symbol.toStringTag]() {
      throw new Error('toStringTag');
    },
  };
}

describe('worker faults against beanstalkd', () => {
  let server: BeanstalkdServer;
  let queue: JobQueue;

  before(async () => {
    server = await startBeanstalkd();
    queue = new JobQueue({ url: server.url, logger: silent });
  });
  after(async () => {
    await queue?.close();
    await server?.stop();
  });

  it('buries a job whose task throws (or rejects with) a value that cannot be described, and goes on at -c 1', async (t) => {
    const tb = freshTube('coerce');
    const task = queue.task(tb)(async function hostile(kw: { how: string }) {
      if (kw.how === 'reject-proxy') throw hostileProxy();
      if (kw.how === 'reject-object') throw hostileObject();
      return 'fine';
    });
    registry.task(tb)(function hostileSync(kw: { how: string }) {
      if (kw.how === 'throw-proxy') throw hostileProxy();
      throw hostileObject();
    });
    registry.task(tb)(function badThen(_kw: object) {
      return {
        // biome-ignore lint/suspicious/noThenProperty: the hostile return value under test.
        get then() {
          throw new Error('then getter');
        },
      };
    });
    const { events, logs } = await startWorker(t, { tubes: [tb], url: server.url, concurrency: 1 });
    const ids = [
      await task.put({ how: 'reject-proxy' }),
      await task.put({ how: 'reject-object' }),
      await rawPut(server.url, tb, JSON.stringify({ func_name: 'hostileSync', tube: tb, kwargs: { how: 'throw-proxy' } })),
      await rawPut(server.url, tb, JSON.stringify({ func_name: 'hostileSync', tube: tb, kwargs: { how: 'throw-object' } })),
      await rawPut(server.url, tb, JSON.stringify({ func_name: 'badThen', tube: tb, kwargs: {} })),
    ];
    const good = await task.put({ how: 'none' });
    await events.waitFor('job:deleted', (e) => e.jobId === good, 10_000);
    for (const id of ids) {
      const buried = eventsOf(events, 'job:buried', id);
      assert.equal(buried.length, 1, `job ${id} is buried`);
      assert.equal((await rawStatsJob(server.url, buried[0].buriedAs))?.state, 'buried', 'as a copy with its failure record');
    }
    const undescribed = logs.lines.filter((line) => (line.err as { message?: string } | undefined)?.message === UNDESCRIBABLE);
    assert.equal(undescribed.length, 4, 'each hostile value is logged as one that could not be described');
    const thenError = eventsOf(events, 'job:failed', ids[4] as string)[0];
    assert.equal(thenError.error.message, 'then getter');
  });

  it('a dead letter too big for the server never cycles: the message is capped, or the original body goes there alone', async (t) => {
    const tb = freshTube('big');
    const dead = freshTube('big-dead');
    registry.task(tb)(function failsLoudly(kw: { loud?: boolean }) {
      throw new Error(kw.loud ? 'x'.repeat(100_000) : 'plain failure');
    });
    const { events, logs } = await startWorker(t, {
      tubes: [tb],
      url: server.url,
      maxKicks: 1,
      kickPeriodSeconds: 1,
      deadLetterTube: dead,
    });
    const envelope = (pad: number) => JSON.stringify({ func_name: 'failsLoudly', tube: tb, kwargs: { pad: 'p'.repeat(pad) } });
    const overhead = Buffer.byteLength(envelope(0));
    const nearLimit = await rawPut(server.url, tb, envelope(65_414 - overhead));
    const loud = await rawPut(server.url, tb, JSON.stringify({ func_name: 'failsLoudly', tube: tb, kwargs: { loud: true } }));
    const noisy = randomBytes(60_000);
    const noise = await rawPut(server.url, tb, noisy);

    // The loud one is buried as a copy with its record (a new id); the other two leave no room for a
    // record (or are not JSON) and are buried as they are.
    const buriedAs: string[] = [];
    for (const id of [nearLimit, loud, noise]) {
      const buried = await events.waitFor('job:buried', (e) => e.jobId === id, 15_000);
      buriedAs.push(buried.buriedAs ?? id);
    }
    assert.deepEqual(
      buriedAs.map((id, i) => id !== [nearLimit, loud, noise][i]),
      [false, true, false],
    );
    for (const id of buriedAs) await events.waitFor('job:deleted', (e) => e.jobId === id, 15_000);
    for (const id of buriedAs) {
      assert.equal(await rawStatsJob(server.url, id), null, `job ${id} is gone`);
      assert.equal(
        eventsOf(events, 'job:buried', id).length,
        id === buriedAs[1] ? 0 : 1,
        `job ${id}: buried once, kicked once, then given up`,
      );
      assert.equal(eventsOf(events, 'job:deleted', id)[0].reason, 'dead-letter');
    }
    // All three are in the dead-letter tube: the loud one with its (capped) record, the two that leave no
    // room for a record as their original bytes, their failure in the log line.
    assert.equal((await rawStatsTube(server.url, dead))?.['current-jobs-ready'], '3');
    const bare = logs.find(/moved to the dead-letter tube as it was/);
    assert.equal(bare.length, 2);
    const connection = await BeanstalkConnection.connect(resolveServerAddress(server.url));
    try {
      await connection.watch(dead);
      const bodies: Buffer[] = [];
      for (let i = 0; i < 3; i += 1) {
        const job = await connection.reserve(1);
        assert.ok(job);
        bodies.push(job.body);
        await connection.delete(job.id);
      }
      const noiseBody = noisy.toString('hex');
      assert.ok(
        bodies.some((b) => b.toString('hex') === noiseBody),
        'the random bytes, byte for byte',
      );
      assert.ok(
        bodies.some((b) => b.length === 65_414),
        'the near-limit body, whole',
      );
      assert.ok(
        bodies.some((b) => originalBody(b) !== undefined && b.length < 65_535),
        'the loud one with its record',
      );
    } finally {
      await connection.quit();
    }
  });

  it('dead-letters a body that is not UTF-8 so that its bytes can be recovered exactly', async (t) => {
    const tb = freshTube('bytes');
    const dead = freshTube('bytes-dead');
    const { events } = await startWorker(t, { tubes: [tb], url: server.url, maxKicks: 0, deadLetterTube: dead });
    const original = Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0xc3, 0x28, 0x7d]);
    const id = await rawPut(server.url, tb, original);
    await events.waitFor('job:deleted', (e) => e.jobId === id);
    const peeked = await peekReadyBody(server.url, dead);
    assert.ok(originalBody(peeked)?.equals(original), 'the dead letter holds the original bytes');
  });

  it('UnrecoverableError: dead-lettered at once; without a dead-letter tube, buried and marked so that auto-kick never revives it', async (t) => {
    const tb = freshTube('unrec');
    const dead = freshTube('unrec-dead');
    let runs = 0;
    const hopeless = queue.task(tb)(function hopeless(_kw: { n: number }) {
      runs += 1;
      throw new UnrecoverableError('the record is gone');
    });
    const withDead = await startWorker(t, { tubes: [tb], url: server.url, kickPeriodSeconds: 1, maxKicks: 3, deadLetterTube: dead });
    const first = await hopeless.put({ n: 1 });
    assert.equal((await withDead.events.waitFor('job:deleted', (e) => e.jobId === first)).reason, 'dead-letter');
    assert.equal(runs, 1);
    await withDead.worker.stop();

    const plain = await startWorker(t, { tubes: [tb], url: server.url, kickPeriodSeconds: 1, maxKicks: 3 });
    const second = await hopeless.put({ n: 2 });
    // Buried with a failure record that marks it unrecoverable: auto-kick's rounds move it to the tail of
    // the buried list (it is buried again, which its own counters show) and never kick it.
    const parked: string = (await plain.events.waitFor('job:buried', (e) => e.jobId === second)).buriedAs;
    assert.equal(JSON.parse((await rawPeekBody(server.url, parked)) as string).meta.failures[0].unrecoverable, true);
    await until(
      () => rawStatsJob(server.url, parked),
      (stats) => Number(stats?.buries) >= 3,
      10_000,
      'two auto-kick rounds have passed over the job',
    );
    assert.equal((await rawStatsJob(server.url, parked))?.state, 'buried');
    assert.equal(runs, 2, 'one run each');
    await plain.worker.stop();
    await rawCommand(server.url, `delete ${parked}\r\n`);

    const manual = await startWorker(t, { tubes: [tb], url: server.url, maxKicks: 3 });
    const third = await hopeless.put({ n: 3 });
    const buried = await manual.events.waitFor('job:buried', (e) => e.jobId === third);
    assert.equal((await rawStatsJob(server.url, buried.buriedAs))?.state, 'buried', 'without auto-kick it stays buried for an operator');
  });

  it('a task that blocks the event loop past its TTR is reported as an overrun', async (t) => {
    const tb = freshTube('cpu');
    const spin = queue.task(tb, { ttr: 2 })(function spin(_kw: object) {
      const end = performance.now() + 2_600;
      while (performance.now() < end) {
        // CPU-bound work that never yields: no timer, no touch, no tick can run.
      }
    });
    const { events } = await startWorker(t, { tubes: [tb], url: server.url });
    const id = await spin.put({});
    const overrun = await events.waitFor('job:overrun', (e) => e.jobId === id, 10_000);
    assert.equal(overrun.command, 'run');
    assert.match(overrun.detail, /TTR \(2 s\)/);
  });
});

describe('worker faults: a server that stops answering', () => {
  it('a failing job on a connection that stops answering costs a dropped connection, not a stalled worker', async (t) => {
    const server = await startBeanstalkd();
    t.after(async () => {
      process.kill(server.pid, 'SIGCONT');
      await server.stop();
    });
    const queue = new JobQueue({ url: server.url, logger: silent });
    t.after(() => queue.close());
    const tb = freshTube('halfopen');
    const release = deferred();
    let runs = 0;
    const failing = queue.task(tb)(async function failsAfterGate(kw: { wait: boolean }) {
      runs += 1;
      if (kw.wait && runs === 1) await release.promise;
      throw new Error('failed');
    });
    const ok = queue.task(tb)(function fine(_kw: object) {});
    const { events, logs } = await startWorker(t, {
      tubes: [tb],
      url: server.url,
      commandTimeoutMs: 300,
      connectTimeoutMs: 1_000,
      reconnectMinMs: 50,
      reconnectMaxMs: 200,
    });
    const id = await failing.put({ wait: true });
    await events.waitFor('job:reserved', (e) => e.jobId === id);
    process.kill(server.pid, 'SIGSTOP');
    release.resolve();
    await until(
      () => logs.lines.filter((line) => /sent nothing for 300 ms/.test(JSON.stringify(line))).length,
      (n) => n >= 1,
      5_000,
      'the missed deadline is logged',
    );
    process.kill(server.pid, 'SIGCONT');
    // The bury was written before the server stopped, so the server may still carry it out when it
    // resumes; if not, the dropped connection gave the job back, and its second run buries it.
    // (Buried with its record as a copy: the tube's buried count is what to watch.)
    await until(
      () => rawStatsTube(server.url, tb),
      (stats) => stats?.['current-jobs-buried'] === '1',
      20_000,
      'the job ends buried',
    );
    const after = await ok.put({});
    await events.waitFor('job:deleted', (e) => e.jobId === after, 10_000);
  });
});

/** The body of the first ready job of `tube`, read on its own connection. */
async function peekReadyBody(url: string, tube: string): Promise<Buffer> {
  const connection = await BeanstalkConnection.connect(resolveServerAddress(url));
  try {
    await connection.use(tube);
    const job = await connection.peekReady();
    assert.ok(job, `a ready job in ${tube}`);
    return job.body;
  } finally {
    await connection.quit();
  }
}
