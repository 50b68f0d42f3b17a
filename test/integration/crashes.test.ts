// A job whose worker dies every time it runs it (a poison job) must not take down worker after worker:
// past `maxCrashes` reservations without a result it is buried, and a kick grants it as many more.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { type JobEvent, JobQueue, Worker } from '../../src/index.js';
import { type BeanstalkdServer, rawCommand, rawStatsJob, startBeanstalkd } from '../helpers/beanstalkd.js';
import { EventRecorder } from '../helpers/events.js';

const silent = pino({ level: 'silent' });

describe('poison jobs', () => {
  let server: BeanstalkdServer;
  before(async () => {
    server = await startBeanstalkd();
  });
  after(async () => server?.stop());

  it('buries a job after maxCrashes reservations ended without a result, and runs it after a kick', async () => {
    const tube = `p-${randomUUID().slice(0, 8)}`;
    const queue = new JobQueue({ url: server.url, logger: silent });
    let runs = 0;
    const task = queue.task(tube)(async function poison() {
      runs += 1;
    });
    const id = await task.put();
    // Three reservations that end with the connection closing, as when a worker is killed mid-job.
    for (let i = 0; i < 3; i += 1) assert.match(await rawCommand(server.url, `reserve-job ${id}\r\n`), /^RESERVED /);
    assert.equal((await rawStatsJob(server.url, id))?.reserves, '3');

    const worker = new Worker({ tubes: [tube], url: server.url, logger: silent, maxCrashes: 3 });
    const events = new EventRecorder<JobEvent & { reason?: string; buriedAs?: string }>(worker, ['job:buried', 'job:deleted']);
    await worker.start();
    try {
      const buried = await events.waitFor('job:buried', (e) => e.jobId === id);
      assert.equal(buried.reason, 'crashed');
      assert.equal(runs, 0, 'the task never ran');
      const copy = buried.buriedAs as string;
      assert.equal((await rawStatsJob(server.url, copy))?.state, 'buried');

      // A kick allows maxCrashes more: the job runs this time (its copy carries the three crashes).
      assert.match(await rawCommand(server.url, `kick-job ${copy}\r\n`), /^KICKED/);
      await events.waitFor('job:deleted', (e) => e.jobId === copy);
      assert.equal(runs, 1);
    } finally {
      await worker.stop();
      await queue.close();
    }
  });
});
