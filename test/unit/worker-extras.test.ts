/**
 * The worker's opt-in features, against the in-memory beanstalkd (test/helpers/fake-server.ts): a
 * dead-letter tube for jobs at the kick bound (and the letter's body, src/worker/dead-letter.ts), and
 * auto-kick of buried jobs; both work on the control connection, which no reserve ever blocks.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import { JobTooBigError } from '../../src/beanstalk/errors.js';
import { decodeEnvelope } from '../../src/envelope/envelope.js';
import { deadLetterBody, originalBody } from '../../src/worker/dead-letter.js';
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

  it('buries the job instead when the dead-letter put fails three times: it is never lost', async () => {
    const tube = randomTube();
    const deadLetters = randomTube();
    queue.task(tube)(function doomed(_kwargs: object) {
      throw new Error('broken for good');
    });
    const { worker, fake, events, lines } = setup({ tubes: [tube], maxKicks: 1, deadLetterTube: deadLetters });
    fake.putErrors.push(new JobTooBigError('put'), new JobTooBigError('put'), new JobTooBigError('put'));
    const id = fake.addJob(body('doomed', tube), { tube, priority: 5, kicks: 1 });
    await worker.start();

    const buried = await events.waitFor('job:buried');
    assert.deepEqual(buried, { jobId: id, tube, task: 'doomed', reason: 'failed', detail: 'broken for good' });
    assert.deepEqual(fake.calls('bury'), [[id, 5]]);
    assert.deepEqual(fake.calls('delete'), []);
    assert.equal(fake.calls('putInTube').length, 3, 'tried three times');
    assert.equal(
      events.events.some((event) => event.name === 'job:deleted'),
      false,
    );
    assert.ok(
      lines.some((line) => line.level === 40 && line.jobId === id && JSON.stringify(line.err ?? null).includes('JOB_TOO_BIG')),
      'a warn line with each failed put',
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
  const maxBytes = 65_535;
  const info = (error: Error) => ({ error, tube: 'emails', jobId: '42', attempts: 3, kicks: 2 });
  const letterBytes = (original: Buffer, error: Error = new Error('smtp down'), max = maxBytes): Buffer => {
    const letter = deadLetterBody(original, info(error), { maxBytes: max, now });
    assert.ok(letter, 'a dead letter');
    return letter;
  };
  const letterOf = (envelope: unknown, error?: Error) =>
    JSON.parse(letterBytes(Buffer.from(JSON.stringify(envelope), 'utf8'), error).toString('utf8'));

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
          original: 'envelope',
        },
      },
    });
  });

  it('stays a valid envelope, so the job can be put back into its tube as it is', () => {
    const raw = letterBytes(Buffer.from(body('send', 'emails', { to: 'x' })), new Error('e'));
    const decoded = decodeEnvelope(raw);
    assert.ok(decoded.ok, 'decodes');
    assert.equal(decoded.envelope.func_name, 'send');
    assert.deepEqual(decoded.envelope.kwargs, { to: 'x' });
  });

  it('keeps every original body recoverable byte for byte: envelopes, other JSON, text and bytes that are not UTF-8', () => {
    const originals = [
      Buffer.from(body('send', 'emails', { to: 'x' })),
      Buffer.from(JSON.stringify({ func_name: 'f', kwargs: {}, meta: { trace: 1 } })),
      // JSON that does not read back to the same bytes: spacing, big numbers, a meta that is not an object.
      Buffer.from('{ "func_name": "f", "kwargs": {"n": 12345678901234567890} }'),
      Buffer.from('{"func_name":"f","kwargs":{},"meta":"text"}'),
      Buffer.from('{"func_name":"f","kwargs":{},"meta":{"dead_letter":{"error":"the first failure"}}}'),
      Buffer.from('not json at all\r\nput 0 0 1 1'),
      Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0xc3, 0x28, 0x7d]),
    ];
    for (const original of originals) {
      const letter = letterBytes(original);
      assert.ok(originalBody(letter)?.equals(original), `recovers ${JSON.stringify(original.toString('latin1'))}`);
    }
    const bytes = JSON.parse(letterBytes(originals[6] as Buffer).toString('utf8'));
    assert.equal(bytes.meta.dead_letter.original, 'base64');
    assert.equal(bytes.meta.dead_letter.body, (originals[6] as Buffer).toString('base64'));
    const text = JSON.parse(letterBytes(originals[3] as Buffer).toString('utf8'));
    assert.equal(text.meta.dead_letter.original, 'utf8');
  });

  it('fits the server limit: drops the stack, then cuts the message, and gives up only when the body alone cannot fit', () => {
    const original = Buffer.from(body('send', 'emails', { text: 'x'.repeat(60_000) }));
    const huge = new Error('m'.repeat(100_000));
    const letter = JSON.parse(letterBytes(original, huge).toString('utf8'));
    assert.ok(letter.meta.dead_letter.error.length <= 2_100, 'the message is capped');
    assert.ok(letterBytes(original, huge).length <= maxBytes);

    const tight = Buffer.from(body('send', 'emails', { text: 'x'.repeat(65_100) }));
    const fitted = JSON.parse(letterBytes(tight, huge).toString('utf8'));
    assert.equal(fitted.meta.dead_letter.stack_dropped, true);
    assert.ok(fitted.meta.dead_letter.error.length < 300, 'cut short to fit');

    assert.equal(deadLetterBody(Buffer.alloc(65_414, 0x61), info(huge), { maxBytes, now }), null);
  });

  it('cuts a long stack to 4000 characters and says how much was cut', () => {
    const long = new Error('deep');
    long.stack = `Error: deep\n${'    at frame (file.ts:1:1)\n'.repeat(1_000)}`;
    const cut = letterOf({ func_name: 'f', kwargs: {} }, long).meta.dead_letter.stack as string;
    assert.ok(cut.startsWith(long.stack.slice(0, 4_000)));
    assert.match(cut, /… \(\d+ more characters\)$/);

    const exact = new Error('exact');
    exact.stack = 'x'.repeat(4_000);
    assert.equal(letterOf({ func_name: 'f', kwargs: {} }, exact).meta.dead_letter.stack, exact.stack);
  });
});

describe('Worker: auto-kick', SUITE, () => {
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
