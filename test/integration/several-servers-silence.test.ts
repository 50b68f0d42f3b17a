// A server that stops answering (SIGSTOP: its sockets stay open, nothing comes back) while the others are
// fine. The worker must notice within a round trip's worth of waiting, not when the stall watchdog
// (`commandTimeoutMs`, set long here so that the difference shows) finally drops the connection:
// - the silent server's reserves stop holding places that a live server could use;
// - a worker that starts while one server does not answer runs (and keeps alive) the live one's jobs;
// - a stop does not wait on the silent server's idle connections.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import pino from 'pino';
import { JobQueue } from '../../src/tasks/queue.js';
import { Worker } from '../../src/worker/worker.js';
import { startBeanstalkd } from '../helpers/beanstalkd.js';
import { deferred, freshTube, registry, until } from '../helpers/real-worker.js';

const silent = pino({ level: 'silent' });

/** SIGCONT, for the clean-up of a server the test may already have stopped for good. */
function resume(pid: number): void {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // Already gone.
  }
}

/** Long enough that waiting for the watchdog would fail every bound below. */
const WATCHDOG_MS = 30_000;

describe('several servers: one stops answering', () => {
  it('the live server drains at full speed while the other is stopped in the middle of a drain', { timeout: 60_000 }, async (t) => {
    const live = await startBeanstalkd();
    const stopped = await startBeanstalkd();
    t.after(async () => {
      resume(stopped.pid);
      await Promise.all([live.stop('SIGKILL'), stopped.stop('SIGKILL')]);
    });
    const tube = freshTube('silent');
    const ran = { live: 0, stopped: 0 };
    const putter = registry.task(tube)(async function where(kw: { on: 'live' | 'stopped' }) {
      ran[kw.on] += 1;
      await new Promise((resolve) => setImmediate(resolve));
    });
    const toStopped = new JobQueue({ url: stopped.url, logger: silent });
    const toLive = new JobQueue({ url: live.url, logger: silent });
    t.after(async () => {
      await Promise.all([toStopped.close(), toLive.close()]);
    });
    await Promise.all(Array.from({ length: 20_000 }, () => toStopped.put(putter, { on: 'stopped' })));
    const worker = new Worker({
      tubes: [tube],
      url: [live.url, stopped.url],
      concurrency: 4,
      logger: silent,
      commandTimeoutMs: WATCHDOG_MS,
    });
    t.after(async () => {
      resume(stopped.pid);
      await worker.stop({ force: true });
    });
    await worker.start();
    // Stopped while its reserves are in flight: they hold every place until something notices.
    await until(
      () => ran.stopped,
      (n) => n >= 500,
      10_000,
      'the worker drains the server that will stop',
    );
    process.kill(stopped.pid, 'SIGSTOP');

    const began = performance.now();
    await Promise.all(Array.from({ length: 2_000 }, () => toLive.put(putter, { on: 'live' })));
    await until(
      () => ran.live,
      (n) => n >= 2_000,
      WATCHDOG_MS,
      'the live server drains',
    );
    const ms = performance.now() - began;
    assert.ok(
      ms < 5_000,
      `2,000 jobs on the live server took ${Math.round(ms)} ms with the other stopped (the watchdog is ${WATCHDOG_MS} ms)`,
    );
    assert.ok(worker.activeJobs <= 8, `${worker.activeJobs} jobs held at concurrency 4`);

    // Back: the stopped server is drained again.
    const before = ran.stopped;
    process.kill(stopped.pid, 'SIGCONT');
    await until(
      () => ran.stopped,
      (n) => n >= before + 1_000,
      20_000,
      'the server that came back is drained again',
    );
  });

  it('a worker that starts while one server does not answer runs the live one’s jobs and keeps them alive past their TTR', {
    timeout: 60_000,
  }, async (t) => {
    const live = await startBeanstalkd();
    const stopped = await startBeanstalkd();
    process.kill(stopped.pid, 'SIGSTOP');
    t.after(async () => {
      resume(stopped.pid);
      await Promise.all([live.stop('SIGKILL'), stopped.stop('SIGKILL')]);
    });
    const tube = freshTube('slowstart');
    let runs = 0;
    const done = deferred();
    // Longer than its TTR (2 s): without touches beanstalkd hands it out again while it runs.
    const putter = registry.task(tube)(async function longerThanTtr() {
      runs += 1;
      await new Promise((resolve) => setTimeout(resolve, 3_500));
      done.resolve();
    });
    const queue = new JobQueue({ url: live.url, logger: silent });
    t.after(() => queue.close());
    await queue.put(putter, {}, { ttr: 2 });

    const worker = new Worker({
      tubes: [tube],
      url: [live.url, stopped.url],
      concurrency: 2,
      logger: silent,
      connectTimeoutMs: 8_000,
      commandTimeoutMs: WATCHDOG_MS,
    });
    t.after(() => worker.stop({ force: true }).then(() => undefined));
    const began = performance.now();
    await worker.start();
    const startMs = performance.now() - began;
    assert.ok(startMs < 4_000, `start() took ${Math.round(startMs)} ms; the stopped server's connect deadline is 8,000 ms`);
    await done.promise;
    assert.equal(runs, 1, 'the job ran once: it was touched while it ran');
  });

  it('a stop does not wait on a stopped server’s idle connections', { timeout: 60_000 }, async (t) => {
    const live = await startBeanstalkd();
    const stopped = await startBeanstalkd();
    t.after(async () => {
      resume(stopped.pid);
      await Promise.all([live.stop('SIGKILL'), stopped.stop('SIGKILL')]);
    });
    const tube = freshTube('stopidle');
    const worker = new Worker({
      tubes: [tube, `${tube}-b`],
      url: [live.url, stopped.url],
      concurrency: 4,
      logger: silent,
      commandTimeoutMs: WATCHDOG_MS,
    });
    await worker.start();
    process.kill(stopped.pid, 'SIGSTOP');
    const began = performance.now();
    await worker.stop();
    const ms = performance.now() - began;
    assert.ok(ms < 2_000, `stop() took ${Math.round(ms)} ms with one server stopped (quit waits 5,000 ms for a server's close)`);
  });
});
