/**
 * Retries and time limits, against the in-memory beanstalkd (test/helpers/fake-server.ts): a failed job
 * is released with the task's backoff while it has retries left, then buried; the backoff arithmetic
 * itself (src/worker/backoff.ts); timeoutMs; and the keep-alive that touches a long job.
 *
 * The keep-alive test shows that touches stop by letting a second job run for two touch intervals, which
 * it awaits through that job's own touches: no fixed waits, as everywhere in these tests.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import { UnrecoverableError } from '../../src/tasks/errors.js';
import type { TaskContext } from '../../src/tasks/types.js';
import { BACKOFF_DEFAULTS, reconnectDelayMs, retryDelaySeconds } from '../../src/worker/backoff.js';
import { TaskTimeoutError } from '../../src/worker/process-job.js';
import { body, forever, payloads, queue, randomTube, SUITE, setup, stopWorkers } from '../helpers/fake-server.js';

// Fails a test that leaves a worker running, or whose fake saw what a correct worker never does.
afterEach(stopWorkers);

describe('Worker: retries', SUITE, () => {
  it('releases a failed job with the backoff delay while retries are left, each run seeing its attempt; then buries it', async () => {
    const tube = randomTube();
    const attempts: number[] = [];
    queue.task(tube, { retries: 2, backoff: { type: 'exponential', delaySeconds: 3, jitter: false } })(async function flaky(
      _kwargs: object,
      ctx: TaskContext,
    ) {
      const attempt = await ctx.attempt();
      attempts.push(attempt);
      throw new Error(`attempt ${attempt} failed`);
    });
    const { worker, fake, events } = setup({ tubes: [tube], maxKicks: 3 });
    const id = fake.addJob(body('flaky', tube), { tube, priority: 42 });
    await worker.start();

    const buried = await events.waitFor('job:buried');
    assert.deepEqual(buried, { jobId: id, tube, task: 'flaky', reason: 'failed', detail: 'attempt 3 failed' });
    // attempt = releases + 1, as stats-job counts them.
    assert.deepEqual(attempts, [1, 2, 3]);
    // Exponential from 3 s: 3 s before attempt 2, 6 s before attempt 3; the priority is kept.
    assert.deepEqual(fake.calls('release'), [
      [id, 42, 3],
      [id, 42, 6],
    ]);
    assert.deepEqual(fake.calls('bury'), [[id, 42]]);
    assert.deepEqual(fake.calls('delete'), []);
    assert.deepEqual(payloads(events, 'job:released'), [
      { jobId: id, tube, task: 'flaky', reason: 'retry', delaySeconds: 3 },
      { jobId: id, tube, task: 'flaky', reason: 'retry', delaySeconds: 6 },
    ]);
    assert.deepEqual(
      payloads(events, 'job:failed').map((event) => [event.attempt, event.error.message]),
      [
        [1, 'attempt 1 failed'],
        [2, 'attempt 2 failed'],
        [3, 'attempt 3 failed'],
      ],
    );
    assert.deepEqual(events.names(), [
      'job:reserved',
      'job:failed',
      'job:released',
      'job:reserved',
      'job:failed',
      'job:released',
      'job:reserved',
      'job:failed',
      'job:buried',
    ]);
  });

  it('with a fixed backoff releases with the same delay every time', async () => {
    const tube = randomTube();
    queue.task(tube, { retries: 3, backoff: { type: 'fixed', delaySeconds: 5, jitter: false } })(function steady(_kwargs: object) {
      throw new Error('down');
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    const id = fake.addJob(body('steady', tube), { tube });
    await worker.start();
    await events.waitFor('job:buried');
    assert.deepEqual(
      fake.calls('release').map((args) => args[2]),
      [5, 5, 5],
    );
    assert.deepEqual(fake.calls('bury'), [[id, 1024]]);
  });

  it('counts attempts from stats-job: a job that has used up its retries elsewhere is buried at once', async () => {
    const tube = randomTube();
    let attempt = 0;
    queue.task(tube, { retries: 2 })(async function counted(_kwargs: object, ctx: TaskContext) {
      attempt = await ctx.attempt();
      throw new Error('no luck');
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    const id = fake.addJob(body('counted', tube), { tube, releases: 2 });
    await worker.start();
    assert.equal((await events.waitFor('job:buried')).jobId, id);
    assert.equal(attempt, 3);
    assert.deepEqual(fake.calls('release'), []);
  });

  it('buries at once on an UnrecoverableError, without a release, even with retries left', async () => {
    const tube = randomTube();
    let runs = 0;
    queue.task(tube, { retries: 5 })(function refuses(_kwargs: object) {
      runs += 1;
      throw new UnrecoverableError('no such user');
    });
    const { worker, fake, events } = setup({ tubes: [tube], maxKicks: 3 });
    const id = fake.addJob(body('refuses', tube), { tube, priority: 7 });
    // At the kick bound the bounded-kick rule still applies: deleted, not buried forever.
    const atBound = fake.addJob(body('refuses', tube), { tube, priority: 8, kicks: 3 });
    await worker.start();

    const buried = await events.waitFor('job:buried');
    assert.deepEqual(buried, { jobId: id, tube, task: 'refuses', reason: 'failed', detail: 'no such user' });
    const deleted = await events.waitFor('job:deleted');
    assert.equal(deleted.jobId, atBound);
    assert.equal(deleted.reason, 'max-kicks');
    assert.equal(runs, 2);
    assert.deepEqual(fake.calls('release'), []);
    assert.deepEqual(fake.calls('bury'), [[id, 7]]);
    assert.deepEqual(fake.calls('delete'), [[atBound]]);
    const failed = await events.waitFor('job:failed');
    assert.ok(failed.error instanceof UnrecoverableError, 'job:failed carries the UnrecoverableError');
    assert.equal(failed.attempt, 1);
  });
});

describe('retryDelaySeconds and reconnectDelayMs (src/worker/backoff.ts)', () => {
  /** A random source that always answers `value`: its extremes are 0 and just under 1. */
  const always = (value: number) => () => value;
  const TOP = 0.999_999;

  it('fixed: the same delay for every attempt', () => {
    const fixed = { type: 'fixed', delaySeconds: 5, jitter: false } as const;
    assert.deepEqual(
      [1, 2, 3, 10, 100].map((attempt) => retryDelaySeconds(fixed, attempt)),
      [5, 5, 5, 5, 5],
    );
  });

  it('exponential: doubles from delaySeconds, capped at maxDelaySeconds', () => {
    const exponential = { type: 'exponential', delaySeconds: 2, jitter: false } as const;
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((attempt) => retryDelaySeconds(exponential, attempt)),
      [2, 4, 8, 16, 32],
    );
    const capped = { ...exponential, maxDelaySeconds: 10 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 50, 5_000].map((attempt) => retryDelaySeconds(capped, attempt)),
      [2, 4, 8, 10, 10, 10, 10],
    );
    // An attempt below 1 never gives less than the first delay.
    assert.equal(retryDelaySeconds(exponential, 0), 2);
  });

  it('defaults: exponential from 1 s, capped at an hour, with jitter', () => {
    assert.deepEqual({ ...BACKOFF_DEFAULTS }, { type: 'exponential', delaySeconds: 1, maxDelaySeconds: 3_600, jitter: true });
    assert.equal(retryDelaySeconds(undefined, 1, always(TOP)), 1);
    assert.equal(retryDelaySeconds(undefined, 4, always(TOP)), 8);
    assert.equal(retryDelaySeconds(undefined, 4, always(0)), 4);
    assert.equal(retryDelaySeconds(undefined, 1_000, always(TOP)), 3_600);
    // Options given in part fall back to the defaults for the rest.
    assert.equal(retryDelaySeconds({ delaySeconds: 10 }, 2, always(TOP)), 20);
  });

  it('jitter spreads each delay over 50-100% of its capped value, from the injected random', () => {
    const jittered = { type: 'exponential', delaySeconds: 100, maxDelaySeconds: 400, jitter: true } as const;
    assert.equal(retryDelaySeconds(jittered, 1, always(0)), 50);
    assert.equal(retryDelaySeconds(jittered, 1, always(0.5)), 75);
    assert.equal(retryDelaySeconds(jittered, 1, always(TOP)), 100);
    // Applied after the cap: attempt 10 is capped at 400, then spread over 200-400.
    assert.equal(retryDelaySeconds(jittered, 10, always(0)), 200);
    assert.equal(retryDelaySeconds(jittered, 10, always(TOP)), 400);
    for (let r = 0; r < 1; r += 0.01) {
      for (const attempt of [1, 2, 3, 10]) {
        const capped = Math.min(400, 100 * 2 ** (attempt - 1));
        const delay = retryDelaySeconds(jittered, attempt, always(r));
        assert.ok(Number.isInteger(delay), `whole seconds, got ${delay}`);
        assert.ok(delay >= capped / 2 && delay <= capped, `attempt ${attempt}, random ${r}: ${delay} outside [${capped / 2}, ${capped}]`);
      }
    }
    // The same options with jitter off ignore the random source.
    assert.equal(retryDelaySeconds({ ...jittered, jitter: false }, 1, always(0)), 100);
  });

  it('reconnectDelayMs doubles from minMs up to maxMs, spread over 50-100%', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 60].map((attempt) => reconnectDelayMs(attempt, 100, 1_000, always(TOP))),
      [100, 200, 400, 800, 1_000, 1_000, 1_000],
    );
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((attempt) => reconnectDelayMs(attempt, 100, 1_000, always(0))),
      [50, 100, 200, 400, 500, 500],
    );
    for (let r = 0; r < 1; r += 0.01) {
      for (const attempt of [1, 3, 8]) {
        const capped = Math.min(1_000, 100 * 2 ** (attempt - 1));
        const delay = reconnectDelayMs(attempt, 100, 1_000, always(r));
        assert.ok(delay >= capped / 2 && delay <= capped, `attempt ${attempt}, random ${r}: ${delay} outside [${capped / 2}, ${capped}]`);
      }
    }
    // Never 0 ms, which would be a busy loop: the smallest minMs still waits 1 ms.
    assert.equal(reconnectDelayMs(1, 1, 1, always(0)), 1);
  });
});

