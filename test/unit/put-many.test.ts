/**
 * putMany's bounded memory: a batch is checked whole before the first put, keeps bodies only up to a
 * byte budget, and encodes the rest again as the window reaches them, refusing one whose kwargs changed
 * since the check. Driven through PutManyBatch with a small budget, and through a JobQueue on a fake
 * connection.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { z } from 'zod';
import { MAX_TEXT_BODY, type PutBody } from '../../src/beanstalk/encode.js';
import { encodeEnvelope } from '../../src/envelope/envelope.js';
import { KwargsValidationError, PutManyError } from '../../src/tasks/errors.js';
import { PutManyBatch, putWindowed } from '../../src/tasks/put-many.js';
import { type PutCallbacks, toPutBody } from '../../src/tasks/put-sender.js';
import { JobQueue } from '../../src/tasks/queue.js';
import type { TaskMetadata } from '../../src/tasks/types.js';
import { RecordingBeanstalk } from '../helpers/fake-beanstalk.js';
import { randomTube } from '../helpers/fake-server.js';

const silent = pino({ level: 'silent' });
const plain: TaskMetadata = { name: 'job', tube: 'pm', options: {} };

/** A body as bytes: an ASCII body is kept as text, which latin1 writes byte for byte. */
function bytesOf(body: PutBody): Buffer {
  return typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
}

/** `count` kwargs of about 1 KB each. */
function items(count: number): { i: number; text: string }[] {
  return Array.from({ length: count }, (_, i) => ({ i, text: `${i}`.padEnd(1_000, 'x') }));
}

describe('PutManyBatch', () => {
  it('keeps bodies up to the budget, encodes the others again, and gives the same bytes either way', async () => {
    const list = items(10);
    // About three bodies fit in 3,500 bytes.
    const batch = await PutManyBatch.check(plain, list, { keepValues: false, window: 1, heldBytes: 3_500 });
    for (const [index, kwargs] of list.entries()) {
      assert.deepEqual(bytesOf(batch.body(index)), encodeEnvelope('job', 'pm', kwargs), `item ${index}`);
    }
    // A kept body is released when taken: asking again encodes it again, with the same bytes.
    assert.deepEqual(bytesOf(batch.body(0)), encodeEnvelope('job', 'pm', list[0]));
  });

  it('checks every item before answering: a bad item past the budget is named', async () => {
    const list: unknown[] = [...items(9), { i: 9, bad: 10n }];
    await assert.rejects(PutManyBatch.check(plain, list, { keepValues: false, window: 1, heldBytes: 2_000 }), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /^putMany: item 9: Cannot encode kwargs\.bad: a BigInt/);
      return true;
    });
  });

  it('checks the schema on every item, past the budget too, with the kwargs as the worker sees them', async () => {
    const schema = z.object({ i: z.number().max(5), text: z.string(), at: z.string().optional() });
    const metadata: TaskMetadata = { name: 'job', tube: 'pm', options: { schema } };
    await assert.rejects(
      PutManyBatch.check(metadata, items(7), { keepValues: false, window: 1, heldBytes: 1_500 }),
      /^KwargsValidationError: putMany: item 6: /,
    );
    // A Date is checked as the string the worker will get; the outputs are kept when asked for.
    const at = new Date(0);
    const batch = await PutManyBatch.check(metadata, [{ i: 1, text: 't', at }], { keepValues: true, window: 1, heldBytes: 1_500 });
    assert.deepEqual(batch.values, [{ i: 1, text: 't', at: '1970-01-01T00:00:00.000Z' }]);
  });

  it('checks the size of every body, kept or not, naming the first one over the limit', async () => {
    const list = [...items(5), { i: 5, text: 'y'.repeat(5_000) }];
    const batch = await PutManyBatch.check(plain, list, { keepValues: false, window: 1, heldBytes: 2_000 });
    assert.throws(() => batch.assertSizes(4_000), /^RangeError: putMany: item 5: Expected the job body to be at most 4000 bytes/);
    batch.assertSizes(6_000);
  });

  it('refuses a body whose kwargs changed between the check and the put', async () => {
    let reads = 0;
    const fickle = {
      get text(): string {
        reads += 1;
        return reads === 1 ? 'short' : 'much longer';
      },
    };
    const batch = await PutManyBatch.check(plain, [...items(3), fickle], { keepValues: false, window: 1, heldBytes: 1_500 });
    assert.throws(() => batch.body(3), /^TypeError: putMany: item 3: its kwargs changed between the check of the batch and the put/);
  });

  it('keeps the bodies of the first window whatever the budget: they are sent at once anyway', async () => {
    const fickle = (): { text: string } => {
      let reads = 0;
      return {
        get text(): string {
          reads += 1;
          return 'x'.repeat(reads);
        },
      };
    };
    const batch = await PutManyBatch.check(plain, [fickle(), fickle(), fickle(), fickle()], { keepValues: false, window: 3, heldBytes: 0 });
    for (const index of [0, 1, 2]) assert.equal(batch.body(index).toString(), '{"func_name":"job","tube":"pm","kwargs":{"text":"x"}}');
    assert.throws(() => batch.body(3), /item 3: its kwargs changed/);
  });
});

