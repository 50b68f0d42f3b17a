/**
 * The worker loop against the in-memory beanstalkd (test/helpers/fake-server.ts): how each reserved job
 * ends (deleted, buried, deleted at the kick bound, skipped, or left alone), what the events, logs and
 * the task's context say, and that event listeners can never break the loop.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import { NotFoundError } from '../../src/beanstalk/errors.js';
import { UnrecoverableError } from '../../src/tasks/errors.js';
import type { TaskContext } from '../../src/tasks/types.js';
import { body, deferred, letEventLoopTurn, queue, randomTube, SUITE, setup, stopWorkers } from '../helpers/fake-server.js';

// Fails a test that leaves a worker running, or whose fake saw what a correct worker never does.
afterEach(stopWorkers);

describe('Worker: how a job ends', SUITE, () => {
  it('deletes a job whose task succeeds, emitting reserved, completed and deleted', async () => {
    const tube = randomTube();
    const received: unknown[] = [];
    queue.task(tube)(function greet(kwargs: { who: string }) {
      received.push(kwargs);
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    const id = fake.addJob(body('greet', tube, { who: 'ann' }), { tube });
    await worker.start();
    assert.equal(worker.state, 'running');

    const deleted = await events.waitFor('job:deleted');
    assert.deepEqual(deleted, { jobId: id, tube, task: 'greet', reason: 'completed' });
    assert.deepEqual(received, [{ who: 'ann' }]);
    assert.deepEqual(fake.calls('delete'), [[id]]);
    assert.deepEqual(fake.calls('bury'), []);
    // stats-job comes first and once: it names the tube and the counters the run needs.
    assert.deepEqual(fake.calls('statsJob'), [[id]]);
    const order = fake.commands.map((entry) => entry.command);
    assert.ok(order.indexOf('statsJob') < order.indexOf('delete'), `statsJob must come before delete: ${order.join(', ')}`);
    assert.deepEqual(events.names().slice(0, 3), ['job:reserved', 'job:completed', 'job:deleted']);
    const completed = await events.waitFor('job:completed');
    assert.equal(completed.jobId, id);
    assert.equal(typeof completed.durationMs, 'number');
    assert.ok(completed.durationMs >= 0, 'durationMs is not negative');
  });

  it('awaits an async task before deleting its job', async () => {
    const tube = randomTube();
    const gate = deferred();
    const started = deferred();
    queue.task(tube)(async function slow(_kwargs: object) {
      started.resolve();
      await gate.promise;
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    const id = fake.addJob(body('slow', tube), { tube });
    await worker.start();
    await started.promise;
    await letEventLoopTurn();
    assert.deepEqual(fake.calls('delete'), [], 'deleted before the task finished');
    gate.resolve();
    await events.waitFor('job:deleted');
    assert.deepEqual(fake.calls('delete'), [[id]]);
  });

  it('buries a failed job with its own priority while kicks < maxKicks', async () => {
    const tube = randomTube();
    queue.task(tube)(function fails(_kwargs: object) {
      throw new Error('smtp down');
    });
    const { worker, fake, events, lines } = setup({ tubes: [tube], maxKicks: 3 });
    const id = fake.addJob(body('fails', tube), { tube, priority: 777, kicks: 2 });
    await worker.start();

    const buried = await events.waitFor('job:buried');
    assert.deepEqual(buried, { jobId: id, tube, task: 'fails', reason: 'failed', detail: 'smtp down' });
    assert.deepEqual(fake.calls('statsJob'), [[id]]);
    assert.deepEqual(fake.calls('bury'), [[id, 777]]);
    assert.deepEqual(fake.calls('delete'), []);
    const failed = await events.waitFor('job:failed');
    assert.ok(failed.error instanceof Error, 'job:failed carries an Error');
    assert.equal(failed.error.message, 'smtp down');
    assert.equal(failed.kicks, 2);
    // Whatever the wording, an operator must find the error next to the job id at warn level.
    assert.ok(
      lines.some((line) => line.level === 40 && line.jobId === id && JSON.stringify(line.err ?? null).includes('smtp down')),
      'a warn line with the job id and the error',
    );
  });

  it('deletes a failed job once kicks reach maxKicks, logging its body (up to 16 KiB) at error level', async () => {
    const tube = randomTube();
    queue.task(tube)(function hopeless(_kwargs: object) {
      throw new Error('still broken');
    });
    const { worker, fake, events, lines } = setup({ tubes: [tube], maxKicks: 2 });
    // Long enough that a truncated body in the log line would show.
    const text = body('hopeless', tube, { payload: 'x'.repeat(5_000), unicode: 'é😀' });
    const id = fake.addJob(text, { tube, priority: 5, kicks: 2 });
    await worker.start();

    const deleted = await events.waitFor('job:deleted');
    // The body rides on the event too, so a listener can keep what the log line keeps.
    assert.deepEqual(deleted, { jobId: id, tube, task: 'hopeless', reason: 'max-kicks', body: text });
    assert.deepEqual(fake.calls('delete'), [[id]]);
    assert.deepEqual(fake.calls('bury'), []);
    const line = lines.find((entry) => entry.level === 50 && entry.jobId === id);
    assert.ok(line, 'an error-level line for the deleted job');
    assert.equal(line.body, text);
    assert.equal(line.kicks, 2);
  });

  it('bounds unrunnable jobs like failures: an unregistered or undecodable job at the kick bound is deleted with its body', async () => {
    const tube = randomTube();
    queue.task(tube)(function known() {});
    const { worker, fake, events, lines } = setup({ tubes: [tube], maxKicks: 1 });
    // Below the bound: buried. At the bound: deleted, so auto-kick cannot cycle it for ever.
    const fresh = fake.addJob(body('missing', tube, {}), { tube, kicks: 0 });
    const spent = fake.addJob(body('missing', tube, {}), { tube, kicks: 1 });
    const garbage = fake.addJob('not json at all', { tube, kicks: 1 });
    await worker.start();
    await events.waitFor('job:buried', (event) => event.jobId === fresh);
    const deleted = await events.waitFor('job:deleted', (event) => event.jobId === spent);
    assert.equal(deleted.reason, 'max-kicks');
    const deletedGarbage = await events.waitFor('job:deleted', (event) => event.jobId === garbage);
    assert.equal(deletedGarbage.body, 'not json at all');
    assert.ok(
      lines.some((line) => line.level === 50 && line.jobId === garbage && line.body === 'not json at all'),
      'its body is logged',
    );
  });

  it('treats an UnrecoverableError from another copy of bsworker as unrecoverable (a Symbol.for brand, not instanceof)', async () => {
    const tube = randomTube();
    queue.task(tube, { retries: 3 })(function foreign() {
      // What a second copy's UnrecoverableError looks like from here: a different class, the same brand.
      throw Object.assign(new Error('no such order'), { [Symbol.for('bsworker.UnrecoverableError')]: true });
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    const id = fake.addJob(body('foreign', tube, {}), { tube });
    await worker.start();
    await events.waitFor('job:buried', (event) => event.jobId === id);
    assert.deepEqual(fake.calls('release'), [], 'no retry');
  });

  it('with maxKicks 0 deletes a failed job at once', async () => {
    const tube = randomTube();
    queue.task(tube)(function once(_kwargs: object) {
      throw new Error('no retries');
    });
    const { worker, fake, events } = setup({ tubes: [tube], maxKicks: 0 });
    const id = fake.addJob(body('once', tube), { tube, kicks: 0 });
    await worker.start();
    assert.equal((await events.waitFor('job:deleted')).reason, 'max-kicks');
    assert.deepEqual(fake.calls('delete'), [[id]]);
    assert.deepEqual(fake.calls('bury'), []);
  });

  it('skips a job that stats-job no longer finds: nothing runs, nothing is settled, and the loop goes on', async () => {
    const tube = randomTube();
    const ran: number[] = [];
    queue.task(tube)(function vanished(kwargs: { n: number }) {
      ran.push(kwargs.n);
    });
    const { worker, fake, events, lines } = setup({ tubes: [tube] });
    // Gone by the time stats-job asks (TTR ran out, deleted by an operator): it is no longer ours to run.
    const gone = fake.addJob(body('vanished', tube, { n: 1 }), { tube, gone: true });
    const next = fake.addJob(body('vanished', tube, { n: 2 }), { tube });
    await worker.start();
    await events.waitFor('job:deleted', (event) => event.jobId === next);

    assert.deepEqual(ran, [2]);
    assert.deepEqual(fake.calls('statsJob'), [[gone], [next]]);
    assert.deepEqual(fake.calls('bury'), []);
    assert.deepEqual(fake.calls('delete'), [[next]]);
    assert.deepEqual(
      events.events.filter((event) => event.payload?.jobId === gone),
      [],
    );
    assert.ok(
      lines.some((line) => line.level === 40 && line.jobId === gone),
      'a warn line with the skipped job id',
    );
  });

  it('gives a job back by dropping the connection when stats-job fails, then reconnects and runs it', async () => {
    const tube = randomTube();
    const ran: number[] = [];
    queue.task(tube)(function unknowable(kwargs: { n: number }) {
      ran.push(kwargs.n);
    });
    const { worker, fake, events, lines } = setup({ tubes: [tube] });
    fake.statsJobErrors.push(new Error('odd stats-job reply'));
    const first = fake.addJob(body('unknowable', tube, { n: 1 }), { tube });
    const next = fake.addJob(body('unknowable', tube, { n: 2 }), { tube });
    await worker.start();
    await events.waitFor('job:deleted', (event) => event.jobId === next);
    await events.waitFor('job:deleted', (event) => event.jobId === first);

    // Without its tube and counters the job cannot be judged: it was not run or settled on that
    // connection, which was dropped (giving the job back at once), and it ran after the reconnect.
    assert.deepEqual([...ran].sort(), [1, 2]);
    assert.deepEqual(fake.calls('bury'), []);
    assert.deepEqual(fake.calls('release'), []);
    assert.ok(events.names().includes('worker:reconnected'), 'the slot reconnected');
    assert.ok(
      lines.some((line) => line.level === 50 && line.jobId === first && JSON.stringify(line.err ?? null).includes('odd stats-job reply')),
      'an error line with the job id and the error',
    );
    assert.equal(worker.state, 'running');
  });

  it('handles non-Error throws: a string, undefined, an object', async () => {
    const tube = randomTube();
    const thrown: unknown[] = ['plain string', undefined, { code: 7, why: 'object' }];
    queue.task(tube)(function throwsAnything(kwargs: { i: number }) {
      throw thrown[kwargs.i];
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    const ids = thrown.map((_, i) => fake.addJob(body('throwsAnything', tube, { i }), { tube, priority: 100 + i }));
    await worker.start();
    await events.waitFor('job:buried', (event) => event.jobId === ids[2]);

    assert.deepEqual(fake.calls('bury'), [
      [ids[0], 100],
      [ids[1], 101],
      [ids[2], 102],
    ]);
    const failures = events.events.filter((event) => event.name === 'job:failed').map((event) => event.payload.error as Error);
    assert.equal(failures.length, 3);
    for (const error of failures) assert.ok(error instanceof Error, 'job:failed always carries an Error');
    assert.match(failures[0]?.message ?? '', /plain string/);
    assert.match(failures[1]?.message ?? '', /undefined/);
    assert.match(failures[2]?.message ?? '', /"code":7/);
    // A primitive survives as the cause; an object does not (a logger walking causes could trip on it).
    assert.equal(failures[0]?.cause, 'plain string');
    assert.equal(failures[2]?.cause, undefined);
  });

  it('buries an undecodable body without running anything', async () => {
    const tube = randomTube();
    let ran = 0;
    queue.task(tube)(function never(_kwargs: object) {
      ran += 1;
    });
    const { worker, fake, events, lines } = setup({ tubes: [tube] });
    const bodies = [Buffer.from([0xff, 0xfe]), 'not json', '[]', '{"func_name":"never"}', '{"kwargs":{}}'];
    const ids = bodies.map((text, i) => fake.addJob(text, { tube, priority: 10 + i }));
    await worker.start();
    await events.waitFor('job:buried', (event) => event.jobId === ids[ids.length - 1]);

    assert.equal(ran, 0);
    assert.deepEqual(
      fake.calls('bury'),
      ids.map((id, i) => [id, 10 + i]),
    );
    const buried = events.events.filter((event) => event.name === 'job:buried').map((event) => event.payload);
    assert.deepEqual(
      buried.map((event) => [event.jobId, event.reason, event.task]),
      ids.map((id) => [id, 'undecodable', undefined]),
    );
    assert.equal(
      events.events.some((event) => event.name === 'job:reserved' || event.name === 'job:completed'),
      false,
    );
    // The body is kept in the log so an operator can see what was buried.
    assert.ok(
      lines.some((line) => line.level === 50 && line.jobId === ids[1] && line.body === 'not json'),
      'an error line with the undecodable body',
    );
  });

  it('buries a job naming an unregistered task, including toString and __proto__, without running anything', async () => {
    const tube = randomTube();
    let ran = 0;
    queue.task(tube)(function registered(_kwargs: object) {
      ran += 1;
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    const names = ['missing', 'toString', '__proto__', 'constructor', 'hasOwnProperty'];
    const ids = names.map((name) => fake.addJob(body(name, tube), { tube, priority: 3 }));
    await worker.start();
    await events.waitFor('job:buried', (event) => event.jobId === ids[ids.length - 1]);

    assert.equal(ran, 0);
    assert.deepEqual(
      fake.calls('bury'),
      ids.map((id) => [id, 3]),
    );
    const buried = events.events.filter((event) => event.name === 'job:buried').map((event) => event.payload);
    assert.deepEqual(
      buried.map((event) => [event.jobId, event.reason, event.task]),
      ids.map((id, i) => [id, 'unregistered', names[i]]),
    );
    assert.deepEqual(fake.calls('delete'), []);
  });

  it('logs a delete that finds no job as a TTR overrun and emits job:overrun, then carries on', async () => {
    const tube = randomTube();
    queue.task(tube)(function overran(_kwargs: object) {});
    const { worker, fake, events, lines } = setup({ tubes: [tube] });
    fake.deleteErrors.push(new NotFoundError('delete', '1'));
    const first = fake.addJob(body('overran', tube), { tube });
    const second = fake.addJob(body('overran', tube), { tube });
    await worker.start();

    const overrun = await events.waitFor('job:overrun');
    assert.deepEqual(overrun, {
      jobId: first,
      tube,
      task: 'overran',
      command: 'delete',
      detail: `delete found no job ${first}: beanstalkd had already handed it out again`,
    });
    assert.deepEqual(await events.waitFor('job:deleted'), { jobId: second, tube, task: 'overran', reason: 'completed' });
    assert.equal(
      events.events.some((event) => event.name === 'job:deleted' && event.payload.jobId === first),
      false,
    );
    assert.ok(
      lines.some((line) => line.level === 40 && line.jobId === first && /overrun/i.test(String(line.msg))),
      'a warn line calling it an overrun',
    );
    assert.equal(worker.state, 'running');
  });
});

describe('Worker: listeners cannot break the loop', SUITE, () => {
  it('survives a listener that throws and an async listener that rejects', async () => {
    const tube = randomTube();
    const ran: number[] = [];
    queue.task(tube)(function counted(kwargs: { n: number }) {
      ran.push(kwargs.n);
    });
    const { worker, fake, events, lines } = setup({ tubes: [tube] });
    worker.on('job:completed', () => {
      throw new Error('sync listener bug');
    });
    worker.on('job:deleted', async () => {
      throw new Error('async listener bug');
    });
    fake.addJob(body('counted', tube, { n: 1 }), { tube });
    const secondId = fake.addJob(body('counted', tube, { n: 2 }), { tube });
    await worker.start();

    await events.waitFor('job:deleted', (event) => event.jobId === secondId);
    assert.deepEqual(ran, [1, 2]);
    assert.deepEqual(fake.calls('delete'), [['1'], ['2']]);
    await letEventLoopTurn();
    const listenerErrors = lines.filter((line) => line.level === 50 && line.event !== undefined);
    assert.ok(
      listenerErrors.some((line) => line.event === 'job:completed' && JSON.stringify(line).includes('sync listener bug')),
      'the throwing listener is logged',
    );
    assert.ok(
      listenerErrors.some((line) => line.event === 'job:deleted' && JSON.stringify(line).includes('async listener bug')),
      'the rejecting listener is logged',
    );
    assert.equal(worker.state, 'running');
  });
  it('survives listeners that throw on job:failed, job:released, job:buried, worker:error and worker:reconnected', async () => {
    const tube = randomTube();
    queue.task(tube, { retries: 1, backoff: { type: 'fixed', delaySeconds: 1, jitter: false } })(async function bumpy(
      kwargs: { give: 'up' | 'retry' },
      ctx: TaskContext,
    ) {
      if (kwargs.give === 'up') throw new UnrecoverableError('bad input');
      if ((await ctx.attempt()) === 1) throw new Error('first try fails');
    });
    const { worker, fake, events, lines } = setup({ tubes: [tube], reconnectMinMs: 1, reconnectMaxMs: 5 });
    const noisy = ['job:failed', 'job:released', 'job:buried', 'worker:error', 'worker:reconnected'] as const;
    for (const name of noisy) {
      worker.on(name, () => {
        throw new Error(`listener bug on ${name}`);
      });
    }
    const retried = fake.addJob(body('bumpy', tube, { give: 'retry' }), { tube });
    const buried = fake.addJob(body('bumpy', tube, { give: 'up' }), { tube });
    await worker.start();
    await events.waitFor('job:deleted', (event) => event.jobId === retried);
    await events.waitFor('job:buried', (event) => event.jobId === buried);
    await fake.waitForIdleReserve(0);
    fake.dropConnections();
    await events.waitFor('worker:reconnected');
    const after = fake.addJob(body('bumpy', tube, { give: 'retry' }), { tube });
    // Released once more (attempt 1 fails) and then done: the loop kept going through every listener bug.
    await events.waitFor('job:deleted', (event) => event.jobId === after);

    await letEventLoopTurn();
    for (const name of noisy) {
      assert.ok(
        lines.some((line) => line.level === 50 && line.event === name && JSON.stringify(line).includes(`listener bug on ${name}`)),
        `the throwing ${name} listener is logged`,
      );
    }
    assert.equal(worker.state, 'running');
  });
});

describe('Worker: the task context', SUITE, () => {
  it('gives the task jobId, tube (from stats-job), registered name, attempt, kicks, a live signal, a logger and touch', async () => {
    const tube = randomTube();
    let seen: TaskContext | undefined;
    let attempt: number | undefined;
    let kicks: number | undefined;
    queue.task(tube, { name: 'inspect', retries: 5 })(async function registeredUnderAnotherName(_kwargs: object, ctx: TaskContext) {
      seen = ctx;
      attempt = await ctx.attempt();
      kicks = (await ctx.stats()).kicks;
      ctx.logger.info('hello from the task');
    });
    const { worker, fake, events, lines } = setup({ tubes: [tube] });
    const id = fake.addJob(body('inspect', 'a-tube-the-body-made-up'), { tube, releases: 2, kicks: 1 });
    await worker.start();
    await events.waitFor('job:deleted');

    assert.ok(seen, 'the task ran');
    assert.equal(seen.jobId, id);
    assert.equal(seen.tube, tube);
    assert.equal(seen.name, 'inspect');
    assert.equal(attempt, 3, 'ctx.attempt() reads the releases from the server');
    assert.equal(kicks, 1);
    assert.ok(seen.signal instanceof AbortSignal);
    assert.equal(seen.signal.aborted, false);
    assert.equal(typeof seen.touch, 'function');
    const line = lines.find((entry) => entry.msg === 'hello from the task');
    assert.ok(line, 'the task logged through ctx.logger');
    assert.equal(line.jobId, id);
    assert.equal(line.tube, tube);
    assert.equal(line.task, 'inspect');
  });
});
