// The worker against a real beanstalkd: the whole loop for both task forms, scheduling, the failure and
// kick cycle, hostile bodies, and a server that disappears.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { ConnectionError } from '../../src/beanstalk/errors.js';
import { type JobEvent, JobQueue, type StopResult, Worker } from '../../src/index.js';
import { type BeanstalkdServer, freePort, rawCommand, rawPut, rawStatsJob, startBeanstalkd } from '../helpers/beanstalkd.js';
import { EventRecorder, LogCapture } from '../helpers/events.js';

type Payload = JobEvent & { reason?: string; buriedAs?: string };

const tube = (): string => `w-${randomUUID().slice(0, 8)}`;
const silent = pino({ level: 'silent' });

describe('Worker against beanstalkd', () => {
  let server: BeanstalkdServer;
  let queue: JobQueue;
  const workers: Worker[] = [];

  const recorders = new Map<Worker, EventRecorder<Payload>>();
  const startWorker = async (tubes: string[], options: { maxKicks?: number; logger?: pino.Logger } = {}): Promise<Worker> => {
    const worker = new Worker({ tubes, url: server.url, logger: options.logger ?? silent, maxKicks: options.maxKicks });
    workers.push(worker);
    recorders.set(worker, new EventRecorder<Payload>(worker, ['job:reserved', 'job:deleted', 'job:buried']));
    await worker.start();
    return worker;
  };
  // Waits for an event that may already have happened: the worker can finish a job before put() resolves.
  const waitFor = (worker: Worker, event: string, match: (payload: Payload) => boolean): Promise<Payload> =>
    (recorders.get(worker) as EventRecorder<Payload>).waitFor(event, match);
  const kick = (t: string, id: string): Promise<string> => rawCommand(server.url, `kick-job ${id}\r\n`).then((r) => `${t}:${r}`);

  before(async () => {
    server = await startBeanstalkd();
    queue = new JobQueue({ url: server.url, logger: silent });
  });
  after(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await queue?.close();
    await server?.stop();
  });

  it('runs a function-form task and deletes the job', async () => {
    const t = tube();
    const seen: unknown[] = [];
    const add = queue.task(t)(async function add(kw: { a: number; b: number }) {
      seen.push(kw);
      return kw.a + kw.b;
    });
    const worker = await startWorker([t]);
    const id = await add.put({ a: 1, b: 2 });
    const deleted = await waitFor(worker, 'job:deleted', (e) => e.jobId === id);
    assert.deepEqual([deleted.tube, deleted.task, deleted.reason], [t, 'add', 'completed']);
    assert.deepEqual(seen, [{ a: 1, b: 2 }]);
    assert.equal(await rawStatsJob(server.url, id), null);
  });

  it('runs a decorated static method with its class as `this`', async () => {
    const t = tube();
    const calls: string[] = [];
    class Mailer {
      static greeting = 'Hello';
      @queue.task(t)
      static async welcome(kw: { name: string }): Promise<void> {
        // biome-ignore lint/complexity/noThisInStatic: the point is that the worker calls it with `this` = the class.
        calls.push(`${this.greeting}, ${kw.name}`);
      }
    }
    const worker = await startWorker([t]);
    const id = await queue.put(Mailer.welcome, { name: 'Ann' });
    const runtimePut = (Mailer.welcome as unknown as { put(kw: { name: string }): Promise<string> }).put;
    const id2 = await runtimePut({ name: 'Bob' });
    await waitFor(worker, 'job:deleted', (e) => e.jobId === id2);
    assert.deepEqual(calls, ['Hello, Ann', 'Hello, Bob']);
    assert.equal(await rawStatsJob(server.url, id), null);
  });

  it('honours priority and delay', async () => {
    const t = tube();
    const order: string[] = [];
    const step = queue.task(t)(async function step(kw: { name: string }) {
      order.push(kw.name);
    });
    const late = await step.put({ name: 'delayed' }, { delay: 1, priority: 0 });
    await step.put({ name: 'low' }, { priority: 2000 });
    await step.put({ name: 'high' }, { priority: 5 });
    assert.equal((await rawStatsJob(server.url, late))?.state, 'delayed');
    const worker = await startWorker([t]);
    await waitFor(worker, 'job:deleted', (e) => e.jobId === late);
    assert.deepEqual(order, ['high', 'low', 'delayed']);
  });

  it('buries a failure, runs it again on each kick, and deletes it with its body logged after maxKicks', async () => {
    const t = tube();
    let runs = 0;
    const boom = queue.task(t)(async function boom(_kw: { order: number }) {
      runs += 1;
      throw new Error(`boom ${runs}`);
    });
    const logs = new LogCapture();
    const worker = await startWorker([t], { maxKicks: 2, logger: pino({ level: 'info' }, logs.stream) });
    let id = await boom.put({ order: 42 });

    for (let kicks = 0; kicks < 2; kicks += 1) {
      // Each bury keeps the failure record in a copy with a new id: follow the job from copy to copy.
      const buried = await waitFor(worker, 'job:buried', (e) => e.jobId === id);
      assert.equal(buried.reason, 'failed');
      assert.ok(buried.buriedAs !== undefined && buried.buriedAs !== id, 'buried as a copy with its record');
      assert.equal(await rawStatsJob(server.url, id), null, 'the original is deleted');
      id = buried.buriedAs;
      assert.equal((await rawStatsJob(server.url, id))?.state, 'buried');
      await kick(t, id);
    }
    await waitFor(worker, 'job:deleted', (e) => e.jobId === id && e.reason === 'max-kicks');
    assert.equal(runs, 3);
    assert.equal(await rawStatsJob(server.url, id), null);
    const [line] = logs.find(/deleted/);
    assert.equal(line?.level, 50, 'error level');
    const logged = JSON.parse(line?.body as string);
    assert.deepEqual([logged.func_name, logged.tube, logged.kwargs], ['boom', t, { order: 42 }]);
    assert.deepEqual(
      logged.meta.failures.map((f: { message: string }) => f.message),
      ['boom 1', 'boom 2'],
      'the body logged carries the history of the earlier failures',
    );
    assert.equal((line?.err as { message?: string })?.message, 'boom 3');
  });

  it('handles non-Error throws like errors', async () => {
    const t = tube();
    const values: unknown[] = ['a string', undefined, { code: 7 }, null];
    let i = 0;
    const odd = queue.task(t)(async function odd() {
      throw values[i++];
    });
    const worker = await startWorker([t], { maxKicks: 0 });
    for (const _ of values) {
      const id = await odd.put();
      await waitFor(worker, 'job:deleted', (e) => e.jobId === id);
    }
    assert.equal(i, values.length);
  });

  it('buries hostile and malformed bodies without running anything, and keeps going', async () => {
    const t = tube();
    let ran = 0;
    const good = queue.task(t)(async function good() {
      ran += 1;
    });
    const worker = await startWorker([t]);
    const bad: [string, Buffer | string, string][] = [
      ['not JSON', 'delete 1', 'undecodable'],
      ['not UTF-8', Buffer.from([0xff, 0xfe, 0x7b]), 'undecodable'],
      ['an array', '[1,2]', 'undecodable'],
      ['null', 'null', 'undecodable'],
      ['no func_name', JSON.stringify({ tube: t, kwargs: {} }), 'undecodable'],
      ['kwargs not an object', JSON.stringify({ func_name: 'good', tube: t, kwargs: [1] }), 'undecodable'],
      ['an unregistered name', JSON.stringify({ func_name: 'missing', tube: t, kwargs: {} }), 'unregistered'],
      ['toString', JSON.stringify({ func_name: 'toString', tube: t, kwargs: {} }), 'unregistered'],
      ['__proto__', JSON.stringify({ func_name: '__proto__', tube: t, kwargs: {} }), 'unregistered'],
      ['constructor', JSON.stringify({ func_name: 'constructor', tube: t, kwargs: {} }), 'unregistered'],
    ];
    for (const [name, body, reason] of bad) {
      const id = await rawPut(server.url, t, body);
      const buried = await waitFor(worker, 'job:buried', (e) => e.jobId === id);
      assert.equal(buried.reason, reason, name);
      assert.equal((await rawStatsJob(server.url, buried.buriedAs ?? id))?.state, 'buried', name);
      // A JSON object carries its record in a copy; other bodies are buried as they are.
      assert.equal(buried.buriedAs !== undefined, body.toString().startsWith('{'), name);
    }
    const id = await good.put();
    await waitFor(worker, 'job:deleted', (e) => e.jobId === id);
    assert.equal(ran, 1);
    assert.equal(worker.state, 'running');
  });

  it('runs the task of the tube the job sits in (from stats-job), whatever tube the body names', async () => {
    const [t1, t2] = [tube(), tube()];
    const ran: string[] = [];
    queue.task(t1)(async function same() {
      ran.push(t1);
    });
    queue.task(t2)(async function same() {
      ran.push(t2);
    });
    const worker = await startWorker([t1, t2]);
    const body = (bodyTube: string): string => JSON.stringify({ func_name: 'same', tube: bodyTube, kwargs: {} });
    // The body agrees with the tube.
    const a = await rawPut(server.url, t2, body(t2));
    await waitFor(worker, 'job:deleted', (e) => e.jobId === a);
    // The body names a tube nobody watches.
    const b = await rawPut(server.url, t1, body('elsewhere'));
    await waitFor(worker, 'job:deleted', (e) => e.jobId === b);
    // The body names the other watched tube, which has a task of the same name: the body must not win,
    // or a producer could run any tube's task by writing its name in the body.
    const c = await rawPut(server.url, t1, body(t2));
    const deleted = await waitFor(worker, 'job:deleted', (e) => e.jobId === c);
    assert.equal(deleted.tube, t1);
    assert.deepEqual(ran, [t2, t1, t1]);
  });

  it('does not watch the default tube unless asked', async () => {
    const t = tube();
    queue.task(t)(async function noop() {});
    const worker = await startWorker([t]);
    const stray = await rawPut(server.url, 'default', JSON.stringify({ func_name: 'noop', tube: t, kwargs: {} }));
    const id = await rawPut(server.url, t, JSON.stringify({ func_name: 'noop', tube: t, kwargs: {} }));
    await waitFor(worker, 'job:deleted', (e) => e.jobId === id);
    assert.equal((await rawStatsJob(server.url, stray))?.state, 'ready');
    await rawCommand(server.url, `delete ${stray}\r\n`);
  });

  it('stop() waits for the running job, deletes it, and resolves gracefully', async () => {
    const t = tube();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = queue.task(t)(async function slow() {
      await gate;
    });
    const worker = await startWorker([t]);
    const id = await slow.put();
    await waitFor(worker, 'job:reserved', (e) => e.jobId === id);
    const stopping = worker.stop();
    assert.equal(worker.stop(), stopping, 'idempotent');
    assert.equal(worker.state, 'stopping');
    release();
    const result: StopResult = await stopping;
    assert.deepEqual(result, { graceful: true, releasedJobIds: [] });
    assert.equal(await rawStatsJob(server.url, id), null);
  });

  it('stop({ force: true }) gives the running job back at once', async () => {
    const t = tube();
    const never = queue.task(t)(async function never() {
      await new Promise(() => {});
    });
    const worker = await startWorker([t]);
    const id = await never.put({}, { ttr: 3600 });
    await waitFor(worker, 'job:reserved', (e) => e.jobId === id);
    const result = await worker.stop({ force: true });
    assert.deepEqual(result, { graceful: false, releasedJobIds: [id] });
    const stats = await rawStatsJob(server.url, id);
    assert.equal(stats?.state, 'ready', 'ready again without waiting for the TTR');
    assert.equal(stats?.releases, '0', 'closing the connection does not count as a release');
    await rawCommand(server.url, `delete ${id}\r\n`);
  });

  it('start() rejects with ConnectionError when the server is unreachable', async () => {
    const port = await freePort();
    const worker = new Worker({ tubes: [tube()], url: `127.0.0.1:${port}`, logger: silent });
    await assert.rejects(worker.start(), (error: unknown) => error instanceof ConnectionError && error.message.includes(String(port)));
    assert.equal(worker.state, 'stopped');
  });
});

