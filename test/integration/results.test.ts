// Results on request, against a real beanstalkd: the value comes back through the caller's reply tube,
// errors come back as JobFailedError, progress reaches the caller, nothing is stored for a caller that
// went away, and results nobody asked for are never put.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import {
  JobFailedError,
  JobQueue,
  REPLY_TUBE_PREFIX,
  ResultTimeoutError,
  ResultUnavailableError,
  UnrecoverableError,
  Worker,
} from '../../src/index.js';
import { type BeanstalkdServer, rawCommand, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';
import { EventRecorder } from '../helpers/events.js';
import { deferred, freshTube, until } from '../helpers/real-worker.js';

const silent = pino({ level: 'silent' });

/** The reply tubes on the server and how many jobs each holds. */
async function replyTubes(url: string): Promise<Map<string, number>> {
  const listing = await rawCommand(url, 'list-tubes\r\n');
  const tubes = listing
    .split('\n')
    .map((line) => line.replace(/^- /, '').trim())
    .filter((tube) => tube.startsWith(REPLY_TUBE_PREFIX));
  const counts = new Map<string, number>();
  for (const tube of tubes) {
    const stats = await rawStatsTube(url, tube);
    if (stats) counts.set(tube, Number(stats['current-jobs-ready']) + Number(stats['current-jobs-delayed']));
  }
  return counts;
}

describe('results on request', () => {
  let server: BeanstalkdServer;
  let queue: JobQueue;
  const workers: Worker[] = [];
  const startWorker = async (tubes: string[]): Promise<Worker> => {
    const worker = new Worker({ tubes, url: server.url, logger: silent });
    workers.push(worker);
    await worker.start();
    return worker;
  };

  before(async () => {
    server = await startBeanstalkd();
    queue = new JobQueue({ url: server.url, logger: silent });
  });
  after(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await queue?.close();
    await server?.stop();
  });

  it('returns the task value through the reply tube, typed, and puts nothing for a job that did not ask', async () => {
    const t = freshTube('res');
    const add = queue.task(t)(async function add(kw: { a: number; b: number }) {
      return { sum: kw.a + kw.b, at: new Date(0) };
    });
    await startWorker([t]);
    const job = await add.put({ a: 2, b: 3 }, { result: true });
    assert.match(job.id, /^\d+$/);
    const value = await job.result({ timeoutMs: 10_000 });
    // After JSON, as a worker's result always is: the Date is its ISO string.
    assert.deepEqual(value, { sum: 5, at: '1970-01-01T00:00:00.000Z' });
    const sum: number = value.sum;
    assert.equal(sum, 5);
    // A second call answers the same at once.
    assert.deepEqual(await job.result(), value);

    // A plain put leaves nothing in any reply tube.
    const before = await replyTubes(server.url);
    const recorder = new EventRecorder(workers[0] as Worker, ['job:deleted']);
    const id = await add.put({ a: 1, b: 1 });
    await recorder.waitFor('job:deleted', (event: { jobId?: string }) => event.jobId === id);
    assert.deepEqual(await replyTubes(server.url), before);
  });

  it('rejects with JobFailedError naming the error when the job fails for good, and resolves after retries', async () => {
    const t = freshTube('res-fail');
    let runs = 0;
    const flaky = queue.task(t, { retries: 1, backoff: { type: 'fixed', delaySeconds: 0 } })(async function flaky(kw: {
      fail: 'always' | 'once';
    }) {
      runs += 1;
      if (kw.fail === 'always') throw new UnrecoverableError('no such account');
      if (runs === 1) throw new Error('first try fails');
      return 'ok';
    });
    await startWorker([t]);
    const failing = await flaky.put({ fail: 'always' }, { result: true });
    await assert.rejects(failing.result({ timeoutMs: 10_000 }), (error: unknown) => {
      assert.ok(error instanceof JobFailedError);
      assert.equal(error.errorName, 'UnrecoverableError');
      assert.equal(error.reason, 'failed');
      assert.match(error.message, /no such account/);
      assert.equal(error.jobId, failing.id);
      return true;
    });
    runs = 0;
    const retried = await flaky.put({ fail: 'once' }, { result: true });
    // The release for the retry sends nothing: only the final outcome does.
    assert.equal(await retried.result({ timeoutMs: 10_000 }), 'ok');
    assert.equal(runs, 2);
  });

  it('delivers progress reports in order, the last one before the result', async () => {
    const t = freshTube('res-progress');
    const gate = deferred();
    const steps = queue.task(t)(async function steps(_kw: Record<string, never>, ctx) {
      ctx.progress({ done: 1, of: 3 });
      await gate.promise;
      ctx.progress({ done: 2, of: 3 });
      ctx.progress({ done: 3, of: 3 });
      return 'finished';
    });
    const worker = await startWorker([t]);
    const progressEvents = new EventRecorder<{ jobId?: string; value?: { done?: number } }>(worker, ['job:progress']);
    const job = await steps.put({}, { result: true });
    const seen: unknown[] = [];
    const iteration = (async () => {
      for await (const value of job.progress()) {
        seen.push(value);
        if (seen.length === 1) gate.resolve();
      }
    })();
    assert.equal(await job.result({ timeoutMs: 10_000 }), 'finished');
    await iteration;
    assert.deepEqual(seen[0], { done: 1, of: 3 });
    assert.deepEqual(seen.at(-1), { done: 3, of: 3 });
    // The worker's event carries every report, for the HTTP API and the dashboard.
    await progressEvents.waitFor('job:progress', (event) => event.value?.done === 3);
  });

  it('times out with ResultTimeoutError, then deletes the late result unread', async () => {
    const t = freshTube('res-late');
    const gate = deferred();
    const slow = queue.task(t)(async function slow() {
      await gate.promise;
      return 'late';
    });
    const worker = await startWorker([t]);
    const recorder = new EventRecorder(worker, ['job:deleted']);
    const job = await slow.put({}, { result: true });
    await assert.rejects(job.result({ timeoutMs: 50 }), ResultTimeoutError);
    gate.resolve();
    await recorder.waitFor('job:deleted', (event: { jobId?: string }) => event.jobId === job.id);
    // The reply went into the tube (the queue still watches it) and the listener deletes it on arrival,
    // once another result is awaited; or it waits there for the close. Either way it is never handed out.
    await assert.rejects(job.result({ timeoutMs: 1_000 }), ResultTimeoutError);
  });

  it('drops the result of a caller that went away, and a new caller sweeps replies left behind', async () => {
    const t = freshTube('res-gone');
    const caller = new JobQueue({ url: server.url, logger: silent });
    const gate = deferred();
    const started = deferred();
    const held = caller.task(t)(async function held() {
      started.resolve();
      await gate.promise;
      return 'nobody reads this';
    });
    const worker = await startWorker([t]);
    const recorder = new EventRecorder(worker, ['job:deleted']);
    const job = await held.put({}, { result: true });
    const pending = assert.rejects(job.result({ timeoutMs: 10_000 }), ResultUnavailableError);
    await started.promise;
    await caller.close();
    await pending;
    gate.resolve();
    await recorder.waitFor('job:deleted', (event: { jobId?: string }) => event.jobId === job.id);
    // Nobody watched the reply tube when the job finished: the result was never put.
    for (const [tube, jobs] of await replyTubes(server.url)) {
      assert.equal(jobs, 0, `reply tube ${tube} holds ${jobs} job(s)`);
    }

    // A reply left behind in an unwatched reply tube (put in the moment the caller went away) is swept
    // by the next listener that opens.
    const orphan = `${REPLY_TUBE_PREFIX}0123456789abcdef`;
    const body = '{"token":"1","ok":true}';
    await rawCommand(server.url, `use ${orphan}\r\nput 0 0 60 ${body.length}\r\n${body}\r\n`);
    assert.equal((await replyTubes(server.url)).get(orphan), 1);
    const other = new JobQueue({ url: server.url, logger: silent });
    const echo = other.task(freshTube('res-sweep'))(async function echo() {
      return 1;
    });
    await startWorker([echo.tube]);
    const fresh = await echo.put({}, { result: true });
    assert.equal(await fresh.result({ timeoutMs: 10_000 }), 1);
    await until(
      () => replyTubes(server.url),
      (tubes) => (tubes.get(orphan) ?? 0) === 0,
      5_000,
      'the orphan reply swept',
    );
    await other.close();
  });
});
