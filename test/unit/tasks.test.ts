/**
 * The producer side without a server: registering tasks (function form, standard and legacy
 * decorators), the process-wide registry, task metadata, inline mode, and how `put` picks and checks
 * its options. A fake connection stands in for beanstalkd and records what would have been sent.
 *
 * The registry is process-wide and has no reset, so every test registers under its own random tube.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { pino } from 'pino';

import { decodeEnvelope } from '../../src/envelope/envelope.js';
import { getTaskMetadata, TASK_METADATA_KEY } from '../../src/tasks/metadata.js';
import { PUT_DEFAULTS } from '../../src/tasks/put-options.js';
import { JobQueue, type JobQueueOptions } from '../../src/tasks/queue.js';
import { findTask, listTasks, unregisterTask } from '../../src/tasks/registry.js';
import { RecordingBeanstalk } from '../helpers/fake-beanstalk.js';

const silent = pino({ level: 'silent' });
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LEGACY_FIXTURE = fileURLToPath(new URL('../fixtures/legacy/legacy-task.ts', import.meta.url));
const LEGACY_TSCONFIG = fileURLToPath(new URL('../fixtures/legacy/tsconfig.json', import.meta.url));

function randomTube(): string {
  return `t${randomUUID().slice(0, 8)}`;
}

/** A JobQueue whose connections are RecordingBeanstalks; counts how often it asked for one. */
function recordingQueue(options: Omit<JobQueueOptions, 'connect' | 'logger' | 'inline'> = {}) {
  const connections: RecordingBeanstalk[] = [];
  const queue = new JobQueue({
    ...options,
    inline: false,
    logger: silent,
    connect: async () => {
      const connection = new RecordingBeanstalk();
      connections.push(connection);
      return connection;
    },
  });
  return {
    queue,
    connections,
    get connectCalls() {
      return connections.length;
    },
  };
}

/** Runs `body` with `name` set (or removed) in process.env, restoring it afterwards. */
function withEnv<T>(name: string, value: string | undefined, body: () => T): T {
  const saved = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    return body();
  } finally {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  }
}

describe('queue.task(tube)(fn): the function form', () => {
  it('returns a Putter that runs the function when called and knows its tube and name', () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    const add = queue.task(tube)(function add(kwargs: { a: number; b: number }) {
      return kwargs.a + kwargs.b;
    });
    assert.equal(add({ a: 2, b: 3 }), 5);
    assert.equal(add.tube, tube);
    assert.equal(add.taskName, 'add');
    assert.equal(add.name, 'add');
    assert.equal(typeof add.put, 'function');
    const task = findTask(tube, 'add');
    assert.ok(task, 'the function is registered under its name');
    assert.equal(task.tube, tube);
    assert.equal(task.run({ a: 1, b: 1 }), 2);
  });

  it('refuses an anonymous function without { name }, and says how to name it', () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    assert.throws(
      () => queue.task(tube)((_kwargs: object) => undefined),
      (error: unknown) =>
        error instanceof TypeError && /no name/.test(error.message) && error.message.includes(`queue.task('${tube}', { name:`),
    );
    assert.equal(
      listTasks().some((task) => task.tube === tube),
      false,
    );
  });

  it('lets { name } name an anonymous function and override a function name', () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    const anonymous = queue.task(tube, { name: 'fromOption' })((_kwargs: object) => 'anon');
    assert.equal(anonymous.taskName, 'fromOption');
    const renamed = queue.task(tube, { name: 'renamed' })(function original(_kwargs: object) {
      return 'named';
    });
    assert.equal(renamed.taskName, 'renamed');
    assert.equal(findTask(tube, 'fromOption')?.run({}), 'anon');
    assert.equal(findTask(tube, 'renamed')?.run({}), 'named');
    assert.equal(findTask(tube, 'original'), undefined);
  });

  it('refuses a bad tube name or bad task options when the task is declared', () => {
    const queue = new JobQueue({ inline: true, logger: silent });
    assert.throws(() => queue.task('has space'), TypeError);
    assert.throws(() => queue.task(randomTube(), { ttr: 1 }), RangeError);
    assert.throws(() => queue.task(randomTube(), { priority: -1 }), RangeError);
    assert.throws(() => queue.task(randomTube(), { name: '' }), TypeError);
  });
});