describe('Worker when beanstalkd dies', () => {
  it('keeps running, reconnects to the restarted server, and runs new jobs', async () => {
    let server = await startBeanstalkd();
    const { port } = server;
    const t = tube();
    const queue = new JobQueue({ url: server.url, logger: silent });
    const ran: number[] = [];
    const ping = queue.task(t)(async function ping(kw: { n: number }) {
      ran.push(kw.n);
    });
    // A short reconnect cap keeps the test quick; the backoff itself is unit-tested.
    const worker = new Worker({ tubes: [t], url: server.url, logger: silent, reconnectMaxMs: 500 });
    // Recorded from the start, so an event that fires before the test awaits it is not missed.
    const recorder = new EventRecorder<Payload & { slot?: number }>(worker, ['worker:error', 'worker:reconnected', 'job:deleted']);
    try {
      await worker.start();
      await server.stop('SIGKILL');
      const error = await recorder.waitFor('worker:error');
      assert.ok(error instanceof ConnectionError, `a lost connection is reported as ConnectionError, got ${String(error)}`);
      assert.equal(worker.state, 'running', 'the worker keeps running while the server is away');

      server = await startBeanstalkd({ port });
      await recorder.waitFor('worker:reconnected');
      assert.equal(worker.state, 'running');
      const id = await ping.put({ n: 7 });
      const deleted = await recorder.waitFor('job:deleted', (e) => e.jobId === id);
      assert.equal(deleted.reason, 'completed');
      assert.deepEqual(ran, [7]);
      assert.equal(await rawStatsJob(server.url, id), null);
    } finally {
      await worker.stop();
      await queue.close();
      await server.stop();
    }
  });
});
