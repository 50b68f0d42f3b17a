/**
 * stop(), against the in-memory beanstalkd (test/helpers/fake-server.ts): idempotent, interrupts a
 * pending reserve, waits for running jobs up to graceMs, gives back what is left by closing the
 * connection (never deletes or buries it afterwards), and aborts the task's signal when it gives up.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import type { TaskContext } from '../../src/tasks/types.js';
import { body, deferred, forever, letEventLoopTurn, queue, randomTube, SUITE, setup, stopWorkers, within } from '../helpers/fake-server.js';

// Fails a test that leaves a worker running, or whose fake saw what a correct worker never does.
afterEach(stopWorkers);

describe('Worker: stop()', SUITE, () => {
  it('is idempotent: every call returns the same promise', async () => {
    const tube = randomTube();
    const { worker } = setup({ tubes: [tube] });
    await worker.start();
    const first = worker.stop();
    const second = worker.stop();
    const forced = worker.stop({ force: true });
    assert.equal(first, second);
    assert.equal(first, forced);
    assert.equal(await first, await worker.stop());
  });

  it('with no running job interrupts the pending reserve and resolves gracefully', async () => {
    const tube = randomTube();
    const { worker, fake, events } = setup({ tubes: [tube], reserveTimeoutSeconds: 3_600 });
    await worker.start();
    await fake.waitForCommand('reserve');
    // The reserve would wait an hour: only closing the connection under it lets stop() finish in time.
    const result = await within(worker.stop(), 2_000, 'stop() with an idle worker');
    assert.deepEqual(result, { graceful: true, releasedJobIds: [] });
    assert.equal(worker.state, 'stopped');
    assert.deepEqual(fake.calls('quit'), [[]]);
    assert.equal(await events.waitFor('worker:stopped'), result);
  });

  it('does not run a job that a reserve hands out while the stop is closing the connection', async () => {
    const tube = randomTube();
    let ran = 0;
    queue.task(tube)(function tooLate(_kwargs: object) {
      ran += 1;
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    await worker.start();
    await fake.waitForIdleReserve(0);
    fake.jobOnQuit = { body: body('tooLate', tube), tube };
    const result = await within(worker.stop(), 2_000, 'stop() racing a reserve');
    assert.equal(fake.jobOnQuit, undefined, 'the fake handed out the late job');
    // Closing the connection gives it back to beanstalkd; running it would run it twice.
    assert.equal(ran, 0);
    assert.deepEqual(result, { graceful: true, releasedJobIds: [] });
    assert.deepEqual(fake.calls('delete'), []);
    assert.deepEqual(fake.calls('bury'), []);
    assert.equal(
      events.events.some((event) => event.name === 'job:reserved'),
      false,
    );
  });

  it('releases at once, keeping its priority, a job reserved beside a running one that arrives after the stop began', async () => {
    const tube = randomTube();
    const started = deferred();
    const gate = deferred();
    const ran: string[] = [];
    queue.task(tube)(async function holder(_kwargs: object, ctx: TaskContext) {
      ran.push(ctx.jobId);
      started.resolve();
      await gate.promise;
    });
    const { worker, fake, events } = setup({ tubes: [tube], concurrency: 2, maxCrashes: 0 });
    const running = fake.addJob(body('holder', tube), { tube });
    const late = fake.addJob(body('holder', tube), { tube, priority: 77 });
    // The second pipelined reserve takes the late job on the server at once; its reply is held back
    // until the stop has begun, as if it were still on the wire.
    const reply = deferred();
    const connect = fake.connect.bind(fake);
    fake.connect = async () => {
      const connection = await connect();
      const reserve = connection.reserve.bind(connection);
      let asks = 0;
      connection.reserve = async (timeoutSeconds: number) => {
        const answer = reserve(timeoutSeconds);
        asks += 1;
        if (timeoutSeconds === 0 && asks === 2) await reply.promise;
        return answer;
      };
      return connection;
    };
    await worker.start();
    await within(started.promise, 2_000, 'the first job started');
    const stopping = worker.stop();
    await letEventLoopTurn();
    reply.resolve();
    // Released beside the running job (closing the connection would give that one back too), without
    // waiting for the running job to end.
    await fake.waitForCommand('release');
    assert.deepEqual(fake.calls('release'), [[late, 77, 0]]);
    assert.equal(fake.job(late)?.state, 'ready');
    assert.deepEqual(ran, [running], 'the late job did not run');
    gate.resolve();
    assert.deepEqual(await within(stopping, 2_000, 'stop()'), { graceful: true, releasedJobIds: [] });
    assert.equal(fake.job(running)?.state, 'deleted');
    assert.equal(events.count('job:reserved', late), 0);
  });

  it('on a worker that never started resolves gracefully', async () => {
    const { worker, fake } = setup({ tubes: [randomTube()] });
    const result = await within(worker.stop(), 2_000, 'stop() before start()');
    assert.deepEqual(result, { graceful: true, releasedJobIds: [] });
    assert.equal(worker.state, 'stopped');
    assert.deepEqual(fake.commands, []);
  });

  it('waits for the running job, deletes it, and only then closes the connection', async () => {
    const tube = randomTube();
    const started = deferred();
    const gate = deferred();
    queue.task(tube)(async function finishing(_kwargs: object) {
      started.resolve();
      await gate.promise;
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    const id = fake.addJob(body('finishing', tube), { tube });
    await worker.start();
    await started.promise;

    let settled = false;
    const stopping = worker.stop().finally(() => {
      settled = true;
    });
    await letEventLoopTurn();
    assert.equal(settled, false, 'stop() resolved while the job was still running');
    assert.equal(worker.state, 'stopping');
    assert.deepEqual(fake.calls('quit'), [], 'the connection was closed under a running job');

    gate.resolve();
    const result = await within(stopping, 2_000, 'stop() after the job finished');
    assert.deepEqual(result, { graceful: true, releasedJobIds: [] });
    assert.deepEqual(fake.calls('delete'), [[id]]);
    const order = fake.commands.map((entry) => entry.command);
    assert.ok(order.indexOf('delete') < order.indexOf('quit'), `delete must come before quit: ${order.join(', ')}`);
    assert.equal((await events.waitFor('job:deleted')).jobId, id);
  });

  it('gives back a job that outlives graceMs: released, connection closed, no delete or bury', async () => {
    const tube = randomTube();
    const started = deferred();
    queue.task(tube)(async function endless(_kwargs: object) {
      started.resolve();
      await new Promise<never>(() => undefined);
    });
    const { worker, fake, events } = setup({ tubes: [tube], graceMs: 50 });
    const id = fake.addJob(body('endless', tube), { tube, priority: 9 });
    await worker.start();
    await started.promise;

    const stopping = worker.stop();
    const released = await within(events.waitFor('job:released'), 2_000, 'job:released after graceMs');
    assert.equal(released.jobId, id);
    assert.equal(released.reason, 'stop');
    // The job never finishes, so stop() must not wait for it once it has been given back.
    const result = await within(stopping, 2_000, 'stop() after giving back a job that never finishes');
    assert.equal(result.graceful, false);
    assert.deepEqual(result.releasedJobIds, [id]);
    assert.equal(fake.calls('quit').length, 1);
    assert.deepEqual(fake.calls('delete'), []);
    assert.deepEqual(fake.calls('bury'), []);
    assert.deepEqual(fake.calls('release'), []);
    assert.equal(worker.state, 'stopped');
  });

  it('stop({ force: true }) during a graceful stop gives the running job back at once', async () => {
    const tube = randomTube();
    const started = deferred();
    queue.task(tube)(async function stuck(_kwargs: object) {
      started.resolve();
      await new Promise<never>(() => undefined);
    });
    // A grace period five times the bound on job:released below: only the force can release it in time.
    // (Not longer: if the force were broken, the worker's grace timer would keep this process alive.)
    const { worker, fake, events, lines } = setup({ tubes: [tube], graceMs: 10_000 });
    const id = fake.addJob(body('stuck', tube), { tube });
    await worker.start();
    await started.promise;

    const graceful = worker.stop();
    await letEventLoopTurn();
    assert.equal(
      events.events.some((event) => event.name === 'job:released'),
      false,
    );
    const forced = worker.stop({ force: true });
    assert.equal(forced, graceful);
    const released = await within(events.waitFor('job:released'), 2_000, 'job:released after a forced stop');
    assert.equal(released.jobId, id);
    assert.ok(
      lines.some((line) => line.jobId === id && /forced/.test(String(line.why))),
      'the release is logged as forced',
    );
    const result = await within(forced, 2_000, 'forced stop() with a job that never finishes');
    assert.deepEqual(result, { graceful: false, releasedJobIds: [id] });
    assert.equal(fake.calls('quit').length, 1);
    assert.deepEqual(fake.calls('delete'), []);
    assert.deepEqual(fake.calls('bury'), []);
  });

  it('neither deletes nor buries a job that finishes after it was given back', async () => {
    const tube = randomTube();
    const started = deferred();
    const gate = deferred();
    const outcome = deferred<string>();
    queue.task(tube)(async function late(kwargs: { fail: boolean }) {
      started.resolve();
      await gate.promise;
      outcome.resolve('finished');
      if (kwargs.fail) throw new Error('failed late');
    });
    const { worker, fake, events } = setup({ tubes: [tube], graceMs: 10_000 });
    const id = fake.addJob(body('late', tube, { fail: true }), { tube });
    await worker.start();
    await started.promise;

    // Forced from the first call: the job must be given back at once, not after graceMs. (Fails on
    // src/worker/worker.ts as it stands: the force listener is added after the signal has aborted.)
    const stopping = worker.stop({ force: true });
    await events.waitFor('job:released');
    // Now let the job end, after beanstalkd has had it back: it is someone else's job.
    gate.resolve();
    await outcome.promise;
    const result = await within(stopping, 2_000, 'stop() after the released job finished');
    assert.deepEqual(result, { graceful: false, releasedJobIds: [id] });
    assert.deepEqual(fake.calls('delete'), []);
    assert.deepEqual(fake.calls('bury'), []);
    // The stats-job before the run is the only other command about the job.
    assert.deepEqual(fake.calls('statsJob'), [[id]]);
    assert.equal(
      events.events.some((event) => event.name === 'job:failed' || event.name === 'job:buried' || event.name === 'job:deleted'),
      false,
    );
  });
});

describe('Worker: stop() and the task signal', SUITE, () => {
  it('a forced stop aborts the running task signal, emits job:released (stop) and gives the job back', async () => {
    const tube = randomTube();
    const started = deferred();
    let signal: AbortSignal | undefined;
    queue.task(tube)(function ignoresStop(_kwargs: object, ctx: TaskContext) {
      signal = ctx.signal;
      started.resolve();
      return forever();
    });
    const { worker, fake, events } = setup({ tubes: [tube], graceMs: 10_000 });
    const id = fake.addJob(body('ignoresStop', tube), { tube });
    await worker.start();
    await started.promise;

    const stopping = worker.stop();
    await letEventLoopTurn();
    assert.equal(signal?.aborted, false, 'a graceful stop leaves the signal alone while it waits');
    worker.stop({ force: true });
    const released = await within(events.waitFor('job:released'), 2_000, 'job:released after a forced stop');
    assert.deepEqual(released, { jobId: id, tube, task: 'ignoresStop', reason: 'stop' });
    assert.ok(signal?.aborted, 'the forced stop aborted the signal');
    assert.match(String((signal?.reason as Error | undefined)?.message), /forced/);
    assert.deepEqual(await within(stopping, 2_000, 'forced stop()'), { graceful: false, releasedJobIds: [id] });
    // Given back by closing the connection: not a release, so no retry is used up.
    assert.deepEqual(fake.calls('release'), []);
    assert.equal(fake.job(id)?.state, 'ready');
    assert.equal(fake.job(id)?.releases, 0);
  });

  it('the signal also aborts when graceMs runs out', async () => {
    const tube = randomTube();
    const started = deferred();
    let signal: AbortSignal | undefined;
    queue.task(tube)(function outlivesGrace(_kwargs: object, ctx: TaskContext) {
      signal = ctx.signal;
      started.resolve();
      return forever();
    });
    const { worker, fake, events } = setup({ tubes: [tube], graceMs: 30 });
    const id = fake.addJob(body('outlivesGrace', tube), { tube });
    await worker.start();
    await started.promise;
    const result = await within(worker.stop(), 2_000, 'stop() past graceMs');
    assert.deepEqual(result, { graceful: false, releasedJobIds: [id] });
    assert.ok(signal?.aborted, 'the signal aborted when the grace period ran out');
    assert.equal((await events.waitFor('job:released')).reason, 'stop');
  });
});