describe('the registry', () => {
  it('refuses a second, different function under the same name in the same tube', () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    queue.task(tube)(function send(_kwargs: object) {
      return 1;
    });
    assert.throws(
      () =>
        queue.task(tube)(function send(_kwargs: object) {
          return 2;
        }),
      (error: unknown) => error instanceof Error && error.message.includes('`send`') && error.message.includes(tube),
    );
    // The first registration is untouched.
    assert.equal(findTask(tube, 'send')?.run({}), 1);
  });

  it('allows the same name in different tubes, and the same function twice', () => {
    const [first, second] = [randomTube(), randomTube()];
    const queue = new JobQueue({ inline: true, logger: silent });
    queue.task(first)(function send(_kwargs: object) {
      return 'first';
    });
    queue.task(second)(function send(_kwargs: object) {
      return 'second';
    });
    assert.equal(findTask(first, 'send')?.run({}), 'first');
    assert.equal(findTask(second, 'send')?.run({}), 'second');

    const again = function again(_kwargs: object) {
      return 'again';
    };
    queue.task(first)(again);
    assert.doesNotThrow(() => queue.task(first)(again));
  });

  it('is a Map lookup: names inherited by plain objects find nothing', () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    queue.task(tube)(function real(_kwargs: object) {});
    for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf', '__defineGetter__']) {
      assert.equal(findTask(tube, name), undefined, name);
      // A hostile tube name must not reach Object.prototype either.
      assert.equal(findTask(name, 'toString'), undefined, `tube ${name}`);
    }
    assert.ok(findTask(tube, 'real'));
  });

  it('lives on globalThis under Symbol.for("bsworker.registry.v1"), shared by a second copy of the module', async () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    queue.task(tube)(function shared(_kwargs: object) {});

    const holder = globalThis as { [key: symbol]: unknown };
    const registry = holder[Symbol.for('bsworker.registry.v1')];
    assert.ok(registry instanceof Map, 'the registry is a Map on globalThis');
    assert.equal((registry.get(tube) as Map<string, unknown> | undefined)?.get('shared'), findTask(tube, 'shared'));

    // A query string makes Node load a separate instance of the module, as a second installed copy would.
    const copyUrl = new URL(`../../src/tasks/registry.ts?copy=${randomUUID()}`, import.meta.url).href;
    const copy = (await import(copyUrl)) as typeof import('../../src/tasks/registry.js');
    assert.notEqual(copy.findTask, findTask, 'the copy must be a separate module instance');
    assert.equal(copy.findTask(tube, 'shared'), findTask(tube, 'shared'));
    assert.ok(copy.unregisterTask(tube, 'shared'));
    assert.equal(findTask(tube, 'shared'), undefined);
  });

  it('unregisterTask reports whether the task was there', () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    queue.task(tube)(function gone(_kwargs: object) {});
    assert.equal(unregisterTask(tube, 'gone'), true);
    assert.equal(unregisterTask(tube, 'gone'), false);
    assert.equal(findTask(tube, 'gone'), undefined);
  });
});

describe('@queue.task(tube): the standard decorator', () => {
  it('registers a static method, which runs with this = the class', async () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    const seen: unknown[] = [];
    class Mailer {
      @queue.task(tube)
      static send(kwargs: { to: string }): string {
        // biome-ignore lint/complexity/noThisInStatic: which `this` the task gets is what is under test.
        seen.push(this);
        return `mail:${kwargs.to}`;
      }
    }
    const task = findTask(tube, 'send');
    assert.ok(task, 'the decorated method is registered under its name');
    // The worker's path: the registered task, not the class member.
    assert.equal(await task.run({ to: 'a' }), 'mail:a');
    assert.equal(seen[0], Mailer);
    // Calling the method directly still works too.
    assert.equal(Mailer.send({ to: 'b' }), 'mail:b');
    assert.equal(seen[1], Mailer);
    const method = Mailer.send as unknown as { put?: unknown; tube?: unknown; taskName?: unknown };
    assert.equal(typeof method.put, 'function');
    assert.equal(method.tube, tube);
    assert.equal(method.taskName, 'send');
  });

  it('puts through `.put()` on the method (inline: runs it with this = the class)', async () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    const seen: unknown[] = [];
    class Reports {
      @queue.task(tube, { name: 'build-report' })
      static build(kwargs: { id: number }): void {
        // biome-ignore lint/complexity/noThisInStatic: which `this` the task gets is what is under test.
        seen.push(this, kwargs.id);
      }
    }
    const method = Reports.build as unknown as { put(kwargs: { id: number }): Promise<string> };
    const id = await method.put({ id: 9 });
    assert.match(id, /^inline-\d+$/);
    assert.deepEqual(seen, [Reports, 9]);
    assert.ok(findTask(tube, 'build-report'));
    assert.equal(findTask(tube, 'build'), undefined);
  });

  it('refuses an instance method with a TypeError saying to make it static', () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    assert.throws(
      () => {
        // The decorator runs while the class is defined, so defining it is what throws.
        class Bad {
          @queue.task(tube)
          send(_kwargs: object): void {}
        }
        return Bad;
      },
      (error: unknown) => error instanceof TypeError && /make the method static/.test(error.message),
    );
    assert.equal(findTask(tube, 'send'), undefined);
  });
});

