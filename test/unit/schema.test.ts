/**
 * Task schemas without a server: what validateKwargs answers (sync, async, thrown, malformed, capped),
 * that put, putMany and an inline call refuse invalid kwargs before anything is sent or run, that the
 * task receives the schema's output, and that the worker buries an invalid job without running it.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { z } from 'zod';
import { KwargsValidationError } from '../../src/tasks/errors.js';
import { JobQueue } from '../../src/tasks/queue.js';
import { findTask } from '../../src/tasks/registry.js';
import {
  formatIssuePath,
  ISSUE_LIMITS,
  type KwargsSchema,
  type KwargsValidation,
  type StandardSchemaV1,
  summarizeIssues,
  validateKwargs,
} from '../../src/tasks/schema.js';
import { checkJobKwargs } from '../../src/worker/check-kwargs.js';
import { RecordingBeanstalk } from '../helpers/fake-beanstalk.js';
import { body, randomTube, queue as registry, SUITE, setup, stopWorkers } from '../helpers/fake-server.js';

afterEach(stopWorkers);

const silent = pino({ level: 'silent' });

/** A hand-made Standard Schema: `check` answers for each value, as a library's `validate` would. */
function schemaOf<I = Record<string, unknown>, O = I>(check: (value: unknown) => unknown): StandardSchemaV1<I, O> {
  return { '~standard': { version: 1, vendor: 'test', validate: check as StandardSchemaV1<I, O>['~standard']['validate'] } };
}

/** The same check answered a turn later, as an async refinement would. */
function asyncSchemaOf(check: (value: unknown) => unknown): KwargsSchema {
  return schemaOf(async (value) => {
    await new Promise((resolve) => setImmediate(resolve));
    return check(value);
  });
}

const withSchema = (schema: KwargsSchema) => ({ options: { schema } });

const Send = z.object({ to: z.email(), count: z.string().default('1').transform(Number) }).strict();

function recordingQueue(): { queue: JobQueue; connection: RecordingBeanstalk } {
  const connection = new RecordingBeanstalk();
  const queue = new JobQueue({ inline: false, logger: silent, connect: async () => connection });
  return { queue, connection };
}

