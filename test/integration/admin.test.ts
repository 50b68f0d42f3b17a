// The admin layer against a real beanstalkd: every method, its shapes checked against the server's own
// view (raw stats on a separate socket), its domain errors, one reused connection, a server that is down.
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Admin } from '../../src/admin/admin.js';
import { ConflictError, InvalidInputError, NotFoundError, UnavailableError } from '../../src/admin/errors.js';
import { type BeanstalkdServer, freePort, rawCommand, rawPut, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { envelope } from '../helpers/cli.js';
import { bury, rawSession } from '../helpers/raw-session.js';
import { freshTube } from '../helpers/real-worker.js';

const TEST_TIMEOUT = { timeout: 20_000 };

/** The server's `stats`, as numbers where they are. */
async function rawStats(url: string): Promise<Record<string, string>> {
  const reply = await rawCommand(url, 'stats\r\n');
  return Object.fromEntries(
    reply
      .split(/\r?\n/)
      .slice(2)
      .filter((line) => line.includes(': '))
      // YAML quotes the version ("1.12"); the other values are bare.
      .map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2).replace(/^"(.*)"$/, '$1')]),
  );
}

/** Asserts `promise` rejects with an error of `type` and `code`. */
async function rejectsWith(
  promise: Promise<unknown>,
  type: new (...args: never[]) => Error,
  code: string,
  message?: RegExp,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof type, `expected a ${type.name}, got ${String(error)}`);
    assert.equal((error as { code?: string }).code, code);
    if (message) assert.match((error as Error).message, message);
    return true;
  });
}