describe('task metadata', () => {
  it('getTaskMetadata returns tube, name and options for the Putter and the original function', () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    function original(_kwargs: { n: number }) {}
    const putter = queue.task(tube, { priority: 5, ttr: 30 })(original);
    for (const target of [putter, original]) {
      const metadata = getTaskMetadata(target);
      assert.ok(metadata, 'metadata is recorded');
      assert.equal(metadata.tube, tube);
      assert.equal(metadata.name, 'original');
      assert.deepEqual({ ...metadata.options }, { priority: 5, ttr: 30 });
      // Stored through reflect-metadata, under the exported key.
      assert.equal(Reflect.getOwnMetadata(TASK_METADATA_KEY, target), metadata);
    }
  });

  it('getTaskMetadata works on a decorated static method and is undefined for anything else', () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    class Jobs {
      @queue.task(tube, { delay: 3 })
      static tidy(_kwargs: object): void {}
      static plain(_kwargs: object): void {}
    }
    assert.deepEqual(
      { ...getTaskMetadata(Jobs.tidy), options: { ...getTaskMetadata(Jobs.tidy)?.options } },
      { tube, name: 'tidy', options: { delay: 3 } },
    );
    assert.equal(getTaskMetadata(Jobs.plain), undefined);
    for (const value of [undefined, null, 5, 'tidy', {}, () => undefined]) assert.equal(getTaskMetadata(value), undefined);
  });
});

describe('queue.put and inline mode', () => {
  it('rejects, with a TypeError, a function that is not a registered task', async () => {
    const queue = new JobQueue({ inline: true, logger: silent });
    function notATask(_kwargs: object) {}
    await assert.rejects(queue.put(notATask, {}), (error: unknown) => error instanceof TypeError && error.message.includes('`notATask`'));
  });

  it('runs the task in-process with kwargs that went through JSON, and resolves after it', async () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    const received: unknown[] = [];
    let finished = false;
    const task = queue.task(tube)(async function stamp(kwargs: { at: Date | string; tags: string[] }) {
      received.push(kwargs);
      // Yield a few times so a put that did not await the task would resolve first.
      for (let i = 0; i < 5; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
      finished = true;
    });
    const id = await queue.put(task, { at: new Date('2030-01-02T03:04:05.000Z'), tags: ['x'] });
    assert.equal(finished, true, 'put resolved before the task finished');
    assert.match(id, /^inline-\d+$/);
    assert.deepEqual(received, [{ at: '2030-01-02T03:04:05.000Z', tags: ['x'] }]);
    assert.equal(typeof (received[0] as { at: unknown }).at, 'string');
  });

  it('propagates the error the task throws', async () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    const boom = new Error('task failed');
    const task = queue.task(tube)(async function explode(_kwargs: object) {
      throw boom;
    });
    await assert.rejects(task.put({}), (error: unknown) => error === boom);
    await assert.rejects(queue.put(task, {}), (error: unknown) => error === boom);
  });

  it('refuses unencodable kwargs in inline mode too, without running the task', async () => {
    const tube = randomTube();
    const queue = new JobQueue({ inline: true, logger: silent });
    let ran = false;
    const task = queue.task(tube)(function touchy(_kwargs: { n: bigint }) {
      ran = true;
    });
    await assert.rejects(task.put({ n: 1n }), (error: unknown) => error instanceof TypeError && error.message.includes('kwargs.n'));
    assert.equal(ran, false);
  });

  it('is inline when BSWORKER_INLINE=1, unless the option says otherwise', () => {
    withEnv('BSWORKER_INLINE', '1', () => {
      assert.equal(new JobQueue({ logger: silent }).inline, true);
      assert.equal(new JobQueue({ logger: silent, inline: false }).inline, false);
    });
    withEnv('BSWORKER_INLINE', undefined, () => {
      assert.equal(new JobQueue({ logger: silent }).inline, false);
      assert.equal(new JobQueue({ logger: silent, inline: true }).inline, true);
    });
    withEnv('BSWORKER_INLINE', '0', () => {
      assert.equal(new JobQueue({ logger: silent }).inline, false);
    });
  });

  it('runs a put inline when the queue was made inline by BSWORKER_INLINE=1', async () => {
    const tube = randomTube();
    const queue = withEnv('BSWORKER_INLINE', '1', () => new JobQueue({ logger: silent }));
    const calls: unknown[] = [];
    const task = queue.task(tube)(function viaEnv(kwargs: { v: number }) {
      calls.push(kwargs.v);
    });
    await task.put({ v: 1 });
    assert.deepEqual(calls, [1]);
  });
});

