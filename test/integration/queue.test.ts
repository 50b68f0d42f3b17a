// The producer side against a real server: one connection per JobQueue, pipelined puts, reconnect after
// a loss, and validation that fails before anything is sent.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { ConnectionError } from '../../src/beanstalk/errors.js';
import { JobQueue } from '../../src/index.js';
import { type BeanstalkdServer, freePort, rawCommand, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';

const tube = (): string => `q-${randomUUID().slice(0, 8)}`;
const silent = pino({ level: 'silent' });

async function serverStat(url: string, key: string): Promise<number> {
  const reply = await rawCommand(url, 'stats\r\n');
  const match = new RegExp(`^${key}: (\\d+)$`, 'm').exec(reply);
  assert.ok(match, `stats has ${key}`);
  return Number(match[1]);
}

describe('JobQueue against beanstalkd', () => {
  let server: BeanstalkdServer;
  before(async () => {
    server = await startBeanstalkd();
  });
  after(async () => server?.stop());

  it('puts the envelope with the chosen priority, delay and ttr, and resolves to the job id', async () => {
    const queue = new JobQueue({ url: server.url, logger: silent, defaults: { ttr: 120 } });
    const t = tube();
    const send = queue.task(t, { priority: 10 })(async function send(_kw: { to: string; when: Date }) {});
    try {
      const id = await send.put({ to: 'a@b.c', when: new Date('2026-01-02T03:04:05.000Z') }, { delay: 30 });
      const stats = await rawStatsJob(server.url, id);
      assert.equal(stats?.tube, t);
      assert.equal(stats?.pri, '10');
      assert.equal(stats?.delay, '30');
      assert.equal(stats?.ttr, '120');
      const peek = await rawCommand(server.url, `peek ${id}\r\n`);
      assert.match(peek, /\{"func_name":"send","tube":"q-[0-9a-f]{8}","kwargs":\{"to":"a@b.c","when":"2026-01-02T03:04:05.000Z"\}\}/);
    } finally {
      await queue.close();
    }
  });

  it('uses one connection for many concurrent puts', async () => {
    const queue = new JobQueue({ url: server.url, logger: silent });
    const t = tube();
    const ping = queue.task(t)(async function ping(_kw: { n: number }) {});
    try {
      const before = await serverStat(server.url, 'total-connections');
      const ids = await Promise.all(Array.from({ length: 500 }, (_, n) => ping.put({ n })));
      assert.equal(new Set(ids).size, 500);
      // +1 for the queue's connection, +1 for this stats probe.
      assert.equal((await serverStat(server.url, 'total-connections')) - before, 2);
      assert.equal((await rawStatsTube(server.url, t))?.['current-jobs-ready'], '500');
    } finally {
      await queue.close();
    }
  });

  it('refuses bad input before sending anything, and stays usable', async () => {
    const queue = new JobQueue({ url: server.url, logger: silent });
    const t = tube();
    const task = queue.task(t)(async function task(_kw: Record<string, unknown>) {});
    try {
      await task.put({ warm: 1 });
      const before = await serverStat(server.url, 'cmd-put');
      await assert.rejects(task.put({ id: 1n }), /kwargs\.id.*BigInt/);
      await assert.rejects(task.put({ user: { id: undefined } }), /kwargs\.user\.id.*undefined/);
      await assert.rejects(task.put({ x: Number.NaN }), /kwargs\.x/);
      await assert.rejects(task.put({}, { priority: -1 }), RangeError);
      await assert.rejects(task.put({}, { ttr: 1 }), /ttr/);
      await assert.rejects(task.put({ text: 'é'.repeat(40_000) }), /at most 65535 bytes/);
      assert.equal(await serverStat(server.url, 'cmd-put'), before, 'nothing was put');
      assert.match(await task.put({ ok: true }), /^\d+$/);
      assert.throws(() => queue.task('bad tube'), /tube/);
      assert.throws(() => queue.task(t, { ttr: 1 }), /ttr/);
    } finally {
      await queue.close();
    }
  });

  it('reconnects on the next put after the server comes back', async () => {
    const own = await startBeanstalkd();
    const queue = new JobQueue({ url: own.url, logger: silent, connectTimeoutMs: 300 });
    const t = tube();
    const task = queue.task(t)(async function task() {});
    try {
      assert.match(await task.put(), /^\d+$/);
      await own.stop('SIGKILL');
      await assert.rejects(task.put(), ConnectionError);
      const again = await startBeanstalkd({ port: own.port });
      try {
        assert.match(await task.put(), /^\d+$/);
        assert.equal((await rawStatsTube(again.url, t))?.['current-jobs-ready'], '1');
      } finally {
        await queue.close();
        await again.stop();
      }
    } finally {
      await queue.close();
      await own.stop();
    }
  });

  it('rejects after connectTimeoutMs with a clear ConnectionError when nothing listens', async () => {
    const port = await freePort();
    const queue = new JobQueue({ url: `127.0.0.1:${port}`, logger: silent, connectTimeoutMs: 400 });
    const task = queue.task(tube())(async function task() {});
    const started = Date.now();
    await assert.rejects(task.put(), (error: unknown) => error instanceof ConnectionError && error.message.includes(`127.0.0.1:${port}`));
    const waited = Date.now() - started;
    assert.ok(waited >= 200 && waited < 3_000, `waited about the bound, not forever (${waited} ms)`);
    await queue.close();
    await assert.rejects(task.put(), /closed/);
  });
});