describe('validateKwargs', () => {
  it('without a schema, answers at once with the kwargs themselves', () => {
    const kwargs = { a: 1 };
    const checked = validateKwargs({ options: {} }, kwargs);
    assert.deepEqual(checked, { ok: true, value: kwargs });
    assert.equal((checked as { value: unknown }).value, kwargs);
  });

  it('with a synchronous schema, answers synchronously with the output or the issues', () => {
    const valid = validateKwargs(withSchema(Send), { to: 'ann@example.com' });
    assert.deepEqual(valid, { ok: true, value: { to: 'ann@example.com', count: 1 } });
    const invalid = validateKwargs(withSchema(Send), { to: 'nope', count: 2, extra: true }) as KwargsValidation;
    assert.equal(invalid.ok, false);
    assert.deepEqual(!invalid.ok && invalid.issues, [
      { message: 'Invalid email address', path: ['to'] },
      { message: 'Invalid input: expected string, received number', path: ['count'] },
      { message: 'Unrecognized key: "extra"', path: [] },
    ]);
  });

  it('with an async schema, resolves to the same answers', async () => {
    const refused = z.object({ to: z.string() }).refine(async (kw) => kw.to !== 'blocked@example.com', 'this address is blocked');
    const pending = validateKwargs(withSchema(refused), { to: 'blocked@example.com' });
    assert.ok(pending instanceof Promise, 'an async refinement makes the answer a promise');
    assert.deepEqual(await pending, { ok: false, issues: [{ message: 'this address is blocked', path: [] }] });
    assert.deepEqual(await validateKwargs(withSchema(refused), { to: 'a' }), { ok: true, value: { to: 'a' } });
    const handMade = asyncSchemaOf((value) => ({ value: { wrapped: value } }));
    assert.deepEqual(await validateKwargs(withSchema(handMade), { n: 1 }), { ok: true, value: { wrapped: { n: 1 } } });
  });

  it('turns a schema that throws, rejects or returns no result into an issue, never a throw', async () => {
    const throws = schemaOf(() => {
      throw new Error('boom');
    });
    assert.deepEqual(validateKwargs(withSchema(throws), {}), { ok: false, issues: [{ message: 'the schema threw: boom', path: [] }] });
    const rejects = schemaOf(() => Promise.reject(new Error('later boom')));
    assert.deepEqual(await validateKwargs(withSchema(rejects), {}), {
      ok: false,
      issues: [{ message: 'the schema threw: later boom', path: [] }],
    });
    for (const result of [undefined, null, 42, { issues: [] }, { issues: 'bad' }]) {
      const checked = validateKwargs(withSchema(schemaOf(() => result)), {}) as KwargsValidation;
      assert.equal(checked.ok, false, `${JSON.stringify(result)} is no success`);
      assert.equal(!checked.ok && checked.issues.length, 1);
    }
  });

  it('normalises paths ({ key } segments, symbols) and caps issues, messages and keys', () => {
    const many = Array.from({ length: 30 }, (_, i) => ({ message: `bad ${i}`, path: [{ key: 'items' }, i, Symbol('s')] }));
    const checked = validateKwargs(withSchema(schemaOf(() => ({ issues: many }))), {}) as KwargsValidation;
    assert.ok(!checked.ok);
    assert.equal(checked.issues.length, ISSUE_LIMITS.issues + 1);
    assert.deepEqual(checked.issues[0], { message: 'bad 0', path: ['items', 0, 's'] });
    assert.deepEqual(checked.issues.at(-1), { message: 'and 10 more issues', path: [] });

    const long = validateKwargs(withSchema(schemaOf(() => ({ issues: [{ message: 'x'.repeat(5_000), path: ['k'.repeat(500)] }] }))), {});
    assert.ok(!(long as KwargsValidation).ok);
    const [issue] = (long as unknown as { issues: { message: string; path: string[] }[] }).issues;
    assert.ok(issue && issue.message.length < 400, 'the message is capped');
    assert.match(issue?.message ?? '', /more chars cut/);
    assert.ok((issue?.path[0] ?? '').length < 200, 'a path key is capped');
    // A missing or empty message still says something.
    const bare = validateKwargs(withSchema(schemaOf(() => ({ issues: [{}] }))), {}) as KwargsValidation;
    assert.deepEqual(!bare.ok && bare.issues, [{ message: 'invalid', path: [] }]);
  });

  it('summarises issues on one line, with paths people read and control characters escaped', () => {
    assert.equal(formatIssuePath([]), 'kwargs');
    assert.equal(formatIssuePath(['user', 'email']), 'kwargs.user.email');
    assert.equal(formatIssuePath(['items', 2, 'odd key']), 'kwargs.items[2]["odd key"]');
    const line = summarizeIssues([
      { message: 'Invalid email', path: ['to'] },
      { message: 'Unrecognized key: "\u001b[31mred\u202e"', path: [] },
    ]);
    assert.equal(line, 'kwargs.to: Invalid email; kwargs: Unrecognized key: "\\u001b[31mred\\u202e"');
    const capped = summarizeIssues(Array.from({ length: 20 }, () => ({ message: 'y'.repeat(300), path: [] })));
    assert.ok(capped.length < ISSUE_LIMITS.summaryChars + 50, 'the summary is capped');
  });
});