describe('put options and the connection', () => {
  it('sends the envelope to the task tube with PUT_DEFAULTS when nothing overrides them', async () => {
    const tube = randomTube();
    const { queue, connections } = recordingQueue();
    const task = queue.task(tube)(function plain(_kwargs: { a: number }) {});
    const id = await task.put({ a: 1 });
    assert.equal(id, '1');
    const put = connections[0]?.puts[0];
    assert.ok(put?.body, 'the fake connection received a put');
    assert.equal(put.tube, tube);
    assert.deepEqual(put.params, { priority: PUT_DEFAULTS.priority, delaySeconds: PUT_DEFAULTS.delay, ttrSeconds: PUT_DEFAULTS.ttr });
    assert.deepEqual(put.params, { priority: 1024, delaySeconds: 0, ttrSeconds: 60 });
    assert.deepEqual(decodeEnvelope(put.body), { ok: true, envelope: { func_name: 'plain', tube, kwargs: { a: 1 } } });
  });

  it('takes each option from the call, then the task, then the queue defaults, then PUT_DEFAULTS', async () => {
    const tube = randomTube();
    const { queue, connections } = recordingQueue({ defaults: { priority: 10, delay: 20 } });
    const task = queue.task(tube, { priority: 11 })(function layered(_kwargs: object) {});

    await queue.put(task, {}, { priority: 12 });
    await queue.put(task, {});
    await task.put({}, { delay: 5, ttr: 7 });

    const params = connections.flatMap((connection) => connection.puts.map((put) => put.params));
    assert.deepEqual(params, [
      { priority: 12, delaySeconds: 20, ttrSeconds: 60 }, // call > task > queue > PUT_DEFAULTS
      { priority: 11, delaySeconds: 20, ttrSeconds: 60 }, // task > queue
      { priority: 11, delaySeconds: 5, ttrSeconds: 7 }, // call for delay and ttr, task for priority
    ]);
  });

  it('lets a task option of 0 win over a queue default (0 is a value, not "unset")', async () => {
    const tube = randomTube();
    const { queue, connections } = recordingQueue({ defaults: { priority: 500, delay: 30 } });
    const task = queue.task(tube, { priority: 0, delay: 0 })(function urgent(_kwargs: object) {});
    await task.put({});
    assert.deepEqual(connections[0]?.puts[0]?.params, { priority: 0, delaySeconds: 0, ttrSeconds: 60 });
  });

  it('opens one connection and shares it between concurrent puts', async () => {
    const tube = randomTube();
    const recorder = recordingQueue();
    const task = recorder.queue.task(tube)(function many(_kwargs: { i: number }) {});
    const ids = await Promise.all([0, 1, 2, 3].map((i) => task.put({ i })));
    assert.equal(recorder.connectCalls, 1);
    assert.deepEqual([...ids].sort(), ['1', '2', '3', '4']);
    await task.put({ i: 4 });
    assert.equal(recorder.connectCalls, 1);
    await recorder.queue.close();
    assert.equal(recorder.connections[0]?.quitCalls, 1);
    await assert.rejects(task.put({ i: 5 }), /closed/);
  });

  it('rejects bad put options and unencodable kwargs before asking for a connection', async () => {
    const tube = randomTube();
    const recorder = recordingQueue();
    const task = recorder.queue.task(tube)(function checked(_kwargs: Record<string, unknown>) {});
    await assert.rejects(
      task.put({}, { priority: -1 }),
      (error: unknown) => error instanceof RangeError && error.message.includes('`priority`'),
    );
    await assert.rejects(
      task.put({}, { ttr: 1 }),
      (error: unknown) => error instanceof RangeError && error.message.includes('safety margin'),
    );
    await assert.rejects(
      task.put({}, { delay: 1.5 }),
      (error: unknown) => error instanceof RangeError && error.message.includes('`delay`'),
    );
    await assert.rejects(recorder.queue.put(task, {}, { priority: 2 ** 32 }), RangeError);
    await assert.rejects(
      task.put({ when: Number.NaN }),
      (error: unknown) => error instanceof TypeError && error.message.includes('kwargs.when'),
    );
    await assert.rejects(task.put({ cb: () => 1 }), TypeError);
    assert.equal(recorder.connectCalls, 0);
  });

  it('refuses unknown option keys, suggesting the likely one', async () => {
    const recorder = recordingQueue();
    const task = recorder.queue.task(randomTube())(function typo() {});
    await assert.rejects(
      task.put({}, { delaySeconds: 30 } as unknown as { delay: number }),
      (error: unknown) => error instanceof TypeError && /Unknown option `delaySeconds`; did you mean `delay`\?/.test(error.message),
    );
    assert.throws(
      () => new JobQueue({ defaults: { ttrSeconds: 5 } as unknown as { ttr: number }, logger: silent }),
      /`defaults\.ttrSeconds`.*`ttr`/,
    );
    assert.equal(recorder.connectCalls, 0);
  });

  it('tries a connect that threw synchronously again on the next put', async () => {
    let calls = 0;
    const queue = new JobQueue({
      logger: silent,
      connect: () => {
        calls += 1;
        throw new Error(`boom ${calls}`);
      },
    });
    const task = queue.task(randomTube())(function retried() {});
    await assert.rejects(task.put(), /boom 1/);
    await assert.rejects(task.put(), /boom 2/);
    assert.equal(calls, 2);
  });

  it('JobQueue refuses bad defaults, naming them', () => {
    assert.throws(
      () => new JobQueue({ defaults: { ttr: 1 }, logger: silent }),
      (error: unknown) => error instanceof RangeError && error.message.includes('`defaults.ttr`'),
    );
    assert.throws(
      () => new JobQueue({ defaults: { priority: -1 }, logger: silent }),
      (error: unknown) => error instanceof RangeError && error.message.includes('`defaults.priority`'),
    );
    assert.throws(
      () => new JobQueue({ defaults: { delay: '5' as unknown as number }, logger: silent }),
      (error: unknown) => error instanceof TypeError && error.message.includes('`defaults.delay`'),
    );
    assert.throws(() => new JobQueue({ defaults: null as unknown as undefined, logger: silent }), TypeError);
  });
});

describe('legacy (experimentalDecorators) decorator', { timeout: 30_000 }, () => {
  it('registers a static method that runs with this = the class and has .put', async () => {
    const tube = randomTube();
    // A child process, because the decorator convention is chosen when tsx compiles the file, from the
    // tsconfig TSX_TSCONFIG_PATH names; this process was compiled with standard decorators.
    const child = spawn(process.execPath, ['--import', 'tsx', LEGACY_FIXTURE, tube], {
      cwd: REPO_ROOT,
      env: { ...process.env, TSX_TSCONFIG_PATH: LEGACY_TSCONFIG, BSWORKER_INLINE: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    assert.equal(code, 0, `the fixture failed:\n${stderr}`);
    const result = JSON.parse(stdout) as Record<string, unknown>;
    assert.deepEqual(result, {
      // (target, key, descriptor): proof that the legacy convention was really used.
      decoratorArgTypes: ['function', 'string', 'object'],
      found: true,
      taskName: 'greet',
      taskTube: tube,
      runResult: 'hello worker',
      runThisIsClass: true,
      hasPut: true,
      inlineId: 'inline-1',
      putThisIsClass: true,
      calls: 2,
      metadata: { tube, name: 'greet' },
    });
  });
});