describe('the admin layer', () => {
  let server: BeanstalkdServer;
  let admin: Admin;

  before(async () => {
    server = await startBeanstalkd();
    admin = new Admin({ urls: [server.url] });
  });
  after(async () => {
    await admin?.close();
    await server?.stop();
  });

  it('servers(): one report per server, up, with the stats the server gives', TEST_TIMEOUT, async () => {
    const [report] = await admin.servers();
    const raw = await rawStats(server.url);
    assert.ok(report?.stats);
    assert.deepEqual([report.server, report.up, report.error], [server.url, true, null]);
    assert.equal(report.stats.version, raw.version);
    assert.equal(report.stats.maxJobSize, Number(raw['max-job-size']));
    assert.equal(report.stats.binlog.enabled, false);
    assert.equal(report.stats.counters['cmd-put'] !== undefined, true, 'beanstalkd counters are kept, by their names');
    assert.equal(report.stats.counters.pid, Number(raw.pid));
    assert.equal('version' in report.stats.counters, false, 'text fields are not counters');
    assert.deepEqual(admin.serverNames, [server.url]);
  });

  it('tubes(), overview() and tube(): counts per server and summed, as stats-tube says', TEST_TIMEOUT, async () => {
    const t = freshTube('tubes');
    await rawPut(server.url, t, envelope('f', t, {}), { priority: 5 });
    await rawPut(server.url, t, envelope('f', t, {}));
    await rawPut(server.url, t, envelope('f', t, {}), { delay: 3_600 });
    await bury(server, [await rawPut(server.url, t, envelope('f', t, {}))]);
    await rawSession(server.port, [`pause-tube ${t} 600`]);

    const [tubes, overview, one, raw] = await Promise.all([admin.tubes(), admin.overview(), admin.tube(t), rawStatsTube(server.url, t)]);
    assert.ok(raw);
    const expected = {
      ready: 2,
      urgent: 1,
      reserved: 0,
      delayed: 1,
      buried: 1,
      total: 4,
      deletes: 0,
      using: Number(raw['current-using']),
      watching: Number(raw['current-watching']),
      waiting: 0,
      pauseSeconds: 600,
      pausedSecondsLeft: one.totals.pausedSecondsLeft,
    };
    assert.ok(one.totals.pausedSecondsLeft > 590 && one.totals.pausedSecondsLeft <= 600);
    assert.deepEqual(one, { name: t, totals: expected, servers: [{ server: server.url, ...expected }] });
    assert.deepEqual(
      tubes.tubes.map((tube) => tube.name),
      [...tubes.tubes.map((tube) => tube.name)].sort(),
      'sorted by name',
    );
    assert.deepEqual(tubes.tubes.find((tube) => tube.name === t)?.totals, expected);
    assert.deepEqual(tubes.unavailable, []);
    assert.ok(!Number.isNaN(Date.parse(tubes.at)));
    assert.equal(overview.servers[0]?.up, true);
    assert.deepEqual(overview.tubes.find((tube) => tube.name === t)?.totals, expected);
    await rejectsWith(admin.tube(freshTube('none')), NotFoundError, 'TUBE_NOT_FOUND', /does not exist \(beanstalkd drops a tube/);
    await rejectsWith(admin.tube('bad tube'), InvalidInputError, 'INVALID_TUBE');
  });

  it(
    'job() and peek(): counters from stats-job, the body decoded or raw, the failure history and dead-letter record',
    TEST_TIMEOUT,
    async () => {
      const t = freshTube('job');
      const failures = [
        {
          reason: 'error',
          name: 'TypeError',
          message: 'card declined',
          stack: 'TypeError: card declined\n    at charge (/app/jobs/pay.js:10:5)\n    at run (/app/x.js:1:1)',
          attempt: 1,
          kicks: 0,
          worker: { host: 'w1', pid: 42 },
          server: server.url,
          job_id: '7',
          tube: t,
          at: '2026-01-01T00:00:00.000Z',
        },
      ];
      const failed = await rawPut(server.url, t, JSON.stringify({ func_name: 'pay', tube: t, kwargs: { n: 1 }, meta: { failures } }));
      const raw = await rawPut(server.url, t, 'not json \u001b[31m');
      await bury(server, [failed]);
      const letterBody = {
        func_name: 'pay',
        tube: t,
        kwargs: {},
        meta: { dead_letter: { error: 'boom', name: 'Error', tube: t, job_id: '3', attempts: 2, kicks: 1, failed_at: 'x' } },
      };
      const letter = await rawPut(server.url, t, JSON.stringify(letterBody), { delay: 3_600 });

      const job = await admin.job(failed);
      const stats = await rawStatsJob(server.url, failed);
      assert.deepEqual(
        [job.id, job.server, job.tube, job.state, job.priority, job.buries, job.ttrSeconds],
        [failed, server.url, t, 'buried', 1024, 1, Number(stats?.ttr)],
      );
      assert.deepEqual(job.envelope, { func_name: 'pay', tube: t, kwargs: { n: 1 }, meta: { failures } });
      assert.deepEqual(job.history, { failures });
      assert.deepEqual(job.lastFailure, {
        reason: 'error',
        name: 'TypeError',
        message: 'card declined',
        stackLine: 'at charge (/app/jobs/pay.js:10:5)',
        attempt: 1,
        kicks: 0,
        at: '2026-01-01T00:00:00.000Z',
      });
      assert.equal(job.deadLetter, null);

      const rawJob = await admin.peek(t, 'ready');
      assert.deepEqual([rawJob.id, rawJob.envelope, rawJob.raw, rawJob.history], [raw, null, 'not json \u001b[31m', null]);
      assert.match(rawJob.decodeError ?? '', /not JSON/);
      const delayed = await admin.peek(t, 'delayed');
      assert.equal(delayed.id, letter);
      assert.deepEqual(delayed.deadLetter, { tube: t, jobId: '3', name: 'Error', message: 'boom', attempts: 2, kicks: 1, at: 'x' });
      assert.equal((await admin.peek(t, 'buried')).id, failed);

      await rejectsWith(admin.job('99999999'), NotFoundError, 'JOB_NOT_FOUND', /^job 99999999 does not exist$/);
      await rejectsWith(admin.peek(freshTube('empty'), 'buried'), NotFoundError, 'NO_JOB_IN_STATE', /^no buried job in tube /);
      await rejectsWith(admin.job('abc'), InvalidInputError, 'INVALID_JOB_ID');
      // The qualified form names the server: accepted for the configured one, refused for another.
      assert.equal((await admin.job(`${server.url}/${failed}`)).id, failed);
      await rejectsWith(admin.job(`127.0.0.1:1/${failed}`), InvalidInputError, 'INVALID_JOB_ID', /no configured server/);
    },
  );

  it('put(): the envelope and options as given, checked before anything is sent', TEST_TIMEOUT, async () => {
    const t = freshTube('put');
    const put = await admin.put({ tube: t, funcName: 'send', kwargs: { to: 'ann' }, priority: 7, delay: 120, ttr: 30 });
    assert.deepEqual(put, { id: put.id, server: server.url, tube: t, func_name: 'send', priority: 7, delaySeconds: 120, ttrSeconds: 30 });
    const stats = await rawStatsJob(server.url, put.id);
    assert.deepEqual([stats?.tube, stats?.state, stats?.pri, stats?.delay, stats?.ttr], [t, 'delayed', '7', '120', '30']);
    const defaults = await admin.put({ tube: t, funcName: 'send', kwargs: {} });
    assert.deepEqual([defaults.priority, defaults.delaySeconds, defaults.ttrSeconds], [1024, 0, 60]);

    await rejectsWith(admin.put({ tube: t, funcName: '', kwargs: {} }), InvalidInputError, 'INVALID_FUNC_NAME');
    await rejectsWith(admin.put({ tube: t, funcName: 'f', kwargs: { n: 1n } as never }), InvalidInputError, 'INVALID_KWARGS', /kwargs\.n/);
    await rejectsWith(admin.put({ tube: t, funcName: 'f', kwargs: {}, ttr: 1 }), InvalidInputError, 'INVALID_OPTION', /at least 2 seconds/);
    await rejectsWith(admin.put({ tube: '-bad', funcName: 'f', kwargs: {} }), InvalidInputError, 'INVALID_TUBE');
    await rejectsWith(admin.put({ tube: t, funcName: 'f', kwargs: { blob: 'x'.repeat(70_000) } }), InvalidInputError, 'JOB_TOO_BIG');
    assert.equal(await admin.maxJobSize(), 65_535);
    assert.equal((await rawStatsTube(server.url, t))?.['total-jobs'], '2', 'nothing refused reached the server');

    const checked = new Admin({
      urls: [server.url],
      checkKwargs: ({ funcName, kwargs }) => {
        if (funcName !== 'send') throw new InvalidInputError('UNKNOWN_TASK', `no task ${funcName}`);
        return { ...kwargs, checked: true };
      },
    });
    try {
      await rejectsWith(checked.put({ tube: t, funcName: 'other', kwargs: {} }), InvalidInputError, 'UNKNOWN_TASK');
      const ok = await checked.put({ tube: t, funcName: 'send', kwargs: { a: 1 } });
      const body = await rawCommand(server.url, `peek ${ok.id}\r\n`);
      assert.ok(body.includes('"kwargs":{"a":1,"checked":true}'), body);
    } finally {
      await checked.close();
    }
  });

  it('kick(), kickJob(): buried jobs only, per tube; a job in the wrong state is a ConflictError', TEST_TIMEOUT, async () => {
    const [a, b] = [freshTube('kick'), freshTube('kick')];
    const buriedA = [await rawPut(server.url, a, 'x'), await rawPut(server.url, a, 'x'), await rawPut(server.url, a, 'x')];
    const delayedA = await rawPut(server.url, a, 'x', { delay: 3_600 });
    const buriedB = await rawPut(server.url, b, 'x');
    await bury(server, [...buriedA, buriedB]);

    assert.deepEqual(await admin.kick(a, 2), { kicked: 2, tubes: [{ server: server.url, tube: a, kicked: 2, stillBuried: 1 }] });
    const none = freshTube('none');
    assert.deepEqual(await admin.kick(none), { kicked: 0, tubes: [{ server: server.url, tube: none, kicked: 0, stillBuried: 0 }] });
    assert.equal((await rawStatsJob(server.url, delayedA))?.state, 'delayed', 'never a delayed job');
    const all = await admin.kick(undefined);
    assert.deepEqual(
      all.tubes.filter((tube) => tube.tube === b),
      [{ server: server.url, tube: b, kicked: 1, stillBuried: 0 }],
    );

    assert.deepEqual(await admin.kickJob(delayedA), { id: delayedA, server: server.url, kicked: true, from: 'delayed', tube: a });
    await rejectsWith(admin.kickJob(delayedA), ConflictError, 'WRONG_STATE', /is ready; only buried or delayed jobs can be kicked/);
    await rejectsWith(admin.kickJob('99999999'), NotFoundError, 'JOB_NOT_FOUND');
  });

  it('deleteJob(), deleteBuried(): any state but reserved; buried jobs oldest first up to a count', TEST_TIMEOUT, async () => {
    const t = freshTube('delete');
    const ids: string[] = [];
    for (let n = 0; n < 6; n += 1) ids.push(await rawPut(server.url, t, `job ${n}`));
    await bury(server, ids.slice(0, 4));
    const [ready, reserved] = ids.slice(4);
    assert.ok(ready && reserved);

    assert.deepEqual(await admin.deleteJob(ready), { id: ready, server: server.url, tube: t, state: 'ready' });
    assert.equal(await rawStatsJob(server.url, ready), null);
    // A reservation lasts as long as its socket: hold one open while the delete is tried.
    const socket = createConnection({ host: '127.0.0.1', port: server.port });
    const reply = await new Promise<string>((resolve) =>
      socket.once('data', (chunk) => resolve(String(chunk))).write(`reserve-job ${reserved}\r\n`),
    );
    assert.match(reply, /^RESERVED /);
    try {
      await rejectsWith(admin.deleteJob(reserved), ConflictError, 'JOB_RESERVED', /only that worker can delete it/);
    } finally {
      socket.destroy();
    }
    await rejectsWith(admin.deleteJob('99999999'), NotFoundError, 'JOB_NOT_FOUND');

    let progress = 0;
    const two = await admin.deleteBuried(t, 2, () => {
      progress += 1;
    });
    assert.deepEqual(two, { tube: t, deleted: 2, ids: ids.slice(0, 2), stillBuried: 2 });
    assert.equal(progress, 2);
    assert.deepEqual(await admin.deleteBuried(t), { tube: t, deleted: 2, ids: ids.slice(2, 4), stillBuried: 0 });
    assert.deepEqual(await admin.deleteBuried(t), { tube: t, deleted: 0, ids: [], stillBuried: 0 });
  });

  it('pause() and resume(): as the server reports them; an unknown tube is TUBE_NOT_FOUND', TEST_TIMEOUT, async () => {
    const t = freshTube('pause');
    await rawPut(server.url, t, 'x');
    const paused = await admin.pause(t, 600);
    assert.equal(paused.pauseSeconds, 600);
    assert.deepEqual(paused.servers, [
      { server: server.url, pauseSeconds: 600, pausedSecondsLeft: paused.pausedSecondsLeft, previousSecondsLeft: 0 },
    ]);
    assert.equal((await rawStatsTube(server.url, t))?.pause, '600');
    const resumed = await admin.resume(t);
    assert.deepEqual([resumed.pauseSeconds, resumed.pausedSecondsLeft], [0, 0]);
    assert.ok(resumed.previousSecondsLeft > 590, String(resumed.previousSecondsLeft));
    assert.equal((await rawStatsTube(server.url, t))?.pause, '0');
    await rejectsWith(admin.pause(freshTube('none'), 10), NotFoundError, 'TUBE_NOT_FOUND');
  });

  it('uses one connection for every call, leaves no tube in use, and keeps concurrent tube operations apart', TEST_TIMEOUT, async () => {
    const fresh = new Admin({ urls: [server.url] });
    try {
      await fresh.servers();
      const before = Number((await rawStats(server.url))['total-connections']);
      const [a, b] = [freshTube('mix'), freshTube('mix')];
      await rawPut(server.url, b, 'head of b');
      // Puts into a and peeks into b interleaved on the one connection: each must see its own tube.
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          i % 2 === 0
            ? fresh.put({ tube: a, funcName: 'f', kwargs: { i } }).then((r) => r.tube)
            : fresh.peek(b, 'ready').then((r) => r.tube),
        ),
      );
      assert.deepEqual(
        results,
        Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b)),
      );
      assert.equal((await rawStatsTube(server.url, a))?.['current-jobs-ready'], '20');
      await fresh.tubes();
      await fresh.job((await fresh.peek(a, 'ready')).id);
      const after = Number((await rawStats(server.url))['total-connections']);
      // The raw helper's own stats connections are the only new ones: one per rawStats/rawPut/rawStatsTube.
      assert.equal(after - before, 3, 'no connection was opened by the admin layer after the first');
      assert.equal((await rawStatsTube(server.url, b))?.['current-using'], '0', 'the admin connection went back to default');
    } finally {
      await fresh.close();
    }
    assert.equal((await fresh.servers())[0]?.up, false, 'after close() no connection is opened again');
  });

  it(
    'a server that is down: servers() says so, everything else is SERVER_UNAVAILABLE; it reconnects when the server is back',
    TEST_TIMEOUT,
    async () => {
      const port = await freePort();
      const down = new Admin({ urls: [`127.0.0.1:${port}`], connectTimeoutMs: 1_000 });
      try {
        const started = Date.now();
        const [report] = await down.servers();
        assert.deepEqual([report?.up, report?.stats], [false, null]);
        assert.match(report?.error ?? '', /connection refused/);
        assert.ok(Date.now() - started < 900, 'a refused connection is reported at once, not waited for');
        await rejectsWith(down.tubes(), UnavailableError, 'SERVER_UNAVAILABLE', new RegExp(`beanstalkd -l 127.0.0.1 -p ${port}`));
        await rejectsWith(down.job('1'), UnavailableError, 'SERVER_UNAVAILABLE');

        const late = await startBeanstalkd({ port });
        try {
          assert.equal((await down.servers())[0]?.up, true, 'the next call connects');
          await late.stop();
          await rejectsWith(down.tubes(), UnavailableError, 'SERVER_UNAVAILABLE');
        } finally {
          await late.stop();
        }
      } finally {
        await down.close();
      }
    },
  );
});