describe('queue.task(tube, { schema })', () => {
  it('refuses a schema option that is not a Standard Schema v1, and accepts function schemas (arktype)', () => {
    const queue = new JobQueue({ inline: true, logger: silent });
    const tube = randomTube();
    assert.throws(() => queue.task(tube, { schema: { parse() {} } as never }), /Standard Schema/);
    assert.throws(
      () => queue.task(tube, { schema: { '~standard': { version: 2, validate() {} } } as never }),
      /version 1, got version `2`/,
    );
    const callable = Object.assign(
      () => undefined,
      schemaOf(() => ({ value: {} })),
    );
    assert.doesNotThrow(() => queue.task(tube, { schema: callable }));
  });

  it('keeps the schema on the registered task and on the Putter', () => {
    const queue = new JobQueue({ inline: true, logger: silent });
    const tube = randomTube();
    const send = queue.task(tube, { schema: Send })(async function send(_kw) {});
    assert.equal(send.schema, Send);
    assert.equal(findTask(tube, 'send')?.options.schema, Send);
  });

  it('put rejects invalid kwargs with KwargsValidationError and sends nothing', async () => {
    const { queue, connection } = recordingQueue();
    const tube = randomTube();
    const send = queue.task(tube, { schema: Send })(async function send(_kw) {});
    const error = await send.put({ to: 'nope' }).then(
      () => assert.fail('the put should fail'),
      (thrown: unknown) => thrown,
    );
    assert.ok(error instanceof KwargsValidationError);
    assert.equal(error.name, 'KwargsValidationError');
    assert.equal(error.code, 'INVALID_KWARGS');
    assert.deepEqual(error.issues, [{ message: 'Invalid email address', path: ['to'] }]);
    assert.equal(error.message, `invalid kwargs for task \`send\` in tube \`${tube}\`: kwargs.to: Invalid email address`);
    await assert.rejects(queue.put(send, { to: 'nope' }), KwargsValidationError);
    assert.equal(connection.puts.length, 0, 'nothing was sent');
    await queue.close();
  });

  it('put sends the kwargs as given, not the output, and checks them as the worker will see them', async () => {
    const { queue, connection } = recordingQueue();
    const tube = randomTube();
    const send = queue.task(tube, { schema: Send })(async function send(_kw) {});
    assert.equal(await send.put({ to: 'ann@example.com' }), '1');
    assert.equal(connection.puts[0]?.body?.toString('utf8'), `{"func_name":"send","tube":"${tube}","kwargs":{"to":"ann@example.com"}}`);
    // A Date arrives as a string: a schema that wants a Date would refuse every such job in the worker.
    const when = queue.task(tube, { schema: z.object({ at: z.date() }) })(async function when(_kw) {});
    await assert.rejects(when.put({ at: new Date() }), (error: KwargsValidationError) => error.issues[0]?.path[0] === 'at');
    const iso = queue.task(tube, { schema: z.object({ at: z.iso.datetime() }) })(async function iso(_kw) {});
    await iso.put({ at: new Date('2026-01-02T03:04:05.000Z') as unknown as string });
    assert.equal(connection.puts.length, 2);
    await queue.close();
  });

  it('put waits for an async schema, then sends or refuses', async () => {
    const { queue, connection } = recordingQueue();
    const tube = randomTube();
    const schema = asyncSchemaOf((value) => ((value as { ok?: boolean }).ok ? { value } : { issues: [{ message: 'not ok' }] }));
    const check = queue.task(tube, { schema })(async function check(_kw) {});
    await assert.rejects(check.put({ ok: false }), /kwargs: not ok/);
    assert.equal(connection.puts.length, 0);
    assert.equal(await check.put({ ok: true }), '1');
    await queue.close();
  });

  it('putMany checks every item first: one invalid item puts nothing and is named', async () => {
    const { queue, connection } = recordingQueue();
    const tube = randomTube();
    const send = queue.task(tube, { schema: Send })(async function send(_kw) {});
    const list = [{ to: 'a@example.com' }, { to: 'b@example.com' }, { to: 'nope' }];
    await assert.rejects(send.putMany(list), (error: KwargsValidationError) => {
      assert.ok(error instanceof KwargsValidationError);
      assert.match(error.message, /^putMany: item 2: invalid kwargs for task `send`/);
      return true;
    });
    const slow = queue.task(tube, { schema: asyncSchemaOf((value) => ({ value })) })(async function slow(_kw) {});
    assert.deepEqual(await slow.putMany([{ n: 1 }, { n: 2 }]), ['1', '2']);
    assert.equal(connection.puts.length, 2, 'only the valid batch was sent');
    await queue.close();
  });

  it('calling the Putter checks the kwargs and runs the function with the output, synchronously when it can', async () => {
    const queue = new JobQueue({ inline: false, logger: silent });
    const tube = randomTube();
    const seen: unknown[] = [];
    const send = queue.task(tube, { schema: Send })(function send(kw) {
      seen.push(kw);
      return kw.count * 2;
    });
    const pending = send({ to: 'ann@example.com', count: '21' });
    assert.deepEqual(seen, [{ to: 'ann@example.com', count: 21 }], 'a synchronous schema runs the function at once');
    assert.equal(await pending, 42);
    await assert.rejects(send({ to: 'nope' }), KwargsValidationError);
    assert.equal(seen.length, 1, 'invalid kwargs never reach the function');

    const later = queue.task(tube, { schema: asyncSchemaOf(() => ({ value: { from: 'schema' } })) })(function later(kw) {
      return kw;
    });
    assert.deepEqual(await later({}), { from: 'schema' });
  });

  it('an inline queue runs the task with the output of the kwargs it checked', async () => {
    const queue = new JobQueue({ inline: true, logger: silent });
    const tube = randomTube();
    const seen: unknown[] = [];
    const send = queue.task(tube, { schema: Send })(async function send(kw) {
      seen.push(kw);
    });
    await send.put({ to: 'ann@example.com', count: '3' });
    await send.putMany([{ to: 'b@example.com' }]);
    assert.deepEqual(seen, [
      { to: 'ann@example.com', count: 3 },
      { to: 'b@example.com', count: 1 },
    ]);
    await assert.rejects(send.put({ to: 'nope' }), KwargsValidationError);
    assert.equal(seen.length, 2);
  });

  it('a decorated static method with a schema gets the output, with `this` its class', async () => {
    const queue = new JobQueue({ inline: true, logger: silent });
    const tube = randomTube();
    const seen: unknown[] = [];
    class Reports {
      static prefix = 'report';
      @queue.task(tube, { schema: z.object({ id: z.coerce.number() }) })
      static build(kw: { id: number }): void {
        // biome-ignore lint/complexity/noThisInStatic: which `this` the task gets is what is under test.
        seen.push(`${this.prefix}:${typeof kw.id}:${kw.id}`);
      }
    }
    await queue.put(Reports.build, { id: '5' as unknown as number });
    await assert.rejects(queue.put(Reports.build, { id: 'x' as unknown as number }), KwargsValidationError);
    assert.deepEqual(seen, ['report:number:5']);
  });

  it('a task without a schema works as before: the kwargs as they are, no promise from an inline call', () => {
    const queue = new JobQueue({ inline: true, logger: silent });
    const add = queue.task(randomTube())(function add(kw: { a: number; b: number }) {
      return kw.a + kw.b;
    });
    assert.equal(add({ a: 1, b: 2 }), 3);
  });
});