describe('Worker: time limits and keep-alive', SUITE, () => {
  it('timeoutMs aborts the signal with TaskTimeoutError and fails the job without waiting for the task', async () => {
    const tube = randomTube();
    let signal: AbortSignal | undefined;
    queue.task(tube, { timeoutMs: 30 })(function hangs(_kwargs: object, ctx: TaskContext) {
      signal = ctx.signal;
      // Ignores its signal and never settles.
      return forever();
    });
    queue.task(tube)(function next(_kwargs: object) {});
    const { worker, fake, events } = setup({ tubes: [tube] });
    const hung = fake.addJob(body('hangs', tube), { tube, priority: 11 });
    const after = fake.addJob(body('next', tube), { tube });
    await worker.start();

    const failed = await events.waitFor('job:failed');
    assert.equal(failed.jobId, hung);
    assert.ok(failed.error instanceof TaskTimeoutError, `a TaskTimeoutError, got ${failed.error}`);
    assert.ok(signal?.aborted, 'the task signal aborted');
    assert.equal(signal?.reason, failed.error);
    assert.deepEqual(await events.waitFor('job:buried'), {
      jobId: hung,
      tube,
      task: 'hangs',
      reason: 'failed',
      detail: failed.error.message,
    });
    assert.deepEqual(fake.calls('bury'), [[hung, 11]]);
    // The slot went on to the next job although the task never settled.
    assert.equal((await events.waitFor('job:deleted')).jobId, after);
  });

  it('a timed-out job is retried like any failure', async () => {
    const tube = randomTube();
    const attempts: number[] = [];
    queue.task(tube, { timeoutMs: 20, retries: 1, backoff: { type: 'fixed', delaySeconds: 2, jitter: false } })(async function slowOnce(
      _kwargs: object,
      ctx: TaskContext,
    ) {
      const attempt = await ctx.attempt();
      attempts.push(attempt);
      return attempt === 1 ? forever() : undefined;
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    const id = fake.addJob(body('slowOnce', tube), { tube });
    await worker.start();
    assert.equal((await events.waitFor('job:deleted')).jobId, id);
    assert.deepEqual(attempts, [1, 2]);
    assert.deepEqual(fake.calls('release'), [[id, 1024, 2]]);
  });

  it('touches a long job about every ttr / 2 on its own connection, and stops touching when the task ends', async () => {
    const tube = randomTube();
    const { worker, fake, events } = setup({ tubes: [tube] });
    const touches = (id: string) => fake.calls('touch').filter(([touched]) => touched === id).length;
    // Each run lasts until its job has been touched twice: over two touch intervals, longer than a 1 s TTR.
    queue.task(tube)(async function long(_kwargs: object, ctx: TaskContext) {
      await fake.waitUntil(() => touches(ctx.jobId) >= 2, `two touches of job ${ctx.jobId}`);
    });
    // With ttr 1 the interval is its floor, 500 ms.
    const first = fake.addJob(body('long', tube), { tube, ttrSeconds: 1 });
    const second = fake.addJob(body('long', tube), { tube, ttrSeconds: 1 });
    await worker.start();
    await events.waitFor('job:deleted', (event) => event.jobId === second);

    assert.deepEqual(payloads(events, 'job:overrun'), []);
    assert.equal(touches(first), 2);
    // Touched where it was reserved: only that connection holds the job.
    assert.deepEqual(fake.connectionsThatSent('touch'), [0]);
    assert.deepEqual(fake.connectionsThatSent('reserve'), [0]);
    // The second job ran for two more intervals after the first ended: a keep-alive of the first that
    // was still going would have touched it again in that time.
    const order = fake.commands.map((entry) => [entry.command, entry.args[0]]);
    const firstDeleted = order.findIndex(([command, id]) => command === 'delete' && id === first);
    assert.ok(firstDeleted > 0, 'the first job was deleted');
    assert.deepEqual(
      order.slice(firstDeleted).filter(([command, id]) => command === 'touch' && id === first),
      [],
      'no touch of the first job after its task ended',
    );
  });

  it('ctx.touch() touches the job on its connection', async () => {
    const tube = randomTube();
    queue.task(tube)(async function touchy(_kwargs: object, ctx: TaskContext) {
      await ctx.touch();
      await ctx.touch();
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    const id = fake.addJob(body('touchy', tube), { tube });
    await worker.start();
    await events.waitFor('job:deleted');
    assert.deepEqual(fake.calls('touch'), [[id], [id]]);
  });
});
