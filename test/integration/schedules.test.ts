// Schedules against a real server, in-process: ticks put jobs that carry meta.schedule, two schedulers
// have one active between them, and a marker left late by downtime is skipped or run once.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { BeanstalkConnection } from '../../src/beanstalk/connection.js';
import { JobQueue } from '../../src/index.js';
import { encodeMarker, markerTube } from '../../src/scheduler/markers.js';
import { unregisterSchedule } from '../../src/scheduler/registry.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';
import type { Schedule } from '../../src/scheduler/types.js';
import { type BeanstalkdServer, startBeanstalkd } from '../helpers/beanstalkd.js';
import { drainCount } from '../helpers/schedules.js';

const silent = pino({ level: 'silent' });
const name = (what: string): string => `${what}-${randomUUID().slice(0, 8)}`;

describe('schedules against beanstalkd', () => {
  let server: BeanstalkdServer;
  let queue: JobQueue;
  const declared: string[] = [];
  before(async () => {
    server = await startBeanstalkd();
    queue = new JobQueue({ url: server.url, logger: silent });
  });
  after(async () => {
    for (const schedule of declared) unregisterSchedule(schedule);
    await queue?.close();
    await server?.stop();
  });

  const declare = (cron: string, options: Parameters<JobQueue['schedule']>[4] = {}): Schedule => {
    const tube = name('ticks');
    const task = queue.task(tube)(async function tick(_kw: { n: number }) {});
    const schedule = queue.schedule(name('every'), cron, task, { n: 1 }, options);
    declared.push(schedule.name);
    return schedule;
  };

  it('a seconds schedule puts one job per tick, each with meta.schedule { name, tick }', async () => {
    const schedule = declare('*/1 * * * * *');
    const scheduler = new Scheduler({ url: server.url, logger: silent, leaseTtrSeconds: 3, schedules: [schedule] });
    scheduler.start();
    try {
      const jobs = await drainCount(server.url, schedule.task.tube, 3);
      assert.equal(jobs.length, 3);
      const ticks = jobs.map((job) => Date.parse(job.tick));
      for (const job of jobs) assert.equal(job.schedule, schedule.name);
      for (let i = 1; i < ticks.length; i += 1)
        assert.equal((ticks[i] ?? 0) - (ticks[i - 1] ?? 0), 1_000, 'consecutive seconds, none missed');
      assert.ok(scheduler.active);
    } finally {
      await scheduler.stop();
    }
  });
  it('of two schedulers one is active, and no tick is put twice', async () => {
    const schedule = declare('*/1 * * * * *');
    const first = new Scheduler({ url: server.url, logger: silent, leaseTtrSeconds: 3, schedules: [schedule] });
    const second = new Scheduler({ url: server.url, logger: silent, leaseTtrSeconds: 3, schedules: [schedule] });
    let activations = 0;
    for (const scheduler of [first, second]) scheduler.on('scheduler:active', () => (activations += 1));
    first.start();
    second.start();
    try {
      const jobs = await drainCount(server.url, schedule.task.tube, 4);
      assert.equal(jobs.length, 4);
      assert.equal(activations, 1, 'only one scheduler became active');
      assert.equal([first, second].filter((scheduler) => scheduler.active).length, 1);
      assert.equal(new Set(jobs.map((job) => job.tick)).size, jobs.length, 'every tick once');
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }
  });

  /** A marker as downtime leaves it: its tick 10 s in the past, ready at once. */
  async function putLateMarker(schedule: Schedule): Promise<string> {
    const tick = new Date(Math.floor(Date.now() / 1_000) * 1_000 - 10_000).toISOString();
    const [host, port] = server.url.split(':');
    const connection = await BeanstalkConnection.connect({ host: host ?? '127.0.0.1', port: Number(port) });
    try {
      const body = encodeMarker({ schedule: schedule.name, tick, cron: schedule.cron, timezone: schedule.timezone });
      await connection.putInTube(markerTube(schedule.name), Buffer.from(body), { priority: 0, delaySeconds: 0, ttrSeconds: 10 });
    } finally {
      await connection.quit();
    }
    return tick;
  }

  for (const catchUp of ['skip', 'once'] as const) {
    it(`after downtime, catchUp '${catchUp}' ${catchUp === 'skip' ? 'runs nothing for the late tick' : 'runs the late tick once'}, then goes on from now`, async () => {
      const schedule = declare('*/1 * * * * *', { catchUp });
      const oldTick = await putLateMarker(schedule);
      const startedAt = Date.now();
      const scheduler = new Scheduler({ url: server.url, logger: silent, leaseTtrSeconds: 3, schedules: [schedule] });
      const skipped: string[] = [];
      scheduler.on('scheduler:skip', (event) => skipped.push(event.tick));
      scheduler.start();
      try {
        const jobs = await drainCount(server.url, schedule.task.tube, 2);
        const ticks = jobs.map((job) => job.tick);
        if (catchUp === 'skip') {
          assert.deepEqual(skipped, [oldTick]);
          assert.ok(!ticks.includes(oldTick));
        } else {
          assert.deepEqual(skipped, []);
          assert.equal(ticks[0], oldTick, 'the late tick ran, with its own tick in meta');
        }
        // Never a burst: no tick between the late one and the restart was put.
        const fresh = ticks.filter((tick) => tick !== oldTick);
        assert.ok(fresh.length > 0);
        for (const tick of fresh) assert.ok(Date.parse(tick) >= startedAt - 1_000, `${tick} is from now, not from the downtime`);
      } finally {
        await scheduler.stop();
      }
    });
  }
});
