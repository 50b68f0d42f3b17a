// Task schemas against a real beanstalkd, with zod as the Standard Schema library: put refuses invalid
// kwargs before a byte is sent, the worker buries an invalid job without running it (also with task
// threads), a valid job runs with the schema's output, and `bsworker put --jobs` and `bsworker check`
// use the same schemas from the command line.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { z } from 'zod';
import { KwargsValidationError } from '../../src/tasks/errors.js';
import { JobQueue } from '../../src/tasks/queue.js';
import {
  type BeanstalkdServer,
  rawCommand,
  rawPeekBody,
  rawPut,
  rawStatsJob,
  rawStatsTube,
  startBeanstalkd,
} from '../helpers/beanstalkd.js';
import { envelope, prefix, run } from '../helpers/cli.js';
import { eventsOf, freshTube, registry, startWorker } from '../helpers/real-worker.js';

const JOBS = fileURLToPath(new URL('../fixtures/schema-jobs', import.meta.url));
const DUPLICATE = fileURLToPath(new URL('../fixtures/check-duplicate', import.meta.url));
const BROKEN = fileURLToPath(new URL('../fixtures/check-broken', import.meta.url));
// The fixture reads its tube at import, here and in each task thread (threads share the environment).
const fixtureTube = freshTube('schema-threads');
process.env.BSW_SCHEMA_TUBE = fixtureTube;
const { send: fixtureSend } = await import('../fixtures/schema-jobs/tasks.js');

const silent = pino({ level: 'silent' });

/** The server-wide count of put commands: unchanged means nothing was put, by anyone. */
async function putCommands(url: string): Promise<number> {
  const match = /^cmd-put: (\d+)$/m.exec(await rawCommand(url, 'stats\r\n'));
  assert.ok(match, 'stats has cmd-put');
  return Number(match[1]);
}

/** Ready jobs in `tube`; 0 for a tube the server does not have. */
async function readyIn(url: string, tube: string): Promise<number> {
  return Number((await rawStatsTube(url, tube))?.['current-jobs-ready'] ?? 0);
}

const Send = z.object({ to: z.email(), count: z.string().default('1').transform(Number) }).strict();