describe('putWindowed', () => {
  it('stops at an item whose body cannot be made: the ones before are put, none after', async () => {
    let reads = 0;
    const fickle = {
      get n(): unknown {
        reads += 1;
        return reads === 1 ? 1 : undefined;
      },
    };
    const list = [...items(4), fickle, ...items(3)];
    const batch = await PutManyBatch.check(plain, list, { keepValues: false, window: 1, heldBytes: 2_500 });
    const sent: number[] = [];
    let id = 0;
    const put = (_body: PutBody, done: PutCallbacks): void => {
      id += 1;
      sent.push(id);
      const answer = String(id);
      queueMicrotask(() => done.resolve(answer));
    };
    await assert.rejects(putWindowed(put, batch, 2), (error: unknown) => {
      assert.ok(error instanceof PutManyError);
      assert.equal(error.failedIndex, 4);
      assert.deepEqual(error.jobIds, ['1', '2', '3', '4', undefined, undefined, undefined, undefined]);
      assert.match(error.message, /Cannot encode kwargs\.n: it is undefined/);
      return true;
    });
    assert.equal(sent.length, 4);
  });

  it('settles once when a put is refused synchronously, before anything was written', async () => {
    const batch = await PutManyBatch.check(plain, items(6), { keepValues: false, window: 3 });
    let calls = 0;
    const put = (_body: PutBody, done: PutCallbacks): void => {
      calls += 1;
      const id = String(calls);
      if (calls === 2) done.reject(new RangeError('refused at once'));
      else queueMicrotask(() => done.resolve(id));
    };
    await assert.rejects(putWindowed(put, batch, 3), (error: unknown) => {
      assert.ok(error instanceof PutManyError);
      assert.equal(error.failedIndex, 1);
      assert.equal(error.jobIds[0], '1');
      return true;
    });
    // No put starts after the refusal.
    assert.equal(calls, 2);
  });
});

describe('JobQueue.putMany', () => {
  it('puts every item of a batch larger than the budget, in order, with the bytes put() would send', async () => {
    const sampled = new Set([0, 1, 15, 16, 1_049, 1_050, 1_099]);
    // A server that takes bodies of 64 KB.
    const connection = new RecordingBeanstalk({ maxJobSize: 70_000, keepBody: (index) => sampled.has(index) });
    const queue = new JobQueue({ inline: false, logger: silent, connect: async () => connection });
    const tube = randomTube();
    const task = queue.task(tube)(async function big(_kw: { i: number; text: string }) {});
    // 70 MB of bodies: more than the 64 MiB a batch keeps past its window.
    const text = 'z'.repeat(64_000);
    const list = Array.from({ length: 1_100 }, (_, i) => ({ i, text }));
    try {
      const ids = await task.putMany(list, { window: 16 });
      assert.equal(ids.length, 1_100);
      assert.equal(connection.puts.length, 1_100);
      for (const i of sampled)
        assert.equal(connection.puts[i]?.body?.toString('utf8'), encodeEnvelope('big', tube, list[i]).toString('utf8'), `item ${i}`);
    } finally {
      await queue.close();
    }
  });

  it('checks a schema on every item before the first put', async () => {
    const connection = new RecordingBeanstalk();
    const queue = new JobQueue({ inline: false, logger: silent, connect: async () => connection });
    const task = queue.task(randomTube(), { schema: z.object({ i: z.number().max(5), text: z.string() }) })(async function checked(_kw) {});
    try {
      await assert.rejects(task.putMany(items(7)), (error: unknown) => {
        assert.ok(error instanceof KwargsValidationError);
        assert.match(error.message, /^putMany: item 6: /);
        return true;
      });
      assert.equal(connection.puts.length, 0);
    } finally {
      await queue.close();
    }
  });
});

describe('how a body is kept for sending', () => {
  it('an ASCII body up to MAX_TEXT_BODY stays text; a longer or non-ASCII one is UTF-8 bytes, in put() and putMany alike', async () => {
    const short = 'x'.repeat(MAX_TEXT_BODY);
    assert.equal(toPutBody(short), short);
    // Held as text, a large body was copied again by the socket while the put kept it for a retry.
    assert.ok(Buffer.isBuffer(toPutBody(`${short}x`)));
    const accented = toPutBody('{"name":"Zoë"}');
    assert.ok(Buffer.isBuffer(accented));
    assert.equal(accented.toString('utf8'), '{"name":"Zoë"}');

    const batch = await PutManyBatch.check(plain, [{ text: 'small' }, { text: 'y'.repeat(MAX_TEXT_BODY) }], {
      keepValues: false,
      window: 2,
    });
    assert.equal(typeof batch.body(0), 'string');
    assert.ok(Buffer.isBuffer(batch.body(1)));
    assert.deepEqual(bytesOf(batch.body(1)), encodeEnvelope('job', 'pm', { text: 'y'.repeat(MAX_TEXT_BODY) }));
  });
});
