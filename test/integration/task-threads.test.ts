// Task threads against a real beanstalkd: a CPU-bound task longer than its TTR keeps its job (the
// worker's thread touches it meanwhile), a thread that exits fails only its own job, and a task that
// never yields is stopped at its timeout by terminating its thread.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type BeanstalkdServer, rawStatsJob, startBeanstalkd } from '../helpers/beanstalkd.js';
import { eventsOf, freshTube, startWorker } from '../helpers/real-worker.js';

const JOBS = fileURLToPath(new URL('../fixtures/thread-jobs', import.meta.url));
const tube = freshTube('threads');
process.env.BSW_THREAD_TUBE = tube;
const { crunch, exits, hangs } = await import('../fixtures/thread-jobs/cpu.js');

describe('task threads against beanstalkd', () => {
  let server: BeanstalkdServer;
  before(async () => {
    server = await startBeanstalkd();
  });
  after(async () => {
    await server?.stop();
  });

  it('a CPU-bound task that runs past its TTR keeps its job, and other jobs fail or time out alone', async (t) => {
    const { events } = await startWorker(t, { tubes: [tube], url: server.url, concurrency: 2, threads: { size: 2, jobsDir: JOBS } });
    const { JobQueue } = await import('../../src/tasks/queue.js');
    const queue = new JobQueue({ url: server.url });
    t.after(() => queue.close());

    const long = await queue.put(crunch, { ms: 3_000 });
    const exited = await queue.put(exits, {});
    const stuck = await queue.put(hangs, {});
    await events.waitFor('job:deleted', (e) => e.jobId === long, 15_000);
    assert.deepEqual(eventsOf(events, 'job:overrun', long), [], 'no overrun: the job was touched while it computed');
    assert.equal(eventsOf(events, 'job:reserved', long).length, 1, 'reserved once: never handed out again');

    const exitFailure = await events.waitFor('job:failed', (e) => e.jobId === exited, 10_000);
    assert.match(exitFailure.error.message, /exited \(code 3\)/);
    const timeout = await events.waitFor('job:failed', (e) => e.jobId === stuck, 10_000);
    assert.equal(timeout.error.name, 'TaskTimeoutError');
    for (const id of [exited, stuck]) {
      await events.waitFor('job:buried', (e) => e.jobId === id, 10_000);
      assert.equal((await rawStatsJob(server.url, id))?.state, 'buried');
    }
    // The pool replaced both threads: new work still runs.
    const afterwards = await Promise.all([queue.put(crunch, { ms: 10 }), queue.put(crunch, { ms: 10 })]);
    for (const id of afterwards) await events.waitFor('job:deleted', (e) => e.jobId === id, 10_000);
  });
});