describe('the worker and a schema', SUITE, () => {
  it('buries an invalid job with reason invalid and the issues in its detail, never running it', async () => {
    const tube = randomTube();
    let ran = 0;
    registry.task(tube, { schema: Send })(function send(_kw) {
      ran += 1;
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    // The unknown key is job data, quoted by zod's message: it reaches the detail escaped.
    const id = fake.addJob(body('send', tube, { to: 'nope', 'x\u001b[2J\u202e': 1 }), { tube });
    await worker.start();
    const buried = await events.waitFor('job:buried');
    assert.equal(buried.jobId, id);
    assert.equal(buried.reason, 'invalid');
    assert.equal(
      buried.detail,
      `invalid kwargs for task \`send\` in tube \`${tube}\`: kwargs.to: Invalid email address; kwargs: Unrecognized key: "x\\u001b[2J\\u202e"`,
    );
    assert.equal(ran, 0);
    assert.deepEqual(fake.calls('bury').length, 1);
    assert.deepEqual(events.names().includes('job:reserved'), false, 'it never started');
  });

  it('runs a valid job with the schema output, also when the schema is async', async () => {
    const tube = randomTube();
    const seen: unknown[] = [];
    registry.task(tube, { schema: Send })(function send(kw) {
      seen.push(kw);
    });
    registry.task(tube, { schema: asyncSchemaOf((value) => ({ value: { ...(value as object), checked: true } })) })(function later(kw) {
      seen.push(kw);
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    fake.addJob(body('send', tube, { to: 'ann@example.com', count: '7' }), { tube });
    fake.addJob(body('later', tube, { n: 1 }), { tube });
    await worker.start();
    await events.waitFor('job:deleted', (e) => e.task === 'send');
    await events.waitFor('job:deleted', (e) => e.task === 'later');
    assert.deepEqual(seen, [
      { to: 'ann@example.com', count: 7 },
      { n: 1, checked: true },
    ]);
  });

  it('dead-letters an invalid job at the kick bound with a KwargsValidationError that carries the issues', async () => {
    const tube = randomTube();
    const deadLetters = randomTube();
    const task = registry.task(tube, { schema: Send })(function send(_kw) {});
    const { worker, fake, events } = setup({ tubes: [tube], maxKicks: 0, deadLetterTube: deadLetters });
    fake.addJob(body('send', tube, { to: 'nope' }), { tube });
    await worker.start();
    await events.waitFor('job:deleted');
    const [letter] = fake.jobsIn(deadLetters);
    const record = (JSON.parse(letter?.body.toString('utf8') ?? '{}') as { meta: { dead_letter: { name: string; error: string } } }).meta
      .dead_letter;
    assert.equal(record.name, 'KwargsValidationError');
    assert.match(record.error, /kwargs\.to: Invalid email address/);

    const registered = findTask(task.tube, task.taskName);
    assert.ok(registered);
    const error = await checkJobKwargs(registered, { to: 'nope' }, false);
    assert.ok(error instanceof KwargsValidationError);
    assert.deepEqual(error.issues, [{ message: 'Invalid email address', path: ['to'] }]);
  });

  it('with task threads, passes the input on for the thread to check again', async () => {
    const tube = randomTube();
    registry.task(tube, { schema: Send })(function send(_kw) {});
    const registered = findTask(tube, 'send');
    assert.ok(registered);
    assert.deepEqual(await checkJobKwargs(registered, { to: 'ann@example.com' }, true), { to: 'ann@example.com' });
    assert.deepEqual(await checkJobKwargs(registered, { to: 'ann@example.com' }, false), { to: 'ann@example.com', count: 1 });
  });
});
