/**
 * The worker loop against an in-memory beanstalkd: how each reserved job ends (delete, bury, or given
 * back on a stop), what the events and logs say, and how stop() behaves. The fake is the seam the
 * Worker is built around (its `connect` option), so no server is needed and every command the worker
 * sends is recorded in order.
 *
 * Nothing here waits a fixed time to see whether something happened: tests await events, or a command
 * reaching the fake. Timers appear only as upper bounds that turn a hang into a readable failure.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';

import { pino } from 'pino';

import { ConnectionError, DeadlineSoonError, NotFoundError } from '../../src/beanstalk/errors.js';
import type { JobStats, ReservedJob } from '../../src/beanstalk/types.js';
import { JobQueue } from '../../src/tasks/queue.js';
import type { WorkerEvents } from '../../src/worker/events.js';
import type { WorkerOptions } from '../../src/worker/options.js';
import { Worker } from '../../src/worker/worker.js';
import { EventRecorder, LogCapture } from '../helpers/events.js';
import { UnexpectedBeanstalk } from '../helpers/fake-beanstalk.js';

/** Upper bound for anything a test awaits; far above what any step here takes, so never the cause of a pass. */
const WAIT_MS = 5_000;
/** Per-test bound (inherited from each describe), in case a wait without its own bound hangs. */
const SUITE = { timeout: 20_000 };

// ---------------------------------------------------------------------------------------------------
// The fake beanstalkd connection
// ---------------------------------------------------------------------------------------------------

interface FakeJob {
  readonly id: string;
  readonly body: Buffer;
  readonly tube: string;
  readonly priority: number;
  readonly kicks: number;
  /** statsJob answers null, as beanstalkd does once the job is gone (TTR ran out, deleted elsewhere). */
  readonly gone: boolean;
}

interface AddJobOptions {
  /** The tube statsJob reports. */
  readonly tube: string;
  readonly priority?: number;
  readonly kicks?: number;
  readonly gone?: boolean;
}

interface Command {
  readonly command: string;
  readonly args: readonly unknown[];
}

/**
 * An in-memory Beanstalk for one worker. `reserve` hands out queued jobs; with none queued it waits,
 * resolving null after its timeout, or rejecting with ConnectionError the moment the connection is
 * closed, which is what a real connection does when a stop closes it under a pending reserve. Commands
 * a worker should never send fail loudly (see UnexpectedBeanstalk).
 */
class FakeBeanstalk extends UnexpectedBeanstalk {
  /** Every command, in the order the worker sent it. */
  readonly commands: Command[] = [];
  /** Errors the next reserves reject with, in order. */
  readonly reserveErrors: Error[] = [];
  /** Errors the next deletes reject with, in order. */
  readonly deleteErrors: Error[] = [];
  /**
   * When set, quit() answers a pending reserve with this job instead of failing it: the race where the
   * server hands out a job just as a stop closes the connection.
   */
  jobOnQuit: { body: string; tube: string } | undefined;
  readonly #ready: FakeJob[] = [];
  readonly #jobs = new Map<string, FakeJob>();
  #nextId = 1;
  #waiter: { resolve: (job: ReservedJob | null) => void; reject: (error: Error) => void; timer: NodeJS.Timeout } | undefined;
  #commandWaiters: { done: () => boolean; resolve: () => void }[] = [];

  constructor() {
    super('FakeBeanstalk');
  }

  /** Queues a job; `body` is sent as is when it is a string or Buffer. Returns its id. */
  addJob(body: string | Buffer, options: AddJobOptions): string {
    const id = String(this.#nextId++);
    const job: FakeJob = {
      id,
      body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
      tube: options.tube,
      priority: options.priority ?? 1024,
      kicks: options.kicks ?? 0,
      gone: options.gone ?? false,
    };
    this.#jobs.set(id, job);
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      clearTimeout(waiter.timer);
      waiter.resolve({ id, body: job.body });
    } else {
      this.#ready.push(job);
    }
    return id;
  }

  /** The arguments of every call of `command`. */
  calls(command: string): (readonly unknown[])[] {
    return this.commands.filter((entry) => entry.command === command).map((entry) => entry.args);
  }

  /** Resolves once `command` has been sent `times` times (counting those already sent). */
  waitForCommand(command: string, times = 1): Promise<void> {
    const done = () => this.calls(command).length >= times;
    if (done()) return Promise.resolve();
    const sent = new Promise<void>((resolve) => this.#commandWaiters.push({ done, resolve }));
    return within(sent, WAIT_MS, `waiting for the worker to send ${command} ${times} time(s)`);
  }

  /** The server goes away: the pending reserve fails as a real lost connection does. */
  dropConnection(): void {
    this.#close('the connection to beanstalkd at 127.0.0.1:11300 closed');
  }

  #record(command: string, ...args: unknown[]): void {
    const entry = { command, args };
    this.commands.push(entry);
    const due = this.#commandWaiters.filter((waiter) => waiter.done());
    this.#commandWaiters = this.#commandWaiters.filter((waiter) => !due.includes(waiter));
    for (const waiter of due) waiter.resolve();
  }

