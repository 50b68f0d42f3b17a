// GET /api/schedules against a real beanstalkd: a declared schedule with its next run once a scheduler
// armed it, the active scheduler, a marker that no loaded module declares (listed from what it says),
// and a server that cannot be reached.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { JobQueue } from '../../src/index.js';
import { encodeMarker, markerTube } from '../../src/scheduler/markers.js';
import { listSchedules, unregisterSchedule } from '../../src/scheduler/registry.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';
import { type BeanstalkdServer, freePort, rawCommand, startBeanstalkd } from '../helpers/beanstalkd.js';
import { assertDocumented, type OpenApiDocument, startApi, type TestApi } from '../helpers/http.js';
import { until } from '../helpers/real-worker.js';

const silent = pino({ level: 'silent' });

interface Listed {
  server: string;
  active: { host: string; pid: number; holding: boolean } | null;
  schedules: {
    name: string;
    cron: string;
    task: { tube: string; name: string } | null;
    nextRun: string | null;
    marker: string;
    declared: boolean;
  }[];
}

describe('GET /api/schedules', () => {
  let server: BeanstalkdServer;
  let queue: JobQueue;
  let api: TestApi;
  let document: OpenApiDocument;
  const name = `nightly-${randomUUID().slice(0, 8)}`;

  before(async () => {
    server = await startBeanstalkd();
    queue = new JobQueue({ url: server.url, logger: silent });
    api = await startApi(server.url, { schedules: listSchedules });
    document = (await api.request('GET', '/api/openapi.json')).json as OpenApiDocument;
  });
  after(async () => {
    unregisterSchedule(name);
    await api?.close();
    await queue?.close();
    await server?.stop();
  });

  const list = async (): Promise<Listed> => {
    const reply = await api.request('GET', '/api/schedules');
    assert.equal(reply.status, 200, reply.text);
    assertDocumented(document, 'GET', '/api/schedules', reply);
    return reply.json as Listed;
  };

  it('lists a declared schedule, armed by the active scheduler, and a marker nobody declares', async () => {
    const task = queue.task(`ticks-${randomUUID().slice(0, 8)}`)(async function report() {});
    const schedule = queue.schedule(name, '0 3 * * *', task, {});
    const before = (await list()).schedules.find((entry) => entry.name === name);
    assert.equal(before?.marker, 'not armed');
    assert.equal(before?.declared, true);

    const scheduler = new Scheduler({ url: server.url, logger: silent, leaseTtrSeconds: 3, schedules: [schedule] });
    scheduler.start();
    try {
      const armed = await until(
        list,
        (listed) => listed.active?.holding === true && listed.schedules.some((e) => e.name === name && e.marker === 'delayed'),
        10_000,
        'the schedule armed',
      );
      const entry = armed.schedules.find((e) => e.name === name);
      assert.deepEqual(entry?.task, { tube: task.tube, name: 'report' });
      assert.equal(new Date(entry?.nextRun as string).getUTCHours(), 3);
      assert.equal(armed.active?.pid, process.pid);
    } finally {
      await scheduler.stop();
    }

    // A schedule removed from the code leaves its marker: listed from the marker, not declared. Its
    // text comes from the server and is returned as data (the dashboard shows it as text).
    const orphan = `gone-${randomUUID().slice(0, 8)}`;
    const body = encodeMarker({
      schedule: orphan,
      tick: new Date(Date.now() + 3_600_000).toISOString(),
      cron: '<b>0 * * * *</b>',
      timezone: 'UTC',
    });
    await rawCommand(server.url, `use ${markerTube(orphan)}\r\nput 0 3600 60 ${body.length}\r\n${body}\r\n`);
    const found = (await list()).schedules.find((e) => e.name === orphan);
    assert.equal(found?.declared, false);
    assert.equal(found?.task, null);
    assert.equal(found?.cron, '<b>0 * * * *</b>');
    assert.equal(found?.marker, 'delayed');
  });

  it('answers 503 when the server cannot be reached', async () => {
    const down = await startApi(`127.0.0.1:${await freePort()}`);
    try {
      const reply = await down.request('GET', '/api/schedules');
      assert.equal(reply.status, 503, reply.text);
    } finally {
      await down.close();
    }
  });
});