describe('task schemas against beanstalkd', () => {
  let server: BeanstalkdServer;
  before(async () => {
    server = await startBeanstalkd();
  });
  after(async () => {
    await server?.stop();
  });

  it('put and putMany refuse invalid kwargs and nothing reaches the server', async (t) => {
    const queue = new JobQueue({ url: server.url, logger: silent });
    t.after(() => queue.close());
    const tube = freshTube('schema-put');
    const send = queue.task(tube, { schema: Send })(async function send(_kw) {});
    await send.put({ to: 'ann@example.com' });
    const before = await putCommands(server.url);

    const refused = await send.put({ to: 'not an address' }).catch((error: unknown) => error);
    assert.ok(refused instanceof KwargsValidationError);
    assert.deepEqual(refused.issues, [{ message: 'Invalid email address', path: ['to'] }]);
    // An async refinement is awaited before anything is sent.
    const blocked = queue.task(tube, { schema: z.object({ to: z.string() }).refine(async (kw) => kw.to !== 'x', 'blocked') })(
      async function blocked(_kw) {},
    );
    await assert.rejects(blocked.put({ to: 'x' }), /kwargs: blocked/);
    await assert.rejects(send.putMany([{ to: 'b@example.com' }, { to: 'c@example.com', count: 2 as never }]), /putMany: item 1: /);

    assert.equal(await putCommands(server.url), before, 'no put command was sent');
    assert.equal(await readyIn(server.url, tube), 1, 'only the valid job is in the tube');
  });

  it('the worker buries a job with invalid kwargs without running it, and runs a valid one with the output', async (t) => {
    const tube = freshTube('schema-worker');
    const seen: unknown[] = [];
    registry.task(tube, { schema: Send })(function send(kw) {
      seen.push(kw);
    });
    const { events } = await startWorker(t, { tubes: [tube], url: server.url, maxKicks: 3 });
    // A producer without the schema (another language, an old deploy) put this one.
    const invalid = await rawPut(server.url, tube, envelope('send', tube, { to: 'nope', count: 5 }));
    const buried = await events.waitFor('job:buried', (e) => e.jobId === invalid);
    assert.equal(buried.reason, 'invalid');
    assert.match(buried.detail, /kwargs\.to: Invalid email address; kwargs\.count: Invalid input: expected string, received number/);
    assert.equal((await rawStatsJob(server.url, buried.buriedAs))?.state, 'buried');
    // The failure record keeps the schema's issues, each with its path.
    const [entry] = JSON.parse((await rawPeekBody(server.url, buried.buriedAs)) as string).meta.failures;
    assert.equal(entry.reason, 'invalid');
    assert.equal(entry.name, 'KwargsValidationError');
    assert.deepEqual(
      entry.issues.map((issue: { path: string[] }) => issue.path),
      [['to'], ['count']],
    );
    assert.deepEqual(eventsOf(events, 'job:reserved', invalid), [], 'it never started');
    assert.deepEqual(seen, []);

    const valid = await rawPut(server.url, tube, envelope('send', tube, { to: 'ann@example.com', count: '4' }));
    await events.waitFor('job:deleted', (e) => e.jobId === valid);
    assert.deepEqual(seen, [{ to: 'ann@example.com', count: 4 }]);
  });

  it('at the kick bound an invalid job is dead-lettered as a KwargsValidationError', async (t) => {
    const tube = freshTube('schema-dead');
    const deadLetters = freshTube('schema-dl');
    registry.task(tube, { schema: Send })(function send(_kw) {});
    const { events } = await startWorker(t, { tubes: [tube], url: server.url, maxKicks: 0, deadLetterTube: deadLetters });
    const id = await rawPut(server.url, tube, envelope('send', tube, { to: 'nope' }));
    await events.waitFor('job:deleted', (e) => e.jobId === id);
    assert.equal(await readyIn(server.url, deadLetters), 1);
    // Ids are sequential and nothing else was put meanwhile: the dead letter is the next one.
    const letter = await rawCommand(server.url, `peek ${Number(id) + 1}\r\n`);
    const record = (JSON.parse(letter.split('\r\n')[1] ?? '{}') as { meta: { dead_letter: { name: string; error: string; tube: string } } })
      .meta.dead_letter;
    assert.equal(record.name, 'KwargsValidationError');
    assert.equal(record.tube, tube);
    assert.match(record.error, /^invalid kwargs for task `send` in tube `schema-dead-[0-9a-f]+`: kwargs\.to: Invalid email address$/);
  });

  it('with task threads, the thread gets the output built in its own realm, and an invalid job is buried unrun', async (t) => {
    const { events } = await startWorker(t, { tubes: [fixtureTube], url: server.url, threads: { size: 1, jobsDir: JOBS } });
    const queue = new JobQueue({ url: server.url, logger: silent });
    t.after(() => queue.close());
    const valid = await queue.put(fixtureSend, { to: 'ann@example.com', count: '2', tags: ['a', 'b'] });
    await events.waitFor('job:deleted', (e) => e.jobId === valid, 15_000);
    assert.deepEqual(eventsOf(events, 'job:failed', valid), [], 'the task got a number and a Set');

    const invalid = await rawPut(server.url, fixtureTube, envelope('send', fixtureTube, { to: 'ann@example.com', tags: 'a' }));
    const buried = await events.waitFor('job:buried', (e) => e.jobId === invalid, 15_000);
    assert.equal(buried.reason, 'invalid');
    assert.match(buried.detail, /kwargs\.tags: /);
    assert.deepEqual(eventsOf(events, 'job:reserved', invalid), []);
  });
});

