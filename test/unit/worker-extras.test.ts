/**
 * The worker's opt-in features, against the in-memory beanstalkd (test/helpers/fake-server.ts): a
 * dead-letter tube for jobs at the kick bound (and the letter's body, src/worker/dead-letter.ts), and
 * auto-kick of buried jobs; both work on the control connection, which no reserve ever blocks.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import { JobTooBigError } from '../../src/beanstalk/errors.js';
import { decodeEnvelope } from '../../src/envelope/envelope.js';
import type { TaskContext } from '../../src/tasks/types.js';
import { deadLetterBody } from '../../src/worker/dead-letter.js';
import { body, queue, randomTube, SUITE, setup, stopWorkers } from '../helpers/fake-server.js';

// Fails a test that leaves a worker running, or whose fake saw what a correct worker never does.
afterEach(stopWorkers);

describe('Worker: dead letters', SUITE, () => {
  it('at the kick bound puts the body with meta.dead_letter into the dead-letter tube on the control connection, then deletes the original', async () => {
    const tube = randomTube();
    const deadLetters = randomTube();
    queue.task(tube, { retries: 2 })(function doomed(_kwargs: object) {
      throw new Error('broken for good');
    });
    const { worker, fake, events, connects } = setup({ tubes: [tube], maxKicks: 1, deadLetterTube: deadLetters });
    const text = JSON.stringify({ func_name: 'doomed', tube, kwargs: { order: 7, note: 'é😀' }, meta: { trace_id: 'abc' } });
    // Retries spent (releases 2 of 2) and kicks at the bound (1 of 1).
    const id = fake.addJob(text, { tube, priority: 5, releases: 2, kicks: 1 });
    const before = Date.now();
    await worker.start();

    const deleted = await events.waitFor('job:deleted');
    assert.deepEqual(deleted, { jobId: id, tube, task: 'doomed', reason: 'dead-letter', body: text });
    const puts = fake.commands.filter((entry) => entry.command === 'putInTube');
    assert.equal(puts.length, 1);
    const [put] = puts;
    assert.ok(put);
    assert.equal(put.args[0], deadLetters);
    // The control connection: the one no reserve ever blocks, opened on first use.
    assert.deepEqual(fake.connectionsThatSent('reserve'), [0]);
    assert.equal(put.conn, 1);
    assert.equal(connects(), 2);

    const letter = JSON.parse((put.args[1] as Buffer).toString('utf8'));
    assert.equal(letter.func_name, 'doomed');
    assert.deepEqual(letter.kwargs, { order: 7, note: 'é😀' });
    assert.equal(letter.meta.trace_id, 'abc');
    const info = letter.meta.dead_letter;
    assert.equal(info.error, 'broken for good');
    assert.equal(info.attempts, 3);
    assert.equal(info.kicks, 1);
    assert.equal(info.tube, tube);
    assert.equal(info.job_id, id);
    assert.match(info.stack, /broken for good/);
    const failedAt = Date.parse(info.failed_at);
    assert.equal(new Date(failedAt).toISOString(), info.failed_at, 'failed_at is an ISO timestamp');
    assert.ok(failedAt >= before - 1 && failedAt <= Date.now() + 1, 'failed_at is the time of the failure');

    // Put first, then delete: a crash in between leaves a copy, never nothing.
    const order = fake.commands.map((entry) => entry.command);
    assert.ok(order.indexOf('putInTube') < order.indexOf('delete'), `put before delete: ${order.join(', ')}`);
    assert.deepEqual(
      fake.commands.filter((entry) => entry.command === 'delete').map((entry) => [entry.conn, ...entry.args]),
      [[0, id]],
    );
    assert.deepEqual(fake.calls('bury'), []);
    assert.equal(fake.job(id)?.state, 'deleted');
    // The letter waits in its tube, which no slot watches.
    assert.deepEqual(
      fake.jobsIn(deadLetters).map((job) => job.state),
      ['ready'],
    );
  });

  it('buries the job instead when the dead-letter put fails: it is never lost', async () => {
    const tube = randomTube();
    const deadLetters = randomTube();
    queue.task(tube)(function doomed(_kwargs: object) {
      throw new Error('broken for good');
    });
    const { worker, fake, events, lines } = setup({ tubes: [tube], maxKicks: 1, deadLetterTube: deadLetters });
    fake.putErrors.push(new JobTooBigError('put'));
    const id = fake.addJob(body('doomed', tube), { tube, priority: 5, kicks: 1 });
    await worker.start();

    const buried = await events.waitFor('job:buried');
    assert.deepEqual(buried, { jobId: id, tube, task: 'doomed', reason: 'failed', detail: 'broken for good' });
    assert.deepEqual(fake.calls('bury'), [[id, 5]]);
    assert.deepEqual(fake.calls('delete'), []);
    assert.equal(fake.calls('putInTube').length, 1);
    assert.equal(
      events.events.some((event) => event.name === 'job:deleted'),
      false,
    );
    assert.ok(
      lines.some((line) => line.level === 50 && line.jobId === id && JSON.stringify(line.err ?? null).includes('JOB_TOO_BIG')),
      'an error line with the failed put',
    );
  });

  it('below the kick bound buries as before, without touching the dead-letter tube', async () => {
    const tube = randomTube();
    queue.task(tube)(function notYet(_kwargs: object) {
      throw new Error('maybe later');
    });
    const { worker, fake, events, connects } = setup({ tubes: [tube], maxKicks: 2, deadLetterTube: randomTube() });
    const id = fake.addJob(body('notYet', tube), { tube, kicks: 1 });
    await worker.start();
    assert.equal((await events.waitFor('job:buried')).jobId, id);
    assert.deepEqual(fake.calls('putInTube'), []);
    assert.equal(connects(), 1);
  });
});

describe('deadLetterBody (src/worker/dead-letter.ts)', () => {
  const now = new Date('2024-05-06T07:08:09.010Z');
  const info = (error: Error) => ({ error, tube: 'emails', jobId: '42', attempts: 3, kicks: 2 });
  const letterOf = (envelope: unknown, error: Error = new Error('smtp down')) =>
    JSON.parse(deadLetterBody(Buffer.from(JSON.stringify(envelope), 'utf8'), info(error), now).toString('utf8'));

  it('keeps the envelope and the other meta fields, and adds meta.dead_letter', () => {
    const error = new Error('smtp down');
    const letter = letterOf(
      { func_name: 'send', tube: 'emails', kwargs: { to: 'a@b.c', name: 'Zoë 😀' }, meta: { trace_id: 't1', n: 2 } },
      error,
    );
    assert.deepEqual(letter, {
      func_name: 'send',
      tube: 'emails',
      kwargs: { to: 'a@b.c', name: 'Zoë 😀' },
      meta: {
        trace_id: 't1',
        n: 2,
        dead_letter: {
          error: 'smtp down',
          name: 'Error',
          stack: error.stack,
          attempts: 3,
          kicks: 2,
          tube: 'emails',
          job_id: '42',
          failed_at: '2024-05-06T07:08:09.010Z',
        },
      },
    });
  });

  it('stays a valid envelope, so the job can be put back into its tube as it is', () => {
    const raw = deadLetterBody(Buffer.from(body('send', 'emails', { to: 'x' })), info(new Error('e')), now);
    const decoded = decodeEnvelope(raw);
    assert.ok(decoded.ok, 'decodes');
    assert.equal(decoded.envelope.func_name, 'send');
    assert.deepEqual(decoded.envelope.kwargs, { to: 'x' });
  });

  it('replaces a meta that is not an object, and overwrites an earlier dead_letter', () => {
    for (const meta of [undefined, null, 'text', 7, ['a']]) {
      const letter = letterOf({ func_name: 'f', kwargs: {}, meta });
      assert.deepEqual(Object.keys(letter.meta), ['dead_letter'], `meta ${JSON.stringify(meta)}`);
    }
    const again = letterOf({ func_name: 'f', kwargs: {}, meta: { dead_letter: { error: 'the first failure' } } }, new Error('the second'));
    assert.equal(again.meta.dead_letter.error, 'the second');
  });

  it('cuts a long stack to 4000 characters and an ellipsis, and keeps a shorter one whole', () => {
    const long = new Error('deep');
    long.stack = `Error: deep\n${'    at frame (file.ts:1:1)\n'.repeat(1_000)}`;
    const cut = letterOf({ func_name: 'f', kwargs: {} }, long).meta.dead_letter.stack as string;
    assert.equal(cut.length, 4_001);
    assert.equal(cut, `${long.stack.slice(0, 4_000)}…`);

    const exact = new Error('exact');
    exact.stack = 'x'.repeat(4_000);
    assert.equal(letterOf({ func_name: 'f', kwargs: {} }, exact).meta.dead_letter.stack, exact.stack);

    const none = new Error('no stack');
    none.stack = undefined;
    assert.equal(letterOf({ func_name: 'f', kwargs: {} }, none).meta.dead_letter.stack, '');
  });
});

describe('Worker: auto-kick', SUITE, () => {
  it('with kickPeriodSeconds 1 kicks the buried jobs of each watched tube on the control connection, and they run again', async () => {
    const [a, b] = [randomTube(), randomTube()];
    const kicksSeen: number[] = [];
    queue.task(a)(async function revived(_kwargs: object, ctx: TaskContext) {
      kicksSeen.push((await ctx.stats()).kicks);
    });
    const { worker, fake, events, connects } = setup({ tubes: [a, b], kickPeriodSeconds: 1 });
    const ids = [fake.addJob(body('revived', a), { tube: a, buried: true }), fake.addJob(body('revived', a), { tube: a, buried: true })];
    await worker.start();
    for (const id of ids) await events.waitFor('job:deleted', (event) => event.jobId === id);

    assert.deepEqual(kicksSeen, [1, 1]);
    // Slot 0 reserves; the control connection (1) asks, uses the tube with buried jobs, and kicks exactly
    // that many (a larger bound would also kick delayed jobs). Tube b has none: no use, no kick.
    assert.deepEqual(fake.connectionsThatSent('reserve'), [0]);
    assert.deepEqual(fake.sentOn(1).slice(0, 4), [
      ['statsTube', a],
      ['use', a],
      ['kick', 2],
      ['statsTube', b],
    ]);
    assert.deepEqual(fake.connectionsThatSent('kick'), [1]);
    assert.deepEqual(fake.connectionsThatSent('statsTube'), [1]);
    assert.deepEqual(fake.calls('use'), [[a]]);
    assert.equal(connects(), 2);
  });

  it('without kickPeriodSeconds never kicks', async () => {
    const tube = randomTube();
    queue.task(tube)(function unused(_kwargs: object) {});
    const { worker, fake, events, connects } = setup({ tubes: [tube] });
    fake.addJob(body('unused', tube), { tube, buried: true });
    const id = fake.addJob(body('unused', tube), { tube });
    await worker.start();
    assert.equal((await events.waitFor('job:deleted')).jobId, id);
    assert.deepEqual(fake.calls('statsTube'), []);
    assert.deepEqual(fake.calls('kick'), []);
    assert.equal(connects(), 1);
  });
});
