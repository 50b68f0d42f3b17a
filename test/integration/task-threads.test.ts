// Task threads against a real beanstalkd: a CPU-bound task longer than its TTR keeps its job (the
// worker's thread touches it meanwhile), a thread that exits fails only its own job, and a task that
// never yields is stopped at its timeout by terminating its thread.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type BeanstalkdServer, rawCommand, rawStatsJob, startBeanstalkd } from '../helpers/beanstalkd.js';
import { eventsOf, freshTube, startWorker, until } from '../helpers/real-worker.js';

/** Kicks one buried job by id. */
const rawKick = (url: string, id: string): Promise<string> => rawCommand(url, `kick-job ${id}\r\n`);

const JOBS = fileURLToPath(new URL('../fixtures/thread-jobs', import.meta.url));
const tube = freshTube('threads');
process.env.BSW_THREAD_TUBE = tube;
const { answer, crunch, exits, hangs } = await import('../fixtures/thread-jobs/cpu.js');

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
      const buried = await events.waitFor('job:buried', (e) => e.jobId === id, 10_000);
      assert.equal((await rawStatsJob(server.url, buried.buriedAs))?.state, 'buried');
    }
    // The pool replaced both threads: new work still runs.
    const afterwards = await Promise.all([queue.put(crunch, { ms: 10 }), queue.put(crunch, { ms: 10 })]);
    for (const id of afterwards) await events.waitFor('job:deleted', (e) => e.jobId === id, 10_000);
  });

  it('carries a result and progress from the task thread back to the caller', async (t) => {
    await startWorker(t, { tubes: [tube], url: server.url, concurrency: 1, threads: { size: 1, jobsDir: JOBS } });
    const { JobQueue } = await import('../../src/tasks/queue.js');
    const queue = new JobQueue({ url: server.url });
    t.after(() => queue.close());
    const job = await queue.put(answer, { n: 21 }, { result: true });
    const progress: unknown[] = [];
    job.onProgress((value) => progress.push(value));
    // meta reaches the thread too: the job carries meta.reply.
    assert.deepEqual(await job.result({ timeoutMs: 15_000 }), { doubled: 42, threaded: true });
    assert.deepEqual(progress, [{ half: 10.5 }]);
  });

  it('while no thread can be started, runs fail at once instead of waiting, and the pool recovers', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'bsw-threads-'));
    const failFile = join(dir, 'deploying');
    process.env.BSW_THREAD_FAIL_FILE = failFile;
    t.after(async () => {
      delete process.env.BSW_THREAD_FAIL_FILE;
      await rm(dir, { recursive: true, force: true });
    });
    const { events } = await startWorker(t, { tubes: [tube], url: server.url, threads: { size: 1, jobsDir: JOBS } });
    const { JobQueue } = await import('../../src/tasks/queue.js');
    const queue = new JobQueue({ url: server.url });
    t.after(() => queue.close());

    await writeFile(failFile, '');
    const exited = await queue.put(exits, {});
    await events.waitFor('job:buried', (e) => e.jobId === exited, 10_000);
    // The only thread is gone and cannot be replaced: this job fails at once rather than staying reserved.
    const waiting = await queue.put(crunch, { ms: 1 });
    const failure = await events.waitFor('job:failed', (e) => e.jobId === waiting, 10_000);
    assert.match(failure.error.message, /no task thread is running/);
    await events.waitFor('job:buried', (e) => e.jobId === waiting, 10_000);

    await rm(failFile);
    // Followed from copy to copy: each bury keeps the failure record in a copy with a new id.
    let later = await queue.put(crunch, { ms: 1 });
    await until(
      async () => {
        if (eventsOf(events, 'job:deleted', later).length > 0) return true;
        // A job that failed while the pool was still down is kicked back to try again.
        const buried = eventsOf(events, 'job:buried', later)[0];
        if (buried) {
          later = buried.buriedAs;
          await rawKick(server.url, later);
        }
        return false;
      },
      Boolean,
      20_000,
      'a job completes once a thread can be started again',
    );
  });
});