  #close(message: string): void {
    this.isClosed = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.reject(new ConnectionError('127.0.0.1:11300', message, { command: 'reserve-with-timeout' }));
    }
  }

  override async watch(tube: string): Promise<number> {
    this.#record('watch', tube);
    return this.calls('watch').length + 1;
  }
  override async ignore(tube: string): Promise<number> {
    this.#record('ignore', tube);
    return this.calls('watch').length;
  }
  override reserve(timeoutSeconds: number): Promise<ReservedJob | null> {
    this.#record('reserve', timeoutSeconds);
    const error = this.reserveErrors.shift();
    if (error) return Promise.reject(error);
    if (this.isClosed) return Promise.reject(new ConnectionError('127.0.0.1:11300', 'the connection is closed'));
    const job = this.#ready.shift();
    if (job) return Promise.resolve({ id: job.id, body: job.body });
    assert.equal(this.#waiter, undefined, 'a worker must never have two reserves pending on one connection');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        resolve(null);
      }, timeoutSeconds * 1000);
      this.#waiter = { resolve, reject, timer };
    });
  }
  override async statsJob(id: string): Promise<JobStats | null> {
    this.#record('statsJob', id);
    const job = this.#jobs.get(id);
    if (!job || job.gone) return null;
    return {
      id,
      tube: job.tube,
      state: 'reserved',
      priority: job.priority,
      ageSeconds: 0,
      delaySeconds: 0,
      ttrSeconds: 60,
      timeLeftSeconds: 59,
      reserves: 1,
      timeouts: 0,
      releases: 0,
      buries: job.kicks,
      kicks: job.kicks,
    };
  }
  override async delete(id: string): Promise<void> {
    this.#record('delete', id);
    const error = this.deleteErrors.shift();
    if (error) throw error;
  }
  override async bury(id: string, priority: number): Promise<void> {
    this.#record('bury', id, priority);
  }
  override async release(id: string, priority: number, delaySeconds: number): Promise<void> {
    this.#record('release', id, priority, delaySeconds);
  }
  override async quit(): Promise<void> {
    this.#record('quit');
    const late = this.jobOnQuit;
    this.jobOnQuit = undefined;
    if (late && this.#waiter) this.addJob(late.body, { tube: late.tube });
    this.#close('the connection was closed by quit()');
  }
}

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

const EVENT_NAMES = [
  'job:reserved',
  'job:completed',
  'job:failed',
  'job:buried',
  'job:deleted',
  'job:released',
  'job:overrun',
  'worker:error',
  'worker:stopped',
] as const satisfies readonly (keyof WorkerEvents)[];

type EventName = (typeof EVENT_NAMES)[number];
// biome-ignore lint/suspicious/noExplicitAny: payloads differ per event; tests read the fields they need.
type Payload = any;