describe('schemas on the command line', () => {
  let server: BeanstalkdServer;
  before(async () => {
    server = await startBeanstalkd();
  });
  after(async () => {
    await server?.stop();
  });

  it('bsworker put --jobs refuses invalid kwargs and unregistered tasks with exit 2, and puts valid ones', async () => {
    const tube = prefix('schema-cli');
    const env = { BSW_SCHEMA_TUBE: tube };
    const base = ['put', '--url', server.url, '--jobs', JOBS, tube];
    const before = await putCommands(server.url);

    const invalid = await run([...base, 'send', '--kwargs', '{"to": "nope", "extra": 1}'], env);
    assert.equal(invalid.code, 2, invalid.stderr);
    assert.match(
      invalid.stderr,
      /^bsworker: error: invalid kwargs for task `send` in tube `schema-cli-[0-9a-f]+`: kwargs\.to: Invalid email address; kwargs: Unrecognized key: "extra"\n$/,
    );
    const unregistered = await run([...base, 'sned', '--kwargs', '{}'], env);
    assert.equal(unregistered.code, 2);
    assert.match(unregistered.stderr, /no task named "sned" is registered in tube `schema-cli-[0-9a-f]+` .*only `plain`, `send`/);
    // Read from stdin, the kwargs are checked the same way.
    const stdin = await run(['put', '--url', server.url, '--jobs', JOBS, tube, 'send', '--kwargs-file', '/dev/null'], env);
    assert.equal(stdin.code, 2);
    assert.equal(await putCommands(server.url), before, 'nothing was put');

    const valid = await run([...base, 'send', '--kwargs', '{"to": "ann@example.com", "count": "2"}', '--json'], env);
    assert.equal(valid.code, 0, valid.stderr);
    const { id } = JSON.parse(valid.stdout) as { id: string };
    const peeked = await rawCommand(server.url, `peek ${id}\r\n`);
    assert.match(peeked, /"kwargs":\{"to":"ann@example.com","count":"2"\}/, 'the kwargs as given, not the output');
    // Without --jobs nothing is loaded or checked, as before.
    const unchecked = await run(['put', '--url', server.url, tube, 'send', '--kwargs', '{"to": "nope"}'], env);
    assert.equal(unchecked.code, 0, unchecked.stderr);
    assert.equal(await readyIn(server.url, tube), 2);
  });

  it('bsworker check lists tubes, tasks, options and schemas, and exits 0', async () => {
    const tube = prefix('schema-check');
    const json = await run(['check', '--jobs', JOBS, '--json'], { BSW_SCHEMA_TUBE: tube });
    assert.equal(json.code, 0, json.stderr);
    const result = JSON.parse(json.stdout) as { ok: boolean; tubes: { tube: string; tasks: Record<string, unknown>[] }[] };
    assert.equal(result.ok, true);
    assert.deepEqual(
      result.tubes.map((entry) => entry.tube),
      [tube],
    );
    const send = result.tubes[0]?.tasks.find((task) => task.name === 'send') as { schema?: { jsonSchema?: { properties?: unknown } } };
    // zod's own email pattern, long and its own business: only its presence is checked.
    const emailPattern = (send.schema?.jsonSchema?.properties as { to?: { pattern?: string } } | undefined)?.to?.pattern;
    assert.equal(typeof emailPattern, 'string');
    assert.deepEqual(result.tubes[0]?.tasks, [
      {
        name: 'plain',
        priority: 1024,
        delay: 0,
        ttr: 120,
        retries: 0,
        backoff: { type: 'exponential', delaySeconds: 1, maxDelaySeconds: 3600, jitter: true },
        timeoutMs: 5000,
        redact: [],
        schema: null,
      },
      {
        name: 'send',
        priority: 1024,
        delay: 0,
        ttr: 60,
        retries: 2,
        backoff: { type: 'exponential', delaySeconds: 1, maxDelaySeconds: 3600, jitter: true },
        timeoutMs: null,
        redact: ['token'],
        schema: {
          vendor: 'zod',
          // zod offers Standard JSON Schema: what the kwargs may be, before its defaults and transforms.
          jsonSchema: {
            $schema: 'https://json-schema.org/draft/2020-12/schema',
            type: 'object',
            properties: {
              to: {
                type: 'string',
                format: 'email',
                pattern: emailPattern,
              },
              count: { default: '1', type: 'string' },
              tags: { default: [], type: 'array', items: { type: 'string' } },
            },
            required: ['to'],
            additionalProperties: false,
          },
        },
      },
    ]);
    const text = await run(['check', '--jobs', JOBS], { BSW_SCHEMA_TUBE: tube });
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      /│ schema-check-[0-9a-f]+ │ send {2}│ +1024 │ 0s {4}│ 60s {2}│ +2 │ exponential 1s\.\.3600s, jitter │ - +│ token +│ zod +│/,
    );
    assert.match(text.stdout, /1 tube\(s\), 2 task\(s\), 1 with a schema\n$/);
  });

  it('bsworker check exits 1 on a duplicate task name or a module that fails to load', async () => {
    const duplicate = await run(['check', '--jobs', DUPLICATE]);
    assert.equal(duplicate.code, 1);
    assert.match(
      duplicate.stderr,
      /^bsworker: error: check failed: duplicate task name: failed to load .*second\.ts: A task named `notify` is already registered in tube `check-duplicate`/,
    );
    const duplicateJson = await run(['check', '--jobs', DUPLICATE, '--json']);
    assert.equal(duplicateJson.code, 1);
    const failure = JSON.parse(duplicateJson.stdout) as { ok: boolean; error: { kind: string; file: string } };
    assert.equal(failure.ok, false);
    assert.equal(failure.error.kind, 'duplicate-name');
    assert.match(failure.error.file, /second\.ts$/);

    const broken = await run(['check', '--jobs', BROKEN, '--json']);
    assert.equal(broken.code, 1);
    const load = JSON.parse(broken.stdout) as { error: { kind: string; message: string; detail: string[] } };
    assert.equal(load.error.kind, 'load');
    assert.match(load.error.message, /check-broken: this module fails at import/);
    const missing = await run(['check', '--jobs', '/nonexistent/jobs']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /the jobs directory \/nonexistent\/jobs does not exist/);
  });
});