/** Rejects with `what` when `promise` has not settled within `ms`: turns a hang into a failure. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

/** A promise with its resolve function outside, for jobs that finish when the test says so. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Lets pending callbacks run: a few turns of the event loop, never a wall-clock wait. */
async function letEventLoopTurn(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

function randomTube(): string {
  return `t${randomUUID().slice(0, 8)}`;
}

/** A job body as a producer in any language would write it. */
function body(funcName: string, tube: string | undefined, kwargs: Record<string, unknown> = {}): string {
  return JSON.stringify(tube === undefined ? { func_name: funcName, kwargs } : { func_name: funcName, tube, kwargs });
}

const queue = new JobQueue({ inline: true, logger: pino({ level: 'silent' }) });

// Workers and fakes made by the current test; stopped afterwards so that no loop outlives its test.
const running: { worker: Worker; fake: FakeBeanstalk }[] = [];

afterEach(async () => {
  const all = running.splice(0);
  for (const { worker, fake } of all) {
    // Bounded: a test that found a stop() that never resolves must not also hang the suite.
    await within(worker.stop({ force: true }), 1_000, 'cleanup stop').catch(() => undefined);
    await fake.quit();
  }
});

/** A Worker on a fresh fake, logging to a captured logger. The reserve timeout is long on purpose. */
function setup(options: Omit<WorkerOptions, 'connect' | 'logger'>) {
  const fake = new FakeBeanstalk();
  // At debug, so that tests can assert on every line the worker writes.
  const logs = new LogCapture();
  const logger = pino({ level: 'debug' }, logs.stream);
  let connects = 0;
  const worker = new Worker({
    // Long, so that a stop which waited for the reserve instead of interrupting it would show.
    reserveTimeoutSeconds: 30,
    ...options,
    logger,
    connect: async () => {
      connects += 1;
      return fake;
    },
  });
  running.push({ worker, fake });
  // Every worker event, so a test can await one that may already have been emitted, and assert on the order.
  const events = new EventRecorder<Payload, EventName>(worker, EVENT_NAMES, { timeoutMs: WAIT_MS });
  return { worker, fake, lines: logs.lines, events, connects: () => connects };
}

// ---------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------

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
    // Watching one tube, the success path needs no stats-job round trip.
    assert.deepEqual(fake.calls('statsJob'), []);
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

  it('deletes a failed job once kicks reach maxKicks, logging the whole body at error level', async () => {
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
    assert.deepEqual(deleted, { jobId: id, tube, task: 'hopeless', reason: 'max-kicks' });
    assert.deepEqual(fake.calls('delete'), [[id]]);
    assert.deepEqual(fake.calls('bury'), []);
    const line = lines.find((entry) => entry.level === 50 && entry.jobId === id);
    assert.ok(line, 'an error-level line for the deleted job');
    assert.equal(line.body, text);
    assert.equal(line.kicks, 2);
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

  it('neither buries nor deletes a failed job that is no longer reserved (stats-job finds nothing)', async () => {
    const tube = randomTube();
    const second = deferred();
    queue.task(tube)(function lateFail(kwargs: { n: number }) {
      if (kwargs.n === 2) second.resolve();
      else throw new Error('too late');
    });
    const { worker, fake, events } = setup({ tubes: [tube] });
    const id = fake.addJob(body('lateFail', tube, { n: 1 }), { tube, gone: true });
    await worker.start();
    assert.equal((await events.waitFor('job:failed')).jobId, id);
    fake.addJob(body('lateFail', tube, { n: 2 }), { tube });
    await second.promise;
    await events.waitFor('job:deleted');
    assert.deepEqual(fake.calls('bury'), []);
    assert.deepEqual(fake.calls('delete'), [['2']]);
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
    // The original value survives as the cause.
    assert.equal(failures[0]?.cause, 'plain string');
    assert.equal(failures[2]?.cause, thrown[2]);
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
    assert.deepEqual(overrun, { jobId: first, tube, task: 'overran', command: 'delete' });
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
});

describe('Worker: start and watching', SUITE, () => {
  it('watches each tube and ignores default unless it is listed', async () => {
    const [a, b] = [randomTube(), randomTube()];
    const { worker, fake } = setup({ tubes: [a, b, a] });
    await worker.start();
    await fake.waitForCommand('reserve');
    assert.deepEqual(
      fake.commands.slice(0, 3).map((entry) => [entry.command, ...entry.args]),
      [
        ['watch', a],
        ['watch', b],
        ['ignore', 'default'],
      ],
    );
    assert.deepEqual(worker.tubes, [a, b]);
  });

  it('keeps default when it is listed', async () => {
    const a = randomTube();
    const { worker, fake } = setup({ tubes: [a, 'default'] });
    await worker.start();
    await fake.waitForCommand('reserve');
    assert.deepEqual(fake.calls('watch'), [[a], ['default']]);
    assert.deepEqual(fake.calls('ignore'), []);
  });

  it('start() a second time throws, and so does start() after stop()', async () => {
    const tube = randomTube();
    const { worker, connects } = setup({ tubes: [tube] });
    await worker.start();
    await assert.rejects(worker.start(), /runs once/);
    await worker.stop();
    await assert.rejects(worker.start(), /runs once/);
    assert.equal(connects(), 1);
  });

  it('refuses bad options when it is constructed', () => {
    assert.throws(() => new Worker({ tubes: [] }), TypeError);
    assert.throws(
      () => new Worker({ tubes: ['bad tube'] }),
      (error: unknown) => error instanceof TypeError && error.message.includes('tubes[0]'),
    );
    assert.throws(() => new Worker({ tubes: ['ok'], maxKicks: -1 }), RangeError);
    assert.throws(() => new Worker({ tubes: ['ok'], graceMs: 1.5 }), RangeError);
  });

  it('with several tubes takes the tube from the body when it is watched, else from stats-job', async () => {
    const [a, b] = [randomTube(), randomTube()];
    const ran: string[] = [];
    // The same task name in both tubes, so which one ran shows which tube the worker settled on.
    queue.task(a)(function route(kwargs: { n: number }) {
      ran.push(`${a}:${kwargs.n}`);
    });
    queue.task(b)(function route(kwargs: { n: number }) {
      ran.push(`${b}:${kwargs.n}`);
    });
    const { worker, fake, events } = setup({ tubes: [a, b] });
    const fromBody = fake.addJob(body('route', b, { n: 1 }), { tube: b });
    const unwatchedInBody = fake.addJob(body('route', 'not-watched', { n: 2 }), { tube: a });
    const noTubeInBody = fake.addJob(body('route', undefined, { n: 3 }), { tube: b });
    await worker.start();
    await events.waitFor('job:deleted', (event) => event.jobId === noTubeInBody);

    assert.deepEqual(ran, [`${b}:1`, `${a}:2`, `${b}:3`]);
    // No stats-job round trip when the body names a watched tube.
    assert.deepEqual(fake.calls('statsJob'), [[unwatchedInBody], [noTubeInBody]]);
    const deleted = events.events.filter((event) => event.name === 'job:deleted').map((event) => [event.payload.jobId, event.payload.tube]);
    assert.deepEqual(deleted, [
      [fromBody, b],
      [unwatchedInBody, a],
      [noTubeInBody, b],
    ]);
  });

  it('with one tube uses that tube whatever the body claims', async () => {
    const [watched, other] = [randomTube(), randomTube()];
    const ran: string[] = [];
    queue.task(watched)(function where(_kwargs: object) {
      ran.push(watched);
    });
    queue.task(other)(function where(_kwargs: object) {
      ran.push(other);
    });
    const { worker, fake, events } = setup({ tubes: [watched] });
    fake.addJob(body('where', other), { tube: watched });
    await worker.start();
    await events.waitFor('job:deleted');
    assert.deepEqual(ran, [watched]);
    assert.deepEqual(fake.calls('statsJob'), []);
  });
});

describe('Worker: the reserve loop', SUITE, () => {
  it('goes round again when a reserve times out, and still takes the next job', async () => {
    const tube = randomTube();
    queue.task(tube)(function eventually(_kwargs: object) {});
    const { worker, fake, events } = setup({ tubes: [tube], reserveTimeoutSeconds: 0 });
    await worker.start();
    // A zero timeout answers null at once: a third reserve means the loop survived two empty ones.
    await fake.waitForCommand('reserve', 3);
    const id = fake.addJob(body('eventually', tube), { tube });
    assert.equal((await events.waitFor('job:deleted')).jobId, id);
  });

  it('goes round again after DEADLINE_SOON and after an unexpected reserve error (reported as worker:error)', async () => {
    const tube = randomTube();
    queue.task(tube)(function afterErrors(_kwargs: object) {});
    const { worker, fake, events } = setup({ tubes: [tube] });
    const odd = new Error('odd reply');
    fake.reserveErrors.push(new DeadlineSoonError('reserve-with-timeout'), odd);
    const id = fake.addJob(body('afterErrors', tube), { tube });
    await worker.start();
    assert.equal((await events.waitFor('job:deleted')).jobId, id);
    const errors = events.events.filter((event) => event.name === 'worker:error').map((event) => event.payload);
    assert.deepEqual(errors, [odd]);
  });

  it('stops itself, not gracefully, when the connection is lost', async () => {
    const tube = randomTube();
    const { worker, fake, events } = setup({ tubes: [tube] });
    await worker.start();
    await fake.waitForCommand('reserve');
    fake.dropConnection();
    const stopped = await within(events.waitFor('worker:stopped'), 2_000, 'worker:stopped after a lost connection');
    assert.equal(stopped.graceful, false);
    assert.ok(stopped.error instanceof ConnectionError, 'the stop result carries the ConnectionError');
    assert.ok((await events.waitFor('worker:error')) instanceof ConnectionError, 'worker:error carries the ConnectionError');
    assert.equal(worker.state, 'stopped');
    // stop() afterwards hands back the same result.
    assert.equal(await worker.stop(), stopped);
  });
});

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
    await fake.waitForCommand('reserve');
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
      lines.some((line) => line.jobId === id && line.why === 'forced'),
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

    const stopping = worker.stop({ force: true });
    await events.waitFor('job:released');
    // Now let the job end, after beanstalkd has had it back: it is someone else's job.
    gate.resolve();
    await outcome.promise;
    const result = await within(stopping, 2_000, 'stop() after the released job finished');
    assert.deepEqual(result, { graceful: false, releasedJobIds: [id] });
    assert.deepEqual(fake.calls('delete'), []);
    assert.deepEqual(fake.calls('bury'), []);
    assert.deepEqual(fake.calls('statsJob'), []);
    assert.equal(
      events.events.some((event) => event.name === 'job:failed' || event.name === 'job:buried' || event.name === 'job:deleted'),
      false,
    );
  });
});
